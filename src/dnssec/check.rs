//! Checking a signed version of a zone as a validator would see it, before
//! it is served: every RRSIG verifies by a key of the zone's own DNSKEY
//! RRset within a validity window the policy allows; every authoritative
//! RRset is signed with each algorithm of that RRset (RFC 4035 §2.2), the
//! DNSKEY RRset by a key-signing key; the NSEC or NSEC3 chain is ordered,
//! linked and complete, with the types each owner has (RFC 4035 §2.3, RFC
//! 5155 §7.1). keymaster's own signer made the version; this is the second
//! pair of eyes, not the same code again: it reads the version's text back
//! with `domain`'s zone file parser and its crypto.
//!
//! A version is checked chunk by chunk (`read_chunk`, each on its own, so
//! a caller may spread them over threads), then its denial chain over the
//! chunks read (`chain`). A patched version is checked over the chunks
//! made for it with a chunk on either side, whose links to the chunks
//! made are what the chain check needs; the rest was checked when made.

use std::collections::{BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use domain::base::cmp::CanonicalOrd;
use domain::base::iana::Rtype;
use domain::base::name::{FlattenInto, ToLabelIter, ToName};
use domain::base::rdata::ComposeRecordData;
use domain::base::{Name, Record};
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};

use super::denial::{hash_name, Denial, Nsec3Params};
use super::verify::{parse_dnskey, received, verify_signed, ReceivedRrsig};

/// A record read back from a signed version's text.
pub type Rec = Record<Name<Bytes>, ZoneRecordData<Bytes, Name<Bytes>>>;

/// Why a version is not served: the owner and the check that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub owner: String,
    pub check: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.owner, self.check)
    }
}

fn fail(owner: &impl std::fmt::Display, check: String) -> Failure {
    let owner = owner.to_string();
    Failure {
        owner: if owner.ends_with('.') {
            owner
        } else {
            format!("{owner}.")
        },
        check,
    }
}

/// The zone's keys as its DNSKEY RRset has them.
#[derive(Debug, Clone)]
pub struct Keys {
    dnskeys: Vec<Vec<u8>>,
    /// The algorithms every RRset must be signed with (those of the zone
    /// keys not revoked).
    algorithms: BTreeSet<u8>,
}

/// What the checks hold a signature to.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Unix seconds: each signature must be valid then.
    pub now: u64,
    /// The longest a signature may be valid, inception to expiration.
    pub max_window: u32,
}

/// What one chunk showed: its owners in order, and for the denial chain
/// what each has.
#[derive(Debug, Default)]
pub struct ChunkFacts {
    pub owners: Vec<OwnerFacts>,
    pub rrsigs: u64,
    /// The NSEC chain inside the chunk was checked as it was read: only
    /// its first and last authoritative owners are kept, for the links
    /// to the chunks on either side (a zone's owners are not all held at
    /// once).
    inside_checked: bool,
}

#[derive(Debug)]
pub struct OwnerFacts {
    name: Name<Bytes>,
    /// Authoritative data here (not glue below a cut).
    authoritative: bool,
    /// A delegation (NS below the apex).
    delegation: bool,
    /// The types the NSEC/NSEC3 bitmap must list (RRSIG and NSEC as the
    /// owner has them).
    types: BTreeSet<u16>,
    nsec: Option<(Name<Bytes>, BTreeSet<u16>)>,
    nsec3: Option<Nsec3Facts>,
}

#[derive(Debug)]
struct Nsec3Facts {
    hash: Vec<u8>,
    next: Vec<u8>,
    types: BTreeSet<u16>,
    params: (u8, u16, Vec<u8>, bool),
}

/// The records of one chunk of master-file text.
fn read(apex: &Name<Vec<u8>>, text: &[u8]) -> Result<Vec<Rec>, Failure> {
    read_records(apex, text).map_err(|e| fail(apex, e))
}

/// The records of a signed version's master-file text (the signer's own
/// lines, names absolute), read by `domain`'s zone file parser: what the
/// check reads, and what the zone signer serves from.
pub fn read_records(apex: &Name<Vec<u8>>, text: &[u8]) -> Result<Vec<Rec>, String> {
    let mut zonefile = Zonefile::with_capacity(text.len());
    zonefile.extend_from_slice(text);
    let origin =
        Name::from_octets(Bytes::copy_from_slice(apex.as_slice())).map_err(|e| e.to_string())?;
    zonefile.set_origin(origin);
    zonefile.set_default_class(domain::base::iana::Class::IN);
    let mut out = Vec::new();
    for entry in zonefile {
        match entry.map_err(|e| format!("the signed zone does not read back: {e}"))? {
            Entry::Record(r) => out.push(r.flatten_into()),
            _ => return Err("the signed zone holds a directive".into()),
        }
    }
    Ok(out)
}

fn wire(data: &ZoneRecordData<Bytes, Name<Bytes>>) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = data.compose_canonical_rdata(&mut out);
    out
}

impl Keys {
    /// The zone's keys, from the chunk that holds the apex (the first),
    /// with the DNSKEY RRset checked: signed by a key-signing key of its
    /// own, in each algorithm.
    pub fn from_apex(apex: &Name<Vec<u8>>, text: &[u8], bounds: Bounds) -> Result<Keys, Failure> {
        let records = read(apex, text)?;
        let at_apex = |r: &&Rec| r.owner().name_eq(apex);
        let dnskeys: Vec<Vec<u8>> = records
            .iter()
            .filter(at_apex)
            .filter(|r| r.rtype() == Rtype::DNSKEY)
            .map(|r| wire(r.data()))
            .collect();
        if dnskeys.is_empty() {
            return Err(fail(apex, "the apex has no DNSKEY RRset".into()));
        }
        let algorithms = dnskeys
            .iter()
            .filter_map(|k| parse_dnskey(k))
            .filter(|k| k.flags() & 0x0100 != 0 && k.flags() & 0x0080 == 0)
            .map(|k| k.algorithm().to_int())
            .collect();
        let keys = Keys {
            dnskeys,
            algorithms,
        };
        let sigs: Vec<ReceivedRrsig> = records
            .iter()
            .filter(at_apex)
            .filter_map(|r| match r.data() {
                ZoneRecordData::Rrsig(s) if s.type_covered() == Rtype::DNSKEY => received(s),
                _ => None,
            })
            .collect();
        let by_ksk: Vec<u8> = sigs
            .iter()
            .filter(|s| {
                keys.dnskeys.iter().any(|k| {
                    parse_dnskey(k).is_some_and(|d| d.flags() & 1 == 1)
                        && verify_signed(apex, apex, Rtype::DNSKEY, &keys.dnskeys, s, k, bounds.now)
                            .is_ok()
                })
            })
            .map(|s| s.algorithm().to_int())
            .collect();
        for alg in &keys.algorithms {
            if !by_ksk.contains(alg) {
                return Err(fail(
                    apex,
                    format!(
                        "the DNSKEY RRset is not signed by a key-signing key of algorithm {alg}"
                    ),
                ));
            }
        }
        Ok(keys)
    }
}

/// Reads one chunk: with `signatures`, every RRSIG in it is verified and
/// every authoritative RRset must be signed in each algorithm; in any
/// case, what the denial chain check needs.
///
/// Long because it walks the chunk's owners once, keeping the zone cut,
/// each owner's RRsets and signatures, and what the chain check needs.
pub fn read_chunk(
    apex: &Name<Vec<u8>>,
    text: &[u8],
    keys: &Keys,
    signatures: bool,
    denial: &Denial,
    bounds: Bounds,
) -> Result<ChunkFacts, Failure> {
    let records = read(apex, text)?;
    let mut facts = ChunkFacts::default();
    let mut cut: Option<Name<Bytes>> = None;
    let mut i = 0;
    while i < records.len() {
        let owner = own(records[i].owner());
        let mut j = i;
        while j < records.len() && records[j].owner().name_eq(&owner) {
            j += 1;
        }
        let here = &records[i..j];
        i = j;
        let is_apex = owner.name_eq(apex);
        if cut
            .as_ref()
            .is_some_and(|c| owner.ends_with(c) && !owner.name_eq(c))
        {
            facts.owners.push(OwnerFacts::glue(owner));
            continue;
        }
        let delegation = !is_apex && here.iter().any(|r| r.rtype() == Rtype::NS);
        cut = if delegation {
            Some(owner.clone())
        } else {
            None
        };
        let mut rrsets: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
        let mut sigs: Vec<ReceivedRrsig> = Vec::new();
        let (mut nsec, mut nsec3) = (None, None);
        for r in here {
            match r.data() {
                ZoneRecordData::Rrsig(s) => {
                    if let Some(s) = received(s) {
                        sigs.push(s);
                    }
                }
                data => {
                    if let ZoneRecordData::Nsec(n) = data {
                        nsec = Some((
                            n.next_name().clone(),
                            n.types().iter().map(|t| t.to_int()).collect(),
                        ));
                    }
                    if let ZoneRecordData::Nsec3(n) = data {
                        nsec3 = Some(Nsec3Facts {
                            hash: hash_of_owner(&owner).ok_or_else(|| {
                                fail(&owner, "an NSEC3 record whose owner is no hash".into())
                            })?,
                            next: n.next_owner().as_slice().to_vec(),
                            types: n.types().iter().map(|t| t.to_int()).collect(),
                            params: (
                                n.hash_algorithm().to_int(),
                                n.iterations(),
                                n.salt().as_slice().to_vec(),
                                n.opt_out(),
                            ),
                        });
                    }
                    rrsets
                        .entry(r.rtype().to_int())
                        .or_default()
                        .push(wire(data));
                }
            }
        }
        facts.rrsigs += sigs.len() as u64;
        if signatures {
            check_owner(apex, &owner, delegation, &rrsets, &sigs, keys, bounds)?;
        }
        let mut types: BTreeSet<u16> = match delegation {
            // At a cut only the delegation's own types: the NS RRset and
            // the DS RRset; an address here is glue.
            true => rrsets
                .keys()
                .copied()
                .filter(|t| {
                    [Rtype::NS.to_int(), Rtype::DS.to_int(), Rtype::NSEC.to_int()].contains(t)
                })
                .collect(),
            false => rrsets
                .keys()
                .copied()
                .filter(|t| *t != Rtype::NSEC3.to_int())
                .collect(),
        };
        if !sigs.is_empty() && nsec3.is_none() {
            types.insert(Rtype::RRSIG.to_int());
        }
        facts.owners.push(OwnerFacts {
            name: owner,
            authoritative: true,
            delegation,
            types,
            nsec,
            nsec3,
        });
    }
    if *denial == Denial::Nsec {
        chain(apex, &[&facts], denial, false)?;
        let mut auth = facts.owners.into_iter().filter(|o| o.authoritative);
        let first = auth.next();
        let last = auth.last();
        facts.owners = first.into_iter().chain(last).collect();
        facts.inside_checked = true;
    }
    Ok(facts)
}

/// A name with octets of its own (one parsed from a chunk shares the
/// parser's buffer of the whole chunk, which it would keep alive).
fn own(name: &Name<Bytes>) -> Name<Bytes> {
    Name::from_octets(Bytes::copy_from_slice(name.as_slice())).unwrap_or_else(|_| name.clone())
}

impl OwnerFacts {
    fn glue(name: Name<Bytes>) -> OwnerFacts {
        OwnerFacts {
            name,
            authoritative: false,
            delegation: false,
            types: BTreeSet::new(),
            nsec: None,
            nsec3: None,
        }
    }
}

/// The hash an NSEC3 owner's first label spells (Base32hex), if it does.
fn hash_of_owner(owner: &Name<Bytes>) -> Option<Vec<u8>> {
    let label = owner.iter_labels().next()?.to_string();
    domain::utils::base32::decode_hex::<Vec<u8>>(&label.to_ascii_uppercase()).ok()
}

/// One owner's signatures: each verifies, in its window, by a key of
/// the zone; each authoritative RRset has one in every algorithm. Long
/// because each way a signature can fail is its own message.
fn check_owner(
    apex: &Name<Vec<u8>>,
    owner: &Name<Bytes>,
    delegation: bool,
    rrsets: &HashMap<u16, Vec<Vec<u8>>>,
    sigs: &[ReceivedRrsig],
    keys: &Keys,
    bounds: Bounds,
) -> Result<(), Failure> {
    let owner_v: Name<Vec<u8>> = owner.to_name();
    let mut signed: HashMap<u16, BTreeSet<u8>> = HashMap::new();
    for sig in sigs {
        let covered = sig.type_covered();
        let Some(rdatas) = rrsets.get(&covered.to_int()) else {
            return Err(fail(
                owner,
                format!("an RRSIG over {covered}, which the owner does not have"),
            ));
        };
        let window = sig
            .expiration()
            .into_int()
            .wrapping_sub(sig.inception().into_int());
        if window > bounds.max_window {
            return Err(fail(
                owner,
                format!(
                    "the RRSIG over {covered} by key {} is valid for {window} s, more than the \
                     policy allows ({} s)",
                    sig.key_tag(),
                    bounds.max_window
                ),
            ));
        }
        let key = keys.dnskeys.iter().find(|k| {
            parse_dnskey(k)
                .is_some_and(|d| d.key_tag() == sig.key_tag() && d.algorithm() == sig.algorithm())
        });
        let Some(key) = key else {
            return Err(fail(
                owner,
                format!(
                    "the RRSIG over {covered} is by key {} (algorithm {}), which the zone's DNSKEY \
                     RRset does not have",
                    sig.key_tag(),
                    sig.algorithm()
                ),
            ));
        };
        if let Err(e) = verify_signed(&owner_v, apex, covered, rdatas, sig, key, bounds.now) {
            return Err(fail(owner, format!("RRSIG over {covered}: {e}")));
        }
        signed
            .entry(covered.to_int())
            .or_default()
            .insert(sig.algorithm().to_int());
    }
    for t in rrsets.keys() {
        let rtype = Rtype::from_int(*t);
        // A delegation's NS RRset is the child's, not signed here.
        if delegation && rtype != Rtype::DS && rtype != Rtype::NSEC {
            continue;
        }
        let by = signed.get(t).cloned().unwrap_or_default();
        if let Some(missing) = keys.algorithms.iter().find(|a| !by.contains(a)) {
            return Err(fail(
                owner,
                format!("the {rtype} RRset has no valid RRSIG of algorithm {missing}"),
            ));
        }
    }
    Ok(())
}

/// The denial chain over the chunks read (`facts`, in zone order). With
/// `whole`, the chain closes (the last record points to the first) and,
/// for NSEC3, every name that needs a record has one; otherwise only what
/// the chunks read show is checked: each record links to the next read,
/// and (NSEC) each authoritative owner read has its record.
///
/// Long because NSEC and NSEC3 are each checked in one pass.
pub fn chain(
    apex: &Name<Vec<u8>>,
    facts: &[&ChunkFacts],
    denial: &Denial,
    whole: bool,
) -> Result<(), Failure> {
    match denial {
        Denial::Nsec => {
            let mut last: Option<&OwnerFacts> = None;
            for f in facts {
                let mut in_chunk = false;
                for o in f.owners.iter().filter(|o| o.authoritative) {
                    let Some((_, types)) = &o.nsec else {
                        return Err(fail(
                            &o.name,
                            "no NSEC record: the NSEC chain has a hole here".into(),
                        ));
                    };
                    let mut want = o.types.clone();
                    want.insert(Rtype::NSEC.to_int());
                    want.insert(Rtype::RRSIG.to_int());
                    if *types != want {
                        return Err(fail(
                            &o.name,
                            format!(
                                "the NSEC type bitmap lists {}, the owner has {}",
                                show(types),
                                show(&want)
                            ),
                        ));
                    }
                    let linked_already = f.inside_checked && in_chunk;
                    in_chunk = true;
                    if let Some(p) = last.filter(|_| !linked_already) {
                        if p.name.canonical_cmp(&o.name) != std::cmp::Ordering::Less {
                            return Err(fail(
                                &o.name,
                                format!("out of canonical order after {}", p.name),
                            ));
                        }
                        let (p_next, _) = p.nsec.as_ref().expect("checked above");
                        if !p_next.name_eq(&o.name) {
                            return Err(fail(&p.name, format!("its NSEC points to {p_next}., but the next owner is {}.: the NSEC chain has a hole", o.name)));
                        }
                    }
                    last = Some(o);
                }
            }
            if whole {
                if let Some(l) = last {
                    let (next, _) = l.nsec.as_ref().expect("checked above");
                    if !next.name_eq(apex) {
                        return Err(fail(
                            &l.name,
                            format!("the last NSEC points to {next}., not to the apex"),
                        ));
                    }
                }
            }
            Ok(())
        }
        Denial::Nsec3(p) => nsec3_chain(apex, facts, p, whole),
    }
}

fn show(types: &BTreeSet<u16>) -> String {
    types
        .iter()
        .map(|t| Rtype::from_int(*t).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The NSEC3 chain: records in hash order, each linked to the next; with
/// `whole`, closed, and one for every authoritative owner and empty
/// non-terminal (those of insecure delegations may be left out with
/// opt-out), with its types, and none for a name that is not there.
///
/// Long because links, parameters and coverage are checked in one pass.
fn nsec3_chain(
    apex: &Name<Vec<u8>>,
    facts: &[&ChunkFacts],
    p: &Nsec3Params,
    whole: bool,
) -> Result<(), Failure> {
    let all: Vec<&OwnerFacts> = facts.iter().flat_map(|f| f.owners.iter()).collect();
    let records: Vec<(&OwnerFacts, &Nsec3Facts)> = all
        .iter()
        .filter_map(|o| o.nsec3.as_ref().map(|n| (*o, n)))
        .collect();
    let want = (1u8, p.iterations, p.salt.clone(), p.opt_out);
    for w in records.windows(2) {
        let ((a, an), (b, bn)) = (w[0], w[1]);
        if an.hash >= bn.hash {
            return Err(fail(&b.name, format!("out of hash order after {}", a.name)));
        }
        if an.next != bn.hash {
            return Err(fail(
                &a.name,
                format!(
                    "its NSEC3 does not point to the next hash ({}.): the NSEC3 chain has a hole",
                    b.name
                ),
            ));
        }
    }
    for (o, n) in &records {
        if n.params != want {
            return Err(fail(
                &o.name,
                "NSEC3 parameters other than the zone's".into(),
            ));
        }
    }
    if !whole {
        return Ok(());
    }
    if let (Some((l, ln)), Some((_, f))) = (records.last(), records.first()) {
        if ln.next != f.hash {
            return Err(fail(
                &l.name,
                "the last NSEC3 does not point to the first: the chain is not closed".into(),
            ));
        }
    }
    // What must be there: each authoritative owner by its types, and each
    // empty non-terminal with none.
    let mut need: HashMap<Vec<u8>, (String, Option<BTreeSet<u16>>)> = HashMap::new();
    let mut names: HashSet<Vec<u8>> = HashSet::new();
    for o in all.iter().filter(|o| o.authoritative && o.nsec3.is_none()) {
        names.insert(lower_wire(&o.name));
    }
    for o in all.iter().filter(|o| o.authoritative && o.nsec3.is_none()) {
        let insecure = o.delegation && !o.types.contains(&Rtype::DS.to_int());
        let w = lower_wire(&o.name);
        let mut types = o.types.clone();
        if !types.is_empty() && !insecure {
            types.insert(Rtype::RRSIG.to_int());
        }
        if o.name.name_eq(apex) {
            types.insert(Rtype::NSEC3PARAM.to_int());
        }
        need.insert(
            hash_name(&w, p),
            (
                o.name.to_string(),
                if insecure && p.opt_out {
                    None
                } else {
                    Some(types)
                },
            ),
        );
        // Empty non-terminals between the owner and the apex.
        let mut up: Name<Bytes> = o.name.clone();
        while let Some(parent) = up.parent() {
            if !parent.ends_with(apex) || parent.name_eq(apex) {
                break;
            }
            let pw = lower_wire(&parent);
            if !names.contains(&pw) {
                need.entry(hash_name(&pw, p)).or_insert((
                    parent.to_string(),
                    if p.opt_out {
                        None
                    } else {
                        Some(BTreeSet::new())
                    },
                ));
            }
            up = parent;
        }
    }
    let mut seen = HashSet::new();
    for (o, n) in &records {
        match need.get(&n.hash) {
            None => {
                return Err(fail(
                    &o.name,
                    "an NSEC3 record for no name of the zone".into(),
                ))
            }
            Some((name, Some(types))) if *types != n.types => {
                let mut listed = n.types.clone();
                listed.remove(&Rtype::NSEC3.to_int());
                if listed != *types {
                    return Err(fail(
                        &o.name,
                        format!(
                            "the NSEC3 type bitmap (for {name}) lists {}, the owner has {}",
                            show(&n.types),
                            show(types)
                        ),
                    ));
                }
            }
            Some(_) => {}
        }
        seen.insert(n.hash.clone());
    }
    for (hash, (name, types)) in &need {
        if types.is_some() && !seen.contains(hash) {
            return Err(fail(
                name,
                "no NSEC3 record: the NSEC3 chain has a hole here".into(),
            ));
        }
    }
    Ok(())
}

/// For a patched NSEC3 version: every authoritative owner of the chunks
/// made for it (`facts`) has its NSEC3 record in the version (`groups`,
/// the version's RRsets by owner and type), unless opt-out spares it.
/// (An empty non-terminal a change made is not looked for.)
pub fn nsec3_in_version(
    apex: &Name<Vec<u8>>,
    facts: &ChunkFacts,
    p: &Nsec3Params,
    groups: &super::reuse::Groups,
) -> Result<(), Failure> {
    for o in facts
        .owners
        .iter()
        .filter(|o| o.authoritative && o.nsec3.is_none())
    {
        let insecure = o.delegation && !o.types.contains(&Rtype::DS.to_int());
        if insecure && p.opt_out {
            continue;
        }
        let hash = hash_name(&lower_wire(&o.name), p);
        let label = super::denial::hash_label(&hash);
        let above = apex.to_string();
        let owner = match above.as_str() {
            "." | "" => format!("{label}."),
            a => format!("{label}.{}.", a.trim_end_matches('.')),
        };
        let hashed: Name<Vec<u8>> = owner
            .parse()
            .map_err(|_| fail(&o.name, "its NSEC3 owner name does not parse".into()))?;
        let key = super::reuse::group_key(&super::record::name_key(&hashed), Rtype::NSEC3);
        if !groups.contains_key(&key) {
            return Err(fail(
                &o.name,
                format!("no NSEC3 record ({label}): the NSEC3 chain has a hole here"),
            ));
        }
    }
    Ok(())
}

fn lower_wire(name: &Name<Bytes>) -> Vec<u8> {
    name.as_slice().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn apex() -> Name<Vec<u8>> {
        Name::from_str("example.").unwrap()
    }

    const BOUNDS: Bounds = Bounds {
        now: 1_800_000_000,
        max_window: 86_400,
    };

    /// The chain of `text` (unsigned: signatures are not checked here).
    fn nsec_chain(text: &str) -> Result<(), Failure> {
        let keys = Keys {
            dnskeys: Vec::new(),
            algorithms: BTreeSet::new(),
        };
        let facts = read_chunk(
            &apex(),
            text.as_bytes(),
            &keys,
            false,
            &Denial::Nsec,
            BOUNDS,
        )?;
        chain(&apex(), &[&facts], &Denial::Nsec, true)
    }

    const GOOD: &str = "example. 60 IN SOA ns.example. h.example. 1 10 10 60 60\n\
        example. 60 IN NS ns.example.\n\
        example. 60 IN NSEC a.example. NS SOA RRSIG NSEC\n\
        a.example. 60 IN A 192.0.2.1\n\
        a.example. 60 IN TXT \"x\"\n\
        a.example. 60 IN NSEC ns.example. A TXT RRSIG NSEC\n\
        ns.example. 60 IN A 192.0.2.2\n\
        ns.example. 60 IN NSEC sub.example. A RRSIG NSEC\n\
        sub.example. 60 IN NS ns.sub.example.\n\
        sub.example. 60 IN NSEC example. NS RRSIG NSEC\n\
        ns.sub.example. 60 IN A 192.0.2.53\n";

    #[test]
    fn a_whole_nsec_chain_passes_and_each_break_is_named() {
        nsec_chain(GOOD).unwrap();
        // A hole: a.example.'s NSEC taken out.
        let hole = GOOD.replace("a.example. 60 IN NSEC ns.example. A TXT RRSIG NSEC\n", "");
        let e = nsec_chain(&hole).unwrap_err();
        assert_eq!(e.owner, "a.example.");
        assert!(e.check.contains("no NSEC record"), "{e}");
        // A link that skips an owner.
        let skip = GOOD.replace("NSEC ns.example. A TXT", "NSEC sub.example. A TXT");
        let e = nsec_chain(&skip).unwrap_err();
        assert_eq!(e.owner, "a.example.");
        assert!(
            e.check
                .contains("points to sub.example., but the next owner is ns.example."),
            "{e}"
        );
        // A bitmap that leaves a type out.
        let bitmap = GOOD.replace("NSEC ns.example. A TXT RRSIG", "NSEC ns.example. A RRSIG");
        let e = nsec_chain(&bitmap).unwrap_err();
        assert!(
            e.check
                .contains("bitmap lists A RRSIG NSEC, the owner has A TXT RRSIG NSEC"),
            "{e}"
        );
        // The chain does not close at the apex.
        let open = GOOD.replace(
            "sub.example. 60 IN NSEC example.",
            "sub.example. 60 IN NSEC a.example.",
        );
        let e = nsec_chain(&open).unwrap_err();
        assert!(e.check.contains("not to the apex"), "{e}");
    }

    #[test]
    fn glue_needs_no_nsec_and_a_delegation_lists_only_its_own_types() {
        // Glue at the delegation point itself is not in its bitmap.
        let glue_at_cut = GOOD.replace(
            "sub.example. 60 IN NS ns.sub.example.\n",
            "sub.example. 60 IN NS ns.sub.example.\nsub.example. 60 IN A 192.0.2.9\n",
        );
        nsec_chain(&glue_at_cut).unwrap();
        let listed = GOOD.replace(
            "NSEC example. NS RRSIG NSEC",
            "NSEC example. A NS RRSIG NSEC",
        );
        let e = nsec_chain(&listed).unwrap_err();
        assert_eq!(e.owner, "sub.example.");
    }

    #[test]
    fn a_patched_nsec3_owner_must_have_its_record_in_the_version() {
        use crate::dnssec::reuse::{group_key, Group, Groups};
        let p = Nsec3Params::default();
        let denial = Denial::Nsec3(p.clone());
        let keys = Keys {
            dnskeys: Vec::new(),
            algorithms: BTreeSet::new(),
        };
        let text = "example. 60 IN SOA ns.example. h.example. 1 10 10 60 60\n\
            example. 60 IN NS ns.example.\n\
            a.example. 60 IN A 192.0.2.1\n\
            sub.example. 60 IN NS ns.sub.example.\n";
        let facts = read_chunk(&apex(), text.as_bytes(), &keys, false, &denial, BOUNDS).unwrap();
        let hashed = |name: &str| {
            let n = Name::<Vec<u8>>::from_str(name).unwrap();
            let label = crate::dnssec::denial::hash_label(&hash_name(n.as_slice(), &p));
            let h = Name::<Vec<u8>>::from_str(&format!("{label}.example.")).unwrap();
            group_key(&crate::dnssec::record::name_key(&h), Rtype::NSEC3)
        };
        let group = || Group {
            digest: 0,
            keys: 0,
            sigs: 0,
            expiration: 0,
            chunk: 0,
            start: 0,
            len: 0,
            sigs_at: 0,
        };
        let mut groups = Groups::default();
        for name in ["example.", "a.example.", "sub.example."] {
            groups.insert(hashed(name), group());
        }
        nsec3_in_version(&apex(), &facts, &p, &groups).unwrap();
        groups.remove(&hashed("a.example."));
        let e = nsec3_in_version(&apex(), &facts, &p, &groups).unwrap_err();
        assert_eq!(e.owner, "a.example.");
        assert!(e.check.contains("the NSEC3 chain has a hole here"), "{e}");
        // An insecure delegation may be left out under opt-out only.
        groups.insert(hashed("a.example."), group());
        groups.remove(&hashed("sub.example."));
        assert!(nsec3_in_version(&apex(), &facts, &p, &groups).is_err());
        let opt_out = Nsec3Params {
            opt_out: true,
            ..p.clone()
        };
        nsec3_in_version(&apex(), &facts, &opt_out, &groups).unwrap();
    }
}
