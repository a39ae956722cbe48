//! The rollover engine at work, on the Key Master only: one scheduler for
//! every zone this node holds, waking at the earliest deadline; for a zone
//! whose time has come, it asks `engine::next`, does what that says
//! (generate a successor, ask the servers, take a step) and asks again.
//! Each step passes the zone's gate (Key Master, not handed over) and is
//! one epoch-fenced store write with its audit entry and its evidence, so a
//! fenced node can never advance or remove anything, and a new Key Master
//! resumes from the stored state. Evidence is never stored as a reason to
//! skip a check: after a transfer or a seize the checks run again.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::base::iana::Rtype;
use domain::base::name::Name;

use super::dsync::NotNotified;
use super::engine::plan::{find, StepInputs};
use super::engine::{self, Check, Next, Step};
use super::probe::{DnsProbe, Evidence, Probe};
use super::push::{DsPush, Occasion};
use crate::dnssec::ds::{self, DsDigest};
use crate::dnssec::KeyRole;
use crate::error::{Error, Result};
use crate::keyset::{dnskey_of, Inventory, KeySet, KeySets};
use crate::mastership::gate::{Gate, Managed};
use crate::mastership::Mastership;
use crate::node::{Node, ZoneName};
use crate::policy::server_address;
use crate::store::schema::{KeyRecord, KeyState, ZoneRecord};

/// How often the scheduler looks for zones it newly holds (a role taken
/// over, a zone added elsewhere) besides its deadlines.
const RESCAN: Duration = Duration::from_secs(5);

/// The rollover engine of this node.
pub struct Lifecycle {
    node: Arc<Node>,
    gate: Arc<Gate>,
    inventory: Arc<Inventory>,
    keysets: Arc<KeySets>,
    /// Run with the zone as argument and the new DS set on standard input
    /// when a KSK roll hands the parent a new DS (`--ds-submit-command`).
    ds_submit_command: Option<std::path::PathBuf>,
    /// Sends the parent's primary the DS RRset by UPDATE (a zone's
    /// `ds_push`), with the node's TSIG keys.
    ds_push: DsPush,
    probe: Arc<dyn Probe>,
    /// The zones this node holds, as the Key Master role last saw them.
    held: tokio::sync::watch::Receiver<Option<Arc<HashSet<String>>>>,
    /// Zones to look at again at once, and the signal that there are some.
    woken: std::sync::Mutex<HashSet<String>>,
    wake: tokio::sync::Notify,
}

impl Lifecycle {
    pub fn new(
        node: Arc<Node>,
        gate: Arc<Gate>,
        inventory: Arc<Inventory>,
        keysets: Arc<KeySets>,
        mastership: &Mastership,
        ds_submit_command: Option<std::path::PathBuf>,
        tsig_keys: crate::tsig::TsigKeys,
    ) -> Lifecycle {
        Lifecycle {
            held: mastership.held_zones(),
            node,
            gate,
            inventory,
            keysets,
            ds_submit_command,
            ds_push: DsPush::new(tsig_keys),
            probe: Arc::new(DnsProbe),
            woken: Default::default(),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The same engine asking `probe` instead of the servers (unit tests).
    pub fn with_probe(mut self, probe: Arc<dyn Probe>) -> Lifecycle {
        self.probe = probe;
        self
    }

    pub(super) fn node(&self) -> &Node {
        &self.node
    }

    pub(super) fn gate(&self) -> &Gate {
        &self.gate
    }

    pub(super) fn dns_probe(&self) -> &dyn Probe {
        self.probe.as_ref()
    }

    pub(super) fn keysets(&self) -> &KeySets {
        &self.keysets
    }

    /// Makes the scheduler look at this zone again now (after an
    /// operator's request, a policy change, a zone added here).
    pub fn wake(&self, zone: &str) {
        self.woken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(zone.to_string());
        self.wake.notify_one();
    }

    /// The scheduler: runs for the life of the node.
    pub async fn run(self: Arc<Self>) {
        let mut scheduler = Scheduler::new(self.clone());
        let mut held = self.held.clone();
        loop {
            let next = scheduler.pass().await;
            let clock = self.node.clock.clone();
            let rescan = scheduler
                .rescan_at
                .saturating_duration_since(clock.instant());
            tokio::select! {
                _ = clock.sleep_until(next) => {}
                _ = clock.sleep(rescan) => {}
                _ = self.wake.notified() => {}
                Ok(()) = held.changed() => scheduler.rescan_at = clock.instant(),
            }
        }
    }
    /// Takes a zone as far as it can go now; returns when to look again.
    pub async fn tick(&self, zone: &ZoneName) -> Result<Option<u64>> {
        loop {
            let m = match self.gate.managed(zone).await {
                Ok(m) => m,
                // Not (or no longer) ours, or being handed over: hands off.
                Err(Error::Role(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let keys = self.node.store.list_keys(&m.key).await?;
            let now = self.node.clock.now();
            let next = engine::next(&m.zone, &keys, now);
            if let Next::Idle { .. } | Next::Wait { .. } = next {
                // A push that failed where no check follows (the old DS
                // withdrawn by a double-DS roll) goes again when due.
                self.push_ds(&m.zone, &keys, Occasion::Passing).await?;
            }
            let retry = self.ds_push.due_at(&m.key);
            let sooner = |at: Option<u64>| match (at, retry) {
                (Some(a), Some(r)) => Some(a.min(r)),
                (a, r) => a.or(r),
            };
            match next {
                Next::Idle { at } => return Ok(sooner(at)),
                Next::Wait { until, .. } => return Ok(sooner(Some(until))),
                Next::Start { role, old, manual } => {
                    let old = find(&keys, &m.key, &old)?;
                    self.start(&m, role, old, manual).await?
                }
                Next::StartAlgorithmRoll { old_ksk, old_zsk } => {
                    let old_ksk = find(&keys, &m.key, &old_ksk)?;
                    let old_zsk = find(&keys, &m.key, &old_zsk)?;
                    self.start_algorithm_roll(&m, old_ksk, old_zsk).await?
                }
                Next::Check {
                    check,
                    then,
                    status,
                } => {
                    let mut evidence = self.probe(&m.zone, &keys, &check).await?;
                    if !evidence.holds() {
                        if let Check::DsServed { .. } | Check::DsGone = check {
                            let failed = self.push_ds(&m.zone, &keys, Occasion::Waiting).await?;
                            evidence.unreached.extend(failed);
                            self.notify_parent(&m.zone);
                        }
                        self.still_waiting(&m, &evidence, status).await?;
                        return Ok(sooner(Some(now + check_interval(&m.zone))));
                    }
                    self.take(&m, &keys, then, &evidence).await?;
                }
            }
            self.keysets.changed(zone).await;
        }
    }

    /// Starts a roll: the successor generated in the token, then recorded
    /// with the roll the engine plans (`engine::plan::start`); a refused
    /// write destroys the successor again.
    async fn start(&self, m: &Managed, role: KeyRole, old: &KeyRecord, manual: bool) -> Result<()> {
        let state = engine::plan::successor_state(&m.zone.policy, role);
        let new = self
            .inventory
            .generate_key(&m.key, role, m.zone.policy.algorithm, state)
            .await?;
        // A double DS roll counts down the old DS's TTL from its start.
        let old_ds_ttl = match state {
            KeyState::DsOnly => self.old_ds_ttl(&m.zone, old).await,
            _ => 0,
        };
        let now = self.node.clock.now();
        let plan = engine::plan::start(&m.zone, old, new, manual, now, old_ds_ttl);
        self.write_start(m, plan).await
    }

    /// Starts an algorithm roll (RFC 6781 §4.1.4, conservative): a KSK
    /// and a ZSK of the policy's algorithm generated, then recorded with
    /// the roll the engine plans; both destroyed again if the write is
    /// refused.
    async fn start_algorithm_roll(
        &self,
        m: &Managed,
        old_ksk: &KeyRecord,
        old_zsk: &KeyRecord,
    ) -> Result<()> {
        let algorithm = m.zone.policy.algorithm;
        let ksk = self
            .inventory
            .generate_key(&m.key, KeyRole::Ksk, algorithm, KeyState::PreActive)
            .await?;
        let zsk = match self
            .inventory
            .generate_key(&m.key, KeyRole::Zsk, algorithm, KeyState::PreActive)
            .await
        {
            Ok(zsk) => zsk,
            Err(e) => {
                self.inventory.destroy_in_token(vec![ksk.id.clone()]).await;
                return Err(e);
            }
        };
        let now = self.node.clock.now();
        let plan = engine::plan::algorithm_start(&m.zone, old_ksk, old_zsk, ksk, zsk, now);
        self.write_start(m, plan).await
    }

    /// Writes the start of a roll; undoes the new keys if the store refused.
    async fn write_start(&self, m: &Managed, plan: engine::plan::Plan) -> Result<()> {
        let audit = self
            .node
            .draft("rollover", &m.key, plan.action, plan.what.clone());
        if let Err(e) = self
            .node
            .store
            .update_zone(&plan.zone, m.zone.epoch, &plan.put, &[], &audit)
            .await
        {
            self.inventory.undo_generated(&plan.put, &e).await;
            return Err(e.into());
        }
        tracing::info!(zone = %m.key, "{}", plan.what);
        if plan.submit_ds {
            self.submit_ds(m, &plan.zone).await?;
        }
        Ok(())
    }

    /// Asks the servers what a check needs to know.
    async fn probe(
        &self,
        zone: &ZoneRecord,
        keys: &[KeyRecord],
        check: &Check,
    ) -> Result<Evidence> {
        let apex = ZoneName::of(zone)?.apex().clone();
        let (servers, unreached) = self.zone_servers(zone, &apex).await;
        let with_unreached = |mut e: Evidence| {
            e.unreached.extend(unreached.iter().cloned());
            e
        };
        Ok(match check {
            Check::DnskeyServed | Check::SignedBy { .. } => {
                let serial = match carried_by(zone) {
                    Ok(serial) => serial,
                    Err(why) => return Ok(with_unreached(Evidence::behind_all(&servers, why))),
                };
                let served = match check {
                    Check::SignedBy { zsk } => {
                        let tag = find(keys, &zone.name, zsk)?.key_tag;
                        self.probe.signed_by(&servers, &apex, tag, serial).await
                    }
                    _ => {
                        let set = KeySet::new(zone.clone(), apex.clone(), keys.to_vec())?;
                        let ksks: Vec<u16> = set.signers(KeyRole::Ksk).map(|k| k.key_tag).collect();
                        let dnskeys = set.apex_rrset(Rtype::DNSKEY);
                        (self.probe)
                            .dnskey_served(&servers, &apex, dnskeys, &ksks, serial)
                            .await
                    }
                };
                with_unreached(served)
            }
            Check::DsGone => self.probe.ds_absent(&servers_of_parent(zone), &apex).await,
            Check::DsServed { ksk } => {
                let key = find(keys, &zone.name, ksk)?;
                let wanted = ds_of(&apex, key)?;
                self.probe
                    .ds_served(&servers_of_parent(zone), &apex, &wanted)
                    .await
            }
        })
    }

    /// The servers a zone's change must reach: those configured, and with
    /// `find_servers` every address of every name in its NS RRsets
    /// (`probe::servers_by_ns`); with what could not be found, which blocks.
    async fn zone_servers(
        &self,
        zone: &ZoneRecord,
        apex: &Name<Vec<u8>>,
    ) -> (Vec<SocketAddr>, Vec<String>) {
        let mut list = servers(&zone.policy.publication_servers);
        if !zone.policy.find_servers {
            return (list, Vec::new());
        }
        let found = self
            .probe
            .servers_by_ns(apex, &list, &servers_of_parent(zone))
            .await;
        for (a, _) in found.servers {
            if !list.contains(&a) {
                list.push(a);
            }
        }
        (list, found.unreached)
    }

    /// Records what a step still waits for, when that changed.
    async fn still_waiting(
        &self,
        m: &Managed,
        evidence: &Evidence,
        status: engine::Status,
    ) -> Result<()> {
        let behind = evidence.behind();
        if behind == m.zone.lifecycle.waiting_on {
            return Ok(());
        }
        let mut zone = m.zone.clone();
        zone.lifecycle.waiting_on = behind.clone();
        tracing::info!(zone = %m.key, status = status.as_str(), behind = ?behind, "rollover waits for the servers");
        let detail = format!("{}: waiting for {}", status.as_str(), behind.join("; "));
        let audit = self.node.draft("rollover", &m.key, "roll-wait", detail);
        Ok(self
            .node
            .store
            .update_zone(&zone, m.zone.epoch, &[], &[], &audit)
            .await?)
    }

    /// Takes a step whose interval has passed and whose evidence holds:
    /// writes what the engine plans for it (`engine::plan::step`), then
    /// destroys what it removed and hands the parent the DS if it says so.
    async fn take(
        &self,
        m: &Managed,
        keys: &[KeyRecord],
        step: Step,
        evidence: &Evidence,
    ) -> Result<()> {
        // The TTL the parent's caches count down for the old DS, asked of
        // the parent only for the step that hands it the new one.
        let old_ds_ttl = match (&step, m.zone.lifecycle.roll.as_ref()) {
            (Step::KskSubmit, Some(roll)) => {
                self.old_ds_ttl(&m.zone, find(keys, &m.zone.name, &roll.old)?)
                    .await
            }
            _ => 0,
        };
        let at = StepInputs {
            keys,
            evidence_ttl: evidence.max_ttl,
            now: self.node.clock.now(),
            old_ds_ttl,
            submits_ds: self.ds_submit_command.is_some(),
        };
        let Some(plan) = engine::plan::step(&step, &m.zone, &at)? else {
            return Ok(());
        };
        let detail = format!("{}; evidence: {}", plan.what, evidence.summary());
        let audit = self.node.draft("rollover", &m.key, plan.action, detail);
        self.node
            .store
            .update_zone(&plan.zone, m.zone.epoch, &plan.put, &plan.delete, &audit)
            .await?;
        match plan.action {
            "roll-step" => tracing::info!(zone = %m.key, "rollover: {}", plan.what),
            _ => tracing::info!(zone = %m.key, "{}", plan.what),
        }
        if !plan.delete.is_empty() {
            self.inventory.destroy_in_token(plan.delete).await;
        }
        if plan.submit_ds {
            self.submit_ds(m, &plan.zone).await?;
        }
        Ok(())
    }

    /// The old DS's TTL at the parent, as served now (or the policy's).
    async fn old_ds_ttl(&self, zone: &ZoneRecord, old: &KeyRecord) -> u32 {
        let fallback = zone.policy.parent_ds_ttl;
        let Ok(apex) = ZoneName::of(zone).map(|z| z.apex().clone()) else {
            return fallback;
        };
        let Ok(wanted) = ds_of(&apex, old) else {
            return fallback;
        };
        let seen = self
            .probe
            .ds_served(&servers_of_parent(zone), &apex, &wanted)
            .await;
        if seen.max_ttl > 0 {
            seen.max_ttl
        } else {
            fallback
        }
    }

    /// Sends the zone's DS RRset, as its key set hands the parent now, to
    /// its `ds_push` primary when the occasion calls for it; why the last
    /// push failed, if it did.
    async fn push_ds(
        &self,
        zone: &ZoneRecord,
        keys: &[KeyRecord],
        occasion: Occasion,
    ) -> Result<Option<String>> {
        if zone.policy.ds_push.is_empty() {
            return Ok(None);
        }
        let apex = ZoneName::of(zone)?.apex().clone();
        let ds = handed_ds(zone, keys)?;
        let now = self.node.clock.now();
        Ok(self.ds_push.push(zone, &apex, &ds, occasion, now).await)
    }

    /// Sends NOTIFY(CDS) to the endpoint the parent's DSYNC RRset names
    /// (`dsync`), in the background: a zone that publishes CDS/CDNSKEY,
    /// has parent servers to ask, and whose policy allows it (`cds_notify`).
    /// A hint only; what it came to is logged.
    fn notify_parent(&self, zone: &ZoneRecord) {
        let p = &zone.policy;
        let servers = servers_of_parent(zone);
        if !p.cds_notify || !(p.publish_cds || p.cds_during_rollover) || servers.is_empty() {
            return;
        }
        let Ok(name) = ZoneName::of(zone) else {
            return;
        };
        let (apex, key) = (name.apex().clone(), zone.name.clone());
        tokio::spawn(async move {
            match super::dsync::notify_parent(&apex, &servers).await {
                Ok(to) => {
                    tracing::info!(zone = %key, %to, "NOTIFY(CDS) sent to the parent's DSYNC endpoint")
                }
                Err(NotNotified::NoEndpoint(why)) => {
                    tracing::debug!(zone = %key, "no NOTIFY(CDS) to the parent: {why}")
                }
                Err(NotNotified::Failed(why)) => {
                    tracing::warn!(zone = %key, "the parent's DSYNC endpoint was not told: {why}")
                }
            }
        });
    }

    /// Hands the parent the new DS set: pushed by UPDATE (`ds_push`), and
    /// given to the DS submission command. A push that fails is sent again
    /// while the roll waits for the DS; a command that fails stops the
    /// roll with RollError (not retried blindly).
    pub(super) async fn submit_ds(&self, m: &Managed, zone: &ZoneRecord) -> Result<()> {
        let keys = self.node.store.list_keys(&m.key).await?;
        self.push_ds(zone, &keys, Occasion::Handed).await?;
        self.notify_parent(zone);
        let Some(cmd) = &self.ds_submit_command else {
            return Ok(());
        };
        let mut text = String::new();
        for ds in handed_ds(zone, &keys)? {
            crate::dnssec::record::write_record(
                &mut text,
                &zone.name,
                Rtype::DS,
                zone.policy.ds_ttl,
                &ds,
            );
        }
        let outcome = run_command(cmd, &zone.name, &text).await;
        let Err(why) = outcome else {
            tracing::info!(zone = %m.key, command = %cmd.display(), "DS submitted");
            return Ok(());
        };
        tracing::error!(zone = %m.key, error = %why, "the DS submission command failed: the roll stops (RollError)");
        let mut failed = zone.clone();
        failed.lifecycle.error = Some(format!("DS submission failed: {why}"));
        let audit = self.node.draft("rollover", &m.key, "roll-error", why);
        Ok(self
            .node
            .store
            .update_zone(&failed, m.zone.epoch, &[], &[], &audit)
            .await?)
    }
}

/// One scheduler for every zone this node holds: when each needs a look
/// next, so that a pass ticks only the zones with something due (and those
/// woken), whatever their number.
pub struct Scheduler {
    lifecycle: Arc<Lifecycle>,
    /// Zone → when it next needs a look (u64::MAX: only when woken).
    due: BTreeMap<String, u64>,
    rescan_at: std::time::Instant,
    /// Zones ticked so far (what a benchmark counts).
    pub ticked: u64,
}

impl Scheduler {
    pub fn new(lifecycle: Arc<Lifecycle>) -> Scheduler {
        let rescan_at = lifecycle.node.clock.instant();
        Scheduler {
            lifecycle,
            due: BTreeMap::new(),
            rescan_at,
            ticked: 0,
        }
    }

    /// Ticks every zone due now or woken (after the periodic look for
    /// zones newly held, when its time has come); returns the earliest
    /// deadline left.
    pub async fn pass(&mut self) -> u64 {
        let l = self.lifecycle.clone();
        if l.node.clock.instant() >= self.rescan_at {
            self.rescan().await;
            self.rescan_at = l.node.clock.instant() + RESCAN;
        }
        let woken = std::mem::take(&mut *l.woken.lock().unwrap_or_else(|p| p.into_inner()));
        for z in woken {
            self.due.insert(z, 0);
        }
        let now = l.node.clock.now();
        let ready: Vec<String> = self
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(z, _)| z.clone())
            .collect();
        for zone in ready {
            self.ticked += 1;
            let tick = match ZoneName::stored(&zone) {
                Ok(name) => l.tick(&name).await,
                Err(e) => Err(e.into()),
            };
            let at = match tick {
                Ok(at) => at.unwrap_or(u64::MAX),
                Err(e) => {
                    tracing::warn!(zone = %zone, error = %e, "rollover engine: zone not handled now");
                    now + 5
                }
            };
            self.due.insert(zone, at);
        }
        self.due.values().copied().min().unwrap_or(u64::MAX)
    }

    /// Adds the zones this node now holds (due at once) and drops the
    /// others. What it holds comes from the Key Master role's last look
    /// (the lease loop lists the zones anyway); only before its first
    /// look does the engine list them itself.
    pub async fn rescan(&mut self) {
        let l = &self.lifecycle;
        let known = l.held.borrow().clone();
        let held: Arc<HashSet<String>> = match known {
            Some(held) => held,
            None => match l.node.store.list_zones().await {
                Ok(zones) => Arc::new(
                    zones
                        .into_iter()
                        .filter(|z| z.key_master == l.node.id)
                        .map(|z| z.name)
                        .collect(),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "rollover engine: cannot list zones");
                    return;
                }
            },
        };
        self.due.retain(|z, _| held.contains(z));
        for z in held.iter() {
            if !self.due.contains_key(z) {
                self.due.insert(z.clone(), 0);
            }
        }
    }
}

/// Runs `cmd ZONE` with `input` on its standard input.
async fn run_command(
    cmd: &std::path::Path,
    zone: &str,
    input: &str,
) -> std::result::Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(cmd)
        .arg(zone)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cmd.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| format!("{} did not finish within 60 s", cmd.display()))?
        .map_err(|e| format!("{}: {e}", cmd.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} exited with {}: {}",
            cmd.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// How often a step that waits for servers asks them again.
/// The DS RRset the zone's key set as stored hands the parent (none
/// while the zone goes insecure).
fn handed_ds(zone: &ZoneRecord, keys: &[KeyRecord]) -> Result<Vec<Vec<u8>>> {
    let apex = ZoneName::of(zone)?.apex().clone();
    KeySet::new(zone.clone(), apex, keys.to_vec())?.ds(&zone.policy.ds_digests())
}

fn check_interval(zone: &ZoneRecord) -> u64 {
    u64::from(zone.policy.dnskey_ttl / 2).clamp(1, 300)
}

fn servers(list: &[String]) -> Vec<SocketAddr> {
    list.iter().filter_map(|s| server_address(s).ok()).collect()
}

/// The serial a step's change must be served at, for a zone keymaster
/// keeps signed: the version the zone signer published since the step
/// began, or a later one; an error while there is none yet, when no server
/// can serve the change. A zone signed elsewhere has no serial to ask for
/// (Ok(None)): its records alone are the evidence.
fn carried_by(zone: &ZoneRecord) -> std::result::Result<Option<u32>, &'static str> {
    let p = &zone.publishing;
    let kept = p.source_file.is_some() || p.source_primary.is_some();
    let Some(roll) = zone.lifecycle.roll.as_ref().filter(|_| kept) else {
        return Ok(None);
    };
    match p.serial.filter(|_| p.signed_at >= roll.since) {
        Some(serial) => Ok(Some(serial)),
        None => Err("the zone signer has not published the change yet"),
    }
}

pub(super) fn servers_of_parent(zone: &ZoneRecord) -> Vec<SocketAddr> {
    servers(&zone.policy.parent_servers)
}

/// The new key's DS in each digest the parent may use.
fn ds_of(apex: &Name<Vec<u8>>, key: &KeyRecord) -> Result<Vec<Vec<u8>>> {
    let dnskey = dnskey_of(key)?;
    Ok([DsDigest::Sha256, DsDigest::Sha384]
        .into_iter()
        .map(|d| ds::ds_wire(&ds::ds(apex, &dnskey, d)))
        .collect())
}

#[cfg(test)]
mod tests {
    //! The runner on a manual clock, with the token faked in memory, a
    //! real (temporary) store and scripted DNS answers: whole rolls run in
    //! milliseconds, and each wait is checked against RFC 7583's formulas.

    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::hsm::fake::FakeHsm;
    use crate::keyset::Publication;
    use crate::lifecycle::engine::{roll_status, Status};
    use crate::mastership::Mastership;
    use crate::policy::Policy;
    use crate::store::schema::{RollStep, UnsignStep};
    use crate::store::testing::TempStore;
    use crate::zones::Zones;

    const T0: u64 = 1_800_000_000;
    const H: u64 = 3600;
    const DAY: u64 = 86_400;

    /// What the servers serve: whatever keymaster publishes, once told to.
    #[derive(Default)]
    struct Servers {
        dnskey: AtomicBool,
        signed: AtomicBool,
        ds: AtomicBool,
        ds_ttl: AtomicU32,
        /// The parent has removed the zone's DS.
        ds_gone: AtomicBool,
        /// The SOA serial the servers serve.
        serial: AtomicU32,
        /// A secondary that does not answer at all.
        silent: AtomicBool,
    }

    impl Servers {
        /// Given a serial, each server counts only if it serves the
        /// zone at that serial or later too.
        fn at_serial(&self, e: Evidence, serial: Option<u32>) -> Evidence {
            let Some(n) = serial else {
                return e;
            };
            let at = self.serial.load(Ordering::SeqCst);
            let servers = e
                .servers
                .into_iter()
                .map(|(a, r)| {
                    let r = r.and_then(|r| match crate::dnssec::serial::at_least(at, n) {
                        true => Ok(format!("{r}, serial {at}")),
                        false => Err(format!("serves serial {at}, not yet {n}")),
                    });
                    (a, r)
                })
                .collect();
            Evidence { servers, ..e }
        }

        fn answer(&self, servers: &[SocketAddr], served: &AtomicBool, what: &str) -> Evidence {
            let mut e = Evidence::default();
            for (i, s) in servers.iter().enumerate() {
                let r = if i == 1 && self.silent.load(Ordering::SeqCst) {
                    Err("no answer".to_string())
                } else if served.load(Ordering::SeqCst) {
                    Ok(format!("serves {what}"))
                } else {
                    Err(format!("does not serve {what}"))
                };
                e.servers.push((*s, r));
            }
            e
        }
    }

    #[async_trait::async_trait]
    impl Probe for Servers {
        async fn dnskey_served(
            &self,
            s: &[SocketAddr],
            _: &Name<Vec<u8>>,
            _: &[Vec<u8>],
            _: &[u16],
            serial: Option<u32>,
        ) -> Evidence {
            let e = self.answer(s, &self.dnskey, "the DNSKEY RRset");
            self.at_serial(e, serial)
        }
        async fn signed_by(
            &self,
            s: &[SocketAddr],
            _: &Name<Vec<u8>>,
            _: u16,
            serial: Option<u32>,
        ) -> Evidence {
            let e = self.answer(s, &self.signed, "the new signatures");
            self.at_serial(e, serial)
        }
        async fn ds_served(&self, s: &[SocketAddr], _: &Name<Vec<u8>>, _: &[Vec<u8>]) -> Evidence {
            let mut e = self.answer(s, &self.ds, "the new DS");
            if self.ds.load(Ordering::SeqCst) {
                e.max_ttl = self.ds_ttl.load(Ordering::SeqCst);
            }
            e
        }
        async fn ds_absent(&self, s: &[SocketAddr], _: &Name<Vec<u8>>) -> Evidence {
            self.answer(s, &self.ds_gone, "no DS")
        }
        async fn servers_by_ns(
            &self,
            _: &Name<Vec<u8>>,
            _: &[SocketAddr],
            _: &[SocketAddr],
        ) -> crate::lifecycle::probe::Found {
            crate::lifecycle::probe::Found::default()
        }
    }

    struct World {
        clock: ManualClock,
        node: Arc<Node>,
        servers: Arc<Servers>,
        lifecycle: Lifecycle,
        zones: Zones,
        _store: TempStore,
    }

    const ZONE: &str = "roll.example.";

    fn zone_name() -> crate::node::ZoneName {
        crate::node::ZoneName::parse(ZONE).unwrap()
    }

    async fn world(policy: Policy) -> World {
        let store = TempStore::new().await;
        let clock = ManualClock::new(T0);
        let node = Arc::new(Node {
            id: "n1".into(),
            hsm: Arc::new(FakeHsm::new("roll")),
            store: store.store.clone(),
            clock: Arc::new(clock.clone()),
            spool: None,
        });
        let gate = Arc::new(Gate::new(node.clone()));
        let keysets = Arc::new(KeySets::new(node.clone(), None));
        let inventory = Arc::new(Inventory::new(node.clone(), gate.clone(), keysets.clone()));
        let mastership = Arc::new(Mastership::new(node.clone(), gate.clone(), None));
        let servers = Arc::new(Servers::default());
        let lifecycle = Lifecycle::new(
            node.clone(),
            gate.clone(),
            inventory.clone(),
            keysets.clone(),
            &mastership,
            None,
            Default::default(),
        )
        .with_probe(servers.clone());
        let zones = Zones::new(node.clone(), gate, inventory, keysets, mastership);
        zones.add_zone("test", &zone_name(), policy).await.unwrap();
        World {
            clock,
            node,
            servers,
            lifecycle,
            zones,
            _store: store,
        }
    }

    fn policy() -> Policy {
        Policy {
            propagation_time: H as u32,
            dnskey_ttl: H as u32,
            max_zone_ttl: DAY as u32,
            safety_margin: H as u32,
            parent_ds_ttl: 2 * H as u32,
            parent_propagation: H as u32,
            zsk_rollover_period: 30 * DAY as u32,
            ksk_rollover_period: 0,
            publication_servers: vec!["127.0.0.1:5301".into(), "127.0.0.1:5302".into()],
            parent_servers: vec!["127.0.0.1:5300".into()],
            ..Policy::default()
        }
    }

    impl World {
        async fn tick(&self) -> Option<u64> {
            self.lifecycle.tick(&zone_name()).await.unwrap()
        }

        async fn zone(&self) -> ZoneRecord {
            self.node.store.get_zone(ZONE).await.unwrap().unwrap()
        }

        async fn status(&self) -> Status {
            roll_status(&self.zone().await, self.clock.now())
        }

        /// (role, state) of every key, sorted.
        async fn keys(&self) -> Vec<KeyRecord> {
            self.node.store.list_keys(ZONE).await.unwrap()
        }

        async fn states(&self) -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = self
                .keys()
                .await
                .iter()
                .map(|k| (k.role.as_str().to_string(), k.state.as_str().to_string()))
                .collect();
            v.sort();
            v
        }

        /// The zone's (first) KSK.
        async fn ksk(&self) -> KeyRecord {
            self.keys()
                .await
                .into_iter()
                .find(|k| k.role == KeyRole::Ksk)
                .unwrap()
        }

        /// What the zone publishes and signs with now.
        async fn key_set(&self) -> KeySet {
            KeySet::new(
                self.zone().await,
                zone_name().apex().clone(),
                self.keys().await,
            )
            .unwrap()
        }

        fn set_to(&self, at: u64) {
            let now = self.clock.now();
            assert!(at >= now, "the clock does not go back");
            self.clock.advance(at - now);
        }
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[tokio::test]
    async fn unsigning_waits_for_the_ds_to_leave_the_parent_and_the_caches() {
        use crate::lifecycle::unsign::UnsignAsk;
        let w = world(policy()).await;
        w.lifecycle
            .unsign("test", &zone_name(), UnsignAsk::Start { remove_keys: true })
            .await
            .unwrap();
        // Still signed, the delete records out, no DS for the parent.
        let s = w.key_set().await;
        assert!(s.is_signed());
        assert_eq!(
            s.apex_rrset(Rtype::CDS),
            [crate::keyset::DELETE_CDS.to_vec()]
        );
        assert_eq!(
            s.apex_rrset(Rtype::CDNSKEY),
            [crate::keyset::DELETE_CDNSKEY.to_vec()]
        );
        assert!(s
            .ds(&[crate::dnssec::ds::DsDigest::Sha256])
            .unwrap()
            .is_empty());
        // The parent keeps serving the DS: nothing moves, and the ZSK roll
        // that falls due meanwhile does not start.
        w.tick().await;
        assert_eq!(w.status().await, Status::UnsignWaitingForDsRemoval);
        w.set_to(T0 + 31 * DAY);
        w.tick().await;
        let z = w.zone().await;
        assert_eq!(
            z.lifecycle.unsign.as_ref().unwrap().step,
            UnsignStep::DeletePublished
        );
        assert_eq!(
            z.lifecycle.waiting_on,
            ["127.0.0.1:5300: does not serve no DS".to_string()]
        );
        assert_eq!(w.keys().await.len(), 2);
        // The DS is gone at the parent: caches may hold it for DprpP + its
        // TTL (2 h, the policy's as none was measured) + the safety margin.
        w.servers.ds_gone.store(true, Ordering::SeqCst);
        let gone_at = w.clock.now();
        assert_eq!(w.tick().await, Some(gone_at + H + 2 * H + H));
        assert_eq!(w.status().await, Status::UnsignWaitingForDsTtl);
        assert!(w.key_set().await.is_signed());
        w.set_to(gone_at + 4 * H - 1);
        w.tick().await;
        assert_eq!(w.status().await, Status::UnsignWaitingForDsTtl);
        w.set_to(gone_at + 4 * H);
        assert_eq!(w.tick().await, None);
        assert_eq!(w.status().await, Status::Unsigned);
        let z = w.zone().await;
        assert_eq!(
            z.lifecycle.unsign.as_ref().unwrap().step,
            UnsignStep::Unsigned
        );
        assert!(w.keys().await.is_empty(), "--remove-keys: the keys went");
        let s = w.key_set().await;
        assert!(!s.is_signed() && s.apex_rrset(Rtype::DNSKEY).is_empty());
        // Signing again is not built: refused, not half done.
        let e = w
            .lifecycle
            .unsign("test", &zone_name(), UnsignAsk::Cancel)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("unsigning is at Unsigned"), "{e}");
    }

    #[tokio::test]
    async fn unsigning_keeps_the_keys_and_can_be_cancelled_before_the_end() {
        use crate::lifecycle::unsign::UnsignAsk;
        let w = world(policy()).await;
        let start = UnsignAsk::Start { remove_keys: false };
        w.lifecycle
            .unsign("test", &zone_name(), start)
            .await
            .unwrap();
        let e = w
            .lifecycle
            .unsign("test", &zone_name(), start)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("being unsigned already"), "{e}");
        w.lifecycle
            .unsign("test", &zone_name(), UnsignAsk::Cancel)
            .await
            .unwrap();
        assert!(w.zone().await.lifecycle.unsign.is_none());
        // The operator's word moves it on where no check can see the parent.
        w.lifecycle
            .unsign("test", &zone_name(), start)
            .await
            .unwrap();
        w.lifecycle
            .unsign("test", &zone_name(), UnsignAsk::DsGone)
            .await
            .unwrap();
        assert_eq!(w.status().await, Status::UnsignWaitingForDsTtl);
        w.servers.ds_gone.store(true, Ordering::SeqCst);
        w.set_to(T0 + 4 * H);
        w.tick().await;
        assert_eq!(w.status().await, Status::Unsigned);
        assert_eq!(w.keys().await.len(), 2, "the keys are kept");
    }

    #[tokio::test]
    async fn a_zsk_rolls_by_pre_publication_on_the_manual_clock() {
        let w = world(policy()).await;
        // Nothing to do before the ZSK's lifetime ends.
        assert_eq!(w.tick().await, Some(T0 + 30 * DAY));
        w.set_to(T0 + 30 * DAY);
        // The successor is published; the servers do not serve it yet.
        let again = w.tick().await.unwrap();
        assert_eq!(
            again,
            w.clock.now() + 300,
            "asked again a check interval later"
        );
        assert_eq!(w.status().await, Status::WaitingForPublication);
        assert_eq!(
            w.states().await,
            [
                pair("ksk", "active"),
                pair("zsk", "active"),
                pair("zsk", "published")
            ]
        );
        let started = w.clock.now();
        // Served an hour later: Ipub = Dprp + TTLkey + safety = 3 h from
        // the start, but at least TTLkey + safety from being seen.
        w.clock.advance(H);
        w.servers.dnskey.store(true, Ordering::SeqCst);
        let until = w.tick().await.unwrap();
        assert_eq!(until, started + 3 * H);
        assert_eq!(w.status().await, Status::ZskWaitingForDnskeyTtl);
        // A TTL raised mid-roll lengthens the wait: the larger TTL counts.
        let mut p = w.zone().await.policy;
        p.dnskey_ttl = 2 * H as u32;
        w.zones.set_policy("test", &zone_name(), p).await.unwrap();
        let until = w.tick().await.unwrap();
        assert_eq!(until, (started + 4 * H).max(started + H + 2 * H + H));
        w.set_to(until);
        // The successor signs, the predecessor is retired.
        let again = w.tick().await.unwrap();
        assert_eq!(
            w.states().await,
            [
                pair("ksk", "active"),
                pair("zsk", "active"),
                pair("zsk", "retired")
            ]
        );
        assert_eq!(again, w.clock.now() + 300);
        let retired = w.clock.now();
        // One secondary does not answer: the roll waits, for days.
        w.servers.signed.store(true, Ordering::SeqCst);
        w.servers.silent.store(true, Ordering::SeqCst);
        w.clock.advance(10 * DAY);
        w.tick().await;
        assert_eq!(w.status().await, Status::WaitingForPublication);
        let behind = w.zone().await.lifecycle.waiting_on;
        assert_eq!(behind, vec!["127.0.0.1:5302: no answer".to_string()]);
        assert_eq!(w.states().await.len(), 3, "the old ZSK stays");
        // It answers: Iret = Dprp + TTLsig + safety from the retirement,
        // at least TTLsig + safety from being seen.
        w.servers.silent.store(false, Ordering::SeqCst);
        let until = w.tick().await.unwrap();
        let seen = w.clock.now();
        assert_eq!(until, (retired + H + DAY + H).max(seen + DAY + H));
        assert_eq!(w.status().await, Status::ZskWaitingForMaxZoneTtl);
        assert_eq!(
            w.zone().await.lifecycle.last_zsk_rollover,
            0,
            "not finished yet"
        );
        w.set_to(until);
        w.tick().await;
        assert_eq!(
            w.states().await,
            [pair("ksk", "active"), pair("zsk", "active")]
        );
        assert_eq!(w.status().await, Status::NotRolling);
        let life = w.zone().await.lifecycle;
        assert_eq!((life.last_zsk_rollover, life.last_ksk_rollover), (until, 0));
        assert_eq!(
            w.node.hsm.list_private_keys().unwrap().len(),
            2,
            "the old ZSK is gone from the token"
        );
        let log = w.node.store.read_audit(Some(ZONE), 0).await.unwrap();
        let steps = log.iter().filter(|e| e.action == "roll-step").count();
        assert_eq!(steps, 4, "seen, activate, seen, remove");
    }

    #[tokio::test]
    async fn a_zsk_rolls_by_double_signature_on_the_manual_clock() {
        let w = world(Policy {
            zsk_double_signature: true,
            ..policy()
        })
        .await;
        w.set_to(T0 + 30 * DAY);
        w.tick().await;
        // The successor is published and signs at once, beside the
        // predecessor.
        let started = w.clock.now();
        assert_eq!(
            w.states().await,
            [
                pair("ksk", "active"),
                pair("zsk", "active"),
                pair("zsk", "active")
            ]
        );
        assert_eq!(w.status().await, Status::WaitingForPublication);
        // Served an hour later: Iret = Dprp + max(TTLkey, TTLsig) + safety
        // = 1 h + 1 d + 1 h from the start, and at least max(TTLkey,
        // TTLsig) + safety from being seen.
        w.clock.advance(H);
        w.servers.signed.store(true, Ordering::SeqCst);
        let until = w.tick().await.unwrap();
        let seen = w.clock.now();
        assert_eq!(until, (started + H + DAY + H).max(seen + DAY + H));
        assert_eq!(w.status().await, Status::ZskWaitingForMaxZoneTtl);
        w.set_to(until - 1);
        w.tick().await;
        assert_eq!(w.states().await.len(), 3, "not a second early");
        w.set_to(until);
        w.tick().await;
        // The predecessor goes with its signatures; the successor stays.
        assert_eq!(
            w.states().await,
            [pair("ksk", "active"), pair("zsk", "active")]
        );
        assert_eq!(w.status().await, Status::NotRolling);
        assert_eq!(w.zone().await.lifecycle.last_zsk_rollover, until);
        let log = w.node.store.read_audit(Some(ZONE), 0).await.unwrap();
        let steps: Vec<&str> = log
            .iter()
            .filter(|e| e.action == "roll-start" || e.action == "roll-step")
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(steps.len(), 3, "start, seen, remove: {steps:?}");
        assert!(steps[0].contains("double signature"), "{steps:?}");
    }

    #[tokio::test]
    async fn a_ksk_rolls_by_double_ds_on_the_manual_clock() {
        let w = world(Policy {
            zsk_rollover_period: 0,
            ksk_double_ds: true,
            ..policy()
        })
        .await;
        let ksk = w.ksk().await;
        // The parent's DS TTL is 2 h (the policy's); it does not serve
        // the new DS yet.
        w.servers.ds.store(false, Ordering::SeqCst);
        w.servers.ds_ttl.store(2 * H as u32, Ordering::SeqCst);
        w.servers.dnskey.store(true, Ordering::SeqCst);
        w.lifecycle
            .roll_key("test", &zone_name(), &ksk.id)
            .await
            .unwrap();
        // The successor is a DS only: handed to the parent beside the old
        // one, neither published in the DNSKEY RRset nor signing.
        w.tick().await;
        assert_eq!(
            w.states().await,
            [
                pair("ksk", "active"),
                pair("ksk", "ds-only"),
                pair("zsk", "active")
            ]
        );
        // Waiting for the parent, which is named (Windows' status for it).
        assert_eq!(w.status().await, Status::KskWaitingForDsUpdate);
        assert_eq!(
            w.zone().await.lifecycle.waiting_on,
            vec!["127.0.0.1:5300: does not serve the new DS".to_string()]
        );
        // The parent serves it: then DprpP + TTLds + safety from then.
        w.clock.advance(H);
        w.servers.ds.store(true, Ordering::SeqCst);
        w.tick().await;
        let seen = w.clock.now();
        let until = w.tick().await.unwrap();
        assert_eq!(
            until,
            seen + H + 2 * H + H,
            "IpubP = DprpP + TTLds + safety"
        );
        assert_eq!(w.status().await, Status::KskWaitingForDsTtl);
        w.set_to(until);
        w.tick().await;
        // The DNSKEYs swap; the old KSK's DS stays at the parent.
        assert_eq!(
            w.states().await,
            [
                pair("ksk", "active"),
                pair("ksk", "ds-only"),
                pair("zsk", "active")
            ]
        );
        let swapped = w.clock.now();
        let roll = w.zone().await.lifecycle.roll.unwrap();
        assert_eq!(roll.step, RollStep::KskSwapped);
        let active: Vec<String> = w
            .keys()
            .await
            .into_iter()
            .filter(|k| k.role == KeyRole::Ksk && k.state == KeyState::Active)
            .map(|k| k.id)
            .collect();
        assert_eq!(
            active,
            std::slice::from_ref(&roll.new),
            "the successor signs now"
        );
        // Served: the old DNSKEY leaves the caches, Dprp + TTLkey + safety.
        w.tick().await;
        let until = w.tick().await.unwrap();
        assert_eq!(until, (swapped + 3 * H).max(w.clock.now() + 2 * H));
        assert_eq!(w.status().await, Status::KskWaitingForDnskeyTtl);
        w.set_to(until);
        w.tick().await;
        assert_eq!(
            w.states().await,
            [pair("ksk", "active"), pair("zsk", "active")]
        );
        assert_eq!(w.status().await, Status::NotRolling);
        assert_eq!(w.zone().await.lifecycle.last_ksk_rollover, until);
    }

    #[tokio::test]
    async fn a_ksk_roll_waits_for_the_parent_and_its_larger_ds_ttl() {
        let w = world(Policy {
            zsk_rollover_period: 0,
            ..policy()
        })
        .await;
        let ksk = w.ksk().await;
        w.lifecycle
            .roll_key("test", &zone_name(), &ksk.id)
            .await
            .unwrap();
        // The parent serves the old DS with a TTL of 2 h.
        w.servers.ds.store(true, Ordering::SeqCst);
        w.servers.ds_ttl.store(2 * H as u32, Ordering::SeqCst);
        w.servers.dnskey.store(true, Ordering::SeqCst);
        w.tick().await;
        assert_eq!(
            w.states().await,
            [
                pair("ksk", "active"),
                pair("ksk", "incoming"),
                pair("zsk", "active")
            ]
        );
        let until = w.tick().await.unwrap();
        assert_eq!(until, T0 + 3 * H, "IpubC = DprpC + TTLkey + safety");
        assert_eq!(w.status().await, Status::KskWaitingForDnskeyTtl);
        w.set_to(until);
        // The DS swap is submitted; the parent does not publish it, for
        // as long as it likes: the old KSK stays.
        w.servers.ds.store(false, Ordering::SeqCst);
        w.tick().await;
        assert_eq!(
            w.states().await,
            [
                pair("ksk", "active"),
                pair("ksk", "leaving"),
                pair("zsk", "active")
            ]
        );
        assert_eq!(
            w.zone().await.lifecycle.roll.unwrap().ttl,
            2 * H as u32,
            "the old DS's TTL"
        );
        w.clock.advance(30 * DAY);
        w.tick().await;
        assert_eq!(w.status().await, Status::KskWaitingForDsUpdate);
        assert!(w.states().await.contains(&pair("ksk", "leaving")));
        // Published at last, with a TTL lowered to 10 min: the larger TTL,
        // that of the old DS still in caches, counts.
        w.servers.ds.store(true, Ordering::SeqCst);
        w.servers.ds_ttl.store(600, Ordering::SeqCst);
        w.tick().await;
        let seen = w.clock.now();
        let until = w.tick().await.unwrap();
        assert_eq!(until, seen + H + 2 * H + H, "DprpP + TTLds + safety");
        assert_eq!(w.status().await, Status::KskWaitingForDsTtl);
        w.set_to(until);
        w.tick().await;
        assert_eq!(
            w.states().await,
            [pair("ksk", "active"), pair("zsk", "active")]
        );
        let new = w.ksk().await;
        assert_ne!(new.id, ksk.id);
        assert_eq!(new.activated, T0 + 3 * H);
        assert_eq!(w.zone().await.lifecycle.last_ksk_rollover, until);
    }

    #[tokio::test]
    async fn an_rfc5011_ksk_roll_waits_out_both_hold_downs_and_revokes_the_old_key() {
        let w = world(Policy {
            zsk_rollover_period: 0,
            rfc5011: true,
            ..policy()
        })
        .await;
        let ksk = w.ksk().await;
        w.lifecycle
            .roll_key("test", &zone_name(), &ksk.id)
            .await
            .unwrap();
        w.servers.ds.store(true, Ordering::SeqCst);
        w.servers.dnskey.store(true, Ordering::SeqCst);
        w.tick().await;
        // mQI = MAX(1 h, MIN(15 d, TTLkey / 2 = 30 min)) = 1 h; Itrp = the
        // add hold-down (30 d) + 2 mQI; IpubC = DprpC + max(Itrp, TTLkey) +
        // the safety margin (RFC 7583 §3.3.4).
        let until = w.tick().await.unwrap();
        assert_eq!(until, T0 + H + (30 * DAY + 2 * H) + H);
        assert_eq!(w.status().await, Status::KskWaitingForDnskeyTtl);
        w.set_to(until - 1);
        w.tick().await;
        assert!(
            w.states().await.contains(&pair("ksk", "incoming")),
            "not before Itrp"
        );
        w.set_to(until);
        w.tick().await; // the DS swap
        w.tick().await; // the parent serves the new DS: seen
        let seen = w.clock.now();
        let until = w.tick().await.unwrap();
        assert_eq!(until, seen + H + 2 * H + H, "DprpP + TTLds + safety");
        w.set_to(until);
        w.tick().await;
        // Revoked, not removed: published with the REVOKE bit, signing the
        // DNSKEY RRset under its new key tag.
        assert_eq!(
            w.states().await,
            [
                pair("ksk", "active"),
                pair("ksk", "revoked"),
                pair("zsk", "active")
            ]
        );
        assert_eq!(w.status().await, Status::KskWaitingForRfc5011RemoveHoldDown);
        let set = w.key_set().await;
        let revoked = crate::keyset::dnskey_of(
            &w.keys()
                .await
                .into_iter()
                .find(|k| k.state == KeyState::Revoked)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(revoked.flags(), 385);
        assert_eq!(revoked.key_tag(), ksk.key_tag.wrapping_add(128));
        assert!(set
            .signers(KeyRole::Ksk)
            .any(|k| k.key_tag == revoked.key_tag()));
        assert!(set
            .apex_rrset(Rtype::DNSKEY)
            .contains(&crate::dnssec::ds::dnskey_wire(&revoked)));
        // The remove hold-down (30 d, above DprpC + mQI) and the safety
        // margin after every server was seen serving it.
        w.tick().await; // seen
        let seen = w.clock.now();
        let until = w.tick().await.unwrap();
        assert_eq!(until, seen + 30 * DAY + H);
        w.set_to(until);
        w.tick().await;
        assert_eq!(
            w.states().await,
            [pair("ksk", "active"), pair("zsk", "active")]
        );
        assert!(w.zone().await.lifecycle.roll.is_none());
    }

    #[tokio::test]
    async fn a_standby_ksk_is_revoked_for_the_remove_hold_down_then_removed() {
        let w = world(Policy {
            zsk_rollover_period: 0,
            ksk_rollover_period: 0,
            rfc5011: true,
            ..policy()
        })
        .await;
        let active = w.ksk().await;
        let e = w
            .lifecycle
            .revoke_key("test", &zone_name(), &active.id)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("rolled instead"), "{e}");
        let standby = w
            .lifecycle
            .inventory
            .add_key("test", &zone_name(), KeyRole::Ksk, false)
            .await
            .unwrap();
        w.lifecycle
            .revoke_key("test", &zone_name(), &standby.id)
            .await
            .unwrap();
        assert_eq!(w.status().await, Status::KskWaitingForRfc5011RemoveHoldDown);
        w.servers.dnskey.store(true, Ordering::SeqCst);
        w.tick().await;
        let seen = w.clock.now();
        assert_eq!(w.tick().await, Some(seen + 30 * DAY + H));
        w.set_to(seen + 30 * DAY + H);
        w.tick().await;
        assert_eq!(
            w.states().await,
            [pair("ksk", "active"), pair("zsk", "active")]
        );
    }

    #[tokio::test]
    async fn a_csk_rolls_as_a_double_ksk_roll_that_also_hands_over_the_signatures() {
        let w = world(Policy {
            csk: true,
            ksk_rollover_period: 365 * DAY as u32,
            zsk_rollover_period: 0,
            ..policy()
        })
        .await;
        let signers = |set: &KeySet, role| set.signers(role).map(|k| k.key_tag).collect::<Vec<_>>();
        let keys = w.keys().await;
        assert_eq!(keys.len(), 1, "one key");
        let old = keys[0].clone();
        assert!(old.csk && old.role == KeyRole::Ksk);
        let set = w.key_set().await;
        assert_eq!(signers(&set, KeyRole::Ksk), [old.key_tag]);
        assert_eq!(
            signers(&set, KeyRole::Zsk),
            [old.key_tag],
            "it signs the zone too"
        );
        // Its lifetime ends: the successor is published and signs the
        // DNSKEY RRset only.
        assert_eq!(w.tick().await, Some(T0 + 365 * DAY));
        w.set_to(T0 + 365 * DAY);
        w.servers.dnskey.store(true, Ordering::SeqCst);
        w.servers.ds.store(true, Ordering::SeqCst);
        w.tick().await;
        let new = w.keys().await.into_iter().find(|k| k.id != old.id).unwrap();
        assert!(new.csk && new.state == KeyState::Incoming);
        let set = w.key_set().await;
        assert_eq!(signers(&set, KeyRole::Zsk), [old.key_tag]);
        assert!(signers(&set, KeyRole::Ksk).contains(&new.key_tag));
        // IpubC later, the DS swap: the successor signs everything, the
        // predecessor only the DNSKEY RRset.
        let until = w.tick().await.unwrap();
        assert_eq!(until, T0 + 365 * DAY + 3 * H);
        w.set_to(until);
        w.tick().await;
        let set = w.key_set().await;
        assert_eq!(signers(&set, KeyRole::Zsk), [new.key_tag]);
        let mut ksks = signers(&set, KeyRole::Ksk);
        ksks.sort();
        let mut both = vec![old.key_tag, new.key_tag];
        both.sort();
        assert_eq!(ksks, both);
        // The DS seen, the old key waits for the larger of the DS's Iret
        // (DprpP + TTLds + safety = 4 h) and the signatures' (Dprp + max
        // zone TTL + safety = 1 d 2 h).
        w.tick().await;
        let seen = w.clock.now();
        let until = w.tick().await.unwrap();
        assert_eq!(until, seen + DAY + 2 * H);
        w.set_to(until - 1);
        w.tick().await;
        assert_eq!(w.keys().await.len(), 2);
        w.set_to(until);
        w.tick().await;
        let keys = w.keys().await;
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].id, new.id);
        assert!(keys[0].csk && keys[0].state == KeyState::Active);
    }

    #[tokio::test]
    async fn a_kept_zone_counts_as_served_only_at_the_serial_that_carries_the_change() {
        let w = world(policy()).await;
        // The zone signer keeps the zone: serial 4 was published before.
        let mut z = w.zone().await;
        z.publishing.source_file = Some("/nonexistent/zone".into());
        z.publishing.serial = Some(4);
        z.publishing.signed_at = T0;
        let audit = w.node.draft("test", ZONE, "test", String::new());
        w.node
            .store
            .update_zone(&z, z.epoch, &[], &[], &audit)
            .await
            .unwrap();
        w.servers.dnskey.store(true, Ordering::SeqCst);
        w.servers.serial.store(4, Ordering::SeqCst);
        w.set_to(T0 + 30 * DAY);
        w.tick().await; // the successor ZSK published
                        // Every server serves the DNSKEY RRset, yet no version with the
                        // change has been published: the step is not seen.
        let waiting = w.zone().await.lifecycle.waiting_on;
        assert_eq!(
            waiting,
            [
                "127.0.0.1:5301: the zone signer has not published the change yet",
                "127.0.0.1:5302: the zone signer has not published the change yet"
            ]
        );
        // Serial 5 carries it; the servers still serve 4.
        let mut z = w.zone().await;
        z.publishing.serial = Some(5);
        z.publishing.signed_at = w.clock.now();
        w.node
            .store
            .update_zone(&z, z.epoch, &[], &[], &audit)
            .await
            .unwrap();
        w.clock.advance(300);
        w.tick().await;
        assert!(w.zone().await.lifecycle.waiting_on[0].contains("serves serial 4, not yet 5"));
        assert_eq!(w.zone().await.lifecycle.roll.unwrap().seen_at, 0);
        w.servers.serial.store(5, Ordering::SeqCst);
        w.clock.advance(300);
        w.tick().await;
        assert!(
            w.zone().await.lifecycle.roll.unwrap().seen_at > 0,
            "seen at serial 5"
        );
    }

    #[tokio::test]
    async fn a_fenced_node_advances_nothing() {
        let w = world(policy()).await;
        w.set_to(T0 + 30 * DAY);
        w.tick().await;
        let before = w.states().await;
        // The role moves elsewhere (as a seize would).
        let z = w.zone().await;
        let audit = w.node.draft("test", ZONE, "seize", String::new());
        w.node
            .store
            .move_key_master(ZONE, z.epoch, "n2", w.clock.now(), false, &audit)
            .await
            .unwrap();
        w.servers.dnskey.store(true, Ordering::SeqCst);
        w.clock.advance(DAY);
        assert_eq!(w.tick().await, None, "not this node's zone any more");
        assert_eq!(w.states().await, before);
    }

    #[tokio::test]
    async fn an_algorithm_roll_signs_first_publishes_swaps_the_ds_then_withdraws() {
        use crate::dnssec::Algorithm;
        let w = world(Policy {
            zsk_rollover_period: 0,
            ..policy()
        })
        .await;
        for served in [&w.servers.dnskey, &w.servers.signed, &w.servers.ds] {
            served.store(true, Ordering::SeqCst);
        }
        w.servers.ds_ttl.store(2 * H as u32, Ordering::SeqCst);
        // What the zone publishes and signs with, by algorithm number.
        let published = || async {
            let z = w.zone().await;
            let keys = w.keys().await;
            let apex: Name<Vec<u8>> = ZONE.parse().unwrap();
            let set = KeySet::new(z, apex, keys).unwrap();
            let dnskeys = set.apex_rrset(Rtype::DNSKEY).len();
            let mut signing: Vec<u8> = set
                .signing_keys()
                .iter()
                .map(|k| k.algorithm.number())
                .collect();
            signing.sort();
            let ds: Vec<u8> = set
                .keys
                .iter()
                .filter(|k| k.role == KeyRole::Ksk && Publication::of(k.state).ds)
                .map(|k| k.algorithm.number())
                .collect();
            (dnskeys, signing, ds)
        };
        let mut p = w.zone().await.policy;
        p.algorithm = Algorithm::Ed25519;
        w.zones
            .set_policy("test", &zone_name(), p.clone())
            .await
            .unwrap();

        // 1. The new keys sign, unpublished: Dsgn + Dprp + TTLsig + safety.
        let until = w.tick().await.unwrap();
        assert_eq!(until, T0 + H + DAY + H);
        assert_eq!(w.status().await, Status::ZskWaitingForMaxZoneTtl);
        assert_eq!(published().await, (2, vec![13, 13, 15, 15], vec![13]));
        // Changing the algorithm again mid-roll is refused, naming the roll.
        let err = w
            .zones
            .set_policy("test", &zone_name(), policy())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("must end first"), "{err}");
        // 2. The new DNSKEYs published beside the old: Dprp + TTLkey + safety.
        w.set_to(until);
        let until = w.tick().await.unwrap();
        assert_eq!(until, T0 + 26 * H + 3 * H);
        assert_eq!(w.status().await, Status::KskWaitingForDnskeyTtl);
        assert_eq!(published().await, (4, vec![13, 13, 15, 15], vec![13]));
        // 3. The DS swap: the parent serves the new DS at once; then
        // DprpP + TTLds (2 h, measured) + safety.
        w.set_to(until);
        let until = w.tick().await.unwrap();
        assert_eq!(until, T0 + 29 * H + 4 * H);
        assert_eq!(w.status().await, Status::KskWaitingForDsTtl);
        assert_eq!(published().await, (4, vec![13, 13, 15, 15], vec![15]));
        // 4. The old DNSKEYs withdrawn, their keys still sign.
        w.set_to(until);
        let until = w.tick().await.unwrap();
        assert_eq!(until, T0 + 33 * H + 3 * H);
        assert_eq!(published().await, (2, vec![13, 13, 15, 15], vec![15]));
        assert_eq!(
            w.states().await,
            [
                pair("ksk", "active"),
                pair("ksk", "post-active"),
                pair("zsk", "active"),
                pair("zsk", "post-active")
            ]
        );
        // 5. The old keys go, and their signatures with them.
        w.set_to(until);
        assert_eq!(w.tick().await, None, "no lifetimes: nothing planned");
        assert_eq!(published().await, (2, vec![15, 15], vec![15]));
        assert_eq!(w.status().await, Status::NotRolling);
        assert_eq!(w.node.hsm.list_private_keys().unwrap().len(), 2);
        let life = w.zone().await.lifecycle;
        assert_eq!(
            (life.last_ksk_rollover, life.last_zsk_rollover),
            (until, until)
        );
    }
}
