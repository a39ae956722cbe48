//! One suite for the store interface, run against both backends: the
//! embedded SQLite file and a real etcd (Debian's `etcd`, started on
//! 127.0.0.1 with a temporary data directory). What every backend must
//! do: records as written, every write fenced by the zone's epoch and
//! carried with its audit entry, one winner of racing role moves, a whole
//! audit chain under concurrent appends, and node leases that lapse.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use keymaster::audit::{verify_chain, AuditDraft};
use keymaster::dnssec::{Algorithm, KeyRole};
use keymaster::policy::Policy;
use keymaster::store::schema::{KeyRecord, KeyState, NodeRecord, ZoneRecord, SCHEMA_VERSION};
use keymaster::store::{Store, StoreError, StoreOptions, StoreTls};

/// Opens a fresh connection to the backend: two of them stand for two
/// processes.
async fn open(backend: &TestStore) -> Arc<dyn Store> {
    keymaster::store::open(&backend.url(), backend.options())
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", backend.url()))
}

fn draft(zone: &str, action: &str) -> AuditDraft {
    AuditDraft {
        time: 1_700_000_000,
        node: "n1".into(),
        caller: "conformance".into(),
        zone: zone.into(),
        action: action.into(),
        outcome: "ok".into(),
        detail: String::new(),
        request_id: String::new(),
    }
}

fn zone(name: &str) -> ZoneRecord {
    ZoneRecord {
        schema: SCHEMA_VERSION,
        name: name.into(),
        policy: Policy::default(),
        key_master: "n1".into(),
        epoch: 1,
        key_master_since: 10,
        created: 10,
        needs_rekey: false,
        lifecycle: Default::default(),
        publishing: Default::default(),
        delegations: Vec::new(),
    }
}

fn key(zone: &str, id: &str, created: u64) -> KeyRecord {
    KeyRecord {
        schema: SCHEMA_VERSION,
        zone: zone.into(),
        id: id.into(),
        role: KeyRole::Zsk,
        algorithm: Algorithm::EcdsaP256Sha256,
        key_tag: 1000 + created as u16,
        state: KeyState::Active,
        label: format!("{zone}-zsk-{id}"),
        public_key: "00".repeat(64),
        token_label: "t".into(),
        token_serial: "s".into(),
        created,
        published: created,
        activated: created,
        retired: 0,
        csk: false,
    }
}

async fn key_ids(s: &Arc<dyn Store>, zone: &str) -> Vec<String> {
    s.list_keys(zone)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect()
}

fn fenced(e: StoreError, expected: u64, actual: u64) {
    match e {
        StoreError::Fenced {
            expected: x,
            actual: a,
            ..
        } => assert_eq!((x, a), (expected, actual)),
        e => panic!("expected Fenced, got {e:?}"),
    }
}

async fn records_fencing_and_audit(backend: TestStore) {
    let s = open(&backend).await;
    let z = "conf.example.";
    assert_eq!(s.get_zone(z).await.unwrap(), None);
    s.create_zone(
        &zone(z),
        &[key(z, "bb", 2), key(z, "aa", 1)],
        &draft(z, "add-zone"),
    )
    .await
    .unwrap();
    s.create_zone(&zone("a.example."), &[], &draft("a.example.", "add-zone"))
        .await
        .unwrap();
    assert_eq!(s.get_zone(z).await.unwrap(), Some(zone(z)));
    let names: Vec<String> = s
        .list_zones()
        .await
        .unwrap()
        .into_iter()
        .map(|z| z.name)
        .collect();
    assert_eq!(names, ["a.example.", z]);
    // Keys come back in creation order, and only the zone's own.
    assert_eq!(key_ids(&s, z).await, ["aa", "bb"]);
    assert!(s.list_keys("a.example.").await.unwrap().is_empty());
    let entries = s.read_audit(None, 0).await.unwrap().len();
    assert_eq!(entries, 2);

    // A second create is refused and writes nothing, audit included.
    let e = s
        .create_zone(&zone(z), &[key(z, "cc", 3)], &draft(z, "add-zone"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::ZoneExists(_)), "{e:?}");
    assert_eq!(s.list_keys(z).await.unwrap().len(), 2);
    assert_eq!(s.read_audit(None, 0).await.unwrap().len(), entries);

    // Key writes at the zone's epoch.
    let mut k = key(z, "cc", 3);
    s.put_key(&k, 1, &draft(z, "generate")).await.unwrap();
    k.state = KeyState::Retired;
    s.put_key(&k, 1, &draft(z, "retire")).await.unwrap();
    let keys = s.list_keys(z).await.unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[2].state, KeyState::Retired);
    let e = s
        .delete_key(z, "zz", 1, &draft(z, "delete"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::KeyNotFound { .. }), "{e:?}");
    s.delete_key(z, "cc", 1, &draft(z, "delete")).await.unwrap();
    let e = s
        .put_key(
            &key("none.example.", "x", 1),
            1,
            &draft("none.example.", "generate"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::ZoneNotFound(_)), "{e:?}");

    // The role moves: epoch 2. Every write at epoch 1 is now fenced and
    // changes nothing, audit included.
    let moved = s
        .move_key_master(z, 1, "n2", 20, true, &draft(z, "seize --force"))
        .await
        .unwrap();
    assert_eq!(
        (moved.key_master.as_str(), moved.epoch, moved.needs_rekey),
        ("n2", 2, true)
    );
    assert_eq!(s.get_zone(z).await.unwrap(), Some(moved.clone()));
    let before = (
        s.get_zone(z).await.unwrap(),
        s.list_keys(z).await.unwrap(),
        s.read_audit(None, 0).await.unwrap(),
    );
    fenced(
        s.put_key(&key(z, "dd", 4), 1, &draft(z, "generate"))
            .await
            .unwrap_err(),
        1,
        2,
    );
    fenced(
        s.delete_key(z, "aa", 1, &draft(z, "delete"))
            .await
            .unwrap_err(),
        1,
        2,
    );
    fenced(
        s.delete_zone(z, 1, &draft(z, "remove")).await.unwrap_err(),
        1,
        2,
    );
    fenced(
        s.replace_keys(z, 1, &[key(z, "ee", 5)], &draft(z, "re-key"))
            .await
            .unwrap_err(),
        1,
        2,
    );
    fenced(
        s.move_key_master(z, 1, "n3", 30, false, &draft(z, "transfer"))
            .await
            .unwrap_err(),
        1,
        2,
    );
    let after = (
        s.get_zone(z).await.unwrap(),
        s.list_keys(z).await.unwrap(),
        s.read_audit(None, 0).await.unwrap(),
    );
    assert_eq!(before, after, "a fenced write changed something");

    // A re-key at the current epoch replaces every key and clears the mark.
    s.replace_keys(
        z,
        2,
        &[key(z, "ee", 5), key(z, "ff", 6)],
        &draft(z, "re-key"),
    )
    .await
    .unwrap();
    assert_eq!(key_ids(&s, z).await, ["ee", "ff"]);
    let now = s.get_zone(z).await.unwrap().unwrap();
    assert_eq!((now.epoch, now.needs_rekey), (2, false));

    // Removing the zone removes its keys, and only its own.
    s.delete_zone(z, 2, &draft(z, "remove")).await.unwrap();
    assert_eq!(s.get_zone(z).await.unwrap(), None);
    assert!(s.list_keys(z).await.unwrap().is_empty());
    assert!(s.get_zone("a.example.").await.unwrap().is_some());

    // Every change is in the audit log, chained, in order.
    let log = s.read_audit(None, 0).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "add-zone",
            "add-zone",
            "generate",
            "retire",
            "delete",
            "seize --force",
            "re-key",
            "remove"
        ]
    );
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    verify_chain(&log).unwrap();
    assert_eq!(s.read_audit(Some("a.example."), 0).await.unwrap().len(), 1);
    assert!(s.read_audit(None, 1_700_000_001).await.unwrap().is_empty());
    // An entry on its own joins the chain.
    let e = s.append_audit(&draft("", "refused call")).await.unwrap();
    assert_eq!(e.seq, 9);
    verify_chain(&s.read_audit(None, 0).await.unwrap()).unwrap();
}

async fn racing_role_moves_have_one_winner(backend: TestStore) {
    let (a, b) = (open(&backend).await, open(&backend).await);
    let z = "race.example.";
    a.create_zone(&zone(z), &[key(z, "aa", 1)], &draft(z, "add-zone"))
        .await
        .unwrap();
    for round in 0..20u64 {
        let epoch = 1 + round;
        let audit = draft(z, "seize");
        let (ra, rb) = tokio::join!(
            a.move_key_master(z, epoch, "n2", 0, false, &audit),
            b.move_key_master(z, epoch, "n3", 0, false, &audit),
        );
        assert!(ra.is_ok() != rb.is_ok(), "round {round}: {ra:?} {rb:?}");
        fenced(ra.err().or(rb.err()).unwrap(), epoch, epoch + 1);
    }
    assert_eq!(b.get_zone(z).await.unwrap().unwrap().epoch, 21);
    let log = a.read_audit(None, 0).await.unwrap();
    assert_eq!(
        log.len(),
        21,
        "one entry per winning move, none for a loser"
    );
    verify_chain(&log).unwrap();
}

async fn concurrent_appends_keep_one_chain(backend: TestStore) {
    let (a, b) = (open(&backend).await, open(&backend).await);
    let append = |s: Arc<dyn Store>, who: &'static str| async move {
        for _ in 0..25 {
            s.append_audit(&draft("", who)).await.unwrap();
        }
    };
    tokio::join!(append(a.clone(), "a"), append(b, "b"));
    let log = a.read_audit(None, 0).await.unwrap();
    assert_eq!(log.len(), 50);
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<_>>()
    );
    verify_chain(&log).unwrap();
}

/// A log longer than one read of the backend (etcd reads 500 a page) comes
/// back whole and in order.
async fn a_long_audit_log_reads_whole(backend: TestStore) {
    let s = open(&backend).await;
    for i in 0..1100 {
        s.append_audit(&draft("", &format!("entry {i}")))
            .await
            .unwrap();
    }
    let log = s.read_audit(None, 0).await.unwrap();
    assert_eq!(log.len(), 1100);
    assert_eq!(log[1099].action, "entry 1099");
    verify_chain(&log).unwrap();
}

async fn node_leases_lapse(backend: TestStore) {
    let s = open(&backend).await;
    let node = |id: &str, now: u64| NodeRecord {
        schema: SCHEMA_VERSION,
        node_id: id.into(),
        address: "127.0.0.1:1".into(),
        token_label: "t".into(),
        token_serial: "s".into(),
        algorithms: vec![13],
        last_seen: now,
        lease_secs: 2,
        store_lease: None,
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    s.put_node(&node("n2", now())).await.unwrap();
    s.put_node(&node("n1", now())).await.unwrap();
    let nodes = s.list_nodes().await.unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.node_id.as_str()).collect::<Vec<_>>(),
        ["n1", "n2"]
    );
    assert!(nodes.iter().all(|n| n.online(now())));
    // n1 renews every quarter of its lease, n2 does not: n2's lease runs
    // out while n1's holds throughout.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.put_node(&node("n1", now())).await.unwrap();
        let nodes = s.list_nodes().await.unwrap();
        assert!(nodes[0].online(now()), "n1 renewed and must be online");
        if !nodes[1].online(now()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "n2's lease did not run out"
        );
    }
    let nodes = s.list_nodes().await.unwrap();
    let online: Vec<(&str, bool)> = nodes
        .iter()
        .map(|n| (n.node_id.as_str(), n.online(now())))
        .collect();
    assert_eq!(online, [("n1", true), ("n2", false)]);
    // The lapsed node is still listed, with when it was last seen.
    assert!(nodes[1].last_seen > 0);
}

/// etcd that asks for client certificates refuses a node without one, and
/// an https:// store without a CA is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_over_tls_needs_its_ca_and_a_client_certificate() {
    let backend = TestStore::etcd_tls("refusals");
    let url = backend.url();
    let e = keymaster::store::open(&url, StoreOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("need --store-ca"), "{e}");
    let ca_only = StoreOptions {
        audit_file: None,
        start_unreachable: false,
        tls: Some(StoreTls {
            ca: backend.options().tls.unwrap().ca,
            identity: None,
        }),
    };
    let e = keymaster::store::open(&url, ca_only).await.unwrap_err();
    // etcd closes the connection (TLS 1.3 reports the refused certificate
    // after the handshake, so the words vary); the store is not opened.
    assert!(
        matches!(e, StoreError::Unavailable { .. })
            && (e.to_string().contains("transport error")
                || e.to_string().contains("connection closed")),
        "{e:?}"
    );
    let plain = url.replace("https://", "http://");
    let e = keymaster::store::open(&plain, backend.options())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("every endpoint must be https://"),
        "{e}"
    );
}

/// A lifecycle step: the zone's policy and lifecycle replaced, keys put
/// and deleted, all or nothing, and only at the zone's epoch; its epoch and
/// Key Master are not the caller's to change.
async fn lifecycle_steps_are_one_fenced_write(backend: TestStore) {
    let s = open(&backend).await;
    let z = "step.example.";
    s.create_zone(
        &zone(z),
        &[key(z, "aa", 1), key(z, "bb", 2)],
        &draft(z, "add"),
    )
    .await
    .unwrap();
    let mut next = zone(z);
    next.policy.dnskey_ttl = 7200;
    next.lifecycle.paused = true;
    next.epoch = 99; // ignored: the stored epoch stays
    next.key_master = "elsewhere".into();
    let mut bb = key(z, "bb", 2);
    bb.state = KeyState::Retired;
    s.update_zone(
        &next,
        1,
        &[bb.clone(), key(z, "cc", 3)],
        &["aa".into()],
        &draft(z, "step"),
    )
    .await
    .unwrap();
    let stored = s.get_zone(z).await.unwrap().unwrap();
    assert_eq!(stored.policy.dnskey_ttl, 7200);
    assert!(stored.lifecycle.paused);
    assert_eq!((stored.epoch, stored.key_master.as_str()), (1, "n1"));
    assert_eq!(key_ids(&s, z).await, ["bb", "cc"]);
    let keys = s.list_keys(z).await.unwrap();
    assert_eq!(keys[0].state, KeyState::Retired);
    // At a stale epoch nothing is written.
    s.move_key_master(z, 1, "node-b", 5, false, &draft(z, "transfer"))
        .await
        .unwrap();
    next.lifecycle.paused = false;
    let e = s
        .update_zone(&next, 1, &[], &["bb".into()], &draft(z, "stale step"))
        .await
        .unwrap_err();
    fenced(e, 1, 2);
    assert!(s.get_zone(z).await.unwrap().unwrap().lifecycle.paused);
    assert_eq!(key_ids(&s, z).await, ["bb", "cc"]);
    let log = s.read_audit(Some(z), 0).await.unwrap();
    assert!(log.iter().any(|e| e.action == "step"));
    assert!(!log.iter().any(|e| e.action == "stale step"));
}

macro_rules! conformance {
    ($($name:ident),*) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(TestStore::sqlite("conformance")).await
                }
            )*
        }
        mod etcd {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(TestStore::etcd("conformance")).await
                }
            )*
        }
        mod etcd_over_mutual_tls {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(TestStore::etcd_tls("conformance")).await
                }
            )*
        }
    };
}

conformance!(
    records_fencing_and_audit,
    racing_role_moves_have_one_winner,
    concurrent_appends_keep_one_chain,
    a_long_audit_log_reads_whole,
    node_leases_lapse,
    lifecycle_steps_are_one_fenced_write
);

/// SQLite: another process stalled inside a write (SIGSTOPped holding the
/// write lock) holds up this process's writes, never its reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_go_on_while_a_writer_waits_for_a_stalled_one() {
    let backend = TestStore::sqlite("stalled");
    let store = open(&backend).await;
    let z = "stalled.example.";
    store
        .create_zone(&zone(z), &[key(z, "aa", 10)], &draft(z, "add-zone"))
        .await
        .unwrap();
    let path = backend.url().trim_start_matches("sqlite:").to_string();
    let stalled = rusqlite::Connection::open(&path).unwrap();
    stalled.execute_batch("BEGIN IMMEDIATE").unwrap();
    // This process's own write now waits for the lock …
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.append_audit(&draft(z, "waits")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!writer.is_finished(), "the write waits for the lock");
    // … and its reads do not.
    let started = std::time::Instant::now();
    assert!(store.get_zone(z).await.unwrap().is_some());
    assert_eq!(store.list_zones().await.unwrap().len(), 1);
    assert_eq!(store.list_keys(z).await.unwrap().len(), 1);
    assert_eq!(store.read_audit(None, 0).await.unwrap().len(), 1);
    store.list_nodes().await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "reads took {took:?}");
    stalled.execute_batch("COMMIT").unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(store.read_audit(None, 0).await.unwrap().len(), 2);
}
