//! Nothing bogus is served: every version the zone signer makes is checked
//! before it is served, and one that fails is refused, named, and the last
//! good version stays served. The faults are put in by the daemon itself
//! (a debug build's test hook, `KEYMASTER_TEST_FAULT_FILE`): a signature by
//! a key the zone does not publish, and a hole in the NSEC chain. A Knot
//! and an NSD secondary serve the zone; a stock and a strict Unbound
//! anchored at it validate. The control: the same fault, unchecked, is
//! served, and the strict Unbound calls the name bogus.

use std::time::{Duration, Instant};

use crate::common::dns::{soa_serial, Knot, Nsd, Validators};
use crate::common::*;
use domain::base::iana::Rtype;

const ZONE: &str = "checked.test.";
const WWW: &str = "www.checked.test.";

/// The source: `extra` names with an address each, beside a delegation.
fn text(extra: &[&str]) -> String {
    let mut t = format!(
        "$ORIGIN {ZONE}\n$TTL 3\n@ SOA ns h 1 10 10 60 3\n@ NS ns\nns A 127.0.0.1\n\
         www A 192.0.2.80\nsub NS ns.sub\nns.sub A 192.0.2.53\n"
    );
    for (i, name) in extra.iter().enumerate() {
        t.push_str(&format!("{name} A 192.0.2.{}\n", 100 + i));
    }
    t
}

fn status(d: &Daemon) -> serde_json::Value {
    serde_json::from_str(&d.ctl_ok(&["zone", "status", ZONE, "--json"])).unwrap()
}

/// Waits until the zone signer reports an error, and returns it.
fn refused(d: &Daemon) -> String {
    let began = Instant::now();
    loop {
        let e = status(d)["LastError"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !e.is_empty() {
            return e;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "no refusal: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Both secondaries serve `serial`.
fn both_at(knot: &Knot, nsd: &Nsd, serial: u32) {
    knot.wait_for_serial(ZONE, serial, Duration::from_secs(20));
    nsd.wait_for_serial(ZONE, serial, Duration::from_secs(20));
}

/// Long because it is one story: two faults refused, each healed, then
/// the control.
#[test]
fn a_version_that_fails_its_check_is_not_served_and_the_last_good_one_stays() {
    let token = TestToken::new("checked");
    let faults = TempDir::new("checked-fault");
    let fault = faults.path().join("fault");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start_with_env(
        &token,
        "checked-a",
        &["--dns-listen", &dns],
        &[("KEYMASTER_TEST_FAULT_FILE", fault.as_os_str())],
    );
    let knot = Knot::start_secondary(&[ZONE], std::slice::from_ref(&dns));
    let nsd = Nsd::start_secondary(&[ZONE], &dns);
    d.add_still_zone(ZONE, &["--dnskey-ttl", "6"]);
    let src_dir = TempDir::new("checked-src");
    let src = src_dir.path().join("zone");
    std::fs::write(&src, text(&[])).unwrap();
    d.ctl_ok(&[
        "zone",
        "source",
        ZONE,
        "--file",
        src.to_str().unwrap(),
        "--secondary",
        &knot.addr(),
        "--secondary",
        &nsd.addr(),
    ]);
    both_at(&knot, &nsd, 1);
    let anchors = d.ctl_ok(&["trust-anchor", ZONE, "--format", "unbound"]);
    let validators = Validators::start(&[(ZONE, knot.addr())], &anchors);
    validators.wait_validated(WWW, Rtype::A, 30);

    let mut names: Vec<&str> = Vec::new();
    for (fault_text, new_name, said) in [
        (
            "bad-rrsig",
            "alpha",
            "which the zone's DNSKEY RRset does not have",
        ),
        ("nsec-hole", "bravo", "the NSEC chain has a hole"),
    ] {
        let serial = soa_serial(&knot.addr(), ZONE).unwrap();
        std::fs::write(&fault, fault_text).unwrap();
        names.push(new_name);
        std::fs::write(&src, text(&names)).unwrap();
        let e = refused(&d);
        assert!(e.contains("failed its check and is not served"), "{e}");
        assert!(e.contains(said), "{fault_text}: {e}");
        assert!(e.contains(".checked.test.: "), "names the owner: {e}");
        let audit = d.audit_details(ZONE, "publish-failed");
        assert!(audit.iter().any(|a| a.contains(said)), "{audit:#?}");
        // The last good version stays served, to both secondaries, and
        // validates; the new name is not there yet.
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(soa_serial(&knot.addr(), ZONE), Some(serial));
        assert_eq!(soa_serial(&nsd.addr(), ZONE), Some(serial));
        validators.wait_validated(WWW, Rtype::A, 30);
        for u in validators.both() {
            let name = format!("{new_name}.{ZONE}");
            assert_eq!(
                u.resolve(&name, Rtype::A),
                Ok(("NXDOMAIN".into(), true)),
                "{}",
                u.log()
            );
        }
        // The fault gone, the next change is served whole and valid.
        std::fs::remove_file(&fault).unwrap();
        d.ctl_ok(&["zone", "reload", ZONE]);
        both_at(&knot, &nsd, serial + 1);
        validators.wait_validated(&format!("{new_name}.{ZONE}"), Rtype::A, 30);
        assert_eq!(status(&d)["LastError"], "", "{}", d.log_text());
        eprintln!("{fault_text}: refused as {e:?}");
    }

    // The control: the same signature fault, unchecked, is served, and a
    // strict validator finds the name bogus.
    let serial = soa_serial(&knot.addr(), ZONE).unwrap();
    std::fs::write(&fault, "bad-rrsig unchecked").unwrap();
    names.push("charlie");
    std::fs::write(&src, text(&names)).unwrap();
    both_at(&knot, &nsd, serial + 1);
    let log = d.log_text();
    let broken = log
        .lines()
        .rfind(|l| l.contains("test fault put in the version"))
        .and_then(|l| l.split("owner=").nth(1))
        .and_then(|o| o.split_whitespace().next())
        .unwrap_or_else(|| panic!("{log}"))
        .to_string();
    let strict = validators.fresh_strict();
    let began = Instant::now();
    while strict.resolve(&broken, Rtype::A).map(|r| r.0) != Ok("SERVFAIL".into()) {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{broken} is not bogus to the strict validator: {:?}",
            strict.resolve(&broken, Rtype::A)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
