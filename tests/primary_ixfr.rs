//! A hidden primary that keeps a journal answers IXFR: after the first
//! AXFR, keymaster asks only for the differences since the version it has
//! (RFC 1995), applies them to its copy of the unsigned zone, and signs
//! and publishes the result: an added, a changed and a removed record.
// Tests drive real processes in real time: they read the system clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;
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

/// A zone of many chunks whose change comes by IXFR: the signer patches
/// the chunks that hold the change, the chunk before each and the apex's,
/// and shares the rest with the last version. What it serves must be the
/// whole zone, correctly signed with a complete NSEC chain, as tools
/// nobody here wrote judge it; and its IXFR carries only the change. A
/// change that moves a zone cut is signed whole, and validates too.
#[test]
fn a_change_by_ixfr_patches_only_its_chunks_and_the_zone_still_validates() {
    const BIG: &str = "patch.test.";
    let token = TestToken::new("primary-patch");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-pt", &["--dns-listen", &dns]);
    let primary = Knot::start_primary_ixfr(&[BIG], &dns);
    let dir = TempDir::new("primary-patch-src");
    let file = dir.path().join("unsigned");
    let zone = |serial: u32, edit: &dyn Fn(&mut Vec<String>)| {
        let mut lines = vec![
            format!("$ORIGIN {BIG}"),
            "$TTL 60".to_string(),
            format!("@ SOA ns h {serial} 3600 600 86400 60"),
            "@ NS ns".to_string(),
            "ns A 127.0.0.1".to_string(),
            "sub NS ns.sub".to_string(),
            "ns.sub A 192.0.2.53".to_string(),
            "* TXT \"wildcard\"".to_string(),
        ];
        for i in 0..10_000 {
            lines.push(format!("host{i} A 198.51.100.{}", i % 250));
        }
        edit(&mut lines);
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        primary.publish(BIG, &file, serial);
    };
    zone(10, &|_| {});
    d.ctl_ok(&["zone", "add", BIG, "--denial", "nsec"]);
    let out = dir.path().join("signed");
    d.ctl_ok(&[
        "zone",
        "source",
        BIG,
        "--primary",
        &primary.addr(),
        "--out",
        out.to_str().unwrap(),
        // dig below, as a secondary (nothing answers its NOTIFY).
        "--secondary",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    let published = |serial: u32| -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let details = d.audit_details(BIG, "sign-zone");
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let in_file = text.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(3) == Some(&"SOA") && f.get(6) == Some(&serial.to_string().as_str())
            });
            if let (Some(last), true) = (details.last(), in_file) {
                if last.starts_with(&format!("published serial {serial} ")) {
                    return last.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "serial {serial} not published: {details:?}\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = published(10);
    assert!(first.contains("made whole"), "{first}");
    assert_validates(&out, BIG);

    // Serial 11: a changed address, a new name in the middle, the last
    // name gone, a name after every other (its NSEC names the apex), a
    // changed glue address and the wildcard's text.
    zone(11, &|l| {
        let at = |l: &Vec<String>, s: &str| l.iter().position(|x| x == s).unwrap();
        let i = at(l, "host1500 A 198.51.100.0");
        l[i] = "host1500 A 203.0.113.15".into();
        l.push("host1500x A 203.0.113.16".into());
        let i = at(l, "host999 A 198.51.100.249");
        l.remove(i);
        l.push("zzz A 203.0.113.99".into());
        let i = at(l, "ns.sub A 192.0.2.53");
        l[i] = "ns.sub A 192.0.2.54".into();
        let i = at(l, "* TXT \"wildcard\"");
        l[i] = "* TXT \"changed\"".into();
    });
    let second = published(11);
    eprintln!("serial 11: {second}");
    let counts: Vec<u64> = second
        .split("patched by the source's change: ")
        .nth(1)
        .unwrap_or_else(|| panic!("not patched: {second}"))
        .split(' ')
        .filter_map(|w| w.parse().ok())
        .take(2)
        .collect();
    let [made, chunks] = counts[..] else {
        panic!("{second}")
    };
    // Five places changed: each is in one chunk, and the chunk before it
    // may hold the NSEC that names it; and the apex's chunk.
    assert!(chunks >= 30, "a zone of {chunks} chunks only: {second}");
    assert!(made <= 11, "{second}");
    assert_validates(&out, BIG);
    assert_keeps_every_record(&file, &out, BIG);
    let text = std::fs::read_to_string(&out).unwrap();
    let owners_of = |rtype: &str, rdata: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(3) == Some(&rtype) && f[4..].join(" ") == rdata
            })
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    assert_eq!(owners_of("A", "203.0.113.15"), ["host1500.patch.test."]);
    assert!(owners_of("A", "198.51.100.249")
        .iter()
        .all(|o| o != "host999.patch.test."));
    assert!(
        !owners_of("A", "198.51.100.0").contains(&"host1500.patch.test.".to_string()),
        "the old address is still there"
    );
    assert_eq!(owners_of("A", "203.0.113.16"), ["host1500x.patch.test."]);
    assert_eq!(owners_of("TXT", "\"changed\""), ["*.patch.test."]);

    // What a secondary at serial 10 is sent: the change alone.
    let ixfr = Command::new("dig")
        .args([
            "-p",
            dns.rsplit(':').next().unwrap(),
            "@127.0.0.1",
            BIG,
            "IXFR=10",
        ])
        .args(["+noall", "+answer", "+tcp"])
        .output()
        .expect("dig");
    let ixfr = String::from_utf8_lossy(&ixfr.stdout).to_string();
    let records: Vec<&str> = ixfr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        records.iter().any(|l| l.contains("203.0.113.16")) && records.len() < 60,
        "{} records: {ixfr}",
        records.len()
    );

    // Serial 12: a new delegation turns names into glue: signed whole.
    zone(12, &|l| {
        l.push("host7 NS ns.host7".into());
        l.push("ns.host7 A 192.0.2.77".into());
    });
    let third = published(12);
    assert!(third.contains("made whole"), "{third}");
    assert_validates(&out, BIG);
    assert_keeps_every_record(&file, &out, BIG);
}
