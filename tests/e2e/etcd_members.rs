//! A three-member etcd cluster with one member down keeps its quorum, and
//! keymaster must not notice: every call on a node whose `--store` names
//! all three members succeeds, whichever member is down. With two down
//! (no quorum) a change is refused within seconds, in words.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

const ZONE: &str = "members.example.";

fn zone_text() -> String {
    format!(
        "$ORIGIN {ZONE}\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n"
    )
}

#[test]
fn one_member_down_of_three_changes_nothing() {
    let mut cluster = EtcdCluster::start("members");
    let token = TestToken::new("members");
    let pki = Arc::new(Pki::new());
    let store = cluster.store();
    let a = Daemon::start_node(&token, "mem-a", &store, &pki, &["--lease-secs", "3"]);
    a.ctl_ok(&["zone", "add", ZONE, "--denial", "nsec"]);
    for down in 0..3 {
        cluster.members[down].kill();
        let mut failures = Vec::new();
        let mut slowest = Duration::ZERO;
        let mut calls = 0;
        for round in 0..8 {
            let started = Instant::now();
            let mut outcomes = vec![
                a.ctl(&["zone", "show", ZONE]),
                a.ctl(&["key", "list", ZONE]),
                a.ctl(&["ds", ZONE]),
                a.ctl(&["audit", "--zone", ZONE]),
            ];
            let (_w, _out, signed) = a.sign_text(ZONE, &zone_text());
            outcomes.push(signed);
            if round % 4 == 0 {
                // A management write, and taking it back.
                outcomes.push(a.ctl(&["key", "add", ZONE, "--role", "zsk"]));
            }
            for o in outcomes {
                calls += 1;
                if !o.status.success() {
                    failures.push(String::from_utf8_lossy(&o.stderr).to_string());
                }
            }
            slowest = slowest.max(started.elapsed());
        }
        // The node's lease went on being renewed: it is still online.
        let role: serde_json::Value =
            serde_json::from_str(&a.ctl_ok(&["role", "show", ZONE, "--json"])).unwrap();
        assert_eq!(
            role["KeyMasterStatus"], "online",
            "member {down} down: {role:#}"
        );
        assert!(
            failures.is_empty(),
            "member {down} down: {} of {calls} calls failed: {failures:#?}",
            failures.len()
        );
        eprintln!("member {down} down: {calls} calls, all succeeded; slowest round {slowest:?}");
        cluster.members[down].run();
    }
    // Two members down: no quorum. A change fails within seconds, saying
    // why, rather than hanging; with a member back, the node goes on
    // without a restart.
    cluster.members[0].kill();
    cluster.members[1].kill();
    let started = Instant::now();
    let err = a.ctl_err(&["key", "add", ZONE, "--role", "zsk"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}: {err}");
    assert!(
        err.contains("no member answers") && err.contains("no leader"),
        "{err}"
    );
    assert!(
        !err.contains("ConnectError") && !err.contains("Os {"),
        "in words: {err}"
    );
    eprintln!("quorum lost: refused in {took:?}: {err}");
    // Said once: the next call does not wait again.
    let started = Instant::now();
    a.ctl_err(&["key", "add", ZONE, "--role", "zsk"]);
    let again = started.elapsed();
    assert!(
        again < Duration::from_secs(2),
        "the next call took {again:?}"
    );
    // Reads answer from the last-known state meanwhile, and say so.
    let shown = a.ctl(&["zone", "show", ZONE]);
    assert!(shown.status.success(), "{shown:?}");
    assert!(
        String::from_utf8_lossy(&shown.stderr).contains("this is the state as last read"),
        "{shown:?}"
    );
    cluster.members[1].run();
    a.ctl_ok(&["key", "add", ZONE, "--role", "zsk"]);
    cluster.members[0].run();
    let keys = a.ctl_ok(&["key", "list", ZONE]);
    assert_eq!(
        keys.lines().filter(|l| l.contains(" zsk ")).count(),
        1 + 6 + 1,
        "the first ZSK, six added with a member down, one after the quorum came back: {keys}"
    );
    // Token and store agree: one private key per key record.
    let objects = token.list_objects();
    assert_eq!(
        objects.matches("Private Key Object").count(),
        keys.lines().count() - 1,
        "one private key per key record, no orphan: {objects}"
    );
    assert!(a.ctl_ok(&["audit", "verify"]).contains("verified"));
}
