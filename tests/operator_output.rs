//! What an operator reads: text output gives times as RFC 3339 in UTC and
//! durations in units; `--json` keeps the machine forms (Unix seconds,
//! seconds).
// Tests drive real processes in real time: they read the system clock.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;

/// Whether a word is an RFC 3339 UTC time of this century.
fn is_rfc3339(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() == 20
        && word.starts_with("20")
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(" : ")?;
            (k.trim() == name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
fn text_output_shows_times_as_rfc3339_and_durations_in_units() {
    let token = TestToken::new("output");
    let d = Daemon::start(&token, "node-a", &[]);
    d.ctl_ok(&["zone", "add", "readable.test."]);

    let show = d.ctl_ok(&["zone", "show", "readable.test."]);
    assert!(is_rfc3339(field(&show, "KeyMasterSince")), "{show}");
    assert_eq!(field(&show, "LastZskRolloverTime"), "-", "{show}");
    assert_eq!(field(&show, "ZoneSignatureValidityPeriod"), "10d", "{show}");
    assert_eq!(field(&show, "DnsKeyRecordSetTtl"), "1h", "{show}");
    let json: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "show", "readable.test.", "--json"])).unwrap();
    let since = json["KeyMasterSince"]
        .as_u64()
        .expect("Unix seconds in JSON");
    assert!(since > 1_700_000_000, "{json:#}");
    assert_eq!(json["ZoneSignatureValidityPeriod"], 864_000);

    let role = d.ctl_ok(&["role", "show", "readable.test."]);
    assert!(is_rfc3339(field(&role, "KeyMasterSince")), "{role}");

    // Key list: the CREATED column.
    let keys = d.ctl_ok(&["key", "list", "readable.test."]);
    let rows: Vec<&str> = keys.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{keys}");
    for row in rows {
        assert!(row.split_whitespace().any(is_rfc3339), "{row}");
    }

    // The audit log's time column, and the node list's LAST SEEN.
    let audit = d.ctl_ok(&["audit", "--zone", "readable.test."]);
    let first = audit.lines().next().expect("an audit entry");
    assert!(
        is_rfc3339(first.split_whitespace().nth(1).unwrap()),
        "{audit}"
    );
    let nodes = d.ctl_ok(&["node", "list"]);
    assert!(
        nodes
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .any(is_rfc3339),
        "{nodes}"
    );
}
