//! Whole-zone signing: master file in, signed master file out.
//!
//! ```text
//! read (domain's zone file scanner) ─► compact records ─► canonical sort
//!   ─► checks (SOA, TTLs) ─► plan: RRsets in order, who signs each,
//!      NSEC or NSEC3 chain, cut into batches ─► each batch signed and
//!      formatted by any worker (the caller's pool) ─► emitted in order
//! ```
//! Memory: the records (one heap block each) and the plan; the output is
//! streamed. Zone cuts (and DNAMEs) make the names below them glue or
//! occluded data: published as given, not signed, not in the denial chain
//! (RFC 4035 §2.2, §2.3; RFC 6672 §2.3).
//!
//! `read.rs` reads the master file, this file plans, and `render.rs` writes
//! each planned batch with its signatures.

use std::collections::{HashMap, HashSet};

use domain::base::iana::Rtype;
use domain::base::name::Name;

use super::denial::{self, Denial};
use super::record::{self, Rec};
use super::reuse::Previous;
use super::sign::{self, KeyRole, SignWorker, SigningKey, Validity};
use std::sync::Arc;

mod read;
mod render;
mod rules;

pub use read::{read_nsec3, read_zone, source_serial};
pub use render::Rendered;

/// What to sign a zone with.
#[derive(Debug, Clone)]
pub struct ZoneSignConfig {
    pub apex: Name<Vec<u8>>,
    /// Keys that sign (active KSKs and ZSKs).
    pub keys: Vec<SigningKey>,
    /// DNSKEY record data of every published key.
    pub dnskeys: Vec<Vec<u8>>,
    /// CDS and CDNSKEY record data; empty when not published.
    pub cds: Vec<Vec<u8>>,
    pub cdnskeys: Vec<Vec<u8>>,
    pub dnskey_ttl: u32,
    pub denial: Denial,
    /// Validity of signatures over DNSKEY, CDS and CDNSKEY.
    pub dnskey_validity: Validity,
    /// Validity of every other signature.
    pub validity: Validity,
    /// The SOA serial to publish; None keeps the input's.
    pub serial: Option<u32>,
    /// Signatures of the last version, kept for RRsets that did not change
    /// and whose signatures expire at or after `reuse_until`.
    pub previous: Option<Arc<Previous>>,
    pub reuse_until: u32,
    /// Stagger each RRset's expiration by up to a tenth of the validity,
    /// and note each RRset for the next version (the zone signer).
    pub stagger: bool,
    /// When the signatures are made (Unix seconds): a tenth of what is
    /// left from then to their expiration is the stagger's spread.
    pub signed_at: u32,
    /// The DS RRsets of child zones keymaster also manages: each replaces
    /// whatever DS RRset the input has at the child's delegation.
    pub child_ds: Vec<ChildDs>,
    /// RRsets keymaster publishes beside the source's (the DSYNC RRset a
    /// parent announces its NOTIFY endpoint with): each replaces the
    /// input's RRset of its owner and type.
    pub extra: Vec<ExtraRrset>,
    /// Publish the zone without DNSSEC (it was unsigned): no keys, no
    /// signatures, no denial chain; the input's DNSSEC records dropped.
    pub unsigned: bool,
}

/// A child zone keymaster manages, as its parent publishes it: the DS
/// RRset made from the child's key set (empty: the child is unsigned, and
/// its delegation insecure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildDs {
    pub child: Name<Vec<u8>>,
    pub ttl: u32,
    pub ds: Vec<Vec<u8>>,
}

/// An RRset keymaster adds to a zone beside its source's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRrset {
    pub owner: Name<Vec<u8>>,
    pub rtype: Rtype,
    pub ttl: u32,
    pub rdatas: Vec<Vec<u8>>,
}

/// Puts the extra RRsets in place of the input's of the same owner and
/// type: in a whole zone always; in a part (a patch's chunk) only where
/// the part holds the owner, since each owner is in one part (one made
/// whole put it there first: a change of the extras signs the zone whole).
fn put_extra(recs: &mut Vec<Rec>, extra: &[ExtraRrset], whole: bool) {
    for x in extra {
        let key = record::name_key(&x.owner);
        if !whole && !recs.iter().any(|r| r.key() == key.as_slice()) {
            continue;
        }
        recs.retain(|r| !(r.rtype == x.rtype && r.key() == key.as_slice()));
        for rdata in &x.rdatas {
            recs.push(Rec::new(&key, x.rtype, x.ttl, rdata));
        }
    }
}

/// Puts the managed children's DS RRsets in place of the input's, at every
/// delegation (an NS RRset at the child's apex) the zone has. A child the
/// zone does not delegate is left out: a DS without its NS would be
/// nonsense. Returns how many children's DS RRsets were put in, and the
/// children whose DS in the input differed from theirs (an operator who
/// edits the parent's source should hear that it is overridden).
fn replace_child_ds(recs: &mut Vec<Rec>, children: &[ChildDs]) -> (usize, Vec<String>) {
    if children.is_empty() {
        return (0, Vec::new());
    }
    let wanted: HashMap<Vec<u8>, &ChildDs> = children
        .iter()
        .map(|c| (record::name_key(&c.child), c))
        .collect();
    let delegated: HashSet<Vec<u8>> = recs
        .iter()
        .filter(|r| r.rtype == Rtype::NS && wanted.contains_key(r.key()))
        .map(|r| r.key().to_vec())
        .collect();
    let mut given: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
    for r in recs.iter() {
        if r.rtype == Rtype::DS && delegated.contains(r.key()) {
            given
                .entry(r.key().to_vec())
                .or_default()
                .push(r.rdata().to_vec());
        }
    }
    let mut overridden: Vec<String> = delegated
        .iter()
        .filter_map(|key| {
            let mut theirs = given.get(key).cloned()?;
            let mut ours = wanted[key].ds.clone();
            theirs.sort();
            ours.sort();
            (theirs != ours).then(|| format!("{}.", record::key_to_name(key)))
        })
        .collect();
    overridden.sort();
    recs.retain(|r| !(r.rtype == Rtype::DS && delegated.contains(r.key())));
    for key in &delegated {
        let c = wanted[key];
        for ds in &c.ds {
            recs.push(Rec::new(key, Rtype::DS, c.ttl, ds));
        }
    }
    (delegated.len(), overridden)
}

/// What went wrong with a zone. Input errors name the line or the RRset.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ZoneError {
    #[error("zone file line {line}: {message}")]
    Parse { line: String, message: String },
    #[error("$INCLUDE is not allowed in a zone sent for signing")]
    Include,
    #[error("record {owner} {rtype} is outside the zone {apex}")]
    OutsideZone {
        owner: String,
        rtype: String,
        apex: String,
    },
    #[error("record {owner} {rtype} has class {class}; only IN is signed")]
    Class {
        owner: String,
        rtype: String,
        class: String,
    },
    #[error("the zone has no SOA record at its apex {apex}")]
    NoSoa { apex: String },
    #[error("the apex {apex} has {count} SOA records; exactly one is allowed")]
    ManySoa { apex: String, count: usize },
    #[error("RRset {owner} {rtype} has records with different TTLs ({first} and {other})")]
    TtlMismatch {
        owner: String,
        rtype: String,
        first: u32,
        other: u32,
    },
    /// A rule of RFC 1034, 1035, 2181 or 6672 the zone's data breaks.
    #[error("{owner}: {rule}")]
    Structure { owner: String, rule: String },
    #[error("the zone has {count} records; the limit is {limit}")]
    TooLarge { count: usize, limit: usize },
    #[error("the zone has no active {role}")]
    NoKey { role: &'static str },
    #[error(transparent)]
    Sign(#[from] sign::SignError),
    #[error("signing worker: {0}")]
    Worker(String),
    #[error("signing stopped: {0}")]
    Aborted(String),
    #[error("{0}")]
    Serial(String),
}

/// Totals of one run.
#[derive(Debug, Clone, Default)]
pub struct ZoneStats {
    pub records_in: u64,
    pub dropped_dnssec: u64,
    pub records_out: u64,
    pub rrsigs: u64,
    pub rrsets: u64,
    /// The largest TTL of any record of the signed zone (its max zone TTL).
    pub max_ttl: u32,
    /// The SOA serial of the input, and of the output.
    pub serial_in: u32,
    pub serial_out: u32,
    /// RRSIGs made (the rest of `rrsigs` were kept from the last version).
    pub rrsigs_made: u64,
    /// Delegations whose DS RRset came from a child keymaster manages.
    pub child_ds: u64,
    /// Of those, the children whose DS in the input differed, and was
    /// replaced by their key set's.
    pub child_ds_overridden: Vec<String>,
    /// Chunks of the signed version, and of them those made now (the
    /// rest shared with the last version: `patch`).
    pub chunks: u64,
    pub chunks_made: u64,
    /// Made from the last version by a known change of the source.
    pub patched: bool,
}

impl ZoneStats {
    /// What an operator should hear of this output (said by `zone sign`
    /// and by the zone signer's log).
    pub fn notes(&self) -> Vec<String> {
        self.child_ds_overridden
            .iter()
            .map(|c| {
                format!(
                    "the DS RRset of {c} in the input was replaced by the one its key set gives \
                     (the child is managed here)"
                )
            })
            .collect()
    }
}

/// Who signs an RRset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signer {
    Nobody,
    Zsk,
    Ksk,
}

/// One RRset of the output, in the records or the denial records.
#[derive(Debug, Clone, Copy)]
struct Item {
    denial: bool,
    start: u32,
    len: u32,
    signer: Signer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerKind {
    Apex,
    Authoritative,
    /// A delegation point; `secure` when it has a DS RRset.
    Cut {
        secure: bool,
    },
    /// Glue or occluded data below a zone cut.
    Glue,
}

struct Owner {
    start: usize,
    end: usize,
    kind: OwnerKind,
}

/// The signing plan of a sorted zone.
struct Plan {
    items: Vec<Item>,
    denial: Vec<Rec>,
    /// Where each batch's items start: batches hold about `BATCH` items
    /// and begin only at an owner that is not glue, so that a batch (a
    /// chunk of the signed version) holds a zone cut with all its glue.
    cuts: Vec<usize>,
}

/// A zone ready to sign: its records in canonical order with the apex
/// records the signer adds, and the plan of what to output and who signs
/// each RRset, cut into batches. Signing a batch needs only a
/// `SignWorker`, so batches can go to any worker in any order; the caller
/// puts the rendered batches back in order (`render` of batch i is the
/// i-th piece of the signed zone).
pub struct ZonePlan {
    recs: Vec<Rec>,
    plan: Plan,
    config: ZoneSignConfig,
}

/// Items (RRsets) per batch that a worker signs and formats at once.
const BATCH: usize = 512;

/// Plans the signing of a zone that `read_zone` read.
pub fn plan_zone(
    recs: Vec<Rec>,
    config: &ZoneSignConfig,
    stats: &mut ZoneStats,
) -> Result<ZonePlan, ZoneError> {
    plan_records(recs, config, stats, None)
}

/// Where a part of a zone (whole owners, from a chunk boundary to the
/// next: `patch`) sits in it: the first owner after it, which the NSEC of
/// its last owner names, and the TTL of denial records (from the SOA).
#[derive(Debug, Clone)]
pub struct Part {
    pub next: Vec<u8>,
    pub denial_ttl: u32,
}

/// Plans the signing of part of a zone. The part holding the apex gets its
/// apex records, as a whole zone does.
pub fn plan_part(
    recs: Vec<Rec>,
    config: &ZoneSignConfig,
    part: &Part,
    stats: &mut ZoneStats,
) -> Result<ZonePlan, ZoneError> {
    plan_records(recs, config, stats, Some(part))
}

fn plan_records(
    mut recs: Vec<Rec>,
    config: &ZoneSignConfig,
    stats: &mut ZoneStats,
    part: Option<&Part>,
) -> Result<ZonePlan, ZoneError> {
    for role in [KeyRole::Ksk, KeyRole::Zsk] {
        if !config.unsigned && !config.keys.iter().any(|k| k.role == role) {
            return Err(ZoneError::NoKey {
                role: role.as_str(),
            });
        }
    }
    let apex_key = record::name_key(&config.apex);
    let has_apex = part.is_none() || recs.iter().any(|r| r.key() == apex_key);
    let denial_ttl = match has_apex {
        true => add_apex_records(&mut recs, &apex_key, config, stats)?,
        false => part.map_or(0, |p| p.denial_ttl),
    };
    put_extra(&mut recs, &config.extra, part.is_none());
    let (child_ds, overridden) = replace_child_ds(&mut recs, &config.child_ds);
    stats.child_ds = child_ds as u64;
    stats.child_ds_overridden = overridden;
    recs.sort_unstable_by(Rec::canonical_cmp);
    recs.dedup_by(|a, b| a.same_rrset(b) && a.rdata() == b.rdata());
    check_rrsets(&recs)?;
    rules::check_structure(&recs, &apex_key, has_apex)?;
    let last_next = part.map_or(apex_key.as_slice(), |p| p.next.as_slice());
    let plan = make_plan(
        &recs,
        &apex_key,
        config,
        denial_ttl,
        last_next,
        part.is_none(),
    );
    stats.rrsets = plan.items.len() as u64;
    stats.max_ttl = recs.iter().map(|r| r.ttl).max().unwrap_or(0);
    Ok(ZonePlan {
        recs,
        plan,
        config: config.clone(),
    })
}

impl ZonePlan {
    /// How many batches the zone is cut into.
    pub fn batches(&self) -> usize {
        self.plan.cuts.len()
    }

    /// RRsets in all, and in batch `i`.
    pub fn rrsets(&self) -> u64 {
        self.plan.items.len() as u64
    }

    pub fn batch_rrsets(&self, i: usize) -> u64 {
        self.items(i).len() as u64
    }

    fn items(&self, i: usize) -> &[Item] {
        let len = self.plan.items.len();
        let start = self.plan.cuts.get(i).copied().unwrap_or(len);
        let end = self.plan.cuts.get(i + 1).copied().unwrap_or(len);
        &self.plan.items[start..end]
    }

    /// Signs and formats batch `i`.
    pub fn render(&self, i: usize, worker: &mut dyn SignWorker) -> Result<Rendered, ZoneError> {
        render::render_batch(
            self.items(i),
            &self.recs,
            &self.plan.denial,
            &self.config,
            worker,
        )
    }
}

/// Signs a planned zone batch by batch with one worker, in order: for
/// tests and tools that sign without a pool.
pub fn sign_in_order(
    plan: &ZonePlan,
    worker: &mut dyn SignWorker,
    stats: &mut ZoneStats,
    emit: &mut dyn FnMut(Vec<u8>) -> Result<(), String>,
) -> Result<(), ZoneError> {
    for i in 0..plan.batches() {
        let r = plan.render(i, worker)?;
        stats.records_out += r.records;
        stats.rrsigs += r.rrsigs;
        emit(r.text.into_bytes()).map_err(ZoneError::Aborted)?;
    }
    Ok(())
}

/// Adds DNSKEY, CDS, CDNSKEY and NSEC3PARAM at the apex; returns the TTL for
/// denial records: the lesser of the SOA TTL and SOA MINIMUM (RFC 9077).
fn add_apex_records(
    recs: &mut Vec<Rec>,
    apex_key: &[u8],
    config: &ZoneSignConfig,
    stats: &mut ZoneStats,
) -> Result<u32, ZoneError> {
    let soas: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.rtype == Rtype::SOA && r.key() == apex_key)
        .collect();
    let soa = match soas.as_slice() {
        [] => {
            return Err(ZoneError::NoSoa {
                apex: config.apex.to_string(),
            })
        }
        [one] => *one,
        many => {
            // Identical duplicates are one record.
            let distinct: HashSet<&[u8]> = many.iter().map(|r| r.rdata()).collect();
            if distinct.len() > 1 {
                return Err(ZoneError::ManySoa {
                    apex: config.apex.to_string(),
                    count: distinct.len(),
                });
            }
            many[0]
        }
    };
    let rd = soa.rdata();
    let minimum = u32::from_be_bytes(rd[rd.len() - 4..].try_into().expect("SOA has MINIMUM"));
    let denial_ttl = soa.ttl.min(minimum);
    stats.serial_in = soa.soa_serial();
    stats.serial_out = config.serial.unwrap_or(stats.serial_in);
    for r in recs.iter_mut() {
        if r.rtype == Rtype::SOA && r.key() == apex_key {
            r.set_soa_serial(stats.serial_out);
        }
    }
    for k in &config.dnskeys {
        recs.push(Rec::new(apex_key, Rtype::DNSKEY, config.dnskey_ttl, k));
    }
    for c in &config.cds {
        recs.push(Rec::new(apex_key, Rtype::CDS, config.dnskey_ttl, c));
    }
    for c in &config.cdnskeys {
        recs.push(Rec::new(apex_key, Rtype::CDNSKEY, config.dnskey_ttl, c));
    }
    if let (Denial::Nsec3(p), false) = (&config.denial, config.unsigned) {
        recs.push(Rec::new(
            apex_key,
            Rtype::NSEC3PARAM,
            denial_ttl,
            &denial::nsec3param_rdata(p),
        ));
    }
    Ok(denial_ttl)
}

/// Every record of an RRset must have the same TTL (RFC 2181 §5.2).
fn check_rrsets(recs: &[Rec]) -> Result<(), ZoneError> {
    for w in recs.windows(2) {
        if w[0].same_rrset(&w[1]) && w[0].ttl != w[1].ttl {
            return Err(ZoneError::TtlMismatch {
                owner: record::key_to_name(w[0].key()).to_string(),
                rtype: w[0].rtype.to_string(),
                first: w[0].ttl,
                other: w[1].ttl,
            });
        }
    }
    Ok(())
}

/// Splits sorted records into owners and classifies each.
fn owners(recs: &[Rec], apex_key: &[u8]) -> Vec<Owner> {
    let mut out = Vec::new();
    let mut cut: Option<&[u8]> = None;
    let mut i = 0;
    while i < recs.len() {
        let key = recs[i].key();
        let mut end = i + 1;
        while end < recs.len() && recs[end].key() == key {
            end += 1;
        }
        let here = &recs[i..end];
        let kind = if cut.is_some_and(|c| record::key_is_below(key, c)) {
            OwnerKind::Glue
        } else if key == apex_key {
            OwnerKind::Apex
        } else if here.iter().any(|r| r.rtype == Rtype::NS) {
            cut = Some(key);
            OwnerKind::Cut {
                secure: here.iter().any(|r| r.rtype == Rtype::DS),
            }
        } else {
            OwnerKind::Authoritative
        };
        // Names below a DNAME are occluded as well (RFC 6672 §2.3).
        if kind != OwnerKind::Glue && here.iter().any(|r| r.rtype == Rtype::DNAME) {
            cut = Some(key);
        }
        out.push(Owner {
            start: i,
            end,
            kind,
        });
        i = end;
    }
    out
}

/// The distinct types of an owner's records, in order.
fn types_of(recs: &[Rec]) -> Vec<Rtype> {
    let mut t: Vec<Rtype> = recs.iter().map(|r| r.rtype).collect();
    t.dedup();
    t
}

/// The plan of sorted records; the NSEC of the last owner names
/// `last_next` (the apex for a whole zone, the next owner for a part). The
/// NSEC3 chain is made for a whole zone only (a part's is kept as it was).
///
/// Long because the walk over the owners (apex, cuts, glue, occluded
/// data) decides each owner's fate in one place.
fn make_plan(
    recs: &[Rec],
    apex_key: &[u8],
    config: &ZoneSignConfig,
    denial_ttl: u32,
    last_next: &[u8],
    whole: bool,
) -> Plan {
    let owners = owners(recs, apex_key);
    let mut plan = Plan {
        items: Vec::with_capacity(recs.len() + owners.len()),
        denial: Vec::new(),
        cuts: Vec::new(),
    };
    // The names in the NSEC3 chain: (sort key, bitmap types).
    let mut nsec3_names: Vec<(Vec<u8>, Vec<Rtype>)> = Vec::new();
    let authoritative: Vec<usize> = (0..owners.len())
        .filter(|&i| owners[i].kind != OwnerKind::Glue)
        .collect();
    let mut pos = 0;
    for o in &owners {
        if o.kind != OwnerKind::Glue {
            plan.cut_if_full();
        }
        if config.unsigned {
            plan.items.extend(rrset_items(recs, o, |_| Signer::Nobody));
            continue;
        }
        if o.kind == OwnerKind::Glue {
            // Glue and other occluded data are published as they came,
            // unsigned and outside the denial chain (RFC 4035 §2.2, §2.3).
            plan.items.extend(rrset_items(recs, o, |_| Signer::Nobody));
            continue;
        }
        pos += 1;
        plan.items
            .extend(rrset_items(recs, o, |rtype| signer_of(o.kind, rtype)));
        let owner = recs[o.start].key();
        let mut types = bitmap_types(o, &recs[o.start..o.end]);
        match &config.denial {
            Denial::Nsec => {
                types.push(Rtype::NSEC);
                types.push(Rtype::RRSIG);
                let next = match authoritative.get(pos) {
                    Some(&n) => recs[owners[n].start].key(),
                    None => last_next,
                };
                let rdata =
                    denial::nsec_rdata(&record::key_to_wire(next), &denial::type_bitmap(types));
                plan.push_denial(Rec::new(owner, Rtype::NSEC, denial_ttl, &rdata));
            }
            Denial::Nsec3(p) => {
                let insecure_cut = o.kind == OwnerKind::Cut { secure: false };
                if !insecure_cut {
                    types.push(Rtype::RRSIG);
                }
                if !(insecure_cut && p.opt_out) {
                    nsec3_names.push((owner.to_vec(), types));
                }
            }
        }
    }
    if let (Denial::Nsec3(p), false, true) = (&config.denial, config.unsigned, whole) {
        add_nsec3_chain(&mut plan, nsec3_names, apex_key, config, p, denial_ttl);
    }
    plan
}

/// Plans the signing of chain records as they are (an NSEC3 chain's
/// chunks whose signatures are due: `patch`).
pub fn plan_chain_part(denial: Vec<Rec>, config: &ZoneSignConfig) -> ZonePlan {
    let mut plan = Plan {
        items: Vec::with_capacity(denial.len()),
        denial: Vec::with_capacity(denial.len()),
        cuts: Vec::new(),
    };
    for r in denial {
        plan.cut_if_full();
        plan.push_denial(r);
    }
    ZonePlan {
        recs: Vec::new(),
        plan,
        config: config.clone(),
    }
}

impl Plan {
    /// Starts a batch here if the last one is full (or there is none).
    fn cut_if_full(&mut self) {
        let last = self.cuts.last().copied();
        if last.is_none_or(|l| self.items.len() - l >= BATCH) {
            self.cuts.push(self.items.len());
        }
    }

    /// Adds a denial record, signed by the ZSK, to the output.
    fn push_denial(&mut self, rec: Rec) {
        self.items.push(Item {
            denial: true,
            start: self.denial.len() as u32,
            len: 1,
            signer: Signer::Zsk,
        });
        self.denial.push(rec);
    }
}

/// Who signs an RRset of an authoritative owner: nobody for a delegation's
/// NS (the child's), the KSK for the apex DNSKEY/CDS/CDNSKEY, else the ZSK.
fn signer_of(kind: OwnerKind, rtype: Rtype) -> Signer {
    match kind {
        OwnerKind::Cut { .. } if rtype == Rtype::DS => Signer::Zsk,
        OwnerKind::Cut { .. } => Signer::Nobody,
        OwnerKind::Apex if matches!(rtype, Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY) => {
            Signer::Ksk
        }
        _ => Signer::Zsk,
    }
}

/// The types an owner's denial record lists (before NSEC/NSEC3 and RRSIG):
/// a delegation shows NS and, when secure, DS only.
fn bitmap_types(o: &Owner, here: &[Rec]) -> Vec<Rtype> {
    match o.kind {
        OwnerKind::Cut { secure } => {
            let mut t = vec![Rtype::NS];
            if secure {
                t.push(Rtype::DS);
            }
            t
        }
        _ => types_of(here),
    }
}

/// The NSEC3 chain over the names (and the empty non-terminals between
/// them and the apex), in hash order (RFC 5155 §7.1).
fn add_nsec3_chain(
    plan: &mut Plan,
    mut names: Vec<(Vec<u8>, Vec<Rtype>)>,
    apex_key: &[u8],
    config: &ZoneSignConfig,
    p: &denial::Nsec3Params,
    ttl: u32,
) {
    add_empty_non_terminals(&mut names, apex_key);
    let mut hashed: Vec<(Vec<u8>, Vec<Rtype>)> = names
        .into_iter()
        .map(|(key, types)| (denial::hash_name(&record::key_to_wire(&key), p), types))
        .collect();
    hashed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    hashed.dedup_by(|a, b| a.0 == b.0);
    // The chain in chunks of its own.
    if plan.cuts.last() != Some(&plan.items.len()) {
        plan.cuts.push(plan.items.len());
    }
    for i in 0..hashed.len() {
        let (hash, types) = &hashed[i];
        let next = &hashed[(i + 1) % hashed.len()].0;
        // A 32-character label over an apex of at most 222 octets (refused
        // longer when the zone is added) is a valid name.
        let mut owner_wire = label_wire(&denial::hash_label(hash));
        owner_wire.extend_from_slice(config.apex.as_slice());
        let owner = Name::from_octets(owner_wire).expect("hashed owner is a valid name");
        let rdata = denial::nsec3_rdata(p, next, &denial::type_bitmap(types.iter().copied()));
        plan.cut_if_full();
        plan.push_denial(Rec::new(
            &record::name_key(&owner),
            Rtype::NSEC3,
            ttl,
            &rdata,
        ));
    }
}

/// The RRsets of one owner, each with who signs it; the apex SOA first.
fn rrset_items(recs: &[Rec], o: &Owner, signer: impl Fn(Rtype) -> Signer) -> Vec<Item> {
    let mut rrsets = Vec::new();
    let mut s = o.start;
    while s < o.end {
        let mut e = s + 1;
        while e < o.end && recs[e].rtype == recs[s].rtype {
            e += 1;
        }
        let rtype = recs[s].rtype;
        let item = Item {
            denial: false,
            start: s as u32,
            len: (e - s) as u32,
            signer: signer(rtype),
        };
        if o.kind == OwnerKind::Apex && rtype == Rtype::SOA {
            rrsets.insert(0, item);
        } else {
            rrsets.push(item);
        }
        s = e;
    }
    rrsets
}

fn label_wire(label: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(label.len() + 1);
    v.push(label.len() as u8);
    v.extend_from_slice(label.as_bytes());
    v
}

/// Adds every empty non-terminal between the chain's names and the apex
/// with an empty bitmap (RFC 5155 §7.1).
fn add_empty_non_terminals(names: &mut Vec<(Vec<u8>, Vec<Rtype>)>, apex_key: &[u8]) {
    let mut known: HashSet<Vec<u8>> = names.iter().map(|(k, _)| k.clone()).collect();
    let mut ents = Vec::new();
    for (key, _) in names.iter() {
        let mut cur = key.clone();
        while cur.as_slice() != apex_key {
            let Some(parent) = record::key_parent(&cur) else {
                break;
            };
            if !record::key_is_at_or_below(&parent, apex_key) || known.contains(&parent) {
                break;
            }
            known.insert(parent.clone());
            ents.push((parent.clone(), Vec::new()));
            cur = parent;
        }
    }
    names.extend(ents);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_managed_childs_ds_replaces_the_inputs_only_where_it_is_delegated() {
        let apex: Name<Vec<u8>> = "p.example.".parse().unwrap();
        let text = b"$ORIGIN p.example.\n@ 60 SOA ns h 1 1 1 1 1\n@ 60 NS ns\n\
                     a 60 NS ns.a\na 60 DS 1 13 2 0101\nb 60 NS ns.b\nb 60 DS 2 13 2 0202\n";
        let mut stats = ZoneStats::default();
        let mut recs = read_zone(text, &apex, 100, &mut stats).unwrap();
        let child = |n: &str, ds: Vec<Vec<u8>>| ChildDs {
            child: n.parse().unwrap(),
            ttl: 30,
            ds,
        };
        let new = vec![0, 9, 13, 2, 0xaa];
        let children = [
            child("a.p.example.", vec![new.clone()]),
            // Managed, but not delegated by this zone: nothing is added.
            child("c.p.example.", vec![new.clone()]),
        ];
        // The input's DS at a differs: said, so that its editor knows.
        assert_eq!(
            replace_child_ds(&mut recs, &children),
            (1, vec!["a.p.example.".to_string()])
        );
        let ds_at = |recs: &[Rec], n: &str| -> Vec<(u32, Vec<u8>)> {
            let key = record::name_key(&n.parse::<Name<Vec<u8>>>().unwrap());
            recs.iter()
                .filter(|r| r.rtype == Rtype::DS && r.key() == key)
                .map(|r| (r.ttl, r.rdata().to_vec()))
                .collect()
        };
        assert_eq!(ds_at(&recs, "a.p.example."), vec![(30, new)]);
        // A child keymaster does not manage keeps the input's DS.
        assert_eq!(ds_at(&recs, "b.p.example.").len(), 1);
        assert!(ds_at(&recs, "c.p.example.").is_empty());
        // An unsigned managed child: its delegation loses its DS.
        assert_eq!(
            replace_child_ds(&mut recs, &[child("a.p.example.", vec![])]).0,
            1
        );
        // As the key set has it already: nothing to say.
        assert_eq!(
            replace_child_ds(&mut recs, &[child("a.p.example.", vec![])]),
            (1, vec![])
        );
        assert!(ds_at(&recs, "a.p.example.").is_empty());
    }

    #[test]
    fn an_extra_rrset_replaces_the_inputs_and_a_part_gets_it_only_where_it_holds_the_owner() {
        let apex: Name<Vec<u8>> = "p.example.".parse().unwrap();
        let text = b"$ORIGIN p.example.\n@ 60 SOA ns h 1 1 1 1 1\n@ 60 NS ns\n\
                     _dsync 60 TYPE66 \\# 3 000101\nwww 60 A 192.0.2.1\n";
        let mut stats = ZoneStats::default();
        let recs = read_zone(text, &apex, 100, &mut stats).unwrap();
        let owner: Name<Vec<u8>> = "_dsync.p.example.".parse().unwrap();
        let extra = [ExtraRrset {
            owner: owner.clone(),
            rtype: Rtype::DSYNC,
            ttl: 30,
            rdatas: vec![vec![0, 59, 1, 0, 53, 0], vec![0, 60, 1, 0, 53, 0]],
        }];
        let dsync = |recs: &[Rec]| -> Vec<(u32, Vec<u8>)> {
            let key = record::name_key(&owner);
            let mut out: Vec<_> = recs
                .iter()
                .filter(|r| r.rtype == Rtype::DSYNC && r.key() == key)
                .map(|r| (r.ttl, r.rdata().to_vec()))
                .collect();
            out.sort();
            out
        };
        let want = vec![
            (30, vec![0, 59, 1, 0, 53, 0]),
            (30, vec![0, 60, 1, 0, 53, 0]),
        ];
        let mut whole = recs.clone();
        put_extra(&mut whole, &extra, true);
        assert_eq!(dsync(&whole), want, "the input's DSYNC RRset replaced");
        // A part that holds the owner gets it; one that does not, nothing.
        let mut part = recs.clone();
        put_extra(&mut part, &extra, false);
        assert_eq!(dsync(&part), want);
        let mut other: Vec<Rec> = recs
            .iter()
            .filter(|r| r.rtype == Rtype::A)
            .cloned()
            .collect();
        put_extra(&mut other, &extra, false);
        assert!(dsync(&other).is_empty());
        assert_eq!(other.len(), 1);
    }
}
