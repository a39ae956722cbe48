//! `keymasterctl trust-anchor`: what a validator's operator pastes, used
//! as they would use it. The zone, signed by keymaster, is served by Knot
//! DNS; Unbound given the `unbound` lines, or the `keyset` file as its
//! trust-anchor-file, answers with the AD bit; BIND's `named-checkconf`
//! accepts the `bind` statement and `delv` validates the zone with it;
//! the `ds` form is the zone's DS RRset.

use std::process::Command;

use crate::common::dns::{Knot, Unbound};
use crate::common::*;
use domain::base::iana::Rtype;

const ZONE: &str = "anchors.test.";

/// Unbound, given `trust` in its server: section, answers for the zone
/// with the AD bit.
fn validates_with(knot: &Knot, trust: &str) {
    let unbound = Unbound::start_with(&[(ZONE, knot.addr())], trust);
    assert_eq!(
        unbound.resolve("www.anchors.test.", Rtype::A).unwrap(),
        ("NOERROR".to_string(), true),
        "{}",
        unbound.log()
    );
}

#[test]
fn each_trust_anchor_form_lets_a_validator_trust_the_zone() {
    let token = TestToken::new("anchors");
    let kept = TempDir::new("anchors-kept");
    let kept_dir = kept.path().to_str().unwrap().to_string();
    let d = Daemon::start(&token, "node-ta", &["--trust-anchor-dir", &kept_dir]);
    d.ctl_ok(&["zone", "add", ZONE, "--denial", "nsec"]);
    let source = "$ORIGIN anchors.test.\n$TTL 300\n@ SOA ns h 7 60 60 3600 300\n@ NS ns\n\
                  ns A 127.0.0.1\nwww A 192.0.2.10\n";
    let (_work, signed, _) = d.sign_validated(ZONE, source);
    let knot = Knot::start(&[ZONE]);
    knot.publish(ZONE, &signed, 7);
    let dir = TempDir::new("anchors-files");

    // Unbound, with the lines pasted into its server: section.
    let lines = d.ctl_ok(&["trust-anchor", ZONE, "--format", "unbound"]);
    assert!(
        lines.starts_with("trust-anchor: \"anchors.test. IN DS "),
        "{lines}"
    );
    validates_with(&knot, &lines);

    // Unbound, with the keyset as its trust-anchor file.
    let keyset = d.ctl_ok(&["trust-anchor", ZONE, "--format", "keyset"]);
    assert_eq!(keyset.lines().count(), 1, "one KSK: {keyset}");
    assert!(keyset.contains(" DNSKEY 257 3 13 "), "{keyset}");
    let file = dir.path().join("keyset-anchors.test");
    std::fs::write(&file, &keyset).unwrap();
    validates_with(&knot, &format!("trust-anchor-file: \"{}\"", file.display()));

    // BIND: the statement is valid configuration, and delv validates the
    // zone's answers with it.
    let bind = d.ctl_ok(&["trust-anchor", ZONE, "--format", "bind"]);
    let conf = dir.path().join("anchors.conf");
    std::fs::write(&conf, format!("{bind}\n")).unwrap();
    let (ok, said) = run_validator(Command::new("named-checkconf").arg(&conf));
    assert!(ok, "named-checkconf: {said}\n{bind}");
    let (host, port) = knot
        .addr()
        .split_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap();
    let out = Command::new("delv")
        .arg(format!("@{host}"))
        .args(["-p", &port, "-a"])
        .arg(&conf)
        .args(["+root=anchors.test.", "www.anchors.test.", "A"])
        .output()
        .expect("delv (Debian package bind9-dnsutils)");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("; fully validated"), "delv: {said}\n{bind}");

    // The DS form is the zone's DS RRset, as `ds` gives it.
    let ds = d.ctl_ok(&["trust-anchor", ZONE, "--format", "ds"]);
    let from_ds: Vec<String> = d
        .ctl_ok(&["ds", ZONE])
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("DS"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(ds.lines().map(str::to_string).collect::<Vec<_>>(), from_ds);

    let err = d.ctl_err(&["trust-anchor", ZONE, "--format", "yaml"]);
    assert!(err.contains("not unbound, bind, ds or keyset"), "{err}");

    // The Key Master keeps keyset-ZONE and dsset-ZONE current: as printed,
    // and with a new KSK in them soon after it is added.
    let keyset_file = kept.path().join("keyset-anchors.test.");
    let dsset_file = kept.path().join("dsset-anchors.test.");
    assert_eq!(std::fs::read_to_string(&keyset_file).unwrap(), keyset);
    assert_eq!(std::fs::read_to_string(&dsset_file).unwrap(), ds);
    d.ctl_ok(&["key", "add", ZONE, "--role", "ksk"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let keys = std::fs::read_to_string(&keyset_file).unwrap_or_default();
        let dss = std::fs::read_to_string(&dsset_file).unwrap_or_default();
        if keys.lines().count() == 2 && dss.lines().count() == 2 {
            assert_eq!(
                keys,
                d.ctl_ok(&["trust-anchor", ZONE, "--format", "keyset"])
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "trust-anchor files not updated: {keys}\n{dss}\n{}",
            d.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
