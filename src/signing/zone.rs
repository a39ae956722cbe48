//! Whole-zone signing: the zone's key set and validity prepared from the
//! store, the master file read and planned by the DNSSEC code, and the
//! batches signed on the token's pool and emitted in order.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use domain::base::iana::Rtype;
use domain::base::name::Name;

use super::validity::{dnskey_validity_within, validity_for, SigKind};
use super::{Cancel, KeyWorker, Signing};
use crate::dnssec::patch;
use crate::dnssec::reuse::{Chunk, Group, GroupKey, Groups, Previous, Undo};
use crate::dnssec::zone::{
    self as zonesign, ChildDs, ExtraRrset, Rendered, ZoneError, ZonePlan, ZoneSignConfig, ZoneStats,
};
use crate::dnssec::KeyRole;
use crate::error::{Error, Result, SigningError};
use crate::node::ZoneName;
use crate::store::schema::ZoneRecord;

/// What changed from the last version (its lines as they were, and the
/// new lines), for the IXFR journal; kept only while it is at most an
/// eighth of the last version's text, or 1 MiB. A larger change (a
/// refresh round of a large zone) is not journalled: a secondary then
/// transfers the whole zone, which costs it little more, and the signer
/// does not hold the change twice over (as text, then as records).
#[derive(Debug, Default)]
pub struct Changes {
    pub gone: Vec<u8>,
    pub came: Vec<u8>,
    cap: usize,
    over: bool,
}

impl Changes {
    fn within(last: &Previous) -> Changes {
        Changes {
            cap: (last.chunks.iter().map(|c| c.text.len()).sum::<usize>() / 8).max(1 << 20),
            ..Changes::default()
        }
    }

    fn add(&mut self, gone: &[u8], came: &[u8]) {
        if self.over {
            return;
        }
        if self.gone.len() + self.came.len() + gone.len() + came.len() > self.cap {
            *self = Changes {
                over: true,
                ..Changes::default()
            };
            return;
        }
        self.gone.extend_from_slice(gone);
        self.came.extend_from_slice(came);
    }

    /// The change, if it is small enough to journal.
    fn journal(self) -> Option<Changes> {
        (!self.over).then_some(self)
    }
}

/// A known change of a zone's source (what an IXFR from the primary
/// brought): the records deleted and added, as master-file text with
/// absolute names; the new apex SOA among the added, the old among the
/// deleted.
#[derive(Debug, Default, Clone)]
pub struct SourceChange {
    pub deleted: Vec<u8>,
    pub added: Vec<u8>,
}

/// A prepared whole-zone signing.
#[derive(Debug, Clone)]
pub struct ZoneSigning {
    /// The zone's name as stored.
    pub zone: String,
    pub config: ZoneSignConfig,
    /// What the KSK signs in it, for the audit entry.
    pub ksk_use: String,
}

/// A rendered batch as a chunk of a version (its groups taken already).
fn chunk_of(id: u32, rendered: Rendered) -> Arc<Chunk> {
    Arc::new(Chunk {
        id,
        text: rendered.text.into_bytes(),
        first: rendered.first,
        records: rendered.records,
        rrsigs: rendered.rrsigs,
        expires: rendered.expires,
        chain: rendered.chain,
    })
}

/// The DSYNC RRset a parent announces its endpoint for its children's
/// NOTIFY(CDS) and NOTIFY(CDNSKEY) with (RFC 9859), at `_dsync.ZONE`, with
/// the DNSKEY TTL; none unless the policy names an endpoint.
fn dsync_rrset(apex: &Name<Vec<u8>>, policy: &crate::policy::Policy) -> Vec<ExtraRrset> {
    use crate::dnssec::dsync::{rdata, Endpoint, SCHEME_NOTIFY};
    let Ok(Some((target, port))) = policy.dsync_endpoint() else {
        return Vec::new();
    };
    let Ok(owner) = format!("_dsync.{}.", apex.to_string().trim_end_matches('.')).parse() else {
        return Vec::new();
    };
    let rdatas = [Rtype::CDS, Rtype::CDNSKEY]
        .into_iter()
        .map(|rrtype| {
            rdata(&Endpoint {
                rrtype,
                scheme: SCHEME_NOTIFY,
                port,
                target: target.clone(),
            })
        })
        .collect();
    vec![ExtraRrset {
        owner,
        rtype: Rtype::DSYNC,
        ttl: policy.dnskey_ttl,
        rdatas,
    }]
}

impl Signing {
    /// Everything needed to sign a whole zone, read from the store.
    pub async fn zone_signing(
        &self,
        zone: &ZoneName,
        inception: u32,
        expiration: u32,
    ) -> Result<ZoneSigning> {
        let set = self.keysets.fresh(zone).await?;
        let child_ds = self.children_now(&set.zone).await?;
        let policy = &set.zone.policy;
        let now = self.node.clock.now();
        let validity = validity_for(policy, now, inception, expiration, SigKind::Zone)
            .map_err(SigningError::from)?;
        let dnskey_validity =
            dnskey_validity_within(policy, now, validity).map_err(SigningError::from)?;
        let ksks: Vec<String> = set
            .signers(KeyRole::Ksk)
            .map(|k| k.key_tag.to_string())
            .collect();
        let cds = !set.apex_rrset(Rtype::CDS).is_empty();
        let ksk_use = format!(
            "KSK {} signed the DNSKEY{} RRset{}",
            ksks.join(", "),
            if cds { ", CDS and CDNSKEY" } else { "" },
            if cds { "s" } else { "" }
        );
        Ok(ZoneSigning {
            zone: zone.to_string(),
            ksk_use,
            config: ZoneSignConfig {
                apex: set.apex.clone(),
                keys: set.signing_keys().to_vec(),
                dnskeys: set.apex_rrset(Rtype::DNSKEY).to_vec(),
                cds: set.apex_rrset(Rtype::CDS).to_vec(),
                cdnskeys: set.apex_rrset(Rtype::CDNSKEY).to_vec(),
                dnskey_ttl: policy.dnskey_ttl,
                denial: policy.denial(),
                dnskey_validity,
                validity,
                serial: None,
                previous: None,
                reuse_until: 0,
                stagger: false,
                signed_at: now as u32,
                child_ds,
                extra: self.extra_rrsets(&set.zone).await?,
                unsigned: set.unsigned(),
            },
        })
    }

    /// The RRsets keymaster publishes in the zone beside its source's:
    /// its DSYNC RRset (`dsync`), and in a `_signal.NS` zone the RFC 9615
    /// bootstrap signals of the zones that name NS (`signal_rrsets`).
    pub async fn extra_rrsets(&self, zone: &ZoneRecord) -> Result<Vec<ExtraRrset>> {
        let name = ZoneName::of(zone)?;
        let mut out = dsync_rrset(name.apex(), &zone.policy);
        if zone.name.starts_with("_signal.") {
            out.extend(self.signal_rrsets(zone).await?);
        }
        Ok(out)
    }

    /// RFC 9615 §3.2: for each zone whose policy names NS among its signal
    /// name servers, its CDS and CDNSKEY RRsets as its key set has them, at
    /// `_dsboot.CHILD._signal.NS` in this `_signal.NS` zone; none for a zone
    /// that publishes none, or whose NS lies inside it (§4.4). Of the zones
    /// the store lists, or while it cannot, of those last known.
    async fn signal_rrsets(&self, signal: &ZoneRecord) -> Result<Vec<ExtraRrset>> {
        let zones = self.zones_now().await?;
        let mut out = Vec::new();
        for z in &zones {
            let named = z.policy.signal_ns.iter().any(|ns| {
                let ns = format!("{}.", ns.trim_end_matches('.')).to_ascii_lowercase();
                format!("_signal.{ns}") == signal.name && !ns.ends_with(&format!(".{}", z.name))
            });
            if !named {
                continue;
            }
            let Ok(owner) = format!("_dsboot.{}{}", z.name, signal.name).parse::<Name<Vec<u8>>>()
            else {
                continue;
            };
            let set = self.keysets.get(&ZoneName::of(z)?).await?;
            for rtype in [Rtype::CDS, Rtype::CDNSKEY] {
                let rdatas = set.apex_rrset(rtype).to_vec();
                if !rdatas.is_empty() {
                    out.push(ExtraRrset {
                        owner: owner.clone(),
                        rtype,
                        ttl: z.policy.dnskey_ttl,
                        rdatas,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The zones the store lists, or while it cannot list them, those
    /// whose key sets this node last read (ARCHITECTURE.md, Signing through
    /// a store outage).
    async fn zones_now(&self) -> Result<Vec<ZoneRecord>> {
        match self.node.store.list_zones().await.map_err(Error::from) {
            Ok(zones) => Ok(zones),
            Err(e) if crate::keyset::store_unusable(&e) => Ok(self.keysets.last_known_zones()),
            Err(e) => Err(e),
        }
    }

    /// The managed children's DS RRsets for signing `parent` now: of the
    /// zones the store lists, or while it cannot list them, of the zones
    /// whose key sets this node last read (ARCHITECTURE.md, Signing through
    /// a store outage), which include every child of a parent it signed.
    async fn children_now(&self, parent: &ZoneRecord) -> Result<Vec<ChildDs>> {
        let zones = self.zones_now().await?;
        let children = crate::node::children_by_parent(&zones);
        let managed = children
            .get(parent.name.as_str())
            .map_or(&[][..], Vec::as_slice);
        self.child_ds(parent, managed).await
    }

    /// The DS RRsets a parent publishes for its children (ARCHITECTURE.md,
    /// Delegations): for the zones keymaster manages directly below it
    /// (`node::children_by_parent`), each from the child's key set, with the
    /// child's DS digests and TTL; for the others kept by CDS polling
    /// (`children`), the DS RRset stored on the parent's record.
    pub async fn child_ds(
        &self,
        parent: &ZoneRecord,
        children: &[&ZoneRecord],
    ) -> Result<Vec<ChildDs>> {
        let mut out: Vec<ChildDs> = parent
            .delegations
            .iter()
            .filter_map(|d| {
                Some(ChildDs {
                    child: ZoneName::stored(&d.child).ok()?.apex().clone(),
                    ttl: d.ds_ttl,
                    ds: d
                        .ds
                        .iter()
                        .filter_map(|t| crate::dnssec::ds::ds_from_text(t).ok())
                        .collect(),
                })
            })
            .collect();
        for c in children {
            let set = self.keysets.get(&ZoneName::of(c)?).await?;
            let policy = &set.zone.policy;
            out.push(ChildDs {
                child: set.apex.clone(),
                ttl: policy.ds_ttl,
                ds: set.ds(&policy.ds_digests())?,
            });
        }
        Ok(out)
    }

    /// Reads zone text of `zone` within the service's record limit.
    fn read_text(
        &self,
        zone: &ZoneSigning,
        text: &[u8],
        stats: &mut ZoneStats,
    ) -> std::result::Result<Vec<crate::dnssec::record::Rec>, ZoneError> {
        zonesign::read_zone(text, &zone.config.apex, self.limits.max_zone_records, stats)
    }

    /// Reads a zone file's text, signs it and streams the result through
    /// `emit`. Blocks the calling thread (run it on a blocking one).
    pub fn sign_zone_blocking(
        &self,
        zone: &ZoneSigning,
        text: &[u8],
        emit: &mut dyn FnMut(Vec<u8>) -> std::result::Result<(), String>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ZoneStats> {
        let mut stats = ZoneStats::default();
        let clock = &self.node.clock;
        let began = clock.instant();
        let recs = self.read_text(zone, text, &mut stats)?;
        let read = clock.instant();
        let plan = zonesign::plan_zone(recs, &zone.config, &mut stats)?;
        let planned = clock.instant();
        self.sign_plan(
            &zone.zone,
            Arc::new(plan),
            &mut stats,
            &mut |r| emit(r.text.into_bytes()),
            progress,
        )?;
        tracing::debug!(
            records = stats.records_in,
            read_s = read.duration_since(began).as_secs_f64(),
            plan_s = planned.duration_since(read).as_secs_f64(),
            sign_s = clock.instant().duration_since(planned).as_secs_f64(),
            "zone signing phases"
        );
        Ok(stats)
    }

    /// Signs a zone's source for publication and returns the signed zone
    /// whole: once the text is read, `serial` chooses the SOA serial to
    /// publish from the source's own. Blocks the calling thread.
    pub fn sign_source_blocking(
        &self,
        zone: &ZoneSigning,
        text: &[u8],
        serial: &mut dyn FnMut(u32) -> std::result::Result<u32, String>,
    ) -> Result<(ZoneStats, Previous, Option<Changes>)> {
        let mut stats = ZoneStats::default();
        let clock = &self.node.clock;
        let began = clock.instant();
        let recs = self.read_text(zone, text, &mut stats)?;
        let source = zonesign::source_serial(&recs, &zone.config.apex)?;
        let mut config = zone.config.clone();
        config.serial = Some(serial(source).map_err(ZoneError::Serial)?);
        let plan = zonesign::plan_zone(recs, &config, &mut stats)?;
        let planned = clock.instant();
        let mut chunks = Vec::with_capacity(plan.batches());
        let mut groups =
            Groups::with_capacity_and_hasher(plan.rrsets() as usize, Default::default());
        // New chunks are numbered after the last version's, so that no id
        // of the two versions means two chunks.
        let mut next_id = config.previous.as_ref().map_or(0, |p| p.next_id());
        let mut changes = config.previous.as_deref().map(Changes::within);
        let matched = self.sign_chunks(
            &zone.zone,
            plan,
            &mut stats,
            &mut next_id,
            changes.as_mut(),
            &mut chunks,
            &mut |key, g| {
                groups.insert(key, g);
            },
        )?;
        let signed = Previous::new(chunks, groups);
        stats.chunks = signed.chunks.len() as u64;
        stats.chunks_made = stats.chunks;
        let changes = match (config.previous.as_ref(), changes) {
            (Some(p), Some(mut c)) => {
                // RRsets that went: only looked for when some did.
                if matched < p.groups.len() {
                    c.add(&p.removed_in(&signed), &[]);
                }
                c.journal()
            }
            _ => None,
        };
        tracing::debug!(
            read_plan_s = planned.duration_since(began).as_secs_f64(),
            sign_s = clock.instant().duration_since(planned).as_secs_f64(),
            made = stats.rrsigs_made,
            "zone signer: signing phases"
        );
        Ok((stats, signed, changes))
    }

    /// Makes the next version of a zone from the last, `previous`, by a
    /// known change of its source (empty for a refresh round: the source's
    /// serial is then `source_serial`), signing only the chunks the change
    /// touches and those with signatures due (`dnssec::patch`); None when
    /// it cannot be patched (then the source is signed whole). `previous`
    /// becomes the new version; what is returned undoes that, should it
    /// not be published. Blocks the calling thread.
    ///
    /// Long because applying the change, planning and signing the
    /// chunks, and building the undo share the one mutable version.
    pub fn patch_source_blocking(
        &self,
        zone: &ZoneSigning,
        previous: &mut Arc<Previous>,
        change: &SourceChange,
        source_serial: u32,
        serial: &mut dyn FnMut(u32) -> std::result::Result<u32, String>,
    ) -> Result<Option<(ZoneStats, Undo, Option<Changes>)>> {
        let mut stats = ZoneStats::default();
        let apex = &zone.config.apex;
        // A change that does not read is signed whole, so that the error
        // names the line of the source, not of the change.
        let read = |text: &[u8], stats: &mut ZoneStats| self.read_text(zone, text, stats);
        let (Ok(deleted), Ok(added)) = (
            read(&change.deleted, &mut ZoneStats::default()),
            read(&change.added, &mut stats),
        ) else {
            return Ok(None);
        };
        // A change without the apex SOA leaves the source's serial.
        let source = zonesign::source_serial(&added, apex).unwrap_or(source_serial);
        let mut config = zone.config.clone();
        config.serial = Some(serial(source).map_err(ZoneError::Serial)?);
        config.previous = Some(previous.clone());
        let Some(runs) = patch::plan_patch(previous, &deleted, &added, &config, &mut stats)? else {
            return Ok(None);
        };
        drop(config);
        let first_id = previous.next_id();
        let mut next_id = first_id;
        let mut changes = Changes::within(previous);
        let (mut replaced, mut new_groups, mut old_keys) = (Vec::new(), Vec::new(), HashSet::new());
        for run in runs {
            let mut chunks = Vec::new();
            self.sign_chunks(
                &zone.zone,
                run.plan,
                &mut stats,
                &mut next_id,
                Some(&mut changes),
                &mut chunks,
                &mut |key, g| new_groups.push((key, g)),
            )?;
            old_keys.extend(run.old_keys);
            replaced.push((run.from, run.to, chunks));
        }
        // RRsets the replaced chunks had and the new ones have not.
        let new_keys: HashSet<GroupKey> = new_groups.iter().map(|(k, _)| *k).collect();
        let vanished: Vec<GroupKey> = old_keys.difference(&new_keys).copied().collect();
        for k in &vanished {
            if let Some(g) = previous.get(*k) {
                changes.add(previous.lines(g), &[]);
            }
        }
        let mut chunks = Vec::with_capacity(previous.chunks.len());
        let mut at = 0;
        for (from, to, new) in replaced {
            chunks.extend(previous.chunks[at..from].iter().cloned());
            chunks.extend(new);
            at = to;
        }
        chunks.extend(previous.chunks[at..].iter().cloned());
        // The only holder now, unless someone kept the last version: then
        // it is copied rather than changed under them.
        let next = Arc::make_mut(previous);
        let undo = next.apply(chunks, vanished, new_groups);
        (stats.records_out, stats.rrsigs) = next.counts();
        stats.rrsets = next.groups.len() as u64;
        stats.chunks = next.chunks.len() as u64;
        stats.patched = true;
        stats.serial_in = source;
        stats.chunks_made = next.chunks.iter().filter(|c| c.id >= first_id).count() as u64;
        Ok(Some((stats, undo, changes.journal())))
    }

    /// Signs a plan into chunks of a version, numbered from `next_id` on:
    /// each RRset's place goes to `group`, and what changed from the last
    /// version to `changes`. Returns how many RRsets the last version had
    /// of these.
    #[allow(clippy::too_many_arguments)]
    fn sign_chunks(
        &self,
        zone: &str,
        plan: ZonePlan,
        stats: &mut ZoneStats,
        next_id: &mut u32,
        mut changes: Option<&mut Changes>,
        chunks: &mut Vec<Arc<Chunk>>,
        group: &mut dyn FnMut(GroupKey, Group),
    ) -> Result<usize> {
        let mut matched = 0;
        self.sign_plan(
            zone,
            Arc::new(plan),
            stats,
            &mut |mut rendered| {
                let id = *next_id;
                *next_id += 1;
                for (key, mut g) in rendered.groups.drain(..) {
                    g.chunk = id;
                    group(key, g);
                }
                if let Some(c) = changes.as_deref_mut() {
                    c.add(&rendered.gone, &rendered.came);
                }
                matched += rendered.matched;
                chunks.push(chunk_of(id, rendered));
                Ok(())
            },
            &mut |_, _| {},
        )?;
        Ok(matched)
    }

    /// Signs a planned zone on the pool, batch by batch, and emits the
    /// batches in order. A few batches per worker are in flight, so that
    /// the pool stays busy while the output waits for the earliest; RRset
    /// requests queue between them.
    fn sign_plan(
        &self,
        zone: &str,
        plan: Arc<ZonePlan>,
        stats: &mut ZoneStats,
        emit: &mut dyn FnMut(Rendered) -> std::result::Result<(), String>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let began = self.node.clock.instant();
        let zone: Arc<str> = zone.into();
        let in_flight = self.pool.count() * 4;
        let stop = Cancel::default();
        let mut pending = VecDeque::new();
        // Batches submitted, batches emitted, RRsets emitted.
        let (mut next, mut emitted, mut done) = (0, 0, 0);
        let result = loop {
            while next < plan.batches() && pending.len() < in_flight {
                let (plan, stop, batch, zone) = (plan.clone(), stop.clone(), next, zone.clone());
                pending.push_back(self.pool.submit(move |signer| {
                    if stop.is_set() {
                        return Err(ZoneError::Aborted("stopped".into()));
                    }
                    let signer = signer.map_err(|e| ZoneError::Worker(e.to_string()))?;
                    plan.render(batch, &mut KeyWorker::new(signer, &zone))
                }));
                next += 1;
            }
            let Some(batch) = pending.pop_front() else {
                break Ok(());
            };
            let rendered = match batch.wait_blocking() {
                Some(Ok(Ok(r))) => r,
                Some(Ok(Err(e))) => break Err(Error::from(e)),
                Some(Err(stalled)) => break Err(Error::from(stalled)),
                None => break Err(Error::Lost("a signing worker")),
            };
            stats.records_out += rendered.records;
            stats.rrsigs += rendered.rrsigs;
            stats.rrsigs_made += rendered.made;
            done += plan.batch_rrsets(emitted);
            emitted += 1;
            if let Err(e) = emit(rendered) {
                break Err(ZoneError::Aborted(e).into());
            }
            progress(done, plan.rrsets());
        };
        // Batches still queued find the flag set and return at once.
        stop.set();
        if result.is_ok() {
            let took = self.node.clock.instant().duration_since(began);
            crate::metrics::zone_signed(&zone, stats.rrsigs_made, took);
        }
        result
    }
}
