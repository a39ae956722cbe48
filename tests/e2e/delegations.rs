//! A parent and a child zone both kept signed by keymaster (the zone
//! signer), served by Knot DNS as their secondary, resolved by Unbound
//! anchored at the parent only. The parent's DS RRset for the child comes
//! from the child's key set, whatever the parent's source says; when the
//! child rolls its KSK, the parent's DS follows at the DS step without any
//! submission command, the child's roll sees it at the parent's server and
//! finishes, and every answer for the child stays validated.

use std::time::{Duration, Instant};

use crate::common::dns::{soa_serial, Knot, Validators};
use crate::common::*;
use domain::base::iana::Rtype;

const PARENT: &str = "deleg.test.";
const CHILD: &str = "kid.deleg.test.";
/// TTLs that differ, so that caches let go of each at another time and a
/// roll that waits for the wrong one shows: data, DNSKEY RRset, DS.
const DATA_TTL: u32 = 2;
const KEY_TTL: u32 = 4;
const DS_TTL: u32 = 6;

#[test]
fn a_managed_childs_ksk_roll_moves_the_parents_ds_by_itself() {
    childs_ksk_roll("delegations", "double-ksk");
}

/// A child with one combined key (CSK): its roll is a double-KSK roll
/// whose successor also takes over the zone's signatures at the DS swap.
#[test]
fn a_managed_childs_csk_roll_moves_the_parents_ds_and_the_signatures() {
    childs_ksk_roll("delegations-csk", "csk");
}

/// The same by double DS (RFC 7583 §3.3.2): the new DS at the parent
/// first, beside the old, then the DNSKEY swap, then the old DS withdrawn.
#[test]
fn a_managed_childs_double_ds_roll_moves_the_parents_ds_by_itself() {
    childs_ksk_roll("delegations-dds", "double-ds");
}

/// The processes of a test, stopped when it ends.
struct World {
    d: Daemon,
    knot: Knot,
    validators: Validators,
    _token: TestToken,
    _dir: TempDir,
}

/// keymaster keeping the parent and the child signed, Knot serving both,
/// Unbound anchored at the parent; returns once the child validates.
fn world(name: &str, method: &str) -> World {
    let token = TestToken::new(name);
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-dl", &["--dns-listen", &dns]);
    let knot = Knot::start_secondary(&[PARENT, CHILD], std::slice::from_ref(&dns));
    let (ttl, key_ttl, ds_ttl) = (
        &DATA_TTL.to_string(),
        &KEY_TTL.to_string(),
        &DS_TTL.to_string(),
    );
    d.add_still_zone(PARENT, &["--dnskey-ttl", key_ttl]);
    // "csk": one combined key, rolled as a double-KSK roll.
    let scheme: &[&str] = match method {
        "csk" => &["--csk"],
        _ => &["--ksk-method", method],
    };
    d.add_still_zone(
        CHILD,
        &[
            &[
                "--dnskey-ttl",
                key_ttl,
                "--ds-ttl",
                ds_ttl,
                "--parent-ds-ttl",
                ds_ttl,
                "--max-zone-ttl",
                key_ttl,
                "--propagation-time",
                "1",
                "--parent-propagation",
                "1",
                "--safety-margin",
                "1",
                "--publication-server",
                &knot.addr(),
                "--parent-server",
                &knot.addr(),
            ][..],
            scheme,
        ]
        .concat(),
    );
    let dir = TempDir::new(&format!("{name}-src"));
    // The parent's source delegates the child, with a DS nobody should
    // trust: keymaster replaces it with the child's own.
    let parent_text = format!(
        "$ORIGIN {PARENT}\n$TTL {ttl}\n@ SOA ns h 1 10 10 60 {ttl}\n@ NS ns\nns A 127.0.0.1\n\
         kid NS ns.kid\nns.kid A 127.0.0.1\nkid DS 11111 13 2 {}\n",
        "AB".repeat(32)
    );
    let child_text = format!(
        "$ORIGIN {CHILD}\n$TTL {ttl}\n@ SOA ns h 1 10 10 60 {ttl}\n@ NS ns\nns A 127.0.0.1\n\
         www A 192.0.2.44\n"
    );
    d.keep_signed(CHILD, &dir, &child_text, &knot);
    d.keep_signed(PARENT, &dir, &parent_text, &knot);
    let anchors = d.ctl_ok(&["trust-anchor", PARENT, "--format", "unbound"]);
    let validators = Validators::start(&[(PARENT, knot.addr()), (CHILD, knot.addr())], &anchors);
    validators.wait_validated("www.kid.deleg.test.", Rtype::A, 30);
    World {
        d,
        knot,
        validators,
        _token: token,
        _dir: dir,
    }
}

fn childs_ksk_roll(name: &str, method: &str) {
    let w = world(name, method);
    let (d, knot, validators) = (&w.d, &w.knot, &w.validators);
    let parent_serial = soa_serial(&knot.addr(), PARENT).unwrap();

    let (old, _, _, tag) = d
        .key_rows(CHILD)
        .into_iter()
        .find(|k| k.1 == "ksk" || k.1 == "csk")
        .unwrap();
    d.ctl_ok(&["key", "roll", CHILD, &tag.to_string()]);
    let began = Instant::now();
    let mut answers = 0;
    loop {
        for unbound in validators.both() {
            let got = unbound.resolve("www.kid.deleg.test.", Rtype::A);
            assert_eq!(
                got,
                Ok(("NOERROR".into(), true)),
                "during the child's KSK roll: {}",
                unbound.log()
            );
            answers += 1;
        }
        let ks = d.key_rows(CHILD);
        let keys = if method == "csk" { 1 } else { 2 };
        if ks.len() == keys && ks.iter().all(|k| k.0 != old && k.2 == "active") {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the KSK roll did not finish: {ks:?}\n{}",
            d.ctl_ok(&["zone", "show", CHILD])
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "child KSK roll ({method}) in {:?}, {answers} answers through Unbound, all AD",
        began.elapsed()
    );
    // The parent was signed again for it, and its DS is the child's new one.
    assert!(soa_serial(&knot.addr(), PARENT).unwrap() > parent_serial);
    let steps = d.audit_details(CHILD, "roll-step");
    assert!(
        steps
            .iter()
            .any(|s| s.contains("the parent serves the DS of KSK")),
        "{steps:?}"
    );
    let child_ds: Vec<String> = d
        .ctl_ok(&["trust-anchor", CHILD, "--format", "ds"])
        .lines()
        .map(|l| l.split_whitespace().skip(4).collect::<Vec<_>>().join(" "))
        .collect();
    let served = crate::common::dns::ask(&knot.addr(), CHILD, Rtype::DS, false).unwrap();
    let served_ds: Vec<String> = served
        .answer()
        .unwrap()
        .limit_to::<domain::rdata::Ds<_>>()
        .map(|r| {
            let r = r.unwrap();
            let ds = r.data();
            format!(
                "{} {} {} {}",
                ds.key_tag(),
                ds.algorithm().to_int(),
                ds.digest_type().to_int(),
                crate_hex(ds.digest())
            )
        })
        .collect();
    assert_eq!(served_ds, child_ds, "the parent serves the child's DS");
    if method == "csk" {
        // The one key left signs the zone's data as well.
        let new_tag = d.key_rows(CHILD)[0].3 as u16;
        let a =
            crate::common::dns::ask(&knot.addr(), "www.kid.deleg.test.", Rtype::A, false).unwrap();
        let tags: Vec<u16> = a
            .answer()
            .unwrap()
            .limit_to::<domain::rdata::Rrsig<_, domain::base::ParsedName<_>>>()
            .map(|r| r.unwrap().data().key_tag())
            .collect();
        assert_eq!(tags, [new_tag], "www is signed by the new CSK alone");
    }
    // And the operator sees it so.
    let listed: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "delegations", PARENT, "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["child"], CHILD);
    assert_eq!(listed[0]["source"], "managed");
    let listed_ds: Vec<String> = listed[0]["ds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_str()
                .unwrap()
                .split_whitespace()
                .skip(4)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(listed_ds, child_ds);
    if method != "csk" {
        hand_made_ksk_swap(d, validators);
    }
}

/// A new KSK activated by hand, and the old one retired and removed at
/// once: refused without --force (with when it will be safe), and no
/// validator sees anything; forced, the managed parent's DS follows at
/// once while caches hold the old DS, and a strict validator fails: the
/// control that shows the set-up sees a swap that does not wait.
fn hand_made_ksk_swap(d: &Daemon, validators: &Validators) {
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
    let new_tag = added[0]["key_tag"].as_u64().unwrap();
    let old_tag = d
        .key_rows(CHILD)
        .into_iter()
        .find(|k| k.1 == "ksk" && k.3 != new_tag)
        .unwrap()
        .3
        .to_string();
    let err = d.ctl_err(&["key", "retire", CHILD, &old_tag]);
    assert!(
        err.contains(&format!(
            "KSK {old_tag} of {CHILD} cannot be retired before 20"
        )) && err.contains(&format!("keymasterctl key roll {CHILD} {old_tag}")),
        "{err}"
    );
    let err = d.ctl_err(&["key", "remove", CHILD, &old_tag]);
    assert!(err.contains("cannot be removed now"), "{err}");
    // Nothing changed for the validators, over a DS TTL and more.
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(u64::from(DS_TTL) + 2) {
        for u in validators.both() {
            assert_eq!(
                u.resolve("www.kid.deleg.test.", Rtype::A),
                Ok(("NOERROR".into(), true)),
                "after a refused hand-made swap: {}",
                u.log()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // The control: a third KSK activated and both others retired and
    // removed at once, forced, while the validator holds the DS RRset of
    // the two (the managed parent publishes the new DS at once).
    validators.careless_swap_is_seen(
        "a KSK swap with a managed parent",
        "www.kid.deleg.test.",
        (CHILD, Rtype::DS, DS_TTL),
        Duration::from_secs(u64::from(DS_TTL)),
        || {
            d.ctl_ok(&["key", "add", CHILD, "--role", "ksk", "--activate"]);
            for tag in [&old_tag, &new_tag.to_string()] {
                d.ctl_ok(&["key", "retire", CHILD, tag, "--force"]);
                d.ctl_ok(&["key", "remove", CHILD, tag, "--force"]);
            }
        },
    );
}

/// Unsigning the child: its DS leaves the parent first (the parent's
/// DS RRset follows the child's key set, which hands the parent none once
/// unsigning starts), the child's engine sees it gone at the parent's
/// server and waits out its TTL, then the child is published unsigned.
/// Through Unbound: validated until the DS is gone, then insecure; never
/// SERVFAIL.
#[test]
fn unsigning_a_child_goes_insecure_without_a_validation_gap() {
    let w = world("unsign", "double-ksk");
    let (d, knot) = (&w.d, &w.knot);
    let before = d.key_rows(CHILD).len();
    d.ctl_ok(&["zone", "unsign", CHILD]);
    let began = Instant::now();
    // Per validator (stock, strict): answers validated, then insecure.
    let mut counts = [(0, 0), (0, 0)];
    let (mut secure, mut insecure);
    loop {
        for (unbound, (secure, insecure)) in w.validators.both().iter().zip(counts.iter_mut()) {
            match unbound.resolve("www.kid.deleg.test.", Rtype::A) {
                Ok((rcode, ad)) if rcode == "NOERROR" => {
                    assert!(
                        ad || *insecure > 0 || *secure > 0,
                        "insecure before the DS went"
                    );
                    assert!(
                        !(ad && *insecure > 0),
                        "validated again after going insecure"
                    );
                    if ad {
                        *secure += 1;
                    } else {
                        *insecure += 1;
                    }
                }
                other => panic!("while unsigning: {other:?}\n{}", unbound.log()),
            }
        }
        (secure, insecure) = (counts[1].0, counts[1].1.min(counts[0].1));
        let shown: serde_json::Value =
            serde_json::from_str(&d.ctl_ok(&["zone", "show", CHILD, "--json"])).unwrap();
        if shown["IsSigned"] == false && insecure >= 5 {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(90),
            "unsigning did not finish: {shown}\n{}",
            d.ctl_ok(&["key", "list", CHILD])
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "child unsigned in {:?}: {secure} answers AD, then {insecure} insecure, no SERVFAIL",
        began.elapsed()
    );
    // The parent serves no DS; the child's answers carry no signatures.
    let ds = crate::common::dns::ask(&knot.addr(), CHILD, Rtype::DS, false).unwrap();
    assert_eq!(ds.answer().unwrap().count(), 0, "the parent serves no DS");
    let a = crate::common::dns::ask(&knot.addr(), "www.kid.deleg.test.", Rtype::A, false).unwrap();
    let types: Vec<Rtype> = a.answer().unwrap().map(|r| r.unwrap().rtype()).collect();
    assert_eq!(types, [Rtype::A], "the child is served without RRSIGs");
    let dnskey = crate::common::dns::ask(&knot.addr(), CHILD, Rtype::DNSKEY, false).unwrap();
    assert_eq!(dnskey.answer().unwrap().count(), 0, "nor DNSKEYs");
    // The keys were kept (no --remove-keys), and the steps are audited.
    assert_eq!(d.key_rows(CHILD).len(), before);
    let steps = d.audit_details(CHILD, "unsign-step");
    assert!(
        steps.iter().any(|s| s.contains("serves no DS"))
            && steps.iter().any(|s| s.contains("unsigned:")),
        "{steps:?}"
    );
}

fn crate_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}
