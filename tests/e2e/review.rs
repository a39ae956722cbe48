//! Review before publication by hook: the Key Master's `--review-command`
//! is a script that asks `ldns-verify-zone` (a validator nobody here
//! wrote) and approves, rejects, or hangs, as a control file says, and
//! writes down each call. The zone has signatures of a minute, so that
//! refresh rounds come while a rejected change waits: they must go out
//! without review, and no signature may expire. A Knot secondary serves
//! the zone; a stock and a strict Unbound validate throughout.

use std::time::{Duration, Instant};

use crate::common::dns::{soa_serial, Knot, Validators};
use crate::common::*;
use domain::base::iana::Rtype;

const ZONE: &str = "review.test.";
const WWW: &str = "www.review.test.";

fn text(extra: &[&str]) -> String {
    let mut t = format!(
        "$ORIGIN {ZONE}\n$TTL 3\n@ SOA ns h 1 10 10 60 3\n@ NS ns\nns A 127.0.0.1\n\
         www A 192.0.2.80\n"
    );
    for name in extra {
        t.push_str(&format!("{name} A 192.0.2.66\n"));
    }
    t
}

fn last_error(d: &Daemon) -> String {
    let s: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "status", ZONE, "--json"])).unwrap();
    s["LastError"].as_str().unwrap_or_default().to_string()
}

fn wait_error(d: &Daemon, has: &str) -> String {
    let began = Instant::now();
    loop {
        let e = last_error(d);
        if e.contains(has) {
            return e;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "no error with {has:?}: {e:?}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The validators' answers for www (validated) and for `absent` names
/// (validated NXDOMAIN).
fn answers_hold(v: &Validators, absent: &[&str], answers: &mut u32) {
    for u in v.both() {
        assert_eq!(
            u.resolve(WWW, Rtype::A),
            Ok(("NOERROR".into(), true)),
            "{}",
            u.log()
        );
        for name in absent {
            let name = format!("{name}.{ZONE}");
            assert_eq!(
                u.resolve(&name, Rtype::A),
                Ok(("NXDOMAIN".into(), true)),
                "{}",
                u.log()
            );
        }
        *answers += 1;
    }
}

/// Long because it is one story: approved, rejected, timed out, refreshed
/// while refused, approved again.
#[test]
fn versions_are_served_only_once_the_review_hook_approves_them() {
    let token = TestToken::new("review");
    let work = TempDir::new("review-hook");
    let (control, calls) = (work.path().join("control"), work.path().join("calls"));
    let hook = work.path().join("hook");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$1 $2\" >> {calls}\ncase $(cat {control}) in\n\
             approve) exec ldns-verify-zone -q \"$3\" ;;\n\
             reject) echo 'rejected by local policy'; exit 1 ;;\n\
             *) sleep 30 ;;\nesac\n",
            calls = calls.display(),
            control = control.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(&control, "approve").unwrap();
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(
        &token,
        "review-a",
        &[
            "--dns-listen",
            &dns,
            "--review-command",
            hook.to_str().unwrap(),
        ],
    );
    let knot = Knot::start_secondary(&[ZONE], std::slice::from_ref(&dns));
    d.add_still_zone(
        ZONE,
        &[
            "--signature-validity",
            "1m",
            "--dnskey-signature-validity",
            "1m",
            "--dnskey-ttl",
            "2",
            "--review",
            "hook",
            "--review-timeout",
            "3s",
        ],
    );
    let src_dir = TempDir::new("review-src");
    d.keep_signed(ZONE, &src_dir, &text(&[]), &knot);
    let called = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(called(), 1, "the first version is reviewed");
    let trust = format!(
        "{}\nval-sig-skew-min: 0\nval-sig-skew-max: 0\n",
        d.ctl_ok(&["trust-anchor", ZONE, "--format", "unbound"])
    );
    let validators = Validators::start(&[(ZONE, knot.addr())], &trust);
    validators.wait_validated(WWW, Rtype::A, 30);
    let mut answers = 0;

    // Rejected: named, audited, and the approved version stays served.
    let src = src_dir.path().join(ZONE);
    let serial = soa_serial(&knot.addr(), ZONE).unwrap();
    std::fs::write(&control, "reject").unwrap();
    std::fs::write(&src, text(&["evil"])).unwrap();
    let e = wait_error(&d, "rejected by the review hook");
    assert!(e.contains("exit 1: rejected by local policy"), "{e}");
    assert!(e.contains("the last approved version stays served"), "{e}");
    let audit = d.audit_details(ZONE, "publish-failed");
    assert!(
        audit.iter().any(|a| a.contains("rejected by local policy")),
        "{audit:#?}"
    );
    answers_hold(&validators, &["evil"], &mut answers);

    // A hook that does not answer: refused after the time-out, loudly.
    std::fs::write(&control, "hang").unwrap();
    std::fs::write(&src, text(&["evil", "late"])).unwrap();
    let e = wait_error(&d, "did not answer within 3 s");
    assert!(d.log_text().contains("ERROR"), "{}", d.log_text());
    eprintln!("time-out said as: {e}");
    let calls_while_refused = called();

    // Refresh rounds while the change is refused: the approved data is
    // signed again without review, and nothing expires.
    let began = Instant::now();
    let mut serials = vec![serial];
    while began.elapsed() < Duration::from_secs(75) {
        answers_hold(&validators, &["evil", "late"], &mut answers);
        let now = soa_serial(&knot.addr(), ZONE).unwrap();
        if serials.last() != Some(&now) {
            serials.push(now);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        serials.len() >= 2,
        "no refresh went out: {serials:?}\n{}",
        d.log_text()
    );
    assert_eq!(called(), calls_while_refused, "a refresh was reviewed");
    eprintln!("refreshed while refused: serials {serials:?}, {answers} answers all validated");

    // Approved again: the change is served.
    std::fs::write(&control, "approve").unwrap();
    d.ctl_ok(&["zone", "reload", ZONE]);
    let began = Instant::now();
    while !last_error(&d).is_empty() {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    validators.wait_validated(&format!("late.{ZONE}"), Rtype::A, 30);
    validators.wait_validated(&format!("evil.{ZONE}"), Rtype::A, 30);
    let approved = d.audit_entries(ZONE);
    assert!(
        approved.iter().any(|e| e["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("approved by the review hook")),
        "{approved:#?}"
    );
}

const HAND: &str = "byhand.test.";

fn hand_status(d: &Daemon) -> serde_json::Value {
    serde_json::from_str(&d.ctl_ok(&["zone", "status", HAND, "--json"])).unwrap()
}

/// Waits until a version waits for review by hand, and returns its serial.
fn pending(d: &Daemon) -> u32 {
    let began = Instant::now();
    loop {
        let p = hand_status(d)["PendingReview"].as_u64().unwrap_or(0);
        if p != 0 {
            return p as u32;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "nothing waits for review: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn hand_text(extra: &[&str]) -> String {
    text(extra).replace(ZONE, HAND)
}

/// Long because it is one story: the first version approved, a change
/// rejected, another approved, a decision on a serial that does not wait.
#[test]
fn a_version_reviewed_by_hand_is_served_only_once_an_operator_approves_it() {
    let token = TestToken::new("review-hand");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "review-m", &["--dns-listen", &dns]);
    let knot = Knot::start_secondary(&[HAND], std::slice::from_ref(&dns));
    d.add_still_zone(
        HAND,
        &[
            "--dnskey-ttl",
            "2",
            "--review",
            "manual",
            "--review-timeout",
            "4s",
        ],
    );
    let src_dir = TempDir::new("review-hand-src");
    let src = src_dir.path().join("zone");
    std::fs::write(&src, hand_text(&[])).unwrap();
    d.ctl_ok(&[
        "zone",
        "source",
        HAND,
        "--file",
        src.to_str().unwrap(),
        "--secondary",
        &knot.addr(),
    ]);
    // The first version waits; nothing is served until it is approved.
    let first = pending(&d);
    let shown = d.ctl_ok(&["zone", "status", HAND]);
    assert!(
        shown.contains(&format!("zone approve|reject {HAND} {first}")),
        "{shown}"
    );
    assert_eq!(soa_serial(&knot.addr(), HAND), None);
    // Past the review timeout, loudly.
    let began = Instant::now();
    while !d
        .log_text()
        .contains("waited for review by hand longer than")
    {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let e = d.ctl_err(&["zone", "approve", HAND, &(first + 7).to_string()]);
    assert!(
        e.contains(&format!("no serial {} waits for review", first + 7)),
        "{e}"
    );
    d.ctl_ok(&["zone", "approve", HAND, &first.to_string()]);
    knot.wait_for_serial(HAND, first, Duration::from_secs(20));
    let trust = d.ctl_ok(&["trust-anchor", HAND, "--format", "unbound"]);
    let validators = Validators::start(&[(HAND, knot.addr())], &trust);
    validators.wait_validated(&format!("www.{HAND}"), Rtype::A, 30);

    // A change rejected: dropped, said, audited with who; the approved
    // version stays.
    std::fs::write(&src, hand_text(&["evil"])).unwrap();
    let second = pending(&d);
    d.ctl_ok(&["zone", "reject", HAND, &second.to_string()]);
    let began = Instant::now();
    while !hand_status(&d)["LastError"]
        .as_str()
        .unwrap_or_default()
        .contains(&format!("serial {second} rejected by {ADMIN}"))
    {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(hand_status(&d)["PendingReview"], 0);
    let rejected = d.audit_entries(HAND);
    assert!(
        rejected
            .iter()
            .any(|e| e["action"] == "review-rejected" && e["caller"] == ADMIN),
        "{rejected:#?}"
    );
    assert_eq!(soa_serial(&knot.addr(), HAND), Some(first));
    for u in validators.both() {
        let name = format!("evil.{HAND}");
        assert_eq!(
            u.resolve(&name, Rtype::A),
            Ok(("NXDOMAIN".into(), true)),
            "{}",
            u.log()
        );
    }

    // Another change, approved: served, and validated.
    std::fs::write(&src, hand_text(&["good"])).unwrap();
    let third = pending(&d);
    d.ctl_ok(&["zone", "approve", HAND, &third.to_string()]);
    validators.wait_validated(&format!("good.{HAND}"), Rtype::A, 30);
    let approved = d.audit_entries(HAND);
    assert!(
        approved
            .iter()
            .any(|e| e["action"] == "review-approved" && e["caller"] == ADMIN),
        "{approved:#?}"
    );
}
