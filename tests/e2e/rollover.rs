//! Key rollovers against real DNS servers: keymaster's rollover engine
//! rolls a child zone's ZSK (its lifetime ends), KSK (an operator asks)
//! and algorithm (the policy changes) while Knot DNS serves the parent and
//! the child, signed by keymaster and
//! republished by the test whenever the key set changes, and Unbound
//! validates from the parent's trust anchor. Queried every second through
//! Unbound, the child answers with AD throughout: no validation gap. The
//! DS submission command writes the new DS, which the test puts into the
//! parent (a registrar's job). Also: a parent that withholds the DS holds
//! the roll until an operator steps it; a roll goes on across a transfer of
//! the Key Master and across kill -9 and a seize.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::dns::{Knot, Unbound, Validators};
use crate::common::*;
use domain::base::iana::Rtype;

const PARENT: &str = "test.";
/// The zones' TTLs, seconds: data below the DNSKEY RRset's, the DS's
/// longer again, so that caches hold each for a different time and a roll
/// that waits for the wrong one shows (with equal TTLs a validator would
/// refresh keys and data together and miss it). Long enough against the
/// test's republishing delay, short enough for the rolls to take seconds.
const DATA_TTL: u32 = 3;
const KEY_TTL: u32 = 6;
const DS_TTL: u32 = 9;
const CHILD: &str = "child.test.";

fn child_text(serial: u32) -> String {
    format!(
        "$ORIGIN child.test.\n$TTL {DATA_TTL}\n@ SOA ns.child.test. h.child.test. {serial} 10 10 60 {DATA_TTL}\n\
         @ NS ns.child.test.\nns A 127.0.0.1\nwww A 192.0.2.80\n"
    )
}

fn parent_text(serial: u32, ds: &str) -> String {
    format!(
        "$ORIGIN test.\n$TTL {DATA_TTL}\n@ SOA ns.test. h.test. {serial} 10 10 60 {DATA_TTL}\n@ NS ns.test.\n\
         ns A 127.0.0.1\nchild NS ns.child.test.\nns.child A 127.0.0.1\n{ds}"
    )
}

/// The DS lines of `keymasterctl ds ZONE`, or of a DS file.
fn ds_lines(text: &str) -> String {
    text.lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("DS") || l.contains("\tDS\t"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn key_of(d: &Daemon, zone: &str, role: &str) -> (String, u64) {
    d.key_rows(zone)
        .into_iter()
        .find(|k| k.1 == role && k.2 == "active")
        .map(|k| (k.0, k.3))
        .expect("an active key")
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Signs and publishes the child whenever its key set changes, and the
/// parent whenever the DS file the submission command writes changes (or
/// the test sets the parent's DS itself).
struct Publisher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The DS lines the parent is to carry (None: as the DS file says).
    parent_ds: Arc<Mutex<Option<String>>>,
}

struct Sites {
    knot: Knot,
    ds_file: std::path::PathBuf,
    /// Holds `ds_file` and the submission script; removed with the sites.
    _hooks: TempDir,
}

impl Publisher {
    fn start(
        daemons: Arc<Mutex<Vec<Arc<Daemon>>>>,
        sites: Arc<Sites>,
        initial_ds: String,
    ) -> Publisher {
        let stop = Arc::new(AtomicBool::new(false));
        let parent_ds = Arc::new(Mutex::new(Some(initial_ds)));
        let (s, pd) = (stop.clone(), parent_ds.clone());
        let thread = std::thread::spawn(move || {
            let (mut child_serial, mut parent_serial) = (100u32, 100u32);
            let (mut last_keys, mut last_ds) = (Vec::new(), String::new());
            while !s.load(Ordering::SeqCst) {
                let d = daemons.lock().unwrap().last().unwrap().clone();
                let ks: Vec<(String, String)> = match d.ctl(&["key", "list", CHILD, "--json"]) {
                    o if o.status.success() => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&o.stdout).unwrap_or_default();
                        v.as_array()
                            .map(|a| {
                                a.iter()
                                    .map(|k| (k["id"].to_string(), k["state"].to_string()))
                                    .collect()
                            })
                            .unwrap_or_default()
                    }
                    _ => last_keys.clone(),
                };
                if ks != last_keys {
                    child_serial += 1;
                    let (_w, out, o) = d.sign_text(CHILD, &child_text(child_serial));
                    if o.status.success() {
                        sites.knot.publish(CHILD, &out, child_serial);
                        last_keys = ks;
                    } else {
                        eprintln!("publisher: {}", String::from_utf8_lossy(&o.stderr));
                    }
                }
                let ds = match pd.lock().unwrap().clone() {
                    Some(ds) => ds,
                    None => ds_lines(&std::fs::read_to_string(&sites.ds_file).unwrap_or_default()),
                };
                if !ds.is_empty() && ds != last_ds {
                    parent_serial += 1;
                    let (_w, out, o) = d.sign_text(PARENT, &parent_text(parent_serial, &ds));
                    if o.status.success() {
                        sites.knot.publish(PARENT, &out, parent_serial);
                        last_ds = ds;
                    }
                }
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        Publisher {
            stop,
            thread: Some(thread),
            parent_ds,
        }
    }

    /// The parent takes the DS from the submission command's file from now.
    fn follow_submissions(&self) {
        *self.parent_ds.lock().unwrap() = None;
    }

    /// The parent carries these DS lines from now (a registrar told at
    /// once, without waiting).
    fn set_parent_ds(&self, ds: String) {
        *self.parent_ds.lock().unwrap() = Some(ds);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asks Unbound for the child three times a second; every answer must be
/// NOERROR with AD.
struct Querier {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Querier {
    /// Asks each of `validators` (the stock and the strict Unbound).
    fn start(validators: Vec<Arc<Unbound>>) -> Querier {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !s.load(Ordering::SeqCst) {
                for (i, unbound) in validators.iter().enumerate() {
                    for (name, qtype) in [("www.child.test.", Rtype::A), (CHILD, Rtype::DNSKEY)] {
                        let a = unbound.resolve(name, qtype);
                        answers.push(match a {
                            Ok((rcode, true)) if rcode == "NOERROR" => "ok".to_string(),
                            other => format!("validator {i}: {name} {qtype}: {other:?}"),
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            answers
        });
        Querier {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops; asserts every answer validated and returns how many there were.
    fn finish(mut self, v: &Validators) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let answers = self.thread.take().unwrap().join().unwrap();
        let bad: Vec<&String> = answers.iter().filter(|a| *a != "ok").collect();
        assert!(
            bad.is_empty(),
            "{} of {} answers did not validate: {bad:?}\n{}\n{}",
            bad.len(),
            answers.len(),
            v.stock.log(),
            v.strict.log()
        );
        answers.len()
    }
}

/// What the authoritative servers serve, sampled four times a second: the
/// tags of the child's DNSKEY records, of the RRSIGs over its DNSKEY RRset
/// and over www's A RRset, and of the parent's DS for it.
struct Sample {
    at: Instant,
    dnskeys: Vec<u16>,
    dnskey_sigs: Vec<u16>,
    data_sigs: Vec<u16>,
    ds: Vec<u16>,
}

impl Sample {
    /// The keys in the DNSKEY RRset that sign it (a signature by a key
    /// not published, as in an algorithm roll's first step, is no use to
    /// a DS).
    fn ksks(&self) -> Vec<u16> {
        self.dnskey_sigs
            .iter()
            .copied()
            .filter(|t| self.dnskeys.contains(t))
            .collect()
    }
}

fn tags(server: &str, name: &str, qtype: Rtype) -> (Vec<u16>, Vec<u16>) {
    use bytes::Bytes;
    use domain::base::ParsedName;
    let Ok(a) = crate::common::dns::ask(server, name, qtype, false) else {
        return (Vec::new(), Vec::new());
    };
    let Ok(section) = a.answer() else {
        return (Vec::new(), Vec::new());
    };
    let records: Vec<u16> = match qtype {
        Rtype::DNSKEY => section
            .limit_to::<domain::rdata::Dnskey<Bytes>>()
            .flatten()
            .map(|r| r.data().key_tag())
            .collect(),
        Rtype::DS => section
            .limit_to::<domain::rdata::Ds<Bytes>>()
            .flatten()
            .map(|r| r.data().key_tag())
            .collect(),
        _ => Vec::new(),
    };
    let sigs = a
        .answer()
        .unwrap()
        .limit_to::<domain::rdata::Rrsig<Bytes, ParsedName<Bytes>>>()
        .flatten()
        .filter(|r| r.data().type_covered() == qtype)
        .map(|r| r.data().key_tag())
        .collect();
    (records, sigs)
}

/// Checks, from the samples, what RFC 7583's intervals exist for: whatever
/// a cache may still hold (anything served up to a TTL ago) together with
/// what is served now must validate. Unbound is forgiving (it fetches
/// keys again when validation fails); this check is not.
struct Observer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Sample>>>,
}

impl Observer {
    fn start(server: String) -> Observer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !s.load(Ordering::SeqCst) {
                let (dnskeys, dnskey_sigs) = tags(&server, CHILD, Rtype::DNSKEY);
                let (_, data_sigs) = tags(&server, "www.child.test.", Rtype::A);
                let (ds, _) = tags(&server, CHILD, Rtype::DS);
                samples.push(Sample {
                    at: Instant::now(),
                    dnskeys,
                    dnskey_sigs,
                    data_sigs,
                    ds,
                });
                std::thread::sleep(Duration::from_millis(250));
            }
            samples
        });
        Observer {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let samples = self.thread.take().unwrap().join().unwrap();
        // How long a cache may hold what was served then, by its TTL.
        let held = |ttl: u32| Duration::from_secs(u64::from(ttl));
        let meets = |a: &[u16], b: &[u16]| a.iter().any(|t| b.contains(t));
        let mut faults = Vec::new();
        for (i, now) in samples.iter().enumerate() {
            let cached = samples[..=i]
                .iter()
                .filter(|u| now.at.duration_since(u.at) <= held(DS_TTL) && !u.dnskeys.is_empty());
            for old in cached {
                let ago = now.at.duration_since(old.at);
                // Fresh data, a DNSKEY RRset cached from then: one
                // signature a validator can check is enough (RFC 4035
                // §5.3.1; an algorithm roll signs with keys not yet
                // published).
                if ago <= held(KEY_TTL) && !meets(&now.data_sigs, &old.dnskeys) {
                    faults.push(format!(
                        "data signed by {:?}, none of them in the DNSKEY RRset of {ago:?} before {:?}",
                        now.data_sigs, old.dnskeys
                    ));
                }
                // Data cached from then, a fresh DNSKEY RRset.
                if ago <= held(DATA_TTL) && !meets(&old.data_sigs, &now.dnskeys) {
                    faults.push(format!("data signed {ago:?} before by {:?}, none of them in the DNSKEY RRset now {:?}", old.data_sigs, now.dnskeys));
                }
                // A DS cached from then and a fresh DNSKEY RRset, and a
                // fresh DS with a DNSKEY RRset cached from then: the DS
                // must name a key that is in the RRset and signs it.
                if !meets(&old.ds, &now.ksks())
                    || (ago <= held(KEY_TTL) && !meets(&now.ds, &old.ksks()))
                {
                    faults.push(format!("DS {:?} / DNSKEY signed by published {:?} now against DS {:?} / DNSKEY signed by published {:?} {ago:?} before", now.ds, now.ksks(), old.ds, old.ksks()));
                }
            }
        }
        assert!(
            faults.is_empty(),
            "{} faults in {} samples: {:#?}",
            faults.len(),
            samples.len(),
            &faults[..faults.len().min(10)]
        );
        samples.len()
    }
}

/// The child's policy: seconds instead of days, the servers to check.
fn child_policy(knot: &Knot, zsk_lifetime: &str) -> Vec<String> {
    let (key_ttl, ds_ttl) = (KEY_TTL.to_string(), DS_TTL.to_string());
    [
        "--denial",
        "nsec",
        "--dnskey-ttl",
        &key_ttl,
        "--propagation-time",
        "1",
        "--safety-margin",
        "1",
        "--max-zone-ttl",
        &key_ttl,
        "--parent-ds-ttl",
        &ds_ttl,
        "--ds-ttl",
        &ds_ttl,
        "--parent-propagation",
        "1",
        "--zsk-lifetime",
        zsk_lifetime,
        "--ksk-lifetime",
        "off",
        "--publication-server",
        &knot.addr(),
        "--parent-server",
        &knot.addr(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Knot serving both zones, the zones added and published, the
/// validators anchored at the parent.
fn world(
    d: &Daemon,
    sites: &Sites,
    zsk_lifetime: &str,
    child_extra: &[&str],
) -> (Validators, String) {
    let (key_ttl, ds_ttl) = (KEY_TTL.to_string(), DS_TTL.to_string());
    d.add_still_zone(PARENT, &["--ds-ttl", &ds_ttl, "--dnskey-ttl", &key_ttl]);
    let mut args = vec!["zone".to_string(), "add".into(), CHILD.into()];
    args.extend(child_policy(&sites.knot, zsk_lifetime));
    args.extend(child_extra.iter().map(|s| s.to_string()));
    d.ctl_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let child_ds = ds_lines(&d.ctl_ok(&["ds", CHILD]));
    let (_w, out, o) = d.sign_text(CHILD, &child_text(1));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    sites.knot.publish(CHILD, &out, 1);
    let (_w, out, o) = d.sign_text(PARENT, &parent_text(1, &child_ds));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    sites.knot.publish(PARENT, &out, 1);
    let anchors: Vec<String> = ds_lines(&d.ctl_ok(&["ds", PARENT]))
        .lines()
        .map(str::to_string)
        .collect();
    let stubs = [(PARENT, sites.knot.addr()), (CHILD, sites.knot.addr())];
    let trust: String = anchors
        .iter()
        .map(|a| format!("trust-anchor: \"{}\"\n", a.replace('\t', " ")))
        .collect();
    let v = Validators::start(&stubs, &trust);
    v.wait_validated("www.child.test.", Rtype::A, 30);
    (v, child_ds)
}

fn sites() -> Arc<Sites> {
    let hooks = TempDir::new("ds-hook");
    let ds_file = hooks.path().join("ds-child.test.");
    Arc::new(Sites {
        knot: Knot::start(&[PARENT, CHILD]),
        ds_file,
        _hooks: hooks,
    })
}

/// The DS submission command: writes the DS set it is given where the
/// test's publisher reads it.
fn hook(sites: &Sites) -> String {
    let dir = sites.ds_file.parent().unwrap();
    let script = dir.join("submit-ds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat > \"{0}/ds-$1.new\" && mv \"{0}/ds-$1.new\" \"{0}/ds-$1\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    script.display().to_string()
}

#[test]
fn zsk_and_ksk_rolls_keep_every_answer_validated() {
    let token = TestToken::new("rolls");
    let sites = sites();
    let d = Arc::new(Daemon::start(
        &token,
        "roll-a",
        &["--ds-submit-command", &hook(&sites)],
    ));
    let (validators, child_ds) = world(&d, &sites, "20s", &[]);
    let daemons = Arc::new(Mutex::new(vec![d.clone()]));
    let publisher = Publisher::start(daemons, sites.clone(), child_ds);
    publisher.follow_submissions();
    let querier = Querier::start(validators.both());
    let observer = Observer::start(sites.knot.addr());

    // The ZSK's lifetime ends: the engine rolls it by pre-publication.
    let (zsk, _) = key_of(&d, CHILD, "zsk");
    let began = Instant::now();
    wait_for("the ZSK roll to finish", 120, || {
        let ks = d.key_rows(CHILD);
        ks.len() == 2 && ks.iter().all(|k| k.0 != zsk && k.2 == "active")
    });
    let zsk_roll = began.elapsed();
    d.ctl_ok(&["zone", "set", CHILD, "--zsk-lifetime", "off"]);

    // The operator rolls the KSK: double-KSK, the DS swapped at the parent
    // by the submission command, the old KSK withdrawn after the DS TTL.
    let (ksk, ksk_tag) = key_of(&d, CHILD, "ksk");
    let began = Instant::now();
    d.ctl_ok(&["key", "roll", CHILD, &ksk_tag.to_string()]);
    wait_for("the KSK roll to finish", 120, || {
        let ks = d.key_rows(CHILD);
        ks.len() == 2 && ks.iter().all(|k| k.0 != ksk && k.2 == "active")
    });
    let ksk_roll = began.elapsed();
    // By hand, a KSK swap would break validation now: refused without
    // --force, with the earliest safe time and the safe way; the
    // validators see nothing of it.
    let added: serde_json::Value = serde_json::from_str(&d.ctl_ok(&[
        "key",
        "add",
        CHILD,
        "--role",
        "ksk",
        "--activate",
        "--json",
    ]))
    .unwrap();
    let new_ksk = added[0]["key_tag"].to_string();
    let (_, old_ksk) = d
        .key_rows(CHILD)
        .into_iter()
        .filter(|k| k.1 == "ksk" && k.3.to_string() != new_ksk)
        .map(|k| (k.0, k.3))
        .next()
        .unwrap();
    let old_ksk = old_ksk.to_string();
    let err = d.ctl_err(&["key", "retire", CHILD, &old_ksk]);
    assert!(
        err.contains(&format!(
            "KSK {old_ksk} of child.test. cannot be retired before 20"
        )) && err.contains("keymasterctl key roll child.test."),
        "{err}"
    );
    let err = d.ctl_err(&["key", "remove", CHILD, &old_ksk]);
    assert!(err.contains("cannot be removed now"), "{err}");
    std::thread::sleep(Duration::from_secs(u64::from(DS_TTL)));
    let answers = querier.finish(&validators);
    let samples = observer.finish();
    eprintln!("ZSK roll {zsk_roll:?}, KSK roll {ksk_roll:?}, {answers} answers, all AD; {samples} samples without fault");
    assert!(answers >= 100, "{answers}");

    // Each step is in the audit log with the servers' evidence.
    let log = d.audit_entries(CHILD);
    let steps: Vec<&str> = log
        .iter()
        .filter(|e| e["action"] == "roll-step")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    let knot = sites.knot.addr();
    for want in [
        "signs; ZSK",
        "ZSK",
        "takes over",
        "the parent serves the DS",
        "KSK",
    ] {
        assert!(steps.iter().any(|s| s.contains(want)), "{want}: {steps:#?}");
    }
    assert!(
        steps.iter().all(|s| s.contains(&format!("{knot} serves"))),
        "{steps:#?}"
    );
    assert!(log.iter().any(|e| e["action"] == "roll-start"));
    // The old keys are gone from the token too.
    let objects = token.list_objects();
    for gone in [&zsk, &ksk] {
        assert!(
            !objects.contains(gone.as_str()),
            "{gone} still in the token"
        );
    }

    // Controls: the same swaps made without waiting are seen. The KSK: the
    // old one out of the DNSKEY RRset and the DS at the parent replaced at
    // once, while caches hold the old DS.
    let settle = Duration::from_secs(u64::from(DS_TTL));
    validators.careless_swap_is_seen(
        "a KSK swap",
        "www.child.test.",
        (CHILD, Rtype::DS, DS_TTL),
        settle,
        || {
            d.ctl_ok(&["key", "retire", CHILD, &old_ksk, "--force"]);
            d.ctl_ok(&["key", "remove", CHILD, &old_ksk, "--force"]);
            publisher.set_parent_ds(ds_lines(&d.ctl_ok(&["ds", CHILD])));
        },
    );
    // The ZSK: a new one signing at once and the old one gone, while
    // caches hold the DNSKEY RRset without the new one.
    let (_, old_zsk) = key_of(&d, CHILD, "zsk");
    let old_zsk = old_zsk.to_string();
    validators.careless_swap_is_seen(
        "a ZSK swap",
        "www.child.test.",
        (CHILD, Rtype::DNSKEY, KEY_TTL),
        settle,
        || {
            d.ctl_ok(&["key", "add", CHILD, "--role", "zsk", "--activate"]);
            d.ctl_ok(&["key", "retire", CHILD, &old_zsk, "--force"]);
            d.ctl_ok(&["key", "remove", CHILD, &old_zsk, "--force"]);
        },
    );
    drop(publisher);
}

#[test]
fn an_algorithm_roll_keeps_every_answer_validated() {
    let token = TestToken::new("algroll");
    let sites = sites();
    let d = Arc::new(Daemon::start(
        &token,
        "alg-a",
        &["--ds-submit-command", &hook(&sites)],
    ));
    let (validators, child_ds) = world(&d, &sites, "off", &["--algorithm", "rsasha256"]);
    let daemons = Arc::new(Mutex::new(vec![d.clone()]));
    let publisher = Publisher::start(daemons, sites.clone(), child_ds);
    publisher.follow_submissions();
    let querier = Querier::start(validators.both());
    let observer = Observer::start(sites.knot.addr());
    let algorithms = || -> Vec<(String, u64, String)> {
        let v: serde_json::Value =
            serde_json::from_str(&d.ctl_ok(&["key", "list", CHILD, "--json"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["role"].as_str().unwrap().to_string(),
                    k["algorithm"].as_u64().unwrap(),
                    k["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert!(algorithms().iter().all(|k| k.1 == 8), "{:?}", algorithms());
    let old: Vec<String> = d.key_rows(CHILD).into_iter().map(|k| k.0).collect();

    // RSASHA256 to ECDSAP256SHA256: the policy changes, the engine rolls.
    let began = Instant::now();
    d.ctl_ok(&["zone", "set", CHILD, "--algorithm", "ecdsap256sha256"]);
    wait_for("the new keys to sign before they are published", 30, || {
        algorithms()
            .iter()
            .filter(|k| k.1 == 13 && k.2 == "pre-active")
            .count()
            == 2
    });
    // Once started, another algorithm change is refused with the reason.
    let err = d.ctl_err(&["zone", "set", CHILD, "--algorithm", "ed25519"]);
    assert!(err.contains("must end first"), "{err}");
    wait_for("the algorithm roll to finish", 180, || {
        let ks = algorithms();
        ks.len() == 2 && ks.iter().all(|k| k.1 == 13 && k.2 == "active")
    });
    let roll = began.elapsed();
    let answers = querier.finish(&validators);
    let samples = observer.finish();
    eprintln!(
        "algorithm roll {roll:?}, {answers} answers, all AD; {samples} samples without fault"
    );
    assert!(answers >= 50, "{answers}");
    // The conservative order, step by step in the audit log.
    let log = d.audit_entries(CHILD);
    let steps: Vec<&str> = log
        .iter()
        .filter(|e| e["action"] == "roll-start" || e["action"] == "roll-step")
        .map(|e| e["detail"].as_str().unwrap())
        .filter(|d| !d.starts_with("every server serves"))
        .collect();
    let order = [
        "signatures first",
        "published beside",
        "takes over",
        "the parent serves the DS",
        "DNSKEYs withdrawn",
        "keys removed",
    ];
    assert_eq!(steps.len(), order.len(), "{steps:#?}");
    for (step, want) in steps.iter().zip(order) {
        assert!(step.contains(want), "{want}: {steps:#?}");
    }
    let objects = token.list_objects();
    for gone in &old {
        assert!(
            !objects.contains(gone.as_str()),
            "{gone} still in the token"
        );
    }
    drop(publisher);
}

#[test]
fn a_parent_that_withholds_the_ds_holds_the_roll_until_an_operator_steps_it() {
    let token = TestToken::new("withhold");
    let sites = sites();
    // No submission command: the parent never learns of the new DS.
    let d = Arc::new(Daemon::start(&token, "hold-a", &[]));
    let (validators, child_ds) = world(&d, &sites, "off", &[]);
    let daemons = Arc::new(Mutex::new(vec![d.clone()]));
    let publisher = Publisher::start(daemons, sites.clone(), child_ds);
    let querier = Querier::start(validators.both());
    let observer = Observer::start(sites.knot.addr());
    let (ksk, ksk_tag) = key_of(&d, CHILD, "ksk");
    // CDS/CDNSKEY only while the roll waits for the parent.
    d.ctl_ok(&["zone", "set", CHILD, "--cds", "rollover"]);
    let cds_lines = || -> Vec<String> {
        d.ctl_ok(&["cds", CHILD])
            .lines()
            .filter(|l| matches!(l.split_whitespace().nth(3), Some("CDS" | "CDNSKEY")))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(cds_lines(), Vec::<String>::new(), "no roll, no CDS");
    d.ctl_ok(&["key", "roll", CHILD, &ksk_tag.to_string()]);
    // Waiting for the parent's DS, told apart from waiting for the
    // zone's own servers (WaitingForPublication).
    wait_for("the roll to wait for the parent", 60, || {
        d.ctl_ok(&["key", "list", CHILD])
            .contains("KskWaitingForDsUpdate")
            && d.key_rows(CHILD)
                .iter()
                .any(|k| k.0 == ksk && k.2 == "leaving")
    });
    let listing = d.ctl_ok(&["key", "list", CHILD]);
    assert!(
        listing.contains(&format!("waiting for {}", sites.knot.addr()))
            && listing.contains("none for the new key"),
        "{listing}"
    );
    let zone: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "show", CHILD, "--json"])).unwrap();
    assert_eq!(zone["CurrentRolloverStatus"], "KskWaitingForDsUpdate");
    let new_tag = d
        .key_rows(CHILD)
        .into_iter()
        .find(|k| k.1 == "ksk" && k.2 == "active")
        .unwrap()
        .3;
    let during = cds_lines();
    assert_eq!(during.len(), 2, "one CDS and one CDNSKEY: {during:?}");
    assert!(
        during.iter().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(3) == Some(&"CDS") && f.get(4) == Some(&new_tag.to_string().as_str())
        }),
        "the CDS names the new KSK {new_tag}: {during:?}"
    );
    // It waits for as long as it takes: the old KSK stays.
    std::thread::sleep(Duration::from_secs(6));
    assert!(d
        .key_rows(CHILD)
        .iter()
        .any(|k| k.0 == ksk && k.2 == "leaving"));
    // Stepping before anything is waiting for the parent is refused.
    let err = d.ctl_err(&["key", "step", "child.test.", "1"]);
    assert!(
        err.contains("NotFound") || err.contains("nothing to step"),
        "{err}"
    );

    // The operator has the parent publish the new DS, and steps the roll.
    let new_ds = ds_lines(&d.ctl_ok(&["ds", CHILD]));
    *publisher.parent_ds.lock().unwrap() = Some(new_ds.clone());
    wait_for("the parent to serve the new DS", 30, || {
        crate::common::dns::ask(&sites.knot.addr(), CHILD, Rtype::DS, false)
            .map(|a| a.answer().map(|s| s.count()).unwrap_or(0) > 0)
            .unwrap_or(false)
    });
    d.ctl_ok(&["key", "step", CHILD, &new_tag.to_string()]);
    wait_for("the KSK roll to finish", 60, || {
        let ks = d.key_rows(CHILD);
        ks.len() == 2 && ks.iter().all(|k| k.0 != ksk)
    });
    assert_eq!(
        cds_lines(),
        Vec::<String>::new(),
        "the roll is over: CDS withdrawn"
    );
    let zone: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "show", CHILD, "--json"])).unwrap();
    assert!(
        zone["LastKskRolloverTime"].as_u64().unwrap() > 0,
        "{zone:#}"
    );
    assert_eq!(zone["LastZskRolloverTime"], 0, "{zone:#}");
    querier.finish(&validators);
    observer.finish();
    let log = d.audit_entries(CHILD);
    assert!(
        log.iter().any(|e| e["action"] == "roll-step"
            && e["caller"] == ADMIN
            && e["detail"]
                .as_str()
                .unwrap()
                .contains("said by the operator, not checked")),
        "{log:#?}"
    );
    drop(publisher);
}

fn status(d: &Daemon) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "show", CHILD, "--json"])).unwrap();
    v["CurrentRolloverStatus"].as_str().unwrap().to_string()
}

fn steps_by(d: &Daemon, node: &str) -> usize {
    d.audit_entries(CHILD)
        .iter()
        .filter(|e| e["action"] == "roll-step" && e["node"] == node)
        .count()
}

/// A roll survives the role moving: transferred in the middle of a KSK
/// roll, the new Key Master takes it over from the stored state; killed
/// (kill -9) in the middle of a ZSK roll and seized, the other node checks
/// again and finishes it. Nothing goes bogus meanwhile.
#[test]
fn a_roll_goes_on_across_a_transfer_and_a_seize() {
    let token = TestToken::new("roll-move");
    let sites = sites();
    let pki = Arc::new(Pki::new());
    let backend = TestStore::sqlite("roll-move");
    let store = backend.url();
    let hook = hook(&sites);
    let args = ["--lease-secs", "2", "--ds-submit-command", hook.as_str()];
    let a = Arc::new(Daemon::start_node(&token, "move-a", &store, &pki, &args));
    let mut b = Daemon::start_node(&token, "move-b", &store, &pki, &args);
    let (validators, child_ds) = world(&a, &sites, "off", &[]);
    let daemons = Arc::new(Mutex::new(vec![a.clone()]));
    let publisher = Publisher::start(daemons.clone(), sites.clone(), child_ds);
    publisher.follow_submissions();
    let querier = Querier::start(validators.both());
    let observer = Observer::start(sites.knot.addr());

    // A KSK roll on A, handed over to B while it waits for the DNSKEY TTL.
    let (ksk, ksk_tag) = key_of(&a, CHILD, "ksk");
    a.ctl_ok(&["key", "roll", CHILD, &ksk_tag.to_string()]);
    wait_for("the KSK roll to be under way", 30, || {
        status(&a) == "KskWaitingForDnskeyTtl"
    });
    a.ctl_ok(&["role", "transfer", CHILD, "--to", "move-b"]);
    wait_for("the KSK roll to finish on B", 90, || {
        let ks = a.key_rows(CHILD);
        ks.len() == 2 && ks.iter().all(|k| k.0 != ksk && k.2 == "active")
    });
    assert!(steps_by(&a, "move-b") >= 2, "B took the roll over");
    assert!(
        a.log_text().contains("released the zone for a transfer"),
        "{}",
        a.log_text()
    );

    // A ZSK roll on B; B killed while the old ZSK is retired; A seizes.
    let (zsk, zsk_tag) = key_of(&b, CHILD, "zsk");
    b.ctl_ok(&["key", "roll", CHILD, &zsk_tag.to_string()]);
    wait_for("the ZSK to be retired", 60, || {
        a.key_rows(CHILD)
            .iter()
            .any(|k| k.0 == zsk && k.2 == "retired")
    });
    signal_pid(b.pid(), "KILL");
    let _ = b.child.take().map(|mut c| c.wait());
    wait_for("B's lease to run out", 30, || {
        let r: serde_json::Value =
            serde_json::from_str(&a.ctl_ok(&["role", "show", CHILD, "--json"])).unwrap();
        r["KeyMasterStatus"] == "offline"
    });
    a.ctl_ok(&["role", "seize", CHILD, "--to", "move-a"]);
    wait_for("the ZSK roll to finish on A", 90, || {
        let ks = a.key_rows(CHILD);
        ks.len() == 2 && ks.iter().all(|k| k.0 != zsk && k.2 == "active")
    });
    let after_seize: Vec<String> = a
        .audit_entries(CHILD)
        .iter()
        .filter(|e| e["node"] == "move-a" && e["action"] == "roll-step")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    assert!(
        after_seize
            .iter()
            .any(|d| d.contains("ZSK") && d.contains("removed")),
        "{after_seize:#?}"
    );
    querier.finish(&validators);
    observer.finish();
    drop(publisher);
}
