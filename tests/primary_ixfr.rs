//! A hidden primary that keeps a journal answers IXFR: after the first
//! AXFR, keymaster asks only for the differences since the version it has
//! (RFC 1995), applies them to its copy of the unsigned zone, and signs
//! and publishes the result: an added, a changed and a removed record.
// Tests drive real processes in real time: they read the system clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::dns::Knot;
use common::*;

const ZONE: &str = "ixfr.test.";

fn unsigned(serial: u32, extra: &str) -> String {
    let mut text = format!(
        "$ORIGIN {ZONE}\n$TTL 60\n@ SOA ns h {serial} 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n"
    );
    for i in 0..50 {
        text.push_str(&format!("host{i} A 192.0.2.{i}\n"));
    }
    text.push_str(extra);
    text
}

#[test]
fn changes_at_the_primary_come_by_ixfr_and_are_published() {
    let token = TestToken::new("primary-ixfr");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-ix", &["--dns-listen", &dns]);
    let primary = Knot::start_primary_ixfr(&[ZONE], &dns);
    let dir = TempDir::new("primary-ixfr-src");
    let file = dir.path().join("unsigned");
    std::fs::write(
        &file,
        unsigned(10, "www A 192.0.2.100\ngone A 192.0.2.200\n"),
    )
    .unwrap();
    primary.publish(ZONE, &file, 10);
    d.ctl_ok(&["zone", "add", ZONE, "--denial", "nsec"]);
    let out = dir.path().join("signed");
    d.ctl_ok(&[
        "zone",
        "source",
        ZONE,
        "--primary",
        &primary.addr(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let published = |serial: u32| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s: serde_json::Value =
                serde_json::from_str(&d.ctl_ok(&["zone", "status", ZONE, "--json"])).unwrap();
            // The signed file follows the store's record of the serial.
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let in_file = text.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(3) == Some(&"SOA") && f.get(6) == Some(&serial.to_string().as_str())
            });
            if s["Serial"] == serial && in_file {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "serial {serial} not published: {s}\n{}",
                primary.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = published(10);
    assert!(first.contains("gone.ixfr.test.") && first.contains("192.0.2.100"));
    // Serial 11: www changed, a record added, one removed.
    std::fs::write(
        &file,
        unsigned(11, "www A 192.0.2.101\nnew A 192.0.2.111\n"),
    )
    .unwrap();
    primary.publish(ZONE, &file, 11);
    let second = published(11);
    let a_records = |text: &str, owner: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&owner) && f.get(3) == Some(&"A")
            })
            .map(|l| l.split_whitespace().last().unwrap().to_string())
            .collect()
    };
    assert_eq!(a_records(&second, "www.ixfr.test."), ["192.0.2.101"]);
    assert_eq!(a_records(&second, "new.ixfr.test."), ["192.0.2.111"]);
    assert!(a_records(&second, "gone.ixfr.test.").is_empty(), "removed");
    assert_eq!(a_records(&second, "host49.ixfr.test."), ["192.0.2.49"]);
    // The primary answered an IXFR from 10, not a whole transfer.
    assert!(
        primary.log().contains("IXFR, outgoing") && primary.log().contains("10 -> 11"),
        "{}",
        primary.log()
    );
}
