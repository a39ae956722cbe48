//! Faults at random against three keymasterd nodes on one SoftHSM2 token,
//! on each store: kill -9 and SIGSTOP of nodes; on etcd (three members on
//! 127.0.0.1) also kill -9 of one member and of all of them. Operations
//! run between the faults: RRset signing on every live node, a zone signed
//! and validated by outside tools, key add and remove, role transfer, and
//! the seizes of automatic failover. After every round: no epoch ever had
//! two Key Masters and epochs never went down; every acknowledged key add
//! is listed and in the token, every acknowledged removal is gone; the
//! audit chain verifies on every node; with one etcd member down every
//! call succeeded; with etcd down every signing call succeeded on every
//! node (no node signs before a fault, and one is killed and started
//! again during the outage), every management call was refused naming
//! the store, and the spooled records of that signing are in the log once
//! etcd is back.
//!
//! `CHAOS_ROUNDS` (default 4 per store) and `CHAOS_SEED` set the length
//! and the faults; the seed is printed, so a failing run can be replayed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

const ZONE: &str = "chaos.example.";
const IDS: [&str; 3] = ["chaos-a", "chaos-b", "chaos-c"];

/// xorshift64*: enough randomness for choosing faults, replayable by seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    KillNode(usize),
    StopNode(usize),
    KillMember(usize),
    StoreDown,
}

enum Store {
    Sqlite(TempDir),
    Etcd(EtcdCluster),
}

struct Cluster {
    token: TestToken,
    pki: Arc<Pki>,
    store: Store,
    url: String,
    spools: TempDir,
    nodes: Vec<Option<Daemon>>,
}

impl Cluster {
    fn start(name: &str, store: Store) -> Cluster {
        let url = match &store {
            Store::Sqlite(dir) => format!("sqlite:{}", dir.path().join("keymaster.db").display()),
            Store::Etcd(cluster) => cluster.store(),
        };
        let mut c = Cluster {
            token: TestToken::new(name),
            pki: Arc::new(Pki::new()),
            store,
            url,
            spools: TempDir::new(&format!("{name}-spools")),
            nodes: Vec::new(),
        };
        for i in 0..IDS.len() {
            let d = c.start_node(i);
            c.nodes.push(Some(d));
        }
        c
    }

    /// Node `i`, with its state directory (last-known key sets, spool)
    /// where its last run left it.
    fn start_node(&self, i: usize) -> Daemon {
        let state = self.spools.path().join(IDS[i]);
        Daemon::start_node(
            &self.token,
            IDS[i],
            &self.url,
            &self.pki,
            &["--lease-secs", "2", "--state-dir", state.to_str().unwrap()],
        )
    }

    fn node(&self, i: usize) -> &Daemon {
        self.nodes[i].as_ref().expect("a running node")
    }

    fn etcd(&mut self) -> &mut EtcdCluster {
        match &mut self.store {
            Store::Etcd(c) => c,
            Store::Sqlite(_) => unreachable!("an etcd fault on SQLite"),
        }
    }
}

/// (Key Master, epoch) as node `d` reads it, if it answers.
fn role_of(d: &Daemon) -> Option<(String, u64)> {
    let out = d.ctl(&["role", "show", ZONE, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((
        v["KeyMasterServer"].as_str()?.to_string(),
        v["Epoch"].as_u64()?,
    ))
}

fn key_ids(d: &Daemon) -> BTreeSet<String> {
    let v: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "list", ZONE, "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect()
}

fn sign_rrset(rt: &tokio::runtime::Runtime, d: &Daemon) -> Result<(), String> {
    use std::str::FromStr;
    let owner = domain::base::Name::<Vec<u8>>::from_str("www.chaos.example.").unwrap();
    let request = keymaster::proto::SignRrsetsRequest {
        zone: ZONE.into(),
        rrsets: vec![keymaster::proto::Rrset {
            owner: owner.as_slice().to_vec(),
            rtype: 1,
            records: vec![keymaster::proto::RecordData {
                rclass: 1,
                ttl: 300,
                rdata: vec![192, 0, 2, 7],
            }],
        }],
        inception: 0,
        expiration: 0,
        include_text: false,
    };
    rt.block_on(async {
        let r = d
            .signer_client()
            .await
            .sign_rrsets(request)
            .await
            .map_err(|e| format!("{e:?}"))?;
        match r.into_inner().signatures.len() {
            1 => Ok(()),
            n => Err(format!("{n} signatures for one RRset")),
        }
    })
}

/// Records what a node says of the role, and fails if an epoch ever had
/// two Key Masters or went down.
#[derive(Default)]
struct RoleHistory {
    holders: BTreeMap<u64, String>,
    highest: u64,
}

impl RoleHistory {
    fn saw(&mut self, who: &str, (holder, epoch): &(String, u64)) {
        if let Some(h) = self.holders.get(epoch) {
            assert_eq!(h, holder, "{who}: epoch {epoch} had two Key Masters");
        }
        self.holders.insert(*epoch, holder.clone());
        self.highest = self.highest.max(*epoch);
    }
}

fn wait<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[derive(Default, Debug)]
struct Counts {
    rounds: usize,
    faults: BTreeMap<&'static str, usize>,
    rrset_signings: usize,
    zone_signings: usize,
    key_adds: usize,
    key_removes: usize,
    transfers: usize,
    failovers: usize,
    refused_in_outage: usize,
    spooled: usize,
    /// Signing calls during a whole-store outage: (asked, answered).
    outage_signings: (usize, usize),
    restarted_in_outage: usize,
}

fn chaos(name: &str, store: Store) {
    let rounds: usize = std::env::var("CHAOS_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("{name}: CHAOS_SEED={seed} CHAOS_ROUNDS={rounds}");
    let mut rng = Rng(seed);
    let etcd = matches!(store, Store::Etcd(_));
    let mut c = Cluster::start(name, store);
    let rt = tokio::runtime::Runtime::new().unwrap();
    c.node(0)
        .ctl_ok(&["zone", "add", ZONE, "--auto-failover", "2s"]);
    // Every node has read the new zone's key set (and kept it in its state
    // directory) before the first fault: a zone made a moment before the
    // store goes away cannot be known to nodes that never read it.
    let file = format!("keysets/{ZONE}.json");
    wait(
        "every node to hold the zone's key set",
        Duration::from_secs(30),
        || {
            IDS.iter()
                .all(|id| c.spools.path().join(id).join(&file).exists())
                .then_some(())
        },
    );
    let mut history = RoleHistory::default();
    let mut acked: BTreeSet<String> = key_ids(c.node(0));
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut counts = Counts::default();
    let mut signed_in_outage = 0;

    for round in 0..rounds {
        // No node signs before the fault: each must hold every zone's key
        // set from its start on, and keep it current after each change.
        let role = role_of(c.node(0)).expect("the role before the fault");
        history.saw("before", &role);
        let holder = IDS.iter().position(|id| *id == role.0).unwrap();
        let fault = match rng.below(if etcd { 5 } else { 3 }) {
            0 => Fault::None,
            1 => Fault::KillNode(rng.below(3)),
            2 => Fault::StopNode(rng.below(3)),
            3 => Fault::KillMember(rng.below(3)),
            _ => Fault::StoreDown,
        };
        let kind = match fault {
            Fault::None => "none",
            Fault::KillNode(i) if i == holder => "kill -9 the Key Master",
            Fault::KillNode(_) => "kill -9 a node",
            Fault::StopNode(i) if i == holder => "SIGSTOP the Key Master",
            Fault::StopNode(_) => "SIGSTOP a node",
            Fault::KillMember(_) => "kill -9 one etcd member",
            Fault::StoreDown => "kill -9 every etcd member",
        };
        *counts.faults.entry(kind).or_default() += 1;
        eprintln!(
            "{name} round {round}: {kind} (Key Master {}, epoch {})",
            role.0, role.1
        );
        let mut stopped_pid = None;
        match fault {
            Fault::KillNode(i) => {
                let mut d = c.nodes[i].take().unwrap();
                signal_pid(d.pid(), "KILL");
                let _ = d.child.take().map(|mut ch| ch.wait());
            }
            Fault::StopNode(i) => {
                let pid = c.node(i).pid();
                signal_pid(pid, "STOP");
                stopped_pid = Some((i, pid));
            }
            Fault::KillMember(m) => c.etcd().members[m].kill(),
            Fault::StoreDown => {
                for m in &mut c.etcd().members {
                    m.kill();
                }
                // A node killed and started again during the outage signs
                // from what its state directory holds.
                let i = rng.below(3);
                let mut d = c.nodes[i].take().unwrap();
                signal_pid(d.pid(), "KILL");
                let _ = d.child.take().map(|mut ch| ch.wait());
                c.nodes[i] = Some(c.start_node(i));
                counts.restarted_in_outage += 1;
            }
            Fault::None => {}
        }
        let live: Vec<usize> = (0..IDS.len())
            .filter(|&i| c.nodes[i].is_some() && stopped_pid.map(|(s, _)| s) != Some(i))
            .collect();
        let holder_gone = matches!(fault, Fault::KillNode(i) | Fault::StopNode(i) if i == holder);

        // Signing: on every live node, whatever the fault.
        for &i in &live {
            let signed = sign_rrset(&rt, c.node(i));
            if fault == Fault::StoreDown {
                counts.outage_signings.0 += 1;
                counts.outage_signings.1 += usize::from(signed.is_ok());
            }
            signed.unwrap_or_else(|e| panic!("round {round} ({kind}): {} signing: {e}", IDS[i]));
            counts.rrset_signings += 1;
        }
        let z = live[rng.below(live.len())];
        c.node(z)
            .sign_validated(ZONE, &sample_zone(ZONE, 10 + round % 7));
        counts.zone_signings += 1;
        if fault == Fault::StoreDown {
            signed_in_outage += 1;
        }

        // Management.
        let m = live[rng.below(live.len())];
        let d = c.node(m);
        if fault == Fault::StoreDown {
            let err = d.ctl_err(&["key", "add", ZONE, "--role", "zsk"]);
            assert!(
                err.contains("store etcd:") && err.contains("not usable"),
                "round {round}: {err}"
            );
            counts.refused_in_outage += 1;
        } else if !holder_gone {
            // Every node that can take part is up, or one etcd member is
            // down: every call succeeds. (With a node stopped, SQLite may
            // be locked by it for up to its busy timeout: tolerated.)
            let may_fail = matches!(fault, Fault::StopNode(_)) && !etcd;
            let out = d.ctl(&["key", "add", ZONE, "--role", "zsk", "--json"]);
            if out.status.success() {
                let k: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let k = if k.is_array() { k[0].clone() } else { k };
                acked.insert(k["id"].as_str().unwrap().to_string());
                counts.key_adds += 1;
            } else {
                assert!(may_fail, "round {round} ({kind}): key add: {:?}", out);
            }
            let removable: Vec<String> = acked
                .iter()
                .filter(|id| {
                    // A standby ZSK this test added (not the zone's first keys).
                    !removed.contains(*id)
                })
                .cloned()
                .collect();
            if removable.len() > 3 && rng.below(2) == 0 {
                let id = removable[rng.below(removable.len())].clone();
                let out = d.ctl(&["key", "remove", ZONE, &id]);
                if out.status.success() {
                    acked.remove(&id);
                    removed.insert(id);
                    counts.key_removes += 1;
                } else {
                    let said = String::from_utf8_lossy(&out.stderr);
                    // The zone's last active keys are kept by design.
                    assert!(
                        may_fail || said.contains("last active") || said.contains("roll"),
                        "round {round} ({kind}): key remove {id}: {said}"
                    );
                }
            }
            if matches!(fault, Fault::None | Fault::KillMember(_)) && rng.below(2) == 0 {
                let to = (holder + 1 + rng.below(2)) % 3;
                d.ctl_ok(&["role", "transfer", ZONE, "--to", IDS[to]]);
                counts.transfers += 1;
            }
        } else {
            // The Key Master is gone: automatic failover seizes the role
            // for a live node once its lease (2 s) and the 2 s grace pass.
            let seen = wait("automatic failover", Duration::from_secs(30), || {
                role_of(c.node(live[0])).filter(|(h, _)| *h != IDS[holder])
            });
            history.saw("failover", &seen);
            counts.failovers += 1;
        }
        for &i in &live {
            if fault != Fault::StoreDown {
                if let Some(r) = role_of(c.node(i)) {
                    history.saw(IDS[i], &r);
                }
            }
        }

        // The fault ends.
        match fault {
            Fault::KillNode(i) => {
                let d = c.start_node(i);
                c.nodes[i] = Some(d);
            }
            Fault::StopNode(_) => {
                let (_, pid) = stopped_pid.unwrap();
                signal_pid(pid, "CONT");
            }
            Fault::KillMember(_) | Fault::StoreDown => c.etcd().run_all(),
            Fault::None => {}
        }

        // Settled: every node names the same Key Master at the same epoch,
        // one that runs; a stopped Key Master that lost the role says so.
        let settled = wait(
            "every node to agree on the role",
            Duration::from_secs(30),
            || {
                let seen: Vec<(String, u64)> =
                    (0..IDS.len()).filter_map(|i| role_of(c.node(i))).collect();
                (seen.len() == IDS.len() && seen.iter().all(|r| *r == seen[0]))
                    .then(|| seen[0].clone())
            },
        );
        history.saw("settled", &settled);
        assert!(
            settled.1 >= role.1,
            "round {round}: epoch went from {} to {}",
            role.1,
            settled.1
        );
        // Keys: every acknowledged add is listed and in the token; every
        // acknowledged removal is gone from both.
        let listed = key_ids(c.node(0));
        let objects = c.token.list_objects().to_ascii_lowercase();
        for id in &acked {
            assert!(
                listed.contains(id),
                "round {round}: key {id} acknowledged, not listed"
            );
            assert!(
                objects.contains(id),
                "round {round}: key {id} acknowledged, not in the token"
            );
        }
        for id in &removed {
            assert!(
                !listed.contains(id),
                "round {round}: key {id} removed, still listed"
            );
        }
        // The spooled records of signing done while etcd was down are in
        // the log once it is back.
        if signed_in_outage > 0 {
            let spooled = wait(
                "the spooled records in the log",
                Duration::from_secs(30),
                || {
                    let out = c.node(0).ctl(&["audit", "--zone", ZONE, "--json"]);
                    let n = String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .filter(|l| l.contains("while the store was unreachable"))
                        .count();
                    (out.status.success() && n >= signed_in_outage).then_some(n)
                },
            );
            counts.spooled = spooled;
        }
        for (i, id) in IDS.iter().enumerate() {
            let out = c.node(i).ctl_ok(&["audit", "verify"]);
            assert!(!out.contains("TAMPERED"), "round {round}: {}: {out}", id);
        }
        counts.rounds += 1;
    }
    assert_eq!(
        counts.outage_signings.1, counts.outage_signings.0,
        "signing calls answered during whole-store outages"
    );
    eprintln!(
        "{name}: {counts:?}; epochs seen: {}, highest {}",
        history.holders.len(),
        history.highest
    );
}

#[test]
fn chaos_on_sqlite() {
    chaos(
        "chaos-sqlite",
        Store::Sqlite(TempDir::new("chaos-sqlite-store")),
    );
}

#[test]
fn chaos_on_etcd() {
    chaos("chaos-etcd", Store::Etcd(EtcdCluster::start("chaos")));
}
