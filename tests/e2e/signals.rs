//! RFC 9615 as a zone's DNS operator: keymaster keeps `boot.test.` and
//! the signalling zone `_signal.ns1.op.test.` signed, and publishes the
//! zone's CDS and CDNSKEY at `_dsboot.boot.test._signal.ns1.op.test.`,
//! kept in step with its key set. A Knot secondary serves both zones; a
//! stock and a strict Unbound, anchored at the signalling zone, validate
//! the signals.

use std::time::{Duration, Instant};

use crate::common::dns::{served, Knot, Validators};
use crate::common::*;
use domain::base::iana::Rtype;

const ZONE: &str = "boot.test.";
const SIGNAL: &str = "_signal.ns1.op.test.";
const AT: &str = "_dsboot.boot.test._signal.ns1.op.test.";

/// Waits until the signal's `rtype` RRset, as the secondary serves it,
/// is what `want` says (the zone's apex RRset, or nothing).
fn wait_signal(server: &str, rtype: Rtype, want: &[String], what: &str) {
    let began = Instant::now();
    while served(server, AT, rtype) != want {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{what}: {:?} at the signal, {want:?} wanted",
            served(server, AT, rtype)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_zones_bootstrap_signals_follow_its_key_set_and_validate() {
    let token = TestToken::new("signals");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "signals-a", &["--dns-listen", &dns]);
    let knot = Knot::start_secondary(&[ZONE, SIGNAL], std::slice::from_ref(&dns));
    d.add_still_zone(SIGNAL, &["--dnskey-ttl", "6"]);
    let sdir = TempDir::new("signals-signal-src");
    d.keep_signed(
        SIGNAL,
        &sdir,
        &format!("$ORIGIN {SIGNAL}\n$TTL 3\n@ SOA ns h 1 10 10 60 3\n@ NS ns\nns A 127.0.0.1\n"),
        &knot,
    );
    d.add_still_zone(
        ZONE,
        &[
            "--dnskey-ttl",
            "6",
            "--cds",
            "always",
            "--signal-ns",
            "ns1.op.test",
        ],
    );
    let zdir = TempDir::new("signals-zone-src");
    d.keep_signed(
        ZONE,
        &zdir,
        &format!("$ORIGIN {ZONE}\n$TTL 3\n@ SOA ns h 1 10 10 60 3\n@ NS ns1.op.test.\n"),
        &knot,
    );
    let server = knot.addr();
    let cds = served(&server, ZONE, Rtype::CDS);
    let cdnskey = served(&server, ZONE, Rtype::CDNSKEY);
    assert_eq!((cds.len(), cdnskey.len()), (1, 1), "{cds:?} {cdnskey:?}");
    wait_signal(&server, Rtype::CDS, &cds, "the signal published");
    wait_signal(&server, Rtype::CDNSKEY, &cdnskey, "the signal published");

    // The signals validate from the signalling zone's trust anchor.
    let anchors = d.ctl_ok(&["trust-anchor", SIGNAL, "--format", "unbound"]);
    let validators = Validators::start(&[(SIGNAL, server.clone())], &anchors);
    validators.wait_validated(AT, Rtype::CDS, 30);
    validators.wait_validated(AT, Rtype::CDNSKEY, 30);

    // In step with the key set: a second active KSK is in the zone's CDS
    // and in the signal's alike.
    d.ctl_ok(&["key", "add", ZONE, "--role", "ksk", "--activate"]);
    let began = Instant::now();
    let cds = loop {
        let cds = served(&server, ZONE, Rtype::CDS);
        if cds.len() == 2 {
            break cds;
        }
        assert!(began.elapsed() < Duration::from_secs(30), "{cds:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    wait_signal(&server, Rtype::CDS, &cds, "the signal follows the key set");
    let cdnskey = served(&server, ZONE, Rtype::CDNSKEY);
    wait_signal(
        &server,
        Rtype::CDNSKEY,
        &cdnskey,
        "the signal follows the key set",
    );
    validators.wait_validated(AT, Rtype::CDS, 30);

    // The control: a zone that stops naming the name server, or stops
    // publishing CDS, has no signal there; the signalling zone stays.
    d.ctl_ok(&["zone", "set", ZONE, "--signal-ns", "-"]);
    wait_signal(&server, Rtype::CDS, &[], "the signal withdrawn");
    wait_signal(&server, Rtype::CDNSKEY, &[], "the signal withdrawn");
    d.ctl_ok(&["zone", "set", ZONE, "--signal-ns", "ns1.op.test."]);
    wait_signal(&server, Rtype::CDS, &cds, "the signal back");
    d.ctl_ok(&["zone", "set", ZONE, "--cds", "none"]);
    wait_signal(&server, Rtype::CDS, &[], "no CDS, no signal");
    // The zone's own version without CDS comes by its own transfer.
    let began = Instant::now();
    while !served(&server, ZONE, Rtype::CDS).is_empty() {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the zone keeps its CDS"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!served(&server, SIGNAL, Rtype::SOA).is_empty());
}
