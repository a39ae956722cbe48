//! RFC 9615 as a parent, with two keymaster instances. The child's DNS
//! operator runs one: it keeps `kid.bs.test.` signed with CDS/CDNSKEY, the
//! operator's zone `op.test.` and its signalling zones
//! `_signal.ns1.op.test.` and `_signal.ns2.op.test.` (delegated securely
//! from `op.test.`), all behind a Knot secondary; `_signal.ns3.op.test.` is
//! served unsigned by NSD. The parent's runs the other: it keeps `bs.test.`
//! (delegating `kid` to ns1, ns2 and ns3.op.test.) behind another Knot,
//! and keeps the child as an insecure external delegation. It finds the
//! signals through an Unbound that validates nothing (keymaster validates
//! them itself from `op.test.`'s DS, given as its bootstrap anchor). A
//! stock and a strict Unbound anchored at `bs.test.` judge the child.
//! TTLs: data 3 s, DNSKEY 6 s.

use std::time::{Duration, Instant};

use crate::common::dns::{served, Knot, Nsd, Unbound, Validators};
use crate::common::*;
use domain::base::iana::Rtype;

const PARENT: &str = "bs.test.";
const CHILD: &str = "kid.bs.test.";
const WWW: &str = "www.kid.bs.test.";
const OP: &str = "op.test.";
const SIGNAL1: &str = "_signal.ns1.op.test.";
const SIGNAL2: &str = "_signal.ns2.op.test.";
const SIGNAL3: &str = "_signal.ns3.op.test.";

fn soa(origin: &str, ns: &[&str]) -> String {
    let mut text = format!("$ORIGIN {origin}\n$TTL 3\n@ SOA ns.op.test. h 1 10 10 60 3\n");
    for n in ns {
        text.push_str(&format!("@ NS {n}\n"));
    }
    text
}

/// The parent's source, delegating the child to `ns`.
fn parent_text(ns: &[&str]) -> String {
    let mut text =
        format!("$ORIGIN {PARENT}\n$TTL 3\n@ SOA ns h 1 10 10 60 3\n@ NS ns\nns A 127.0.0.1\n");
    for n in ns {
        text.push_str(&format!("kid NS {n}\n"));
    }
    text
}

/// The child as the parent keeps it, after a poll.
fn polled(p: &Daemon) -> serde_json::Value {
    let rows: serde_json::Value =
        serde_json::from_str(&p.ctl_ok(&["zone", "poll-children", PARENT, "--json"])).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["child"] == CHILD)
        .cloned()
        .unwrap_or_else(|| panic!("{rows}"))
}

/// The child's www answer through both validators: NOERROR, with AD as
/// `secure` says.
fn www_is(v: &Validators, secure: bool) {
    for u in v.both() {
        assert_eq!(
            u.resolve(WWW, Rtype::A),
            Ok(("NOERROR".to_string(), secure)),
            "{}",
            u.log()
        );
    }
}

/// Long because it is one story: the set-up of two operators, then each
/// refusal (not allowed, a signal missing, a signal unsigned) before the
/// bootstrap that succeeds.
#[test]
fn an_insecure_child_signalled_under_every_name_server_becomes_secure() {
    // The child's DNS operator.
    let child_token = TestToken::new("bootstrap-child");
    let cdns = format!("127.0.0.1:{}", free_port());
    let c = Daemon::start(&child_token, "bootstrap-c", &["--dns-listen", &cdns]);
    let knot_c = Knot::start_secondary(&[OP, SIGNAL1, SIGNAL2, CHILD], std::slice::from_ref(&cdns));
    for zone in [SIGNAL1, SIGNAL2, OP] {
        c.add_still_zone(zone, &["--dnskey-ttl", "6"]);
    }
    c.add_still_zone(
        CHILD,
        &[
            "--dnskey-ttl",
            "6",
            "--cds",
            "always",
            "--signal-ns",
            "ns1.op.test.",
        ],
    );
    let cdir = TempDir::new("bootstrap-child-src");
    for zone in [SIGNAL1, SIGNAL2] {
        c.keep_signed(zone, &cdir, &soa(zone, &["ns.op.test."]), &knot_c);
    }
    let op_text = soa(OP, &["ns"])
        + "ns A 127.0.0.1\n_signal.ns1 NS ns\n_signal.ns2 NS ns\n_signal.ns3 NS ns\n";
    c.keep_signed(OP, &cdir, &op_text, &knot_c);
    let child_text =
        soa(CHILD, &["ns1.op.test.", "ns2.op.test.", "ns3.op.test."]) + "www A 192.0.2.80\n";
    c.keep_signed(CHILD, &cdir, &child_text, &knot_c);
    let server = knot_c.addr();
    let cds = served(&server, CHILD, Rtype::CDS);
    let cdnskey = served(&server, CHILD, Rtype::CDNSKEY);
    assert_eq!((cds.len(), cdnskey.len()), (1, 1), "{cds:?} {cdnskey:?}");

    // ns3's signalling zone: the same records, unsigned.
    let mut unsigned = soa(SIGNAL3, &["ns.op.test."]);
    unsigned.push_str(&format!("_dsboot.kid.bs.test CDS {}\n", cds[0]));
    unsigned.push_str(&format!("_dsboot.kid.bs.test CDNSKEY {}\n", cdnskey[0]));
    let nsd3 = Nsd::start_primary(SIGNAL3, &unsigned);
    nsd3.wait_for_serial(SIGNAL3, 1, Duration::from_secs(20));

    // The resolver the parent finds signals through, and its anchor.
    let resolver = Unbound::start(
        &[
            (OP, server.clone()),
            (SIGNAL1, server.clone()),
            (SIGNAL2, server.clone()),
            (SIGNAL3, nsd3.addr()),
        ],
        &[],
    );
    let adir = TempDir::new("bootstrap-anchors");
    let anchors = adir.path().join("anchors");
    std::fs::write(&anchors, c.ctl_ok(&["trust-anchor", OP, "--format", "ds"])).unwrap();

    // The parent's keymaster.
    let parent_token = TestToken::new("bootstrap-parent");
    let pdns = format!("127.0.0.1:{}", free_port());
    let p = Daemon::start(
        &parent_token,
        "bootstrap-p",
        &[
            "--dns-listen",
            &pdns,
            "--bootstrap-resolver",
            &resolver.addr(),
            "--bootstrap-anchors",
            anchors.to_str().unwrap(),
        ],
    );
    let knot_p = Knot::start_secondary(&[PARENT], std::slice::from_ref(&pdns));
    p.add_still_zone(PARENT, &["--dnskey-ttl", "6"]);
    let pdir = TempDir::new("bootstrap-parent-src");
    let all = ["ns1.op.test.", "ns2.op.test.", "ns3.op.test."];
    p.keep_signed(PARENT, &pdir, &parent_text(&all), &knot_p);
    p.ctl_ok(&["zone", "delegation", "add", PARENT, CHILD, "--ns", &server]);
    let trust = p.ctl_ok(&["trust-anchor", PARENT, "--format", "unbound"]);
    let validators = Validators::start(&[(PARENT, knot_p.addr()), (CHILD, server.clone())], &trust);
    validators.wait_validated(&format!("ns.{PARENT}"), Rtype::A, 30);
    www_is(&validators, false);

    // Control: a delegation that does not allow bootstrapping stays as it
    // is, and says why.
    let row = polled(&p);
    assert_eq!(row["ds"], serde_json::json!([]), "{row}");
    assert!(
        row["last_result"]
            .as_str()
            .unwrap()
            .contains("which this delegation does not allow"),
        "{row}"
    );

    // Allowed; the signal is missing under ns2 and unsigned under ns3:
    // refused, each named; ns1's validates.
    p.ctl_ok(&[
        "zone",
        "delegation",
        "set",
        PARENT,
        CHILD,
        "--bootstrap",
        "true",
    ]);
    let row = polled(&p);
    let why = row["blocked"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("under ns2.op.test.: no signal"), "{row}");
    assert!(
        why.contains(
            "under ns3.op.test.: _dsboot.kid.bs.test._signal.ns3.op.test. CDS is unsigned"
        ),
        "{row}"
    );
    assert!(!why.contains("ns1.op.test"), "{row}");
    assert_eq!(row["ds"], serde_json::json!([]), "{row}");
    assert!(served(&knot_p.addr(), CHILD, Rtype::DS).is_empty());

    // The operator signals under ns2 too: only ns3's is refused now.
    c.ctl_ok(&[
        "zone",
        "set",
        CHILD,
        "--signal-ns",
        "ns1.op.test.",
        "--signal-ns",
        "ns2.op.test.",
    ]);
    let at2 = "_dsboot.kid.bs.test._signal.ns2.op.test.";
    let began = Instant::now();
    while served(&server, at2, Rtype::CDS) != cds {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // (The resolver may still hold its answer that there was none, for
    // the signalling zone's negative TTL: 3 s.)
    let began = Instant::now();
    let (row, why) = loop {
        let row = polled(&p);
        let why = row["blocked"].as_str().unwrap_or_default().to_string();
        if !why.contains("ns2.op.test") || began.elapsed() > Duration::from_secs(20) {
            break (row, why);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(why.contains("under ns3.op.test.:"), "{row}");
    assert!(!why.contains("ns2.op.test"), "{row}");
    assert_eq!(row["ds"], serde_json::json!([]), "{row}");
    www_is(&validators, false);

    // The parent delegates to ns1 and ns2 only: every signal validates,
    // and the child is secure.
    let serial_before = crate::common::dns::soa_serial(&knot_p.addr(), PARENT).unwrap();
    std::fs::write(
        pdir.path().join(PARENT),
        parent_text(&["ns1.op.test.", "ns2.op.test."]),
    )
    .unwrap();
    p.ctl_ok(&["zone", "reload", PARENT]);
    knot_p.wait_for_serial(PARENT, serial_before + 1, Duration::from_secs(20));
    let row = polled(&p);
    assert_eq!(row["ds"], serde_json::json!(cds), "{row}");
    assert_eq!(row["source"], "cds", "{row}");
    let began = Instant::now();
    while served(&knot_p.addr(), CHILD, Rtype::DS) != cds {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    validators.wait_validated(WWW, Rtype::A, 30);
    let evidence = p.audit_details(PARENT, "delegation-ds");
    assert!(
        evidence
            .iter()
            .any(|d| d.contains("under ns1.op.test., ns2.op.test. (RFC 9615 bootstrapping)")),
        "{evidence:#?}"
    );
}
