//! RFC 5011 against a validator that follows it: Unbound holds the zone's
//! KSK in an `auto-trust-anchor-file` (hold-downs of seconds, which
//! Unbound allows with permit-small-holddown; keymaster is told the same),
//! Knot serves the zone and its parent, both kept signed by keymaster (so
//! the parent's DS follows the zone's key set). keymaster rolls the KSK:
//! the successor is published for the add hold-down + 2·mQI before the
//! DS swap, the old key is revoked and kept for the remove hold-down.
//! Unbound takes the new key as its anchor, drops the revoked one, and
//! validates every answer throughout.

use std::time::{Duration, Instant};

use crate::common::dns::{Knot, Unbound};
use crate::common::*;
use domain::base::iana::Rtype;

const PARENT: &str = "p5011.test.";
const ZONE: &str = "anchor.p5011.test.";
/// Longer than this roll takes without RFC 5011 (about 10 s with these
/// TTLs): a roll that did not wait for the add hold-down would revoke the
/// old key while Unbound still holds the new one as pending, and answers
/// would go insecure (seen with keymaster told 1 s).
const HOLD_DOWN: u64 = 12;

#[test]
fn unbound_follows_an_rfc5011_ksk_roll_of_the_zone_it_trusts() {
    let token = TestToken::new("rfc5011");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-5011", &["--dns-listen", &dns]);
    let knot = Knot::start_secondary(&[PARENT, ZONE], std::slice::from_ref(&dns));
    d.add_still_zone(PARENT, &[]);
    let hold = format!("{HOLD_DOWN}s");
    d.add_still_zone(
        ZONE,
        &[
            "--dnskey-ttl",
            "2",
            "--max-zone-ttl",
            "2",
            "--propagation-time",
            "1",
            "--safety-margin",
            "1",
            "--rfc5011",
            "--add-hold-down",
            &hold,
            "--remove-hold-down",
            &hold,
            "--publication-server",
            &knot.addr(),
            "--parent-server",
            &knot.addr(),
            "--ds-ttl",
            "2",
            "--parent-ds-ttl",
            "2",
            "--parent-propagation",
            "1",
        ],
    );
    let dir = TempDir::new("rfc5011-src");
    for (zone, text) in [
        (
            ZONE,
            format!(
                "$ORIGIN {ZONE}\n$TTL 2\n@ SOA ns h 1 10 10 60 2\n@ NS ns\nns A 127.0.0.1\n\
                 www A 192.0.2.11\n"
            ),
        ),
        (
            PARENT,
            format!(
                "$ORIGIN {PARENT}\n$TTL 2\n@ SOA ns h 1 10 10 60 2\n@ NS ns\nns A 127.0.0.1\n\
                 anchor NS ns.anchor\nns.anchor A 127.0.0.1\n"
            ),
        ),
    ] {
        d.keep_signed(zone, &dir, &text, &knot);
    }
    let anchor_file = dir.path().join("anchor.keys");
    std::fs::write(
        &anchor_file,
        d.ctl_ok(&["trust-anchor", ZONE, "--format", "keyset"]),
    )
    .unwrap();
    let unbound = Unbound::start_with(
        &[(PARENT, knot.addr()), (ZONE, knot.addr())],
        &format!(
            "auto-trust-anchor-file: \"{}\"\npermit-small-holddown: yes\n\
             add-holddown: {HOLD_DOWN}\ndel-holddown: {HOLD_DOWN}\nkeep-missing: 0\n",
            anchor_file.display()
        ),
    );
    let validated =
        || unbound.resolve("www.anchor.p5011.test.", Rtype::A) == Ok(("NOERROR".into(), true));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !validated() {
        assert!(
            Instant::now() < deadline,
            "no AD at the start: {}",
            unbound.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let (old, _, _, old_tag) = d.key_rows(ZONE).into_iter().find(|k| k.1 == "ksk").unwrap();
    d.ctl_ok(&["key", "roll", ZONE, &old_tag.to_string()]);
    let began = Instant::now();
    let mut answers = 0;
    let mut revoked_seen = false;
    loop {
        assert!(
            validated(),
            "during the RFC 5011 roll: {:?}\n{}\n{}",
            unbound.resolve("www.anchor.p5011.test.", Rtype::A),
            unbound.log(),
            std::fs::read_to_string(&anchor_file).unwrap_or_default()
        );
        answers += 1;
        let ks = d.key_rows(ZONE);
        revoked_seen |= ks.iter().any(|k| k.0 == old && k.2 == "revoked");
        if ks.iter().filter(|k| k.1 == "ksk").count() == 1 && ks.iter().all(|k| k.0 != old) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the roll did not finish: {ks:?}\n{}",
            d.ctl_ok(&["key", "list", ZONE])
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(revoked_seen, "the old KSK was revoked before it went");
    for _ in 0..10 {
        assert!(validated(), "after the roll: {}", unbound.log());
        answers += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "RFC 5011 KSK roll in {:?}, {answers} answers through Unbound, all AD",
        began.elapsed()
    );
    // Unbound holds the new KSK as a valid anchor, and the old one no more.
    let new_tag = d
        .key_rows(ZONE)
        .into_iter()
        .find(|k| k.1 == "ksk")
        .unwrap()
        .3;
    let anchors = std::fs::read_to_string(&anchor_file).unwrap();
    let line_of = |tag: u64| {
        anchors
            .lines()
            .find(|l| l.contains(&format!("id = {tag} ")))
            .map(str::to_string)
    };
    let new_line = line_of(new_tag).unwrap_or_default();
    assert!(new_line.contains("VALID"), "new KSK {new_tag}:\n{anchors}");
    let old_line = line_of(old_tag).or_else(|| line_of((old_tag + 128) % 65536));
    assert!(
        old_line.as_deref().is_none_or(|l| !l.contains("VALID")),
        "old KSK {old_tag}:\n{anchors}"
    );
    // The hold-down was waited out: the revocation came at least Itrp
    // (add hold-down + 2 mQI, mQI = TTL/2 = 1 s) after the roll began.
    let audit = d.audit_entries(ZONE);
    let when = |what: &str| {
        audit
            .iter()
            .find(|e| e["detail"].as_str().unwrap_or_default().contains(what))
            .and_then(|e| e["time"].as_u64())
            .unwrap_or_else(|| panic!("no audit entry with {what:?}: {audit:?}"))
    };
    let started = when("roll of");
    let revoked = when("revoked for RFC 5011");
    assert!(
        revoked >= started + HOLD_DOWN + 2,
        "revoked {} s after the roll began",
        revoked - started
    );
}
