//! A signed version made from the last by a known change of its source
//! (the differences an IXFR from the primary brought), without reading or
//! planning the rest of the zone: only the chunks (`reuse::Chunk`) that
//! hold a changed owner, the chunk before each (whose last NSEC may name
//! it) and the apex's chunk (the SOA) are read back, changed, planned and
//! signed again; every other chunk is shared with the last version.
//!
//! Only what stays within those chunks is patched: an NSEC zone whose
//! change adds or removes no zone cut (NS away from the apex) and no
//! DNAME, which would turn names in other chunks into glue or back.
//! Anything else is signed whole (`None`), which is always right.

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use domain::base::iana::Rtype;
use domain::base::Name;

use super::denial::Denial;
use super::record::{self, Rec};
use super::reuse::{group_key, GroupKey, Previous};
use super::zone::{plan_part, read_zone, Part, ZoneError, ZonePlan, ZoneSignConfig, ZoneStats};

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
/// one), or None when it cannot be patched.
pub fn plan_patch(
    prev: &Previous,
    deleted: &[Rec],
    added: &[Rec],
    config: &ZoneSignConfig,
    stats: &mut ZoneStats,
) -> Result<Option<Vec<Run>>, ZoneError> {
    if config.unsigned || !matches!(config.denial, Denial::Nsec) || prev.chunks.is_empty() {
        return Ok(None);
    }
    let apex_key = record::name_key(&config.apex);
    let is_soa = |r: &Rec| r.rtype == Rtype::SOA && r.key() == apex_key;
    let moves_a_cut = |r: &Rec| r.key() != apex_key && matches!(r.rtype, Rtype::NS | Rtype::DNAME);
    if deleted.iter().chain(added).any(moves_a_cut) {
        return Ok(None);
    }
    let Some(soa) = added.iter().find(|r| is_soa(r)) else {
        return Ok(None);
    };
    let rd = soa.rdata();
    let minimum = u32::from_be_bytes(rd[rd.len() - 4..].try_into().expect("SOA has MINIMUM"));
    let denial_ttl = soa.ttl.min(minimum);
    // The chunk an owner is in (or would go in): the last that starts at
    // or before it.
    let chunk_of = |key: &[u8]| {
        prev.chunks
            .partition_point(|c| c.first.as_slice() <= key)
            .saturating_sub(1)
    };
    let mut touched = BTreeSet::from([0]);
    for r in deleted.iter().chain(added).filter(|r| !is_soa(r)) {
        let i = chunk_of(r.key());
        touched.insert(i);
        // The owner before a name that comes or goes may be the last of
        // the chunk before; its NSEC names the next owner.
        touched.insert(i.saturating_sub(1));
    }
    let gone: HashSet<(&[u8], u16, &[u8])> = deleted
        .iter()
        .filter(|r| !is_soa(r))
        .map(|r| (r.key(), r.rtype.to_int(), r.rdata()))
        .collect();
    let mut runs = Vec::new();
    let touched: Vec<usize> = touched.into_iter().collect();
    let mut k = 0;
    while k < touched.len() {
        let from = touched[k];
        let mut to = from + 1;
        while k + 1 < touched.len() && touched[k + 1] == to {
            to += 1;
            k += 1;
        }
        k += 1;
        let mut text = Vec::new();
        for c in &prev.chunks[from..to] {
            text.extend_from_slice(&c.text);
        }
        let mut scratch = ZoneStats::default();
        let mut recs = read_zone(&text, &config.apex, usize::MAX, &mut scratch)?;
        recs.retain(|r| !is_soa(r) && !gone.contains(&(r.key(), r.rtype.to_int(), r.rdata())));
        recs.extend(
            added
                .iter()
                .filter(|r| match is_soa(r) {
                    true => from == 0,
                    false => (from..to).contains(&chunk_of(r.key())),
                })
                .cloned(),
        );
        let next = match prev.chunks.get(to) {
            Some(c) => c.first.clone(),
            None => apex_key.clone(),
        };
        let part = Part { next, denial_ttl };
        let plan = plan_part(recs, config, &part, stats)?;
        runs.push(Run {
            from,
            to,
            plan,
            old_keys: group_keys(&text),
        });
    }
    Ok(Some(runs))
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
