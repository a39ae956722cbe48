//! The zone signer: for each zone with a source whose Key Master this node
//! is, keymaster keeps the zone signed and serves it (ARCHITECTURE.md, "The
//! zone signer"). It signs the zone when it takes the role, when the source
//! changes, when the key set or the policy changes, and before its
//! signatures come near expiry; records the new serial in the store (fenced
//! on the epoch, with an audit entry) before anyone sees it; then serves
//! it, writes the signed file and sends NOTIFY to the secondaries.

pub mod check;
pub mod decide;
pub mod dns;
pub mod file_diff;
pub mod notify;
mod record;
pub mod review;
pub mod serial;
pub mod served;
pub mod source;
pub mod version;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::base::name::Name;

use crate::dns::{soa_answer, SoaAnswer};
use crate::dnssec::reuse::Previous;
use crate::error::Result;
use crate::error::{PublishError, ZonesError};
use crate::keyset::KeySets;
use crate::mastership::gate::Gate;
use crate::node::{Node, ZoneName};
use crate::signing::zone::SourceChange;
use crate::signing::Signing;
use crate::store::schema::{Publishing, SerialPolicy, ZoneRecord};
use record::{notify_secondaries, write_atomically};
use served::Served;
use source::Source;
use version::{make_version, name_the_record, read_back};

/// How often the sources of the zones held are looked at (their size and
/// modification time), and the zones re-read from the store.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How soon a primary is asked again after a failure, and at the least.
const PRIMARY_RETRY: u64 = 5;

/// Who the zone signer's audit entries name.
const WHO: &str = "zone-signer";

/// What this node remembers of a zone it publishes; nothing a decision
/// that matters depends on (that is in the store).
#[derive(Debug, Default, Clone)]
struct Local {
    /// The epoch the zone was last published at by this node.
    epoch: u64,
    /// The source's mark (a file's size and time, a primary's serial)
    /// when last read.
    stamp: Option<String>,
    /// When to ask a primary for its serial again (its SOA REFRESH).
    next_check: u64,
    /// SHA-256 of the source text last signed.
    digest: Vec<u8>,
    /// What the zone was last signed with (`decide::SignedWith`).
    signed_with: decide::SignedWith,
    /// The last failure logged, so that a broken source is reported once.
    failure: Option<String>,
    /// The notes of the last version published (a child's DS in place of
    /// the source's), logged when they change.
    notes: Vec<String>,
    /// When the nearing expiry was last logged (Unix seconds).
    warned_at: u64,
    /// The last version published, with the policy it was signed under:
    /// its signatures are kept where they may be.
    previous: Option<(crate::policy::Policy, Arc<Previous>)>,
    /// The source's text last read (and which source): a primary is
    /// asked for the differences from it only (IXFR), a file compared
    /// with it.
    last_source: Option<(Source, Arc<source::Fetched>)>,
    /// The source last published (its digest and text): under review by
    /// hook, the data a refresh may sign again without review.
    approved: Option<(Vec<u8>, Arc<Vec<u8>>)>,
    /// The digest of source data an operator approved by hand, served by
    /// the next version without another review.
    approved_by_hand: Option<Vec<u8>>,
    /// The digest of source data its review rejected: not made again
    /// until the source changes or `zone reload` asks.
    rejected: Option<Vec<u8>>,
}

pub struct Publisher {
    node: Arc<Node>,
    gate: Arc<Gate>,
    signing: Arc<Signing>,
    keysets: Arc<KeySets>,
    held: tokio::sync::watch::Receiver<Option<Arc<HashSet<String>>>>,
    pub served: Arc<Served>,
    wake: tokio::sync::Notify,
    reloads: Mutex<HashSet<String>>,
    /// Versions that wait for review by hand, and the decisions taken
    /// on them, by zone (apart from `local`, which a look takes out).
    reviews: Mutex<HashMap<String, review::ByHand>>,
    local: Mutex<HashMap<String, Local>>,
    pub tsig_keys: crate::tsig::TsigKeys,
    /// Seconds before the earliest expiry that it is a loud error; None:
    /// an eighth of the zone's shortest validity.
    expiry_warning: Option<u64>,
    /// The node's review command (`--review-command`).
    review_command: Option<std::path::PathBuf>,
    /// Whether this node serves DNS (`--dns-listen`): without it no
    /// secondary can transfer from it and no primary can notify it.
    dns_listening: std::sync::atomic::AtomicBool,
}

/// What an operator asks for a zone's source and outputs (`zone source`);
/// empty strings are "none" (the default serial policy for that field).
#[derive(Debug, Clone, Default)]
pub struct SourceSettings {
    pub source_file: String,
    /// Or a primary serving the unsigned zone, ADDR:PORT.
    pub source_primary: String,
    pub out_file: String,
    pub secondaries: Vec<String>,
    pub serial_policy: String,
    pub tsig_key: String,
    /// The TSIG key transfers from the primary are signed with; empty: none.
    pub source_tsig_key: String,
}

/// Where a zone's publication stands, for `zone status`.
#[derive(Debug, Clone)]
pub struct ZoneStatus {
    pub zone: String,
    pub key_master: String,
    pub publishing: Publishing,
    /// Each secondary with what it answered for the zone's SOA.
    pub secondaries: Vec<(String, SoaAnswer)>,
    /// The serial that waits for review by hand on this node.
    pub pending_review: Option<u32>,
}

/// How long `zone status` waits for each secondary's answer (all are
/// asked at once): an operator's command, not a probe a roll waits on.
const STATUS_BOUND: Duration = Duration::from_millis(700);

impl Publisher {
    pub fn new(
        node: Arc<Node>,
        gate: Arc<Gate>,
        signing: Arc<Signing>,
        keysets: Arc<KeySets>,
        held: tokio::sync::watch::Receiver<Option<Arc<HashSet<String>>>>,
        tsig_keys: crate::tsig::TsigKeys,
        (expiry_warning, review_command): (Option<u64>, Option<std::path::PathBuf>),
    ) -> Publisher {
        Publisher {
            node,
            gate,
            signing,
            keysets,
            held,
            served: Arc::default(),
            wake: tokio::sync::Notify::new(),
            reloads: Mutex::default(),
            reviews: Mutex::default(),
            local: Mutex::default(),
            tsig_keys,
            expiry_warning,
            review_command,
            dns_listening: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Notes that this node serves DNS (`dns::serve` listens).
    pub fn set_dns_listening(&self) {
        self.dns_listening
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Has the signer read the zone's source again now (`zone reload`,
    /// `zone source`).
    pub fn reload(&self, zone: &ZoneName) {
        self.reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(zone.key().to_string());
        self.wake.notify_one();
    }

    /// An operator's decision on the version of `zone` that waits for
    /// review by hand: taken by the next look (at once), which audits it.
    pub fn review_version(
        &self,
        zone: &ZoneName,
        serial: u32,
        approve: bool,
        who: &str,
    ) -> Result<()> {
        let mut reviews = self.reviews.lock().unwrap_or_else(|p| p.into_inner());
        let r = reviews.entry(zone.key().to_string()).or_default();
        match &r.pending {
            Some(p) if p.serial == serial => {
                r.decision = Some((serial, approve, who.to_string()));
                drop(reviews);
                // Approved data is read again and served; a rejection is
                // only applied (and audited).
                match approve {
                    true => self.reload(zone),
                    false => self.wake.notify_one(),
                }
                Ok(())
            }
            other => Err(ZonesError::NoPendingReview {
                zone: zone.key().to_string(),
                serial,
                pending: other
                    .as_ref()
                    .map_or("none".into(), |p| format!("serial {}", p.serial)),
            }
            .into()),
        }
    }

    /// Who reviews a version under this policy: an operator, or this
    /// node's review command (an error without one).
    fn reviewer(
        &self,
        policy: &crate::policy::Policy,
    ) -> std::result::Result<review::Reviewer, String> {
        if policy.review == crate::policy::Review::Manual {
            return Ok(review::Reviewer::Hand);
        }
        match &self.review_command {
            Some(command) => Ok(review::Reviewer::Hook(review::Hook {
                command: command.clone(),
                timeout: Duration::from_secs(policy.review_timeout.into()),
            })),
            None => Err(format!(
                "the zone's versions are reviewed by hook, and node {} has no \
                 --review-command: nothing is published",
                self.node.id
            )),
        }
    }

    /// The serial that waits for review by hand, if one does.
    fn pending_review(&self, zone: &str) -> Option<u32> {
        self.reviews
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(zone)
            .and_then(|r| r.pending.as_ref().map(|p| p.serial))
    }

    /// Applies an operator's decision on a version that waited (audited,
    /// with who took it), and says loudly when one waits too long.
    async fn take_review(&self, zone: &ZoneRecord, local: &mut Local) {
        let now = self.node.clock.now();
        let timeout = u64::from(zone.policy.review_timeout);
        let decided = {
            let mut reviews = self.reviews.lock().unwrap_or_else(|p| p.into_inner());
            let Some(r) = reviews.get_mut(&zone.name) else {
                return;
            };
            if let Some(p) = r.pending.as_mut() {
                if !p.overdue_said && now > p.since + timeout {
                    p.overdue_said = true;
                    tracing::error!(zone = %zone.name, serial = p.serial, waiting_secs = now - p.since, "a version has waited for review by hand longer than the zone's review timeout; the last approved version is still served");
                }
            }
            let Some((serial, approve, who)) = r.decision.take() else {
                return;
            };
            let digest = r.pending.take().map(|p| p.digest).unwrap_or_default();
            (serial, approve, who, digest)
        };
        let (serial, approve, who, digest) = decided;
        let Ok(name) = ZoneName::of(zone) else {
            return;
        };
        let Ok(m) = self.gate.managed(&name).await else {
            return;
        };
        let mut record = m.zone.clone();
        let (action, detail) = match approve {
            true => {
                local.approved_by_hand = Some(digest);
                (
                    "review-approved",
                    format!("serial {serial} approved: its data is served"),
                )
            }
            false => {
                local.rejected = Some(digest);
                let said = format!(
                    "serial {serial} rejected by {who}; the last approved version stays served"
                );
                record.publishing.error = Some(said.clone());
                local.failure = Some(said);
                (
                    "review-rejected",
                    format!("serial {serial} rejected: its data is dropped"),
                )
            }
        };
        tracing::info!(zone = %zone.name, serial, %who, "{detail}");
        let audit = self.node.draft(&who, &m.key, action, detail);
        if let Err(e) = self
            .node
            .store
            .update_zone(&record, m.zone.epoch, &[], &[], &audit)
            .await
        {
            tracing::warn!(zone = %zone.name, error = %e, "cannot record a review decision");
        }
    }

    /// Runs the signer until the process ends.
    pub async fn run(self: Arc<Self>) {
        let mut key_changes = self.keysets.changes();
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "zone signer: cannot read the zones");
            }
            tokio::select! {
                _ = self.node.clock.sleep(LOOK_EVERY) => {}
                _ = self.wake.notified() => {}
                _ = self.served.notifies.notified() => {}
                _ = key_changes.changed() => {}
            }
        }
    }

    /// Looks at every zone this node holds that has a source, publishes
    /// those that need it, and stops serving those it no longer holds.
    pub async fn pass(&self) -> Result<()> {
        let held = self.held.borrow().clone().unwrap_or_default();
        let zones = self.node.store.list_zones().await?;
        let children = crate::node::children_by_parent(&zones);
        self.served.set_elsewhere(
            zones
                .iter()
                .filter(|z| !(held.contains(&z.name) && z.key_master == self.node.id))
                .filter(|z| Source::of(&z.publishing).is_some())
                .map(|z| (z.name.clone(), z.key_master.clone()))
                .collect(),
        );
        let mut keep = HashSet::new();
        for zone in zones.iter().cloned() {
            let ours = held.contains(&zone.name) && zone.key_master == self.node.id;
            if !ours || Source::of(&zone.publishing).is_none() {
                continue;
            }
            keep.insert(zone.name.clone());
            let kids = children
                .get(zone.name.as_str())
                .map_or(&[][..], Vec::as_slice);
            self.look_at(&zone, kids).await;
            // A version published by this look has its expiry in the store;
            // otherwise the record just read holds.
            let published = self.served.get(&zone.name).map(|z| z.serial) != zone.publishing.serial;
            let zone = match published {
                true => match self.node.store.get_zone(&zone.name).await {
                    Ok(Some(fresh)) => fresh,
                    _ => zone,
                },
                false => zone,
            };
            self.warn_if_expiring(&zone);
        }
        for name in self.served.names() {
            if !keep.contains(&name) && self.served.remove(&name) {
                tracing::info!(zone = %name, "no longer this zone's Key Master (or no source): stops serving it");
                self.forget(&name);
            }
        }
        Ok(())
    }

    /// A loud error, every ten minutes at most, while the served version's
    /// earliest signature expires within the warning margin (by default an
    /// eighth of the zone's shortest validity): signing it again has failed
    /// for a long while, and once they expire, validators see the zone as
    /// bogus.
    /// Whether it warned.
    pub(crate) fn warn_if_expiring(&self, zone: &ZoneRecord) -> bool {
        let name = &zone.name;
        let p = &zone.publishing;
        if p.serial.is_none() || p.expires == 0 {
            return false;
        }
        let now = self.node.clock.now();
        let validity = zone
            .policy
            .signature_validity
            .min(zone.policy.dnskey_signature_validity);
        let margin = self.expiry_warning.unwrap_or(u64::from(validity) / 8);
        if now + margin < p.expires {
            return false;
        }
        let mut local = self.local_of(name);
        if local.warned_at != 0 && now < local.warned_at + 600 {
            return false;
        }
        local.warned_at = now;
        self.set_local(name, local);
        let left = p.expires.saturating_sub(now);
        tracing::error!(
            zone = %name,
            serial = p.serial.unwrap_or(0),
            expires = %crate::clock::rfc3339(p.expires),
            seconds_left = left,
            last_error = p.error.as_deref().unwrap_or("none"),
            "the served zone's signatures {}; it has not been signed again in time",
            if left == 0 { "have expired: validators see it as bogus" } else { "are about to expire" }
        );
        true
    }

    fn forget(&self, zone: &str) {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(zone);
    }

    fn local_of(&self, zone: &str) -> Local {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(zone)
            .cloned()
            .unwrap_or_default()
    }

    fn set_local(&self, zone: &str, local: Local) {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(zone.to_string(), local);
    }

    /// Decides whether a zone must be signed again, and why; then does it.
    async fn look_at(&self, zone: &ZoneRecord, children: &[&ZoneRecord]) {
        // Taken out while it is looked at, so that the signer holds the
        // last version alone and can patch it in place.
        let mut local = self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&zone.name)
            .unwrap_or_default();
        self.look_at_with(zone, children, &mut local).await;
        self.set_local(&zone.name, local);
    }

    /// What marks the source's version without reading it (a file's
    /// modification, a primary's SOA serial, asked at its refresh).
    async fn stamp_of(
        &self,
        name: &str,
        source: &Source,
        apex: &Name<Vec<u8>>,
        reload: bool,
        now: u64,
        local: &mut Local,
    ) -> Option<String> {
        match source {
            Source::File(_) => source.mark(apex).await,
            Source::Primary(addr) => {
                self.served.expect_notify_from(name, addr.ip());
                if reload || now >= local.next_check || local.stamp.is_none() {
                    local.next_check = now + PRIMARY_RETRY;
                    source.mark(apex).await
                } else {
                    local.stamp.clone()
                }
            }
        }
    }

    /// The TSIG key the zone's primary is asked with, if it has one.
    fn primary_tsig(
        &self,
        zone: &ZoneRecord,
    ) -> std::result::Result<Option<domain::tsig::Key>, String> {
        let Some(name) = zone.publishing.source_tsig_key.as_deref() else {
            return Ok(None);
        };
        match self.tsig_keys.by_name(name) {
            Some(key) => Ok(Some(key)),
            None => Err(format!(
                "the TSIG key {name} for the primary is not in this node's --tsig-keys file"
            )),
        }
    }

    /// Reads the source: its text, the change from the text last read (if
    /// known) and the text's digest. What was read is kept for the next
    /// change to be told against.
    async fn fetch(
        &self,
        name: &str,
        source: &Source,
        apex: &Name<Vec<u8>>,
        key: Option<domain::tsig::Key>,
        now: u64,
        local: &mut Local,
    ) -> std::result::Result<Fetched, String> {
        let last = local
            .last_source
            .clone()
            .filter(|(from, _)| from == source)
            .map(|(_, f)| f);
        let mut f = source.fetch(apex, key.as_ref(), last.as_deref()).await?;
        if let Some(refresh) = f.refresh {
            local.next_check = now + u64::from(refresh.clamp(PRIMARY_RETRY as u32, 86_400));
        }
        let (text, change, digest) = (f.text.clone(), f.change.take(), f.digest.clone());
        if f.serial.is_some() {
            tracing::debug!(zone = %name, serial = f.serial, how = f.how, "transferred from the primary");
        }
        local.last_source = Some((source.clone(), Arc::new(f)));
        Ok((text, change, digest))
    }

    /// Looks at one zone: is it to be signed again, and why; then
    /// reads its source and publishes. Long because the reasons are read in
    /// their order of precedence, each a line.
    async fn look_at_with(&self, zone: &ZoneRecord, children: &[&ZoneRecord], local: &mut Local) {
        let name = zone.name.clone();
        let Some(source) = Source::of(&zone.publishing) else {
            return;
        };
        let Ok(zone_name) = ZoneName::of(zone) else {
            return;
        };
        let apex = zone_name.apex().clone();
        self.take_review(zone, local).await;
        let reload = self
            .reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name)
            | self.served.take_notified(&name);
        let now = self.node.clock.now();
        let stamp = self
            .stamp_of(&name, &source, &apex, reload, now, local)
            .await;
        let signed_with = match self.signed_with(zone, children).await {
            Ok(s) => s,
            Err(e) => return self.failed(zone, local, format!("{e}")).await,
        };
        let facts = decide::Facts {
            served: self.served.get(&name).is_some(),
            published_epoch: local.epoch,
            epoch: zone.epoch,
            last: &local.signed_with,
            now_with: &signed_with,
            refresh_at: zone.publishing.refresh_at,
            now,
            reload,
            stamp_changed: stamp != local.stamp,
        };
        let decide::Look::Read(trigger) = decide::look(&facts) else {
            return;
        };
        let fetched = match self.primary_tsig(zone) {
            Ok(key) => self.fetch(&name, &source, &apex, key, now, local).await,
            Err(e) => Err(e),
        };
        let (mut text, mut change, mut digest) = match fetched {
            Ok(f) => f,
            Err(e) => return self.failed(zone, local, e).await,
        };
        let failed_last = local.failure.is_some();
        let Some(trigger) = decide::after_reading(trigger, digest != local.digest, failed_last)
        else {
            local.stamp = stamp;
            return;
        };
        // Under review, a refresh signs the data last approved again,
        // without review, whatever came since (a version waiting for its
        // review never lets the served signatures expire); any other
        // version is reviewed.
        let mut review = None;
        // Data an operator just approved by hand goes out as it is.
        let by_hand = local.approved_by_hand.as_ref() == Some(&digest);
        if zone.policy.review != crate::policy::Review::None && !by_hand {
            let refreshed = local
                .approved
                .as_ref()
                .filter(|_| trigger == decide::Trigger::RefreshDue);
            match refreshed {
                Some((d, t)) => {
                    if *d != digest {
                        (digest, text, change) = (d.clone(), t.clone(), None);
                    }
                }
                None => match self.reviewer(&zone.policy) {
                    Ok(r) => review = Some(r),
                    Err(e) => {
                        local.stamp = stamp;
                        return self.failed(zone, local, e).await;
                    }
                },
            }
        }
        // A version that waits for review by hand, or whose data was
        // rejected, is not made again for nothing.
        if review.is_some() && !reload {
            let waiting = self
                .reviews
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&zone.name)
                .and_then(|r| r.pending.as_ref())
                .is_some_and(|p| p.digest == digest);
            if waiting || local.rejected.as_ref() == Some(&digest) {
                local.stamp = stamp;
                return;
            }
        }
        let change = decide::patch_by(trigger, change, &local.digest, &digest, failed_last);
        // Signatures are kept from the last version this node published at
        // this epoch under the same policy; otherwise the zone is signed whole.
        let mut previous = local
            .previous
            .take()
            .filter(|(policy, _)| local.epoch == zone.epoch && *policy == zone.policy)
            .map(|(_, p)| p);
        let published = self
            .publish(
                zone,
                (text.clone(), change),
                &trigger.reason(),
                review,
                &mut previous,
            )
            .await;
        local.previous = previous.map(|p| (zone.policy.clone(), p));
        match published {
            Ok(notes) => {
                if notes != local.notes {
                    for note in &notes {
                        tracing::info!(zone = %zone.name, "{note}");
                    }
                    local.notes = notes;
                }
                local.epoch = zone.epoch;
                local.stamp = stamp;
                local.digest = digest;
                local.signed_with = signed_with;
                local.failure = None;
                local.approved = Some((local.digest.clone(), text));
                local.approved_by_hand = None;
            }
            Err(e) => {
                if let PublishError::Review { .. } = &e {
                    local.rejected = Some(digest.clone());
                }
                if let PublishError::Pending { serial, .. } = &e {
                    let mut reviews = self.reviews.lock().unwrap_or_else(|p| p.into_inner());
                    reviews.entry(zone.name.clone()).or_default().pending = Some(review::Waiting {
                        serial: *serial,
                        digest: digest.clone(),
                        since: self.node.clock.now(),
                        overdue_said: false,
                    });
                }
                // A source that fails is not read again until it changes.
                local.stamp = stamp;
                local.digest = digest;
                self.failed(zone, local, e.to_string()).await;
            }
        }
    }

    /// What a signed version depends on beside the source, in two parts:
    /// what every RRset's signatures depend on (the ZSKs, the policy, the
    /// DS RRsets of the children keymaster manages), and what only the
    /// apex and the outputs do (the published keys, the KSKs, the
    /// outputs). A change of the first signs the zone again; of the second,
    /// the apex's chunk (`dnssec::patch`). A child's new DS reaches the
    /// parent's servers with the next version.
    async fn signed_with(
        &self,
        zone: &ZoneRecord,
        children: &[&ZoneRecord],
    ) -> Result<decide::SignedWith> {
        use crate::dnssec::KeyRole;
        use domain::base::iana::Rtype;
        let set = self.keysets.get(&ZoneName::of(zone)?).await?;
        let children = self.signing.child_ds(zone, children).await?;
        let p = &zone.publishing;
        let signers = |ksk: bool| -> Vec<u16> {
            set.signing_keys()
                .iter()
                .filter(|k| (k.role == KeyRole::Ksk) == ksk)
                .map(|k| k.key_tag)
                .collect()
        };
        Ok(decide::SignedWith {
            signing: decide::SigningInputs {
                zsks: signers(false),
                policy: zone.policy.clone(),
                children,
                extra: self.signing.extra_rrsets(zone).await?,
            },
            apex: decide::ApexInputs {
                dnskeys: set.apex_rrset(Rtype::DNSKEY).to_vec(),
                cds: set.apex_rrset(Rtype::CDS).to_vec(),
                ksks: signers(true),
                out_file: p.out_file.clone(),
                secondaries: p.secondaries.clone(),
                serial_policy: p.serial_policy,
                tsig_key: p.tsig_key.clone(),
                unsigned: set.unsigned(),
            },
        })
    }

    /// Reports a failure once (until it changes) in the log and the store;
    /// what was served stays served.
    async fn failed(&self, zone: &ZoneRecord, local: &mut Local, error: String) {
        if local.failure.as_deref() != Some(error.as_str()) {
            match self.served.get(&zone.name) {
                Some(served) => tracing::error!(
                    zone = %zone.name,
                    error = %error,
                    serial = served.serial,
                    "zone signer: the zone was not published; the last good version is still served"
                ),
                None => tracing::error!(
                    zone = %zone.name,
                    error = %error,
                    "zone signer: the zone was not published, and this node serves no version of it yet"
                ),
            }
        }
        local.failure = Some(error.clone());
        if zone.publishing.error.as_deref() == Some(error.as_str()) {
            return;
        }
        let Ok(name) = ZoneName::of(zone) else {
            return;
        };
        let Ok(m) = self.gate.managed(&name).await else {
            return;
        };
        let mut record = m.zone.clone();
        record.publishing.error = Some(error.clone());
        let audit = self
            .node
            .draft(WHO, &m.key, "publish-failed", error.clone());
        if let Err(e) = self
            .node
            .store
            .update_zone(&record, m.zone.epoch, &[], &[], &audit)
            .await
        {
            tracing::warn!(zone = %zone.name, error = %e, "cannot record the zone signer's error");
        }
    }

    /// Signs the source (or patches the last version, `previous`, by the
    /// source's known `change`), records the new serial, then serves it,
    /// writes the signed file and tells the secondaries. `previous` is the
    /// new version once it is published, and still the last otherwise.
    ///
    /// Long because making, reading back and serving a version hand
    /// the last version between them (moved, never cloned, and handed back on
    /// every failing path): kept in one place so that the hand-over is seen whole.
    async fn publish(
        &self,
        zone: &ZoneRecord,
        (text, change): (Arc<Vec<u8>>, Option<SourceChange>),
        reason: &str,
        review: Option<review::Reviewer>,
        previous: &mut Option<Arc<Previous>>,
    ) -> std::result::Result<Vec<String>, PublishError> {
        let source_error = |e: String| PublishError::Source(e);
        let name = ZoneName::of(zone).map_err(|e| source_error(e.to_string()))?;
        let (key, apex) = (name.key(), name.apex().clone());
        let mut prepared = self
            .signing
            .zone_signing(&name, 0, 0)
            .await
            .map_err(|e| source_error(e.to_string()))?;
        let now = self.node.clock.now();
        let window = decide::refresh_window(&zone.policy);
        // The version served now, for the journal: the change from it is
        // what an IXFR from its serial carries.
        let before = self
            .served
            .get(key)
            .filter(|b| previous.is_some() && Some(b.serial) == zone.publishing.serial);
        prepared.config.reuse_until = (now + window.0 + window.1) as u32;
        prepared.config.stagger = true;
        let (policy, last) = (zone.publishing.serial_policy, zone.publishing.serial);
        let source_serial = zone.publishing.source_serial;
        let secondaries =
            secondary_addresses(&zone.publishing.secondaries).map_err(PublishError::Output)?;
        let ips: Vec<IpAddr> = secondaries.iter().map(SocketAddr::ip).collect();
        let from_primary = matches!(Source::of(&zone.publishing), Some(Source::Primary(_)));
        let source = Source::of(&zone.publishing)
            .map(|s| s.describe())
            .unwrap_or_default();
        let tsig = zone.publishing.tsig_key.clone();
        let signing = self.signing.clone();
        let (config, apex2) = (prepared.clone(), apex.clone());
        let old = previous.take();
        // The chunks of the last version: those of a patched version that
        // are not among them were made for it, and are what is checked.
        let old_ids: HashSet<u32> = old
            .iter()
            .flat_map(|o| o.chunks.iter().map(|c| c.id))
            .collect();
        let (denial, unsigned) = (prepared.config.denial.clone(), prepared.config.unsigned);
        let bounds = check_bounds(&zone.policy, now);
        let zone_key = zone.name.clone();
        let (back, made) = tokio::task::spawn_blocking(move || {
            let mut next_serial =
                |source| serial::next_serial(policy, source, last, now).map_err(|e| e.to_string());
            let made = make_version(
                &signing,
                config,
                &text,
                (change, old),
                source_serial,
                &mut next_serial,
            );
            let (stats, mut signed, back, mut changes) = match made {
                Ok(m) => m,
                Err((back, e)) if from_primary => {
                    let e = format!("{source}: {}", name_the_record(&text, &e));
                    return (back, Err(PublishError::Source(e)));
                }
                Err((back, e)) => {
                    return (back, Err(PublishError::Source(format!("{source}: {e}"))))
                }
            };
            let clock = signing.clock();
            let made_ids: Option<HashSet<u32>> = stats.patched.then(|| {
                signed
                    .chunks
                    .iter()
                    .map(|c| c.id)
                    .filter(|id| !old_ids.contains(id))
                    .collect()
            });
            let fault = check::fault();
            if let Some(f) = fault {
                if let Some(at) = check::inject(&mut signed, made_ids.as_ref(), f) {
                    tracing::warn!(zone = %apex2, owner = %at, fault = ?f, "test fault put in the version");
                    // Served whole, from the text with the fault in it.
                    changes = None;
                }
            }
            if !unsigned && !fault.is_some_and(|f| f.unchecked) {
                let began = clock.instant();
                match check::check_version(&apex2, &signed, made_ids.as_ref(), &denial, bounds) {
                    Ok(c) => tracing::debug!(
                        zone = %apex2,
                        chunks = c.chunks,
                        rrsigs = c.rrsigs,
                        check_s = clock.instant().duration_since(began).as_secs_f64(),
                        "zone signer: the version passed its check"
                    ),
                    Err(failure) => {
                        crate::metrics::version_refused(&zone_key);
                        return (back, Err(PublishError::Bogus(failure.to_string())));
                    }
                }
            }
            let reviewed = review.is_some();
            let serial = stats.serial_out;
            if let Some(review::Reviewer::Hand) = &review {
                let files = match review::hold(&zone_key, serial, &signed, &text) {
                    Ok(path) => path.display().to_string(),
                    Err(e) => format!("not written: {e}"),
                };
                return (back, Err(PublishError::Pending { serial, files }));
            }
            if let Some(review::Reviewer::Hook(hook)) = &review {
                if let Err(n) = review::review(hook, &zone_key, serial, &signed, &text) {
                    if matches!(n, review::NotApproved::TimedOut(_)) {
                        tracing::error!(zone = %zone_key, serial, "{n}");
                    }
                    let why = n.to_string();
                    return (back, Err(PublishError::Review { serial, why }));
                }
                tracing::info!(zone = %zone_key, serial, "the review hook approved the version");
            }
            let signed_at = clock.instant();
            let journalled = changes.is_some() && before.is_some();
            let parsed = read_back(&apex2, &stats, &signed, journalled, ips, tsig);
            if changes.is_none() && before.is_some() {
                tracing::info!(
                    zone = %apex2,
                    "the change is over an eighth of the zone (and 1 MiB): not journalled, a \
                     secondary behind transfers the whole zone"
                );
            }
            let checked_at = clock.instant();
            let parsed = parsed.and_then(|mut parsed| {
                if let (Some(before), Some(changes)) = (before, changes) {
                    parsed.follow(&apex2, &before, &changes.gone, &changes.came)?;
                }
                Ok(parsed)
            });
            tracing::debug!(
                read_back_s = checked_at.duration_since(signed_at).as_secs_f64(),
                journal_s = clock.instant().duration_since(checked_at).as_secs_f64(),
                "zone signer: publication phases"
            );
            match parsed {
                Ok(parsed) => (back, Ok((stats, signed, parsed, reviewed))),
                Err(e) => (back, Err(PublishError::Serving(e))),
            }
        })
        .await
        .map_err(|e| PublishError::Source(format!("the signing task failed: {e}")))?;
        let (stats, signed, zone_signed, reviewed) = match made {
            Ok(m) => m,
            Err(e) => {
                *previous = back.restore(None);
                return Err(e);
            }
        };
        let result = self
            .record_and_serve(
                zone,
                &match reviewed {
                    true => format!("{reason}; approved by the review hook"),
                    false => reason.to_string(),
                },
                &prepared,
                &stats,
                &signed,
                zone_signed,
                window,
            )
            .await;
        if let Err(e) = result {
            *previous = back.restore(Some(signed));
            return Err(e);
        }
        *previous = Some(signed.clone());
        if let Some(out) = &zone.publishing.out_file {
            write_atomically(out, signed.chunks.clone())
                .await
                .map_err(PublishError::Output)?;
        }
        notify_secondaries(key, &apex, stats.serial_out, secondaries);
        Ok(stats.notes())
    }

    /// The TSIG key named for a zone's transfers, as this node's
    /// --tsig-keys file names it; none if none is named.
    fn known_tsig_key(&self, zone: &str, given: &str) -> Result<Option<String>> {
        if given.is_empty() {
            return Ok(None);
        }
        let name = crate::tsig::name_text(given);
        if !self.tsig_keys.names().contains(&name) {
            return Err(ZonesError::TsigKey {
                zone: zone.to_string(),
                key: crate::text::shown(given),
                node: self.node.id.clone(),
            }
            .into());
        }
        Ok(Some(name))
    }

    /// Whether a zone's asked source can be used here: one source, the
    /// secondaries and the primary as addresses, TSIG keys this node
    /// knows, a DNS listener for them, a source file absolute and
    /// readable. Returns the names of the TSIG keys for the secondaries
    /// and for the primary.
    async fn checked_source(
        &self,
        key: &str,
        asked: &SourceSettings,
    ) -> Result<(Option<String>, Option<String>)> {
        let (zone, source_file) = (key.to_string(), asked.source_file.as_str());
        let source_primary = asked.source_primary.as_str();
        if let Some(s) = asked
            .secondaries
            .iter()
            .find(|s| s.parse::<SocketAddr>().is_err())
        {
            let given = crate::text::shown(s);
            return Err(ZonesError::Secondary { zone, given }.into());
        }
        let tsig_key = self.known_tsig_key(key, &asked.tsig_key)?;
        let source_tsig_key = self.known_tsig_key(key, &asked.source_tsig_key)?;
        if source_tsig_key.is_some() && source_primary.is_empty() {
            let given = "none (a TSIG key for the primary needs --primary)".into();
            return Err(ZonesError::Primary { zone, given }.into());
        }
        if !source_file.is_empty() && !source_primary.is_empty() {
            return Err(ZonesError::TwoSources { zone }.into());
        }
        let listening = self.dns_listening.load(std::sync::atomic::Ordering::SeqCst);
        if (!asked.secondaries.is_empty() || !source_primary.is_empty()) && !listening {
            let node = self.node.id.clone();
            return Err(ZonesError::NoDnsListener { zone, node }.into());
        }
        if !source_primary.is_empty() && source_primary.parse::<SocketAddr>().is_err() {
            let given = crate::text::shown(source_primary);
            return Err(ZonesError::Primary { zone, given }.into());
        }
        if !source_file.is_empty() {
            let path = crate::text::shown(source_file);
            let bad = |reason: String| ZonesError::Source { zone, path, reason };
            if !source_file.starts_with('/') {
                return Err(bad("the path must be absolute".into()).into());
            }
            if let Err(e) = tokio::fs::File::open(source_file).await {
                return Err(bad(e.to_string()).into());
            }
        }
        Ok((tsig_key, source_tsig_key))
    }

    /// Sets where a zone comes from and where it goes (a management call,
    /// on the Key Master): the source must be readable here, the
    /// secondaries addresses. An empty source stops keeping it signed.
    pub async fn set_source(
        &self,
        who: &str,
        zone: &ZoneName,
        asked: &SourceSettings,
    ) -> Result<()> {
        let SourceSettings {
            source_file,
            source_primary,
            out_file,
            secondaries,
            serial_policy,
            // Checked with the rest of the source.
            tsig_key: _,
            source_tsig_key: _,
        } = asked;
        let (source_file, out_file) = (source_file.as_str(), out_file.as_str());
        let serial_policy = serial_policy.as_str();
        let m = self.gate.managed(zone).await?;
        let key = m.key.clone();
        let serial_policy = serial_policy_of(serial_policy)?;
        let (tsig_key, source_tsig_key) = self.checked_source(&key, asked).await?;
        let mut record = m.zone.clone();
        let p = &mut record.publishing;
        p.source_file = (!source_file.is_empty()).then(|| source_file.to_string());
        p.source_primary = (!source_primary.is_empty()).then(|| source_primary.clone());
        p.out_file = (!out_file.is_empty()).then(|| out_file.to_string());
        p.secondaries = secondaries.to_vec();
        p.serial_policy = serial_policy;
        p.tsig_key = tsig_key;
        p.source_tsig_key = source_tsig_key;
        p.error = None;
        let detail = match Source::of(p) {
            Some(f) => format!(
                "{}, signed file {}, secondaries [{}], TSIG key {}, serial {:?}",
                f.describe(),
                p.out_file.as_deref().unwrap_or("none"),
                p.secondaries.join(", "),
                p.tsig_key.as_deref().unwrap_or("none"),
                p.serial_policy
            ),
            None => "no source: the zone is no longer kept signed".to_string(),
        };
        let audit = self.node.draft(who, &key, "set-source", detail);
        self.node
            .store
            .update_zone(&record, m.zone.epoch, &[], &[], &audit)
            .await?;
        drop(m);
        self.reload(zone);
        Ok(())
    }

    /// The delegations of the version of `zone` this node serves (none if
    /// it serves none: only the Key Master does).
    pub fn delegations(&self, zone: &ZoneName) -> Vec<served::Delegated> {
        self.served
            .get(zone.key())
            .map(|z| z.delegations())
            .unwrap_or_default()
    }

    /// Waits, at most `within`, until the zone signer has made something
    /// of a source just set (`zone source`): a version published since
    /// `since` (Unix seconds), or an error recorded; so that the answer
    /// says what came of it rather than "not published yet".
    pub async fn settled(&self, zone: &ZoneName, since: u64, within: Duration) {
        let began = self.node.clock.instant();
        while self.node.clock.instant().duration_since(began) < within {
            match self.node.zone(zone).await {
                Ok(r)
                    if r.zone.publishing.signed_at >= since
                        && r.zone.publishing.serial.is_some() =>
                {
                    return
                }
                Ok(r) if r.zone.publishing.error.is_some() => return,
                Ok(r) if Source::of(&r.zone.publishing).is_none() => return,
                Ok(_) => {}
                Err(_) => return,
            }
            self.node.clock.sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where a zone's publication stands; asks each secondary for its
    /// serial. Any node answers from the store.
    pub async fn status(&self, zone: &ZoneName) -> Result<ZoneStatus> {
        let r = self.node.zone(zone).await?;
        let mut asked = tokio::task::JoinSet::new();
        for (i, s) in r.zone.publishing.secondaries.iter().enumerate() {
            let (s, apex) = (s.clone(), r.apex.clone());
            asked.spawn(async move {
                let answer = match s.parse::<SocketAddr>() {
                    Ok(addr) => soa_answer(addr, &apex, STATUS_BOUND).await,
                    Err(e) => SoaAnswer::NoAnswer(format!("not an address: {e}")),
                };
                (i, s, answer)
            });
        }
        let mut secondaries: Vec<(usize, String, SoaAnswer)> = asked.join_all().await;
        secondaries.sort_by_key(|(i, ..)| *i);
        let secondaries = secondaries.into_iter().map(|(_, s, a)| (s, a)).collect();
        Ok(ZoneStatus {
            pending_review: self.pending_review(&r.key),
            zone: r.key,
            key_master: r.zone.key_master.clone(),
            publishing: r.zone.publishing.clone(),
            secondaries,
        })
    }
}

/// A serial policy by its name (`zone source --serial`).
fn serial_policy_of(name: &str) -> Result<SerialPolicy> {
    Ok(match name {
        "" | "increment" => SerialPolicy::Increment,
        "keep" => SerialPolicy::Keep,
        "unixtime" => SerialPolicy::UnixTime,
        "dateserial" => SerialPolicy::DateSerial,
        other => return Err(ZonesError::SerialPolicy(crate::text::shown(other)).into()),
    })
}

/// A source as read: its text, the change from the text last read (from
/// that text's digest) where known, and its own digest.
type Fetched = (Arc<Vec<u8>>, Option<(Vec<u8>, SourceChange)>, Vec<u8>);

/// The secondaries' addresses; a bad one is named.
fn secondary_addresses(list: &[String]) -> std::result::Result<Vec<SocketAddr>, String> {
    list.iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .map_err(|e| format!("secondary {s:?} is not ADDR:PORT: {e}"))
        })
        .collect()
}

/// What a version's signatures are held to: valid now, and for no longer
/// than the policy's longest validity, its inception offset and the
/// stagger's tenth (a signature kept from an earlier version was made
/// under the same bound).
fn check_bounds(policy: &crate::policy::Policy, now: u64) -> crate::dnssec::check::Bounds {
    let longest = policy
        .signature_validity
        .max(policy.dnskey_signature_validity);
    crate::dnssec::check::Bounds {
        now,
        max_window: longest
            .saturating_add(policy.signature_inception_offset)
            .saturating_add(longest / 10),
    }
}
