//! A signed version made from the last by a known change of its source
//! (the differences an IXFR from the primary brought), or by no change at
//! all but signatures coming due (a refresh round), without reading or
//! planning the rest of the zone: only the chunks (`reuse::Chunk`) that
//! hold a changed owner, the chunk before each (whose last NSEC may name
//! it), the chunks with signatures due and the apex's chunk (the SOA) are
//! read back, changed, planned and signed again; every other chunk is
//! shared with the last version.
//!
//! Only what stays within those chunks is patched: a change that adds or
//! removes no zone cut (NS away from the apex) and no DNAME, which would
//! turn names in other chunks into glue or back, and that leaves the
//! denial records' TTL as it was; in an NSEC3 zone also no name and no
//! type that comes or goes, which would change the chain. Anything else
//! is signed whole (`None`), which is always right.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;

use domain::base::iana::Rtype;
use domain::base::Name;

use super::denial::Denial;
use super::record::{self, Rec};
use super::reuse::{group_key, GroupKey, Previous};
use super::zone::{
    plan_chain_part, plan_part, read_nsec3, read_zone, Part, ZoneError, ZonePlan, ZoneSignConfig,
    ZoneStats,
};

/// Consecutive chunks of the last version, `from..to`, and the plan that
/// replaces them; with the RRsets the replaced chunks held.
pub struct Run {
    pub from: usize,
    pub to: usize,
    pub plan: ZonePlan,
    pub old_keys: HashSet<GroupKey>,
}

/// Plans the change of `prev` by the records `deleted` and `added` (as
/// `read_zone` read them; the apex SOA among `added` is the source's new
/// one; without one the last SOA stays, with the new serial), or None
/// when it cannot be patched.
///
/// In an NSEC3 zone the chain is in chunks of its own after the owners'
/// (in hash order); a change is patched only if it leaves every owner's
/// types as they were (a record's data or TTL), so that the chain stays
/// as it is, and a chain chunk is signed again only when it is due.
///
/// Long because what a patch redoes is decided in one pass over the
/// chunks (changed owners, their neighbours, what is due, the apex); split,
/// the pieces would share every local.
pub fn plan_patch(
    prev: &Previous,
    deleted: &[Rec],
    added: &[Rec],
    config: &ZoneSignConfig,
    stats: &mut ZoneStats,
) -> Result<Option<Vec<Run>>, ZoneError> {
    if config.unsigned || prev.chunks.is_empty() {
        return Ok(None);
    }
    let nsec3 = matches!(config.denial, Denial::Nsec3(_));
    let apex_key = record::name_key(&config.apex);
    let is_soa = |r: &Rec| r.rtype == Rtype::SOA && r.key() == apex_key;
    let moves_a_cut = |r: &Rec| r.key() != apex_key && matches!(r.rtype, Rtype::NS | Rtype::DNAME);
    if deleted.iter().chain(added).any(moves_a_cut) {
        return Ok(None);
    }
    let new_soa = added.iter().find(|r| is_soa(r));
    // The apex's NSEC3 record is in the chain: the apex's types must stay.
    let has = |t: Rtype| prev.get(group_key(&apex_key, t)).is_some();
    if nsec3
        && (has(Rtype::CDS) == config.cds.is_empty()
            || has(Rtype::CDNSKEY) == config.cdnskeys.is_empty())
    {
        return Ok(None);
    }
    // The owners' chunks; an NSEC3 chain's follow.
    let owners = prev.chunks.iter().take_while(|c| !c.chain).count();
    // The chunk an owner is in (or would go in): the last that starts at
    // or before it.
    let chunk_of = |key: &[u8]| {
        prev.chunks[..owners]
            .partition_point(|c| c.first.as_slice() <= key)
            .saturating_sub(1)
    };
    let mut touched = BTreeSet::from([0]);
    // Chunks whose signatures are due are signed again in any case.
    touched.extend((0..prev.chunks.len()).filter(|&i| prev.chunks[i].expires < config.reuse_until));
    for r in deleted.iter().chain(added).filter(|r| !is_soa(r)) {
        let i = chunk_of(r.key());
        touched.insert(i);
        // The owner before a name that comes or goes may be the last of
        // the chunk before; its NSEC names the next owner.
        if !nsec3 {
            touched.insert(i.saturating_sub(1));
        }
    }
    let gone: HashSet<(&[u8], u16, &[u8])> = deleted
        .iter()
        .filter(|r| !is_soa(r))
        .map(|r| (r.key(), r.rtype.to_int(), r.rdata()))
        .collect();
    let mut runs = Vec::new();
    let touched: Vec<usize> = touched.into_iter().collect();
    let mut denial_ttl = None;
    let mut k = 0;
    while k < touched.len() {
        let from = touched[k];
        let mut to = from + 1;
        // A run is of owners' chunks or of chain chunks, not both.
        while k + 1 < touched.len() && touched[k + 1] == to && to != owners {
            to += 1;
            k += 1;
        }
        k += 1;
        let mut text = Vec::new();
        for c in &prev.chunks[from..to] {
            text.extend_from_slice(&c.text);
        }
        let old_keys = group_keys(&text);
        if from >= owners {
            let plan = plan_chain_part(read_nsec3(&text, &config.apex)?, config);
            runs.push(Run {
                from,
                to,
                plan,
                old_keys,
            });
            continue;
        }
        let mut scratch = ZoneStats::default();
        let mut recs = read_zone(&text, &config.apex, usize::MAX, &mut scratch)?;
        if from == 0 {
            // The first run: it holds the apex. Denial records keep their
            // TTL only if the SOA's TTL and MINIMUM leave it as it was.
            let Some(old) = recs.iter().find(|r| is_soa(r)).map(denial_ttl_of) else {
                return Ok(None);
            };
            if new_soa.is_some_and(|n| denial_ttl_of(n) != old) {
                return Ok(None);
            }
            denial_ttl = Some(old);
        }
        let Some(denial_ttl) = denial_ttl else {
            return Ok(None);
        };
        let types_before = nsec3.then(|| owner_types(&recs));
        // The SOA goes if the change brings a new one; each record deleted.
        let replaced = |r: &Rec| is_soa(r) && new_soa.is_some();
        let deleted = |r: &Rec| gone.contains(&(r.key(), r.rtype.to_int(), r.rdata()));
        recs.retain(|r| !replaced(r) && !deleted(r));
        recs.extend(
            added
                .iter()
                .filter(|r| match is_soa(r) {
                    true => from == 0,
                    false => (from..to).contains(&chunk_of(r.key())),
                })
                .cloned(),
        );
        if types_before.is_some_and(|before| before != owner_types(&recs)) {
            return Ok(None);
        }
        let next = match prev.chunks[..owners].get(to) {
            Some(c) => c.first.clone(),
            None => apex_key.clone(),
        };
        let part = Part { next, denial_ttl };
        let plan = plan_part(recs, config, &part, stats)?;
        runs.push(Run {
            from,
            to,
            plan,
            old_keys,
        });
    }
    Ok(Some(runs))
}

/// Each owner's types: what its NSEC3 record lists.
fn owner_types(recs: &[Rec]) -> BTreeMap<Vec<u8>, BTreeSet<u16>> {
    let mut out: BTreeMap<Vec<u8>, BTreeSet<u16>> = BTreeMap::new();
    for r in recs {
        out.entry(r.key().to_vec())
            .or_default()
            .insert(r.rtype.to_int());
    }
    out
}

/// The TTL of denial records: the lesser of the SOA's TTL and MINIMUM
/// (RFC 9077).
fn denial_ttl_of(soa: &Rec) -> u32 {
    let rd = soa.rdata();
    let minimum = u32::from_be_bytes(rd[rd.len() - 4..].try_into().expect("SOA has MINIMUM"));
    soa.ttl.min(minimum)
}

/// The RRsets (owner and type, as `reuse::group_key`) of signed text as
/// the signer writes it: one record per line, tab-separated, names
/// absolute. RRSIGs are part of the RRset they cover.
fn group_keys(text: &[u8]) -> HashSet<GroupKey> {
    let mut keys = HashSet::new();
    let mut last: Option<(&[u8], Vec<u8>)> = None;
    for line in text.split(|b| *b == b'\n') {
        let mut f = line.split(|b| *b == b'\t');
        let (Some(owner), Some(rtype)) = (f.next(), f.nth(2)) else {
            continue;
        };
        let Ok(rtype) = Rtype::from_str(&String::from_utf8_lossy(rtype)) else {
            continue;
        };
        if rtype == Rtype::RRSIG {
            continue;
        }
        let key = match &last {
            Some((o, k)) if *o == owner => k.clone(),
            _ => {
                let Ok(name) = Name::<Vec<u8>>::from_str(&String::from_utf8_lossy(owner)) else {
                    continue;
                };
                let k = record::name_key(&name);
                last = Some((owner, k.clone()));
                k
            }
        };
        keys.insert(group_key(&key, rtype));
    }
    keys
}
