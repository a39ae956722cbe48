//! A parent and a child zone both kept signed by keymaster (the zone
//! signer), served by Knot DNS as their secondary, resolved by Unbound
//! anchored at the parent only. The parent's DS RRset for the child comes
//! from the child's key set, whatever the parent's source says; when the
//! child rolls its KSK, the parent's DS follows at the DS step without any
//! submission command, the child's roll sees it at the parent's server and
//! finishes, and every answer for the child stays validated.
// Tests drive real processes in real time: they read the system clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::dns::{soa_serial, Knot, Unbound};
use common::*;
use domain::base::iana::Rtype;

const PARENT: &str = "deleg.test.";
const CHILD: &str = "kid.deleg.test.";

#[test]
fn a_managed_childs_ksk_roll_moves_the_parents_ds_by_itself() {
    childs_ksk_roll("delegations", "double-ksk");
}

/// The same by double DS (RFC 7583 §3.3.2): the new DS at the parent
/// first, beside the old, then the DNSKEY swap, then the old DS withdrawn.
#[test]
fn a_managed_childs_double_ds_roll_moves_the_parents_ds_by_itself() {
    childs_ksk_roll("delegations-dds", "double-ds");
}

fn childs_ksk_roll(name: &str, method: &str) {
    let token = TestToken::new(name);
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-dl", &["--dns-listen", &dns]);
    let knot = Knot::start_secondary(&[PARENT, CHILD], std::slice::from_ref(&dns));
    let ttl = "2";
    d.ctl_ok(&[
        "zone",
        "add",
        PARENT,
        "--denial",
        "nsec",
        "--ksk-lifetime",
        "off",
        "--zsk-lifetime",
        "off",
        "--dnskey-ttl",
        ttl,
    ]);
    d.ctl_ok(&[
        "zone",
        "add",
        CHILD,
        "--denial",
        "nsec",
        "--ksk-lifetime",
        "off",
        "--zsk-lifetime",
        "off",
        "--dnskey-ttl",
        ttl,
        "--ds-ttl",
        ttl,
        "--parent-ds-ttl",
        ttl,
        "--max-zone-ttl",
        ttl,
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
        "--ksk-method",
        method,
    ]);
    let dir = TempDir::new(&format!("{name}-src"));
    // The parent's source delegates the child, with a DS nobody should
    // trust: keymaster replaces it with the child's own.
    let parent_src = dir.path().join("parent.zone");
    std::fs::write(
        &parent_src,
        format!(
            "$ORIGIN {PARENT}\n$TTL {ttl}\n@ SOA ns h 1 10 10 60 {ttl}\n@ NS ns\nns A 127.0.0.1\n\
             kid NS ns.kid\nns.kid A 127.0.0.1\nkid DS 11111 13 2 {}\n",
            "AB".repeat(32)
        ),
    )
    .unwrap();
    let child_src = dir.path().join("child.zone");
    std::fs::write(
        &child_src,
        format!(
            "$ORIGIN {CHILD}\n$TTL {ttl}\n@ SOA ns h 1 10 10 60 {ttl}\n@ NS ns\nns A 127.0.0.1\n\
             www A 192.0.2.44\n"
        ),
    )
    .unwrap();
    for (zone, src) in [(CHILD, &child_src), (PARENT, &parent_src)] {
        d.ctl_ok(&[
            "zone",
            "source",
            zone,
            "--file",
            src.to_str().unwrap(),
            "--secondary",
            &knot.addr(),
        ]);
        knot.wait_for_serial(zone, 1, Duration::from_secs(20));
    }
    let anchors = d.ctl_ok(&["trust-anchor", PARENT, "--format", "unbound"]);
    let unbound = Unbound::start_with(&[(PARENT, knot.addr()), (CHILD, knot.addr())], &anchors);
    let deadline = Instant::now() + Duration::from_secs(30);
    while unbound.resolve("www.kid.deleg.test.", Rtype::A) != Ok(("NOERROR".into(), true)) {
        assert!(
            Instant::now() < deadline,
            "the child does not validate through the parent's DS: {}",
            unbound.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let parent_serial = soa_serial(&knot.addr(), PARENT).unwrap();

    let (old, _, _, tag) = d
        .key_rows(CHILD)
        .into_iter()
        .find(|k| k.1 == "ksk")
        .unwrap();
    d.ctl_ok(&["key", "roll", CHILD, &tag.to_string()]);
    let began = Instant::now();
    let mut answers = 0;
    loop {
        let got = unbound.resolve("www.kid.deleg.test.", Rtype::A);
        assert_eq!(
            got,
            Ok(("NOERROR".into(), true)),
            "during the child's KSK roll: {}",
            unbound.log()
        );
        answers += 1;
        let ks = d.key_rows(CHILD);
        if ks.len() == 2 && ks.iter().all(|k| k.0 != old && k.2 == "active") {
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
    let steps: Vec<String> = d
        .ctl_ok(&["audit", "--zone", CHILD, "--json"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "roll-step")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
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
    let served = common::dns::ask(&knot.addr(), CHILD, Rtype::DS, false).unwrap();
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
}

fn crate_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}
