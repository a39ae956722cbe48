//! etcd killed (kill -9) while role transfers and key additions are under
//! way, then restarted on the same data: no half-written role, no key
//! record without its audit entry or its token object, and the nodes carry
//! on once etcd is back.
// Tests drive real processes in real time: they read the system clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn role(d: &Daemon, zone: &str) -> serde_json::Value {
    serde_json::from_str(&d.ctl_ok(&["role", "show", zone, "--json"])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_etcd_mid_operation_leaves_no_half_written_role() {
    let mut etcd = Etcd::start("outage");
    let shared = TestToken::new("outage");
    let pki = Arc::new(Pki::new());
    let store = etcd.store();
    let start = |id: &str| Daemon::start_node(&shared, id, &store, &pki, &["--lease-secs", "2"]);
    let a = Arc::new(start("out-a"));
    let b = Arc::new(start("out-b"));
    let zone = "outage.example.";
    a.ctl_ok(&["zone", "add", zone]);

    // Role moves back and forth and keys are added, from both nodes, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (succeeded, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let worker = {
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        let (succeeded, failed) = (succeeded.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut outcomes = Vec::new();
            let mut to = "out-b";
            let mut record = |o: std::process::Output| {
                let n = if o.status.success() {
                    &succeeded
                } else {
                    &failed
                };
                n.fetch_add(1, Ordering::SeqCst);
                let ok = o.status.success();
                outcomes.push(o);
                ok
            };
            while !stop.load(Ordering::SeqCst) {
                let from = if to == "out-b" { &a } else { &b };
                let moved = record(from.ctl(&["role", "transfer", zone, "--to", to]));
                let holder = if moved { to } else { "?" };
                let by = if holder == "out-a" { &a } else { &b };
                record(by.ctl(&["key", "add", zone, "--role", "zsk"]));
                if holder != "?" {
                    to = if to == "out-b" { "out-a" } else { "out-b" };
                }
            }
            outcomes
        })
    };
    let wait_for = |what: &str, n: &AtomicUsize, at_least: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while n.load(Ordering::SeqCst) < at_least {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Kill etcd with calls in flight: once some have landed, and again
    // after a few more calls have met the dead store.
    wait_for("calls to succeed", &succeeded, 6);
    etcd.kill();
    let failed_then = failed.load(Ordering::SeqCst);
    wait_for("calls to meet the dead etcd", &failed, failed_then + 4);
    stop.store(true, Ordering::SeqCst);
    let outcomes = worker.join().unwrap();
    let ok = outcomes.iter().filter(|o| o.status.success()).count();
    let unusable = outcomes
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stderr).contains("is not usable"))
        .count();
    eprintln!(
        "{ok} calls succeeded, {unusable} met the dead etcd, of {}",
        outcomes.len()
    );
    assert!(ok > 0, "nothing succeeded before etcd was killed");
    assert!(
        unusable > 0,
        "no call met the dead etcd: {:?}",
        outcomes
            .last()
            .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
    );

    etcd.run();
    // Both nodes see the same role again once etcd is back.
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let out = a.ctl(&["role", "show", zone, "--json"]);
        if out.status.success() {
            break serde_json::from_str::<serde_json::Value>(&String::from_utf8_lossy(&out.stdout))
                .unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "store not back after etcd restart"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(role(&b, zone), r);
    let epoch = r["Epoch"].as_u64().unwrap();
    let holder = r["KeyMasterServer"].as_str().unwrap().to_string();

    // The chain is whole, and every role change and key in the store has
    // exactly its entry: one transfer entry per epoch step, the last one
    // naming the holder the zone record names.
    let verify = a.ctl_ok(&["audit", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
    let log: Vec<serde_json::Value> = a
        .ctl_ok(&["audit", "--zone", zone, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["outcome"] == "ok")
        .collect();
    let transfers: Vec<&serde_json::Value> =
        log.iter().filter(|e| e["action"] == "transfer").collect();
    assert_eq!(transfers.len() as u64, epoch - 1, "{log:?}");
    if let Some(last) = transfers.last() {
        let detail = last["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("→ {holder}, epoch {} → {epoch}", epoch - 1)),
            "{detail}"
        );
    }
    let keys: serde_json::Value =
        serde_json::from_str(&a.ctl_ok(&["key", "list", zone, "--json"])).unwrap();
    let keys = keys.as_array().unwrap();
    let added = log
        .iter()
        .filter(|e| e["action"] == "generate+publish")
        .count();
    assert_eq!(keys.len(), 2 + added, "key records without their entry");
    let objects = shared.list_objects();
    for k in keys {
        let label = format!(
            "outage.example-{}-{}",
            k["role"].as_str().unwrap(),
            k["key_tag"]
        );
        assert!(objects.contains(&label), "key {label} has no token object");
    }

    // And the nodes carry on.
    let other = if holder == "out-a" { "out-b" } else { "out-a" };
    let (from, to) = if holder == "out-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    from.ctl_ok(&["role", "transfer", zone, "--to", other]);
    to.ctl_ok(&["key", "add", zone, "--role", "zsk"]);
    assert_eq!(role(&a, zone)["Epoch"].as_u64(), Some(epoch + 1));
    to.sign_validated(zone, &sample_zone(zone, 5));
}
