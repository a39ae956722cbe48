//! The rollover engine at scale (a benchmark, not a test): N zones on one
//! node, each rolling its ZSK every few days of a manual clock, the
//! scheduler driven pass by pass. It reports what the engine costs per
//! 1,000 zones: CPU, memory, store writes and DNS queries.
//!
//!   cargo run --release --example lifecycle_scale -- [ZONES] [STORE] [DAYS]
//!   (defaults: 10000 sqlite:/tmp/km-scale.db 7; STORE may be etcd:http://…)
//!
//! The token is the in-memory fake (key generation in a real token is the
//! token's cost, measured in docs/TOKEN.md's sources, not the engine's) and
//! the DNS servers are scripted to serve every change at once, counting
//! the queries the engine would send; the store is real. Every roll is
//! checked to have finished, and its length against RFC 7583's minimum.

#![allow(clippy::disallowed_methods)] // wall-clock timing of the benchmark itself

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use domain::base::name::Name;
use keymaster::clock::ManualClock;
use keymaster::hsm::fake::FakeHsm;
use keymaster::keyset::{Inventory, KeySets};
use keymaster::lifecycle::probe::{Evidence, Probe};
use keymaster::lifecycle::runner::Scheduler;
use keymaster::lifecycle::Lifecycle;
use keymaster::mastership::gate::Gate;
use keymaster::mastership::Mastership;
use keymaster::node::Node;
use keymaster::policy::Policy;
use keymaster::store::StoreOptions;
use keymaster::zones::Zones;

const T0: u64 = 1_800_000_000;
const DAY: u64 = 86_400;
/// How far the manual clock moves between scheduler passes.
const STEP: u64 = 60;

/// Servers that serve every change at once; counts one query per server
/// asked.
#[derive(Default)]
struct Served {
    queries: AtomicU64,
}

impl Served {
    fn answer(&self, servers: &[SocketAddr]) -> Evidence {
        self.queries
            .fetch_add(servers.len() as u64, Ordering::Relaxed);
        Evidence {
            servers: servers
                .iter()
                .map(|s| (*s, Ok("serves it".to_string())))
                .collect(),
            max_ttl: 0,
            unreached: Vec::new(),
        }
    }
}

#[async_trait::async_trait]
impl Probe for Served {
    async fn dnskey_served(
        &self,
        s: &[SocketAddr],
        _: &Name<Vec<u8>>,
        _: &[Vec<u8>],
        _: &[u16],
        _: Option<u32>,
    ) -> Evidence {
        self.answer(s)
    }
    async fn signed_by(
        &self,
        s: &[SocketAddr],
        _: &Name<Vec<u8>>,
        _: u16,
        _: Option<u32>,
    ) -> Evidence {
        self.answer(s)
    }
    async fn ds_served(&self, s: &[SocketAddr], _: &Name<Vec<u8>>, _: &[Vec<u8>]) -> Evidence {
        self.answer(s)
    }
    async fn ds_absent(&self, s: &[SocketAddr], _: &Name<Vec<u8>>) -> Evidence {
        self.answer(s)
    }
    async fn servers_by_ns(
        &self,
        _: &Name<Vec<u8>>,
        _: &[SocketAddr],
        _: &[SocketAddr],
    ) -> keymaster::lifecycle::probe::Found {
        Default::default()
    }
}

/// CPU seconds (user + system) and peak RSS (MiB) of this process.
fn usage() -> (f64, f64) {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        secs(u.ru_utime) + secs(u.ru_stime),
        u.ru_maxrss as f64 / 1024.0,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let zones: u64 = args.get(1).map_or(10_000, |a| a.parse().expect("ZONES"));
    let store_url = args
        .get(2)
        .cloned()
        .unwrap_or("sqlite:/tmp/km-scale.db".into());
    let days: u64 = args.get(3).map_or(7, |a| a.parse().expect("DAYS"));
    if let Some(path) = store_url.strip_prefix("sqlite:") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    let store = keymaster::store::open(&store_url, StoreOptions::default())
        .await
        .expect("open the store");
    let clock = ManualClock::new(T0);
    let node = Arc::new(Node {
        id: "scale".into(),
        hsm: Arc::new(FakeHsm::new("scale")),
        store,
        clock: Arc::new(clock.clone()),
        spool: None,
    });
    let gate = Arc::new(Gate::new(node.clone()));
    let keysets = Arc::new(KeySets::new(node.clone(), None));
    let inventory = Arc::new(Inventory::new(node.clone(), gate.clone(), keysets.clone()));
    let mastership = Arc::new(Mastership::new(node.clone(), gate.clone(), None));
    let served = Arc::new(Served::default());
    let lifecycle = Arc::new(
        Lifecycle::new(
            node.clone(),
            gate.clone(),
            inventory.clone(),
            keysets.clone(),
            &mastership,
            None,
            Default::default(),
        )
        .with_probe(served.clone()),
    );
    let z = Zones::new(node.clone(), gate, inventory, keysets, mastership.clone());

    // A ZSK lifetime of 3 days; first rolls spread over it, as Windows'
    // InitialRolloverOffset spreads zones added together.
    let lifetime = 3 * DAY;
    let policy = |i: u64| Policy {
        propagation_time: 60,
        dnskey_ttl: 300,
        max_zone_ttl: 600,
        safety_margin: 60,
        zsk_rollover_period: lifetime as u32,
        ksk_rollover_period: 0,
        initial_rollover_offset: (i * lifetime / zones) as u32,
        publication_servers: vec!["127.0.0.1:5301".into(), "127.0.0.1:5302".into()],
        parent_servers: vec!["127.0.0.1:5300".into()],
        ..Policy::default()
    };
    let started = Instant::now();
    for i in 0..zones {
        z.add_zone(
            "bench",
            &keymaster::node::ZoneName::parse(&format!("z{i}.scale.test.")).unwrap(),
            policy(i),
        )
        .await
        .expect("add a zone");
    }
    let (cpu0, _) = usage();
    println!(
        "{zones} zones added in {:.1} s ({store_url})",
        started.elapsed().as_secs_f64()
    );

    // The lease loop's look at every zone (role changes made elsewhere),
    // every third of a lease in keymasterd; the engine follows what it
    // finds rather than listing the zones itself.
    let t = Instant::now();
    const LOOKS: u32 = 10;
    for _ in 0..LOOKS {
        mastership
            .notice_role_changes()
            .await
            .expect("look at the zones");
    }
    let look_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(LOOKS);
    let mut scheduler = Scheduler::new(lifecycle.clone());
    let t = Instant::now();
    for _ in 0..LOOKS {
        scheduler.rescan().await;
    }
    let rescan_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(LOOKS);
    scheduler.pass().await; // every zone's first look
    let ticks_first = scheduler.ticked;

    let (cpu1, _) = usage();
    let wall = Instant::now();
    let mut idle_passes = 0u64;
    let mut passes = 0u64;
    let steps = days * DAY / STEP;
    for _ in 0..steps {
        clock.advance(STEP);
        let before = scheduler.ticked;
        scheduler.pass().await;
        passes += 1;
        if scheduler.ticked == before {
            idle_passes += 1;
        }
    }
    let wall = wall.elapsed().as_secs_f64();
    let (cpu2, rss) = usage();

    let log = node.store.read_audit(None, T0 + 1).await.expect("audit");
    let writes = log.iter().filter(|e| e.action.starts_with("roll-")).count() as u64;
    let rolls = log.iter().filter(|e| e.action == "roll-start").count() as u64;
    let mut done = 0u64;
    let mut longest = 0u64;
    let mut shortest = u64::MAX;
    let mut started_at = std::collections::HashMap::new();
    for e in &log {
        match e.action.as_str() {
            "roll-start" => {
                started_at.insert(e.zone.clone(), e.time);
            }
            "roll-step" if e.detail.contains("removed: the roll") => {
                if let Some(s) = started_at.remove(&e.zone) {
                    done += 1;
                    longest = longest.max(e.time - s);
                    shortest = shortest.min(e.time - s);
                }
            }
            _ => {}
        }
    }
    let simulated = (days * DAY) as f64;
    let per_k = 1000.0 / zones as f64;
    let queries = served.queries.load(Ordering::Relaxed);
    let roll_cpu = cpu2 - cpu1;
    // RFC 7583 §3.2.1 without safety margins: Ipub = Dprp + TTLkey,
    // Iret = Dprp + TTLsig (Dsgn = 0: the zone is signed whole).
    let rfc_min = (60 + 300) + (60 + 600);
    println!("zone adds: CPU {:.1} s", cpu0);
    println!(
        "simulated {days} days in {passes} passes of {STEP} s ({idle_passes} with nothing due), wall {wall:.1} s, CPU {roll_cpu:.1} s"
    );
    println!(
        "zones looked at: {} first pass, {} after ({:.2} per zone per simulated day)",
        ticks_first,
        scheduler.ticked - ticks_first,
        (scheduler.ticked - ticks_first) as f64 / zones as f64 / days as f64
    );
    println!(
        "rolls started {rolls}, finished {done}; store writes {writes}; DNS queries {queries}"
    );
    println!(
        "per 1,000 zones: {:.4} store writes/s, {:.4} DNS queries/s; CPU {:.2} ms per roll (all passes included); \
         the lease loop's look at the zones {:.1} ms, the engine's rescan of what it holds {:.2} ms",
        writes as f64 * per_k / simulated,
        queries as f64 * per_k / simulated,
        roll_cpu * 1000.0 / done.max(1) as f64,
        look_ms * per_k,
        rescan_ms * per_k,
    );
    println!(
        "roll length {shortest}-{longest} s (simulated; pass step {STEP} s) against RFC 7583's minimum {rfc_min} s + 2 safety margins of 60 s = {} s",
        rfc_min + 120
    );
    println!("peak RSS {rss:.0} MiB");
    assert!(done > 0, "no roll finished");
    assert!(
        rolls - done <= zones,
        "a zone has more than one roll unfinished"
    );
}
