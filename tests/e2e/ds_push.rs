//! DS push: a KSK roll of a zone keymaster keeps signed reaches the parent
//! by DNS UPDATE alone, with no submission command and no operator. The
//! parent is a Knot primary signing its own zone that takes UPDATEs signed
//! with a TSIG key, and an NSD secondary of it that the validators ask;
//! the child is served by a Knot secondary of keymaster; a stock and a
//! strict Unbound are anchored at the parent. TTLs differ: data 3 s,
//! DNSKEY 6 s, DS 9 s. A double-KSK roll, a double-DS roll and going
//! insecure, one after another.

use std::time::{Duration, Instant};

use crate::common::dns::{served, soa_serial, Knot, Nsd, Validators};
use crate::common::*;
use domain::base::iana::Rtype;

const PARENT: &str = "push.test.";
const CHILD: &str = "child.push.test.";
const WWW: &str = "www.child.push.test.";
const SECRET: &str = "zlCZbVJPIhobIs1gJNQfrsS3xCxxsR9pMUrGwG8OgG8=";
const OTHER_SECRET: &str = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn child_text() -> String {
    format!(
        "$ORIGIN {CHILD}\n$TTL 3\n@ SOA ns h 1 10 10 60 3\n@ NS ns\nns A 127.0.0.1\n\
         www A 192.0.2.80\n"
    )
}

fn parent_text(ds: &[String]) -> String {
    let mut text = format!(
        "$ORIGIN {PARENT}\n$TTL 3\n@ SOA ns h 1 10 10 60 3\n@ NS ns\nns A 127.0.0.1\n\
         child NS ns.child\nns.child A 127.0.0.1\n"
    );
    for line in ds {
        // "child.push.test. TTL IN DS ..." as `keymasterctl ds` prints it.
        let f: Vec<&str> = line.split_whitespace().collect();
        text.push_str(&format!("child 9 IN DS {}\n", f[4..].join(" ")));
    }
    text
}

/// The DS lines of `keymasterctl ds`.
fn ds_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("DS"))
        .map(str::to_string)
        .collect()
}

/// The DS record data as `served` gives it ("TAG ALG DT HEX"), sorted.
fn ds_rdata(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!(
                "{} {} {} {}",
                f[4],
                f[5],
                f[6],
                f[7..].concat().to_uppercase()
            )
        })
        .collect();
    out.sort();
    out
}

/// Has the parent announce its primary as the target of UPDATEs by a
/// DSYNC record (RRtype ANY, scheme 2) at `_dsync.push.test.`.
fn announce_update_target(parent: &Knot) {
    let port: u16 = parent.addr().rsplit(':').next().unwrap().parse().unwrap();
    let mut rdata = vec![0, 255, 2];
    rdata.extend(port.to_be_bytes());
    for label in ["ns", "push", "test"] {
        rdata.push(label.len() as u8);
        rdata.extend(label.as_bytes());
    }
    rdata.push(0);
    let hex: String = rdata.iter().map(|b| format!("{b:02x}")).collect();
    parent.ctl(&["zone-begin", PARENT]);
    parent.ctl(&[
        "zone-set",
        PARENT,
        "_dsync",
        "3",
        "TYPE66",
        &format!("\\# {} {hex}", rdata.len()),
    ]);
    let out = parent.ctl(&["zone-commit", PARENT]);
    assert!(out.contains("OK"), "{out}\n{}", parent.log());
}

/// Every answer for the child's data, through both validators, is
/// validated; counts them.
fn all_validated(v: &Validators, answers: &mut u32) {
    for u in v.both() {
        let got = u.resolve(WWW, Rtype::A);
        assert_eq!(
            got,
            Ok(("NOERROR".to_string(), true)),
            "an answer not validated: {}",
            u.log()
        );
        *answers += 1;
    }
}

fn ksk_rows(d: &Daemon) -> Vec<(String, String, u64)> {
    d.key_rows(CHILD)
        .into_iter()
        .filter(|k| k.1 == "ksk")
        .map(|k| (k.0, k.2, k.3))
        .collect()
}

#[test]
fn every_ds_change_reaches_the_parent_by_update_and_a_refused_one_holds_the_roll() {
    let token = TestToken::new("dspush");
    let keys = TempDir::new("dspush-keys");
    let key_file = keys.path().join("tsig.keys");
    std::fs::write(
        &key_file,
        format!("push-key hmac-sha256 {SECRET}\nstale-key hmac-sha256 {OTHER_SECRET}\n"),
    )
    .unwrap();
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(
        &token,
        "push-a",
        &[
            "--dns-listen",
            &dns,
            "--tsig-keys",
            key_file.to_str().unwrap(),
        ],
    );
    let child_server = Knot::start_secondary(&[CHILD], std::slice::from_ref(&dns));
    let publication = child_server.addr();
    let mut add = vec!["zone", "add", CHILD];
    add.extend_from_slice(QUICK_ROLLS);
    add.extend(["--publication-server", &publication]);
    d.ctl_ok(&add);
    let src = TempDir::new("dspush-src");
    d.keep_signed(CHILD, &src, &child_text(), &child_server);
    let first_ds = ds_lines(&d.ctl_ok(&["ds", CHILD]));
    // The parent signs its own zone, with the child's first DS, and takes
    // UPDATEs signed with push-key only.
    let parent =
        Knot::start_signing_updatable(PARENT, &parent_text(&first_ds), ("push-key", SECRET));
    let anchors: String = parent
        .ctl(&["zone-read", PARENT, "@", "DNSKEY"])
        .lines()
        .filter(|l| l.contains(" 257 "))
        // "[push.test.] push.test. 2 DNSKEY 257 3 13 …"
        .map(|l| {
            let record = l.split_once("] ").map_or(l, |(_, r)| r);
            format!("trust-anchor: \"{}\"\n", record.trim())
        })
        .collect();
    let parent_copy = Nsd::start_secondary(&[PARENT], &parent.addr());
    parent.notify_also(&parent_copy.addr());
    let began = Instant::now();
    while soa_serial(&parent_copy.addr(), PARENT).is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{}",
            parent_copy.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !anchors.is_empty(),
        "no KSK at the parent: {}",
        parent.log()
    );
    let stubs = [(PARENT, parent_copy.addr()), (CHILD, child_server.addr())];
    let validators = Validators::start(&stubs, &anchors);
    validators.wait_validated(WWW, Rtype::A, 30);

    // The roll pushes with a key the parent does not take: refused, and
    // the roll holds, saying why; the parent keeps the old DS.
    d.ctl_ok(&[
        "zone",
        "set",
        CHILD,
        "--parent-server",
        &parent.addr(),
        "--parent-server",
        &parent_copy.addr(),
        "--ds-push",
        &parent.addr(),
        "--ds-push-tsig",
        "stale-key",
    ]);
    let shown = d.ctl_ok(&["zone", "show", CHILD, "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["DsPush"], parent.addr().as_str(), "{shown:#}");
    let (old_id, _, old_tag) = ksk_rows(&d)[0].clone();
    d.ctl_ok(&["key", "roll", CHILD, &old_tag.to_string()]);
    let mut answers = 0;
    let began = Instant::now();
    let waiting = loop {
        all_validated(&validators, &mut answers);
        let show = d.ctl_ok(&["key", "list", CHILD]);
        if show.contains("DS push to") {
            break show;
        }
        assert!(
            began.elapsed() < Duration::from_secs(90),
            "the refused push is not shown: {show}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        waiting.contains(&format!("DS push to {}", parent.addr())) && waiting.contains("NOTAUTH"),
        "{waiting}"
    );
    eprintln!(
        "refused push shown as: {}",
        waiting
            .lines()
            .find(|l| l.contains("DS push to"))
            .unwrap_or_default()
            .trim()
    );
    // Held for longer than the DS TTL and more than one try: the old KSK
    // stays, the parent serves the first DS alone.
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(12) {
        all_validated(&validators, &mut answers);
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        ksk_rows(&d).iter().any(|k| k.0 == old_id),
        "{:?}",
        ksk_rows(&d)
    );
    assert_eq!(
        served(&parent.addr(), CHILD, Rtype::DS),
        ds_rdata(&first_ds)
    );
    assert!(
        d.log_text().matches("DS push to").count() >= 2,
        "tried again: {}",
        d.log_text()
    );

    // The right key: the next try goes through, the parent serves the new
    // DS, and the roll ends by itself, every answer validated.
    d.ctl_ok(&["zone", "set", CHILD, "--ds-push-tsig", "push-key"]);
    let began = Instant::now();
    loop {
        all_validated(&validators, &mut answers);
        let ksks = ksk_rows(&d);
        if ksks.len() == 1 && ksks[0].0 != old_id && ksks[0].1 == "active" {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the KSK roll did not finish: {}\n{}",
            d.ctl_ok(&["zone", "show", CHILD]),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let new_ds = ds_lines(&d.ctl_ok(&["ds", CHILD]));
    assert_ne!(ds_rdata(&new_ds), ds_rdata(&first_ds));
    for server in [parent.addr(), parent_copy.addr()] {
        assert_eq!(served(&server, CHILD, Rtype::DS), ds_rdata(&new_ds));
    }
    assert!(
        parent.log().contains("DDNS, processing 1 updates"),
        "the parent took the UPDATE: {}",
        parent.log()
    );
    let steps: Vec<String> = d
        .audit_entries(CHILD)
        .iter()
        .filter(|e| e["action"] == "roll-step")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    assert!(
        steps
            .iter()
            .any(|s| s.contains(&format!("UPDATE to {}", parent.addr()))),
        "{steps:#?}"
    );
    // After the old DS's TTL, a validator starting afresh still validates.
    std::thread::sleep(Duration::from_secs(9));
    all_validated(&validators, &mut answers);
    validators.wait_validated(WWW, Rtype::A, 30);
    eprintln!("KSK roll by DS push: {answers} answers, all validated");
    assert!(answers >= 40, "{answers}");

    // A double-DS roll: the new DS pushed beside the old one first, the
    // old one withdrawn by a last push once the DNSKEYs have swapped. The
    // pushes go where the parent's DSYNC record of scheme UPDATE says:
    // `_dsync.push.test. DSYNC ANY 2 PORT ns.push.test.` (RFC 3597 form:
    // this Knot predates the DSYNC mnemonic).
    announce_update_target(&parent);
    let pushed_before = d
        .log_text()
        .matches("DS RRset pushed to the parent by UPDATE")
        .count();
    d.ctl_ok(&[
        "zone",
        "set",
        CHILD,
        "--ksk-method",
        "double-ds",
        "--ds-push",
        "dsync",
    ]);
    let (prev_id, _, prev_tag) = ksk_rows(&d)[0].clone();
    let prev_ds = ds_rdata(&new_ds);
    d.ctl_ok(&["key", "roll", CHILD, &prev_tag.to_string()]);
    let (mut both_seen, mut answers) = (false, 0);
    let began = Instant::now();
    let last_ds = loop {
        all_validated(&validators, &mut answers);
        let at_parent = served(&parent_copy.addr(), CHILD, Rtype::DS);
        both_seen |= at_parent.len() == 2 && prev_ds.iter().all(|ds| at_parent.contains(ds));
        let ksks = ksk_rows(&d);
        if ksks.len() == 1 && ksks[0].0 != prev_id {
            break ds_rdata(&ds_lines(&d.ctl_ok(&["ds", CHILD])));
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the double-DS roll did not finish: {}\n{}",
            d.ctl_ok(&["key", "list", CHILD]),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        both_seen,
        "the parent never served the old and the new DS together"
    );
    // Pushed, with no address but the parent's DSYNC record's.
    let pushed = d
        .log_text()
        .matches("DS RRset pushed to the parent by UPDATE")
        .count();
    assert!(pushed > pushed_before, "{}", d.log_text());
    // The withdrawal of the old DS reaches every parent server.
    let began = Instant::now();
    loop {
        all_validated(&validators, &mut answers);
        if [parent.addr(), parent_copy.addr()]
            .iter()
            .all(|s| served(s, CHILD, Rtype::DS) == last_ds)
        {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the old DS is still at the parent: {:?}",
            served(&parent_copy.addr(), CHILD, Rtype::DS)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    validators.wait_validated(WWW, Rtype::A, 30);
    eprintln!("double-DS roll by DS push: {answers} answers, all validated");
    assert!(answers >= 40, "{answers}");

    // Going insecure: the DS RRset deleted at the parent by a push before
    // the child's keys go, so that no answer fails on the way.
    d.ctl_ok(&["zone", "unsign", CHILD]);
    let (mut secure, mut insecure) = (0, 0);
    let began = Instant::now();
    loop {
        for u in validators.both() {
            match u.resolve(WWW, Rtype::A) {
                Ok((rcode, ad)) if rcode == "NOERROR" => {
                    assert!(
                        !(ad && insecure > 0),
                        "validated again after going insecure"
                    );
                    if ad {
                        secure += 1;
                    } else {
                        insecure += 1;
                    }
                }
                other => panic!("while unsigning: {other:?}\n{}", u.log()),
            }
        }
        let shown: serde_json::Value =
            serde_json::from_str(&d.ctl_ok(&["zone", "show", CHILD, "--json"])).unwrap();
        if shown["IsSigned"] == false && insecure >= 10 {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(90),
            "unsigning did not finish: {shown}\n{}",
            d.ctl_ok(&["key", "list", CHILD])
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for server in [parent.addr(), parent_copy.addr()] {
        assert_eq!(served(&server, CHILD, Rtype::DS), Vec::<String>::new());
    }
    eprintln!("unsigned by DS push: {secure} answers AD, then {insecure} insecure, no SERVFAIL");
}
