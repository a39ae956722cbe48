//! The Key Master role across real keymasterd nodes: three sharing one
//! SoftHSM2 token directory and one store, a fourth with a token of its
//! own; every scenario runs once on the embedded SQLite store and once on
//! a real etcd. Transfer, refusals with reasons, seize after kill -9, the
//! old Key Master coming back fenced, forced seize and re-key, automatic
//! failover.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use domain::base::name::Name;
use keymaster::proto;

fn role(d: &Daemon, zone: &str) -> serde_json::Value {
    serde_json::from_str(&d.ctl_ok(&["role", "show", zone, "--json"])).unwrap()
}

/// Signs one A RRset on a node through the Signer service; returns the
/// number of RRSIGs.
async fn sign_on(d: &Daemon, zone: &str) -> usize {
    let mut signer = d.signer_client().await;
    let owner = Name::<Vec<u8>>::from_str(&format!("www.{zone}")).unwrap();
    let r = signer
        .sign_rrsets(proto::SignRrsetsRequest {
            zone: zone.into(),
            rrsets: vec![proto::Rrset {
                owner: owner.as_slice().to_vec(),
                rtype: 1,
                records: vec![proto::RecordData {
                    rclass: 1,
                    ttl: 300,
                    rdata: vec![192, 0, 2, 1],
                }],
            }],
            inception: 0,
            expiration: 0,
            include_text: false,
        })
        .await
        .unwrap_or_else(|e| panic!("signing on {} failed: {e:?}", d.addr))
        .into_inner();
    r.signatures[0].rrsigs.len()
}

/// The node and caller of the zone's latest key change in the audit log.
fn last_key_change(d: &Daemon, zone: &str) -> (String, String) {
    let log = d.ctl_ok(&["audit", "--zone", zone, "--json"]);
    let e: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|e| e["action"] == "generate+publish" && e["outcome"] == "ok")
        .expect("a key change");
    (
        e["node"].as_str().unwrap().to_string(),
        e["caller"].as_str().unwrap().to_string(),
    )
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn key_master_moves_between_nodes_and_a_stale_one_is_fenced(backend: TestStore) {
    let shared = TestToken::new("shared");
    let own = TestToken::new("own");
    let pki = Arc::new(Pki::new());
    let store = backend.url();
    let lease = ["--lease-secs", "2"];
    let start = |token: &TestToken, id: &str| Daemon::start_node(token, id, &store, &pki, &lease);
    let mut a = start(&shared, "node-a");
    let b = start(&shared, "node-b");
    let c = start(&shared, "node-c");
    let d = start(&own, "node-d");
    let zone = "km.example.";
    a.ctl_ok(&["zone", "add", zone]);
    // A zone can be given its Key Master in advance: it makes the keys, in
    // its own token.
    a.ctl_ok(&["zone", "add", "pre.example.", "--key-master", "node-d"]);
    let r = role(&b, "pre.example.");
    assert_eq!(
        (r["KeyMasterServer"].as_str(), r["Epoch"].as_u64()),
        (Some("node-d"), Some(1))
    );
    let pre_keys = a.ctl_ok(&["key", "list", "pre.example.", "--json"]);
    assert_eq!(
        pre_keys.matches(&format!("token={}", own.label)).count(),
        2,
        "{pre_keys}"
    );

    // Every node is registered and online; the adder is Key Master, epoch 1.
    let nodes: serde_json::Value =
        serde_json::from_str(&b.ctl_ok(&["node", "list", "--json"])).unwrap();
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert!(nodes.iter().all(|n| n["online"] == true));
    let r = role(&c, zone);
    assert_eq!(
        (r["KeyMasterServer"].as_str(), r["Epoch"].as_u64()),
        (Some("node-a"), Some(1))
    );
    assert_eq!(r["KeyMasterStatus"], "online");

    // Candidates: the nodes on the shared token; node-d is refused with the reason.
    let cands = b.ctl_ok(&["role", "candidates", zone]);
    assert!(
        cands.contains("node-b           candidate")
            && cands.contains("node-c           candidate"),
        "{cands}"
    );
    assert!(
        cands.contains("node-d           not a candidate: its token (serial"),
        "{cands}"
    );
    let err = b.ctl_err(&["role", "transfer", zone, "--to", "node-d"]);
    assert!(
        err.contains("FailedPrecondition") && err.contains("node-d is not a candidate"),
        "{err}"
    );

    // Transfer A → B from node C: epoch 2 at once, keys unchanged.
    let keys_before = a.ctl_ok(&["key", "list", zone, "--json"]);
    c.ctl_ok(&["role", "transfer", zone, "--to", "node-b"]);
    let r = role(&a, zone);
    assert_eq!(
        (r["KeyMasterServer"].as_str(), r["Epoch"].as_u64()),
        (Some("node-b"), Some(2))
    );
    assert_eq!(a.ctl_ok(&["key", "list", zone, "--json"]), keys_before);
    let show: serde_json::Value =
        serde_json::from_str(&a.ctl_ok(&["zone", "show", zone, "--json"])).unwrap();
    assert_eq!(show["IsKeyMasterServer"], false);
    assert_eq!(show["KeyMasterServer"], "node-b");

    // Management sent to the old holder goes on to the Key Master, which
    // makes the change; the audit log names the caller and the way it came.
    a.ctl_ok(&["key", "add", zone, "--role", "zsk"]);
    assert_eq!(
        last_key_change(&b, zone),
        ("node-b".to_string(), format!("{ADMIN} via node-a"))
    );
    b.ctl_ok(&["key", "add", zone, "--role", "zsk"]);
    assert_eq!(
        last_key_change(&c, zone),
        ("node-b".to_string(), ADMIN.to_string())
    );
    // Signing works on every node that reaches the keys throughout.
    for n in [&a, &b, &c] {
        assert_eq!(sign_on(n, zone).await, 1);
    }

    // And back B → A.
    b.ctl_ok(&["role", "transfer", zone, "--to", "node-a"]);
    assert_eq!(role(&c, zone)["Epoch"], 3);

    // kill -9 the Key Master: transfer is refused (seize instead) once its lease is gone.
    signal_pid(a.pid(), "KILL");
    let _ = a.child.take().map(|mut ch| ch.wait());
    wait_until("node-a's lease to expire", || {
        role(&b, zone)["KeyMasterStatus"] == "offline"
    });
    let err = b.ctl_err(&["role", "transfer", zone, "--to", "node-c"]);
    assert!(
        err.contains("not reachable") && err.contains("seize"),
        "{err}"
    );
    // Management cannot reach it either: refused, naming it, nothing changed.
    let keys_before = b.ctl_ok(&["key", "list", zone, "--json"]);
    let err = b.ctl_err(&["key", "add", zone, "--role", "zsk"]);
    assert!(
        err.contains("FailedPrecondition") && err.contains("node node-a, is offline"),
        "{err}"
    );
    assert_eq!(b.ctl_ok(&["key", "list", zone, "--json"]), keys_before);
    // Seize to a node that cannot reach the keys: refused without --force.
    let err = b.ctl_err(&["role", "seize", zone, "--to", "node-d"]);
    assert!(
        err.contains("cannot take") && err.contains("--force"),
        "{err}"
    );
    // Seize to C, which shares the token: epoch 4, nothing else changes.
    b.ctl_ok(&["role", "seize", zone, "--to", "node-c"]);
    let r = role(&b, zone);
    assert_eq!(
        (r["KeyMasterServer"].as_str(), r["Epoch"].as_u64()),
        (Some("node-c"), Some(4))
    );
    assert_eq!(r["NeedsRekey"], false);
    for n in [&b, &c] {
        assert_eq!(sign_on(n, zone).await, 1);
    }

    // The old Key Master comes back: it signs, and changes nothing itself:
    // management sent to it is made by the new Key Master.
    let a2 = start(&shared, "node-a");
    assert_eq!(sign_on(&a2, zone).await, 1);
    a2.ctl_ok(&["key", "add", zone, "--role", "zsk"]);
    assert_eq!(
        last_key_change(&b, zone),
        ("node-c".to_string(), format!("{ADMIN} via node-a"))
    );
    // A seize back while C is online is refused: transfer instead.
    let err = a2.ctl_err(&["role", "seize", zone, "--to", "node-a"]);
    assert!(
        err.contains("node-c, holds its lease until")
            && err.contains("if it answers, transfer the role (keymasterctl role transfer"),
        "{err}"
    );

    // A Key Master paused (SIGSTOP) while the role is seized from it wakes
    // up fenced: it signs, but its writes are refused.
    wait_until("node-c to learn that it holds the role", || {
        c.log_text()
            .contains("this node is now the Key Master of the zone")
    });
    let c_pid = c.pid();
    backend.pause_node(c_pid);
    wait_until("node-c's lease to expire", || {
        role(&b, zone)["KeyMasterStatus"] == "offline"
    });
    b.ctl_ok(&["role", "seize", zone, "--to", "node-b"]);
    signal_pid(c_pid, "CONT");
    // It notices by itself, and says so.
    wait_until("node-c to log that it lost the role", || {
        c.log_text()
            .contains("this node is no longer the Key Master of the zone")
    });
    c.ctl_ok(&["key", "add", zone, "--role", "zsk"]);
    assert_eq!(
        last_key_change(&b, zone),
        ("node-b".to_string(), format!("{ADMIN} via node-c"))
    );
    assert_eq!(sign_on(&c, zone).await, 1);
    assert_eq!(role(&c, zone)["Epoch"], 5);

    // Seize to the node with its own token: refused without --force, and
    // with it the zone needs new keys.
    let b_pid = b.pid();
    backend.pause_node(b_pid);
    wait_until("node-b's lease to expire", || {
        role(&c, zone)["KeyMasterStatus"] == "offline"
    });
    let err = c.ctl_err(&["role", "seize", zone, "--to", "node-d"]);
    assert!(err.contains("--force"), "{err}");
    c.ctl_ok(&["role", "seize", zone, "--to", "node-d", "--force"]);
    let r = role(&c, zone);
    assert_eq!(
        (r["KeyMasterServer"].as_str(), r["Epoch"].as_u64()),
        (Some("node-d"), Some(6))
    );
    assert_eq!(r["NeedsRekey"], true);
    // Before the re-key, giving the role back to a node on the old token
    // needs nothing else.
    c.ctl_ok(&["role", "transfer", zone, "--to", "node-a"]);
    let r = role(&c, zone);
    assert_eq!(
        (r["KeyMasterServer"].as_str(), r["NeedsRekey"].as_bool()),
        (Some("node-a"), Some(false))
    );
    assert_eq!(sign_on(&a2, zone).await, 1);

    // Forced again, and this time re-keyed on node-d: new keys in its token,
    // a new DS, and the zone signed there validates.
    let a2_pid = a2.pid();
    backend.pause_node(a2_pid);
    wait_until("node-a's lease to expire", || {
        role(&c, zone)["KeyMasterStatus"] == "offline"
    });
    c.ctl_ok(&["role", "seize", zone, "--to", "node-d", "--force"]);
    // Asked of node-c, the re-key is made by node-d, the Key Master.
    let out = c.ctl(&["zone", "rekey", zone]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("every trust anchor must be replaced"));
    let ds = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(ds.contains("\tDS\t"), "{ds}");
    let keys: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "list", zone, "--json"])).unwrap();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let d_serial = own.list_objects();
    for k in keys {
        assert!(k["pkcs11_uri"]
            .as_str()
            .unwrap()
            .contains(&format!("token={}", own.label)));
        assert!(d_serial.contains(&format!(
            "km.example-{}-{}",
            k["role"].as_str().unwrap(),
            k["key_tag"]
        )));
    }
    assert_eq!(role(&d, zone)["NeedsRekey"], false);
    d.sign_validated(zone, &sample_zone(zone, 20));
    for pid in [b_pid, a2_pid] {
        signal_pid(pid, "CONT");
    }

    // Every role change is in the audit log.
    let log = c.ctl_ok(&["audit", "--zone", zone, "--json"]);
    let actions: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["outcome"] == "ok")
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    let count = |name: &str| actions.iter().filter(|a| *a == name).count();
    assert_eq!(count("transfer"), 3, "{log}");
    assert_eq!(count("seize"), 2, "{log}");
    assert_eq!(count("seize --force"), 2, "{log}");
    assert_eq!(count("re-key"), 1, "{log}");
    drop(d);
}

async fn automatic_failover_moves_the_role_to_one_candidate(backend: TestStore) {
    let shared = TestToken::new("failover");
    let pki = Arc::new(Pki::new());
    let store = backend.url();
    let start = |id: &str| Daemon::start_node(&shared, id, &store, &pki, &["--lease-secs", "1"]);
    let mut a = start("fo-a");
    let b = start("fo-b");
    let c = start("fo-c");
    let zone = "fo.example.";
    a.ctl_ok(&["zone", "add", zone, "--auto-failover", "2s"]);
    // A zone without automatic failover stays with its (dead) Key Master.
    a.ctl_ok(&["zone", "add", "manual.example."]);
    assert_eq!(role(&b, zone)["KeyMasterServer"], "fo-a");

    signal_pid(a.pid(), "KILL");
    let _ = a.child.take().map(|mut ch| ch.wait());
    wait_until("another node to take the role", || {
        role(&b, zone)["KeyMasterServer"] != "fo-a"
    });
    let r = role(&c, zone);
    let winner = r["KeyMasterServer"].as_str().unwrap().to_string();
    assert!(winner == "fo-b" || winner == "fo-c", "{r}");
    assert_eq!(
        r["Epoch"], 2,
        "two racing candidates, one winner, epoch + 1"
    );
    // The loser keeps running its failover passes (one per lease renewal):
    // once it has renewed twice more since the winner took the role,
    // nothing has changed.
    let loser = if winner == "fo-b" { "fo-c" } else { "fo-b" };
    let last_seen = |d: &Daemon| {
        let nodes: serde_json::Value =
            serde_json::from_str(&d.ctl_ok(&["node", "list", "--json"])).unwrap();
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == loser)
            .and_then(|n| n["last_seen"].as_u64())
            .unwrap()
    };
    let seen_then = last_seen(&b);
    wait_until("the loser to renew its lease twice more", || {
        last_seen(&b) >= seen_then + 2
    });
    assert_eq!(role(&c, zone)["Epoch"], 2);
    assert_eq!(role(&c, "manual.example.")["KeyMasterServer"], "fo-a");
    let log = b.ctl_ok(&["audit", "--zone", zone, "--json"]);
    let seizes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"action\":\"seize\"") && l.contains("\"outcome\":\"ok\""))
        .collect();
    assert_eq!(seizes.len(), 1, "{log}");
    assert!(seizes[0].contains("\"caller\":\"auto-failover\""));
    // The new Key Master manages the zone.
    let new = if winner == "fo-b" { &b } else { &c };
    new.ctl_ok(&["key", "add", zone, "--role", "zsk"]);
}

/// Two operators seize the same zones at the same moment, from two nodes,
/// each for its own node: for every zone exactly one wins, the other is
/// told clearly, and the epoch grows by exactly one.
async fn concurrent_seizes_have_one_winner(backend: TestStore) {
    let shared = TestToken::new("race");
    let pki = Arc::new(Pki::new());
    let store = backend.url();
    let start = |id: &str| Daemon::start_node(&shared, id, &store, &pki, &["--lease-secs", "1"]);
    let mut a = start("race-a");
    let b = Arc::new(start("race-b"));
    let c = Arc::new(start("race-c"));
    let zones: Vec<String> = (0..5).map(|i| format!("race{i}.example.")).collect();
    for z in &zones {
        a.ctl_ok(&["zone", "add", z]);
    }
    signal_pid(a.pid(), "KILL");
    let _ = a.child.take().map(|mut ch| ch.wait());
    wait_until("race-a's lease to expire", || {
        role(&b, &zones[0])["KeyMasterStatus"] == "offline"
    });
    for z in &zones {
        let seize = |d: Arc<Daemon>, to: &'static str, z: String| {
            std::thread::spawn(move || d.ctl(&["role", "seize", &z, "--to", to]))
        };
        let (tb, tc) = (
            seize(b.clone(), "race-b", z.clone()),
            seize(c.clone(), "race-c", z.clone()),
        );
        let (rb, rc) = (tb.join().unwrap(), tc.join().unwrap());
        assert!(
            rb.status.success() != rc.status.success(),
            "{z}: exactly one seize must win: {} / {}",
            String::from_utf8_lossy(&rb.stderr),
            String::from_utf8_lossy(&rc.stderr)
        );
        let (winner, loser) = if rb.status.success() {
            ("race-b", rc)
        } else {
            ("race-c", rb)
        };
        let err = String::from_utf8_lossy(&loser.stderr).to_string();
        eprintln!("{z}: {winner} won; the other was told: {}", err.trim());
        // The loser either lost the compare-and-set or came second and
        // found the winner's lease holding; both say so.
        assert!(
            err.contains("FailedPrecondition")
                && (err.contains("moved while this call ran")
                    || err.contains(&format!("{winner}, holds its lease until"))),
            "{z}: {err}"
        );
        let r = role(&b, z);
        assert_eq!(
            (r["KeyMasterServer"].as_str(), r["Epoch"].as_u64()),
            (Some(winner), Some(2)),
            "{z}"
        );
    }
    let log = b.ctl_ok(&["audit", "--json"]);
    let seizes = log
        .lines()
        .filter(|l| l.contains("\"action\":\"seize\"") && l.contains("\"outcome\":\"ok\""))
        .count();
    assert_eq!(seizes, zones.len(), "{log}");
}

/// Whether a node reaches a zone's keys is asked of its own token, not
/// guessed from the token's serial: on a shared token that lost a key,
/// no node is a candidate, and the role does not move there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_are_asked_of_each_nodes_token() {
    let token = TestToken::new("ask");
    let pki = Arc::new(Pki::new());
    let backend = TestStore::sqlite("ask");
    let store = backend.url();
    let start = |id: &str| Daemon::start_node(&token, id, &store, &pki, &[]);
    let (a, b) = (start("ask-a"), start("ask-b"));
    let zone = "ask.example.";
    a.ctl_ok(&["zone", "add", zone]);
    // Made by node a: node b's token answers for it all the same.
    let cands = a.ctl_ok(&["role", "candidates", zone]);
    assert!(cands.contains("ask-b            candidate"), "{cands}");

    let keys: serde_json::Value =
        serde_json::from_str(&a.ctl_ok(&["key", "list", zone, "--json"])).unwrap();
    let zsk = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "zsk")
        .unwrap()
        .clone();
    token.delete_private_key(zsk["id"].as_str().unwrap());
    let cands = a.ctl_ok(&["role", "candidates", zone]);
    let lost = format!("does not hold key {}", zsk["key_tag"]);
    assert!(
        cands.contains("ask-b            not a candidate: its token (serial")
            && cands.contains(&lost),
        "{cands}"
    );
    let err = a.ctl_err(&["role", "transfer", zone, "--to", "ask-b"]);
    assert!(
        err.contains("ask-b is not a candidate") && err.contains(&lost),
        "{err}"
    );
    assert_eq!(role(&b, zone)["KeyMasterServer"], "ask-a");
}

/// A forwarded call is taken only from a node, is checked against the
/// original caller's rights, and never travels a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_calls_are_checked_and_never_forwarded_again() {
    use keymaster::grpc::forward::{FORWARDED_BY, ON_BEHALF_OF};
    let token = TestToken::new("fwd");
    let pki = Arc::new(Pki::new());
    let backend = TestStore::sqlite("fwd");
    let store = backend.url();
    let start = |id: &str| Daemon::start_node(&token, id, &store, &pki, &[]);
    let (a, b) = (start("fwd-a"), start("fwd-b"));
    for d in [&a, &b] {
        d.set_access(&format!(
            "{}[[grant]]\nname = \"reader.test\"\nroles = [\"reader\"]\n",
            default_access()
        ));
    }
    let zone = "fwd.example.";
    a.ctl_ok(&["zone", "add", zone]);
    let node_cert = ClientCert {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
    };
    let add_key = |who: &str| {
        let mut r = tonic::Request::new(proto::AddKeyRequest {
            zone: zone.into(),
            role: "zsk".into(),
            activate: false,
        });
        r.metadata_mut().insert(ON_BEHALF_OF, who.parse().unwrap());
        r.metadata_mut()
            .insert(FORWARDED_BY, "test-peer".parse().unwrap());
        r
    };
    let keys_before = a.ctl_ok(&["key", "list", zone, "--json"]);

    // An admin is not a node: it may not speak for anyone.
    let e = a
        .zones_client_as(&a.admin)
        .await
        .add_key(add_key(ADMIN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("node-to-node"), "{e:?}");
    // A node speaking for a reader: the reader's rights count.
    let e = a
        .zones_client_as(&node_cert)
        .await
        .add_key(add_key("reader.test"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("reader.test via test-peer may not manage"),
        "{e:?}"
    );
    // A forwarded call reaching a node that is not the Key Master is
    // refused, not sent on again.
    let e = b
        .zones_client_as(&node_cert)
        .await
        .add_key(add_key(ADMIN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("its Key Master is fwd-a"), "{e:?}");
    assert_eq!(a.ctl_ok(&["key", "list", zone, "--json"]), keys_before);
    // At the Key Master, a node speaking for an admin is served.
    a.zones_client_as(&node_cert)
        .await
        .add_key(add_key(ADMIN))
        .await
        .unwrap();
    assert_eq!(
        last_key_change(&a, zone),
        ("fwd-a".to_string(), format!("{ADMIN} via test-peer"))
    );
}

/// A transfer is a hand-over: the Key Master is asked to release the zone
/// and must answer. A holder killed or paused is not asked in vain for
/// long: the transfer is refused at once, though its lease still holds,
/// and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_asks_the_key_master_to_release_the_zone() {
    let token = TestToken::new("release");
    let pki = Arc::new(Pki::new());
    let backend = TestStore::sqlite("release");
    let store = backend.url();
    // Leases long enough to outlive the test: only the holder's answer
    // can tell that it is gone.
    let start = |id: &str| Daemon::start_node(&token, id, &store, &pki, &["--lease-secs", "60"]);
    let (mut a, b, c) = (start("rel-a"), start("rel-b"), start("rel-c"));
    let zone = "release.example.";
    a.ctl_ok(&["zone", "add", zone]);

    // A live holder releases the zone, says so, and the role moves.
    c.ctl_ok(&["role", "transfer", zone, "--to", "rel-b"]);
    let r = role(&c, zone);
    assert_eq!(
        (r["KeyMasterServer"].as_str(), r["Epoch"].as_u64()),
        (Some("rel-b"), Some(2))
    );
    assert!(
        a.log_text().contains("released the zone for a transfer"),
        "{}",
        a.log_text()
    );
    let log = c.ctl_ok(&["audit", "--zone", zone, "--json"]);
    assert!(
        log.lines()
            .any(|l| l.contains("\"action\":\"transfer\"") && l.contains("released by rel-a")),
        "{log}"
    );

    // The holder paused (SIGSTOP): no answer, refused, nothing changed.
    backend.pause_node(b.pid());
    let began = Instant::now();
    let err = c.ctl_err(&["role", "transfer", zone, "--to", "rel-a"]);
    signal_pid(b.pid(), "CONT");
    assert!(
        err.contains("the Key Master rel-b is not reachable")
            && err.contains("seize the role if it is gone for good"),
        "{err}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(role(&c, zone)["Epoch"], 2);
    // Woken up, it is still the Key Master and manages the zone.
    b.ctl_ok(&["key", "add", zone, "--role", "zsk"]);
    assert_eq!(last_key_change(&c, zone).0, "rel-b");

    // Back to rel-a, then kill -9 it and transfer at once, while its lease
    // still holds: refused, nothing changed.
    b.ctl_ok(&["role", "transfer", zone, "--to", "rel-a"]);
    signal_pid(a.pid(), "KILL");
    let _ = a.child.take().map(|mut ch| ch.wait());
    assert_eq!(role(&c, zone)["KeyMasterStatus"], "online", "lease holds");
    let err = c.ctl_err(&["role", "transfer", zone, "--to", "rel-c"]);
    assert!(
        err.contains("the Key Master rel-a is not reachable")
            && err.contains("once its lease has run out at 20")
            && err.contains("until then a seize is refused"),
        "{err}"
    );
    // A seize meanwhile says when it will be allowed, not "transfer".
    let err = c.ctl_err(&["role", "seize", zone, "--to", "rel-c"]);
    assert!(
        err.contains("rel-a, holds its lease until 20")
            && err.contains("if it is gone for good, seize the role once the lease has run out"),
        "{err}"
    );
    let r = role(&c, zone);
    assert_eq!(
        (r["KeyMasterServer"].as_str(), r["Epoch"].as_u64()),
        (Some("rel-a"), Some(3))
    );
}

/// Every scenario above, on each store backend.
macro_rules! on_each_store {
    ($($name:ident),*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestStore::sqlite(stringify!($name))).await
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestStore::etcd(stringify!($name))).await
                }
            )*
        }
    };
}

on_each_store!(
    key_master_moves_between_nodes_and_a_stale_one_is_fenced,
    automatic_failover_moves_the_role_to_one_candidate,
    concurrent_seizes_have_one_winner
);
