//! A roll asks the servers the zone's NS RRset names, not only those
//! configured (`--find-servers`): keymaster keeps the zone signed, Knot
//! serves it (the configured server), and the zone's NS RRset also names
//! `ns` (an address where no server answers) and `ns2` (no address at
//! all). The ZSK roll's first step waits, naming both; told to ask only
//! the configured server, it goes on.

use std::time::{Duration, Instant};

use crate::common::dns::Knot;
use crate::common::*;

const ZONE: &str = "found.test.";

#[test]
fn a_roll_waits_for_every_server_the_ns_rrset_names() {
    let token = TestToken::new("find-servers");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-find", &["--dns-listen", &dns]);
    let knot = Knot::start_secondary(&[ZONE], std::slice::from_ref(&dns));
    d.add_still_zone(
        ZONE,
        &[
            "--dnskey-ttl",
            "1",
            "--max-zone-ttl",
            "1",
            "--propagation-time",
            "1",
            "--safety-margin",
            "1",
            "--publication-server",
            &knot.addr(),
            "--find-servers",
        ],
    );
    let dir = TempDir::new("find-servers-src");
    let text = format!(
        "$ORIGIN {ZONE}\n$TTL 1\n@ SOA ns h 1 10 10 60 1\n@ NS ns\n@ NS ns2\n\
         ns A 127.0.0.1\nwww A 192.0.2.5\n"
    );
    d.keep_signed(ZONE, &dir, &text, &knot);
    let (old, _, _, tag) = d.key_rows(ZONE).into_iter().find(|k| k.1 == "zsk").unwrap();
    d.ctl_ok(&["key", "roll", ZONE, &tag.to_string()]);
    let waiting = |d: &Daemon| -> Vec<String> {
        let keys: serde_json::Value =
            serde_json::from_str(&d.ctl_ok(&["key", "list", ZONE, "--json"])).unwrap();
        keys.as_array()
            .unwrap()
            .iter()
            .flat_map(|k| k["WaitingOn"].as_array().cloned().unwrap_or_default())
            .filter_map(|w| w.as_str().map(str::to_string))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let w = waiting(&d);
        let names_both = w.iter().any(|s| s.starts_with("127.0.0.1:53:"))
            && w.iter()
                .any(|s| s.contains("ns2.found.test.: no address found"));
        // Once the configured server serves the change, the roll still waits.
        if names_both && !w.iter().any(|s| s.starts_with(&knot.addr())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the roll does not name the NS RRset's servers: {w:?}\n{}",
            d.ctl_ok(&["key", "list", ZONE])
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(3));
    let states: Vec<String> = d.key_rows(ZONE).into_iter().map(|k| k.2).collect();
    assert!(
        states.contains(&"published".to_string()),
        "the successor ZSK is still only published: {states:?}"
    );
    // Only the configured server, as before: the roll goes on to the end.
    d.ctl_ok(&["zone", "set", ZONE, "--find-servers", "false"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while d.key_rows(ZONE).iter().any(|k| k.0 == old) {
        assert!(
            Instant::now() < deadline,
            "the roll did not finish: {}",
            d.ctl_ok(&["key", "list", ZONE])
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
