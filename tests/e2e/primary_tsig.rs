//! A hidden primary that serves the unsigned zone only to transfers signed
//! with a TSIG key: keymaster signs its AXFR requests with the key and
//! checks every answer (`zone source --primary ADDR --primary-tsig KEY`),
//! and publishes the zone; asked with a key the primary does not know, the
//! transfer fails, is reported, and nothing is published.

use std::time::{Duration, Instant};

use crate::common::dns::Knot;
use crate::common::*;

const GOOD: &str = "pri.test.";
const BAD: &str = "other.test.";
const SECRET: &str = "c2VjcmV0IGZvciB0cmFuc2ZlcnMgZnJvbSB0aGUgcHJpbWFyeSE=";

/// The primary's zone: 3,000 hosts besides `www`, so that a transfer of
/// it is many messages, each of which the primary signs and keymaster
/// checks; the first `changed` hosts have other addresses.
fn unsigned(zone: &str, serial: u32, changed: usize) -> String {
    let mut text = format!(
        "$ORIGIN {zone}\n$TTL 60\n@ SOA ns h {serial} 3600 600 86400 60\n@ NS ns\n\
         ns A 127.0.0.1\nwww A 192.0.2.7\n"
    );
    for i in 0..3000 {
        let last = if i < changed { 200 } else { i % 200 };
        text.push_str(&format!("host{i} A 198.51.100.{last}\n"));
    }
    text
}

fn status(d: &Daemon, zone: &str) -> serde_json::Value {
    serde_json::from_str(&d.ctl_ok(&["zone", "status", zone, "--json"])).unwrap()
}

#[test]
fn transfers_from_the_primary_are_signed_with_its_tsig_key() {
    let token = TestToken::new("primary-tsig");
    let dir = TempDir::new("primary-tsig-src");
    let keys = dir.path().join("tsig.keys");
    std::fs::write(
        &keys,
        format!(
            "primary-key hmac-sha256 {SECRET}\n\
             unknown-key hmac-sha256 b3RoZXIgc2VjcmV0IHRoZSBwcmltYXJ5IGhhcyBuZXZlciBzZWVu\n"
        ),
    )
    .unwrap();
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(
        &token,
        "node-pt",
        &["--dns-listen", &dns, "--tsig-keys", keys.to_str().unwrap()],
    );
    let primary = Knot::start_primary_tsig(&[GOOD, BAD], &dns, ("primary-key", SECRET));
    for zone in [GOOD, BAD] {
        let file = dir.path().join(zone);
        std::fs::write(&file, unsigned(zone, 7, 0)).unwrap();
        primary.publish(zone, &file, 7);
        d.ctl_ok(&["zone", "add", zone]);
    }
    // One zone with the key the primary has, one with a key it does not know.
    let out = dir.path().join("good.signed");
    d.ctl_ok(&[
        "zone",
        "source",
        GOOD,
        "--primary",
        &primary.addr(),
        "--primary-tsig",
        "primary-key",
        "--out",
        out.to_str().unwrap(),
    ]);
    d.ctl_ok(&[
        "zone",
        "source",
        BAD,
        "--primary",
        &primary.addr(),
        "--primary-tsig",
        "unknown-key",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (good, bad) = (status(&d, GOOD), status(&d, BAD));
        let bad_error = bad["LastError"].as_str().unwrap_or_default().to_string();
        // The signed file follows the store's record of the serial.
        let written = std::fs::read_to_string(&out).is_ok_and(|t| t.contains("www.pri.test."));
        if good["Serial"] == 7 && !bad_error.is_empty() && written {
            assert_eq!(good["LastError"], "", "{good}");
            assert_eq!(good["PrimaryTsigKey"], "primary-key.");
            assert!(
                bad_error.contains(&format!("transfer from primary {}", primary.addr())),
                "{bad_error}"
            );
            assert_eq!(bad["Published"], false, "{bad}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "good: {good}\nbad: {bad}\n{}",
            primary.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let signed = std::fs::read_to_string(&out).unwrap();
    assert!(
        signed.contains("www.pri.test.") && signed.contains("RRSIG"),
        "{signed}"
    );
    // Every message of the transfer was taken: all 3,000 hosts are signed,
    // and outside validators accept the zone.
    assert_eq!(
        count_type(&out, "A"),
        3002,
        "hosts missing from the signed zone"
    );
    assert_validates(&out, GOOD);
    // A change at the primary, transferred signed as well.
    let file = dir.path().join(GOOD);
    std::fs::write(&file, unsigned(GOOD, 8, 400)).unwrap();
    primary.publish(GOOD, &file, 8);
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&d, GOOD)["SourceSerial"] != 8
        || !std::fs::read_to_string(&out).is_ok_and(|t| t.contains("198.51.100.200"))
    {
        assert!(
            Instant::now() < deadline,
            "{}\n{}",
            status(&d, GOOD),
            primary.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status(&d, GOOD)["LastError"], "");
    assert_validates(&out, GOOD);
    // The primary gives the zone to no unsigned request: keymaster's was
    // signed.
    let (host, port) = primary
        .addr()
        .split_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap();
    let dig = std::process::Command::new("dig")
        .args([&format!("@{host}"), "-p", &port, GOOD, "AXFR", "+nostats"])
        .output()
        .expect("dig (Debian package bind9-dnsutils)");
    let text = String::from_utf8_lossy(&dig.stdout);
    assert!(
        !text.contains("192.0.2.7") && text.contains("Transfer failed"),
        "an unsigned AXFR: {text}"
    );
}
