//! etcd killed (kill -9) while role transfers and key additions are under
//! way, then restarted on the same data: no half-written role, no key
//! record without its audit entry or its token object, and the nodes carry
//! on once etcd is back.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

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

/// An A RRset at `owner`, as a DNS server sends it for signing.
fn a_rrset(owner: &str) -> keymaster::proto::Rrset {
    use std::str::FromStr;
    keymaster::proto::Rrset {
        owner: domain::base::Name::<Vec<u8>>::from_str(owner)
            .unwrap()
            .as_slice()
            .to_vec(),
        rtype: 1,
        records: vec![keymaster::proto::RecordData {
            rclass: 1,
            ttl: 300,
            rdata: vec![192, 0, 2, 1],
        }],
    }
}

/// The whole store away (etcd killed): RRset and zone signing go on from
/// the last-known key set, the public material is still handed out, every
/// key and zone change is refused naming the store; the records of the
/// signing done meanwhile wait in the node's spool and reach the audit log
/// in order once etcd is back, without a restart, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_goes_on_through_a_store_outage_and_its_records_follow() {
    let mut etcd = Etcd::start("outage-sign");
    let token = TestToken::new("outage-sign");
    let pki = Arc::new(Pki::new());
    let dir = TempDir::new("outage-spool");
    let spool = dir.path().join("spool.jsonl");
    let metrics = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start_node(
        &token,
        "sign-a",
        &etcd.store(),
        &pki,
        &[
            "--spool",
            spool.to_str().unwrap(),
            "--metrics-listen",
            &metrics,
        ],
    );
    let zone = "through.example.";
    d.ctl_ok(&["zone", "add", zone]);
    d.sign_validated(zone, &sample_zone(zone, 20));
    let dnskeys = d.ctl_ok(&["dnskey", zone]);
    let ds = d.ctl_ok(&["ds", zone]);
    let mut signer = d.signer_client().await;
    let request = || keymaster::proto::SignRrsetsRequest {
        zone: zone.into(),
        rrsets: vec![a_rrset("www.through.example.")],
        inception: 0,
        expiration: 0,
        include_text: false,
    };
    signer
        .sign_rrsets(request())
        .await
        .expect("signing with etcd up");

    etcd.kill();
    let down = Instant::now();
    // Signing: every call answers, from the last-known key set.
    let mut signed = 0;
    for _ in 0..20 {
        let r = signer
            .sign_rrsets(request())
            .await
            .expect("RRset signing with etcd down");
        assert_eq!(r.into_inner().signatures.len(), 1);
        signed += 1;
    }
    for n in 0..3 {
        // Zone signing too, and what it signs still validates.
        let (_w, _out, _) = d.sign_validated(zone, &sample_zone(zone, 20 + n));
    }
    assert_eq!(d.ctl_ok(&["dnskey", zone]), dnskeys);
    assert_eq!(d.ctl_ok(&["ds", zone]), ds);
    // Reads answer from the last-known state and say when it was read.
    for args in [
        &["zone", "show", zone][..],
        &["key", "list", zone],
        &["ds", zone],
    ] {
        let out = d.ctl(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("the store cannot be reached: this is the state as last read, at 20"),
            "{args:?}: {said}"
        );
    }
    let shown: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "show", zone, "--json"])).unwrap();
    let read_at = shown["LastKnownAt"]
        .as_u64()
        .expect("LastKnownAt while etcd is down");
    assert!(
        read_at + 60 > shown["KeyMasterSince"].as_u64().unwrap(),
        "{shown}"
    );
    assert_eq!(shown["IsKeyMasterServer"], true, "{shown}");
    let keys: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "list", zone, "--json"])).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");
    eprintln!(
        "{signed} RRset signings and 3 zone signings answered in {:?} with etcd down",
        down.elapsed()
    );
    // Changes are refused, naming the store, and nothing is half done.
    let err = d.ctl_err(&["key", "add", zone, "--role", "zsk"]);
    eprintln!("key add with etcd down: {err}");
    assert!(err.contains("store etcd:"), "{err}");
    // Said in words, not as a dump of the transport's internals.
    assert!(!err.contains("Some(") && !err.contains("kind:"), "{err}");
    // Said once in the log, not an ERROR line per refused call: in an
    // outage every management call is refused.
    let error_lines = |log: &str| {
        log.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("ERROR"))
            .count()
    };
    let errors = error_lines(&d.log_text());
    for _ in 0..5 {
        d.ctl_err(&["key", "add", zone, "--role", "zsk"]);
    }
    let log = d.log_text();
    assert_eq!(
        error_lines(&log),
        errors,
        "five more refusals logged:\n{log}"
    );
    assert_eq!(
        log.matches("refused calls cannot be recorded in the audit log")
            .count(),
        1,
        "{log}"
    );
    let objects = token.list_objects();
    let spooled = std::fs::read_to_string(&spool).unwrap();
    assert_eq!(
        spooled.lines().count(),
        3,
        "one record per zone signing, fsynced on the node: {spooled}"
    );
    assert!(d
        .log_text()
        .contains("signing goes on with the zone's last-known key set"));
    // Monitoring sees the outage and the records waiting.
    let scraped = scrape_metrics(&metrics);
    assert_eq!(
        metric_value(&scraped, "keymaster_spooled_records"),
        Some(3.0),
        "{scraped}"
    );
    assert_eq!(
        metric_value(&scraped, "keymaster_state_read_ok"),
        Some(0.0),
        "{scraped}"
    );

    etcd.run();
    let back = Instant::now();
    // The spooled records reach the log in the order the work was done,
    // after the entries from before the outage.
    let deadline = Instant::now() + Duration::from_secs(30);
    let entries = loop {
        let out = d.ctl(&["audit", "--zone", zone, "--json"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let entries: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let late = entries
            .iter()
            .filter(|e| {
                e["detail"]
                    .as_str()
                    .is_some_and(|s| s.contains("while the store was unreachable"))
            })
            .count();
        if out.status.success() && late == 3 {
            break entries;
        }
        assert!(
            Instant::now() < deadline,
            "spooled records not in the log: {text}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "the spool was in the audit log {:?} after etcd was back",
        back.elapsed()
    );
    let signings: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["action"] == "sign-zone")
        .collect();
    assert_eq!(signings.len(), 4, "{entries:?}");
    let times: Vec<u64> = signings
        .iter()
        .map(|e| e["time"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(std::fs::read_to_string(&spool).unwrap(), "");
    // The gauges are read from the store each second: wait for the read
    // after the spool was drained.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scraped = scrape_metrics(&metrics);
        let spooled = metric_value(&scraped, "keymaster_spooled_records");
        let read_ok = metric_value(&scraped, "keymaster_state_read_ok");
        if spooled == Some(0.0) && read_ok == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gauges never showed the spool drained and the store read: {scraped}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    d.ctl_ok(&["audit", "verify"]);
    assert_eq!(token.list_objects(), objects);
    // And management works again; reads are the store's again.
    d.ctl_ok(&["key", "add", zone, "--role", "zsk"]);
    let out = d.ctl(&["key", "list", zone]);
    assert!(String::from_utf8_lossy(&out.stderr).is_empty(), "{out:?}");
}

/// Three nodes on a three-member etcd, every member killed: every node
/// signs every zone (RRsets, and whole zones that outside validators
/// accept), also zones it never signed before, with the key set as the
/// last change left it (a ZSK added on another node just before), and so
/// does a node killed and started again during the outage, from its state
/// directory. Every management call is refused naming the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_signs_every_zone_through_a_whole_cluster_outage() {
    let mut etcd = EtcdCluster::start("outage-all");
    let token = TestToken::new("outage-all");
    let pki = Arc::new(Pki::new());
    let states = TempDir::new("outage-all-state");
    let store = etcd.store();
    let ids = ["all-a", "all-b", "all-c"];
    let state_of = |id: &str| states.path().join(id).display().to_string();
    let start = |id: &str| {
        Daemon::start_node(
            &token,
            id,
            &store,
            &pki,
            &["--lease-secs", "2", "--state-dir", &state_of(id)],
        )
    };
    let mut nodes: Vec<Daemon> = ids.iter().map(|id| start(id)).collect();
    let zones: Vec<String> = (0..4).map(|i| format!("z{i}.outage.example.")).collect();
    for (i, zone) in zones.iter().enumerate() {
        // Added on different nodes; no node signs anything before the outage.
        nodes[i % 3].ctl_ok(&["zone", "add", zone]);
    }
    // A key change just before the outage, made through another node.
    let added: serde_json::Value = serde_json::from_str(
        &nodes[2].ctl_ok(&["key", "add", &zones[0], "--role", "zsk", "--json"]),
    )
    .unwrap();
    let added = if added.is_array() {
        added[0].clone()
    } else {
        added
    };
    let added_id = added["id"].as_str().unwrap().to_string();
    let dnskeys: Vec<String> = zones
        .iter()
        .map(|z| nodes[0].ctl_ok(&["dnskey", z]))
        .collect();
    let published = |t: &str| {
        t.lines()
            .filter(|l| l.split_whitespace().nth(3) == Some("DNSKEY"))
            .count()
    };
    assert_eq!(published(&dnskeys[0]), 3, "{}", dnskeys[0]);
    // Each node keeps every zone's key set on its disk as it reads it
    // (from etcd's watch): wait until each has the last change.
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in ids {
        for zone in &zones {
            let file = std::path::Path::new(&state_of(id))
                .join("keysets")
                .join(format!("{zone}.json"));
            loop {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                if !text.is_empty() && (zone != &zones[0] || text.contains(&added_id)) {
                    let mode = std::os::unix::fs::PermissionsExt::mode(
                        &std::fs::metadata(&file).unwrap().permissions(),
                    );
                    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
                    break;
                }
                assert!(Instant::now() < deadline, "{id} has no key set of {zone}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    for m in &mut etcd.members {
        m.kill();
    }
    let (mut asked, mut signed) = (0, 0);
    for d in &nodes {
        let (a, s) = sign_every_zone(d, &zones, &dnskeys).await;
        (asked, signed) = (asked + a, signed + s);
        let err = d.ctl_err(&["key", "add", &zones[1], "--role", "zsk"]);
        assert!(err.contains("store etcd:"), "{err}");
    }
    // A node killed and started again while etcd is still down.
    let mut c = nodes.pop().unwrap();
    signal_pid(c.pid(), "KILL");
    let _ = c.child.take().map(|mut ch| ch.wait());
    let c = start("all-c");
    assert!(
        c.log_text()
            .lines()
            .any(|l| l.contains("last-known key sets loaded from disk") && l.contains("zones=4")),
        "{}",
        c.log_text()
    );
    let (a, s) = sign_every_zone(&c, &zones, &dnskeys).await;
    (asked, signed) = (asked + a, signed + s);
    let err = c.ctl_err(&["zone", "add", "new.outage.example."]);
    assert!(err.contains("store etcd:"), "{err}");
    eprintln!("{signed} of {asked} signing calls answered with every etcd member down");
    assert_eq!(signed, asked, "signing calls refused during the outage");

    // etcd back: the spooled records reach the log, which verifies.
    etcd.run_all();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.ctl(&["audit", "--json"]);
        let late = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("while the store was unreachable"))
            .count();
        if out.status.success() && late >= 2 * zones.len() * 2 {
            break;
        }
        assert!(Instant::now() < deadline, "spool not drained: {late}");
        std::thread::sleep(Duration::from_millis(200));
    }
    c.ctl_ok(&["audit", "verify"]);
    c.ctl_ok(&["key", "add", &zones[1], "--role", "zsk"]);
}

/// Signs an RRset and the whole of each zone on node `d`, and checks that
/// it hands out the DNSKEY RRset it had before the outage; (calls asked,
/// calls answered with signatures). A zone signing must also validate.
async fn sign_every_zone(d: &Daemon, zones: &[String], dnskeys: &[String]) -> (usize, usize) {
    let (mut asked, mut signed) = (0, 0);
    let mut signer = d.signer_client().await;
    for (zone, dnskey) in zones.iter().zip(dnskeys) {
        asked += 2;
        let request = keymaster::proto::SignRrsetsRequest {
            zone: zone.clone(),
            rrsets: vec![a_rrset(&format!("www.{zone}"))],
            inception: 0,
            expiration: 0,
            include_text: false,
        };
        match signer.sign_rrsets(request).await {
            Ok(r) if r.get_ref().signatures.len() == 1 => signed += 1,
            other => eprintln!("{}: {zone}: RRset signing: {other:?}", d.addr),
        }
        let out = d.sign_text(zone, &sample_zone(zone, 10));
        if out.2.status.success() {
            assert_validates(&out.1, zone);
            signed += 1;
        } else {
            eprintln!("{}: {zone}: zone signing: {:?}", d.addr, out.2);
        }
        let keys = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.split_whitespace().nth(3) == Some("DNSKEY"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(keys(&d.ctl_ok(&["dnskey", zone])), keys(dnskey), "{zone}");
    }
    (asked, signed)
}
