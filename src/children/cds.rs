//! The parent's side of RFC 7344 and RFC 8078: whether what a child's
//! servers publish as CDS/CDNSKEY may replace the DS RRset the parent
//! publishes for it (`decide`), and of RFC 9615: whether an insecure
//! child's CDS/CDNSKEY, signalled by its DNS operator, may be its first
//! DS RRset (`bootstrap`). No I/O: the servers' answers and the signals
//! come in, a decision goes out (ARCHITECTURE.md, Delegations).

use domain::base::iana::Rtype;
use domain::base::name::Name;

use crate::dnssec::ds::{ds, ds_wire, DsDigest};
use crate::dnssec::serial::after;
use crate::dnssec::verify::{parse_dnskey, verify_rrset, ReceivedRrsig};

/// What one server serves at the child's apex.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub dnskey: Vec<Vec<u8>>,
    pub dnskey_sigs: Vec<ReceivedRrsig>,
    pub cds: Vec<Vec<u8>>,
    pub cds_sigs: Vec<ReceivedRrsig>,
    pub cdnskey: Vec<Vec<u8>>,
    pub cdnskey_sigs: Vec<ReceivedRrsig>,
}

/// What the parent holds for the child.
#[derive(Debug, Clone)]
pub struct Current<'a> {
    /// The DS RRset published now (record data, wire form).
    pub ds: &'a [Vec<u8>],
    /// The latest RRSIG inception of a CDS/CDNSKEY RRset accepted before.
    pub accepted_inception: u32,
    /// Whether a delete request may take the DS away.
    pub allow_delete: bool,
}

/// What to do with the parent's DS RRset for the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep it; `inception` is what to remember as accepted.
    Unchanged { why: String, inception: u32 },
    /// Replace it with `ds` (empty: the child goes insecure).
    Replace {
        ds: Vec<Vec<u8>>,
        inception: u32,
        why: String,
    },
    /// Keep it, and report why the child's request is not taken.
    Refused(String),
}

/// What one server's answer asks the parent for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wish {
    /// No CDS and no CDNSKEY: leave the DS alone (RFC 7344 §6.1.1).
    Nothing,
    /// Remove the DS RRset (RFC 8078 §4).
    Delete,
    /// Make the DS RRset this (sorted).
    Ds(Vec<Vec<u8>>),
}

/// One server's answer, checked.
struct Read {
    wish: Wish,
    /// The earliest inception among the RRSIGs that authenticate the wish.
    inception: u32,
    /// DNSKEY records (wire) that sign the DNSKEY RRset served.
    self_signers: Vec<Vec<u8>>,
}

/// Decides on the answers of all the child's servers (each named; an
/// error is a server that could not be asked), for a secure delegation
/// (`current.ds` not empty; an insecure one is `bootstrap`'s).
///
/// Long because it is RFC 7344/8078's rules in order (every server
/// agrees, each CDS signed by a key of the current DS, the delete record, no
/// change), each a refusal naming what failed.
pub fn decide(
    apex: &Name<Vec<u8>>,
    current: &Current,
    answers: &[(String, Result<Served, String>)],
    now: u64,
) -> Decision {
    if answers.is_empty() {
        return Decision::Refused("no server of the child to ask".into());
    }
    let mut reads = Vec::new();
    let mut faults = Vec::new();
    for (server, answer) in answers {
        match answer
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| read(apex, current.ds, s, now))
        {
            Ok(r) => reads.push((server, r)),
            Err(why) => faults.push(format!("{server}: {why}")),
        }
    }
    if !faults.is_empty() {
        return Decision::Refused(faults.join("; "));
    }
    let first = &reads[0].1.wish;
    if reads.iter().any(|(_, r)| &r.wish != first) {
        let said: Vec<String> = reads
            .iter()
            .map(|(s, r)| format!("{s} {}", describe(&r.wish)))
            .collect();
        return Decision::Refused(format!("the child's servers disagree: {}", said.join("; ")));
    }
    let inception = reads
        .iter()
        .map(|(_, r)| r.inception)
        .reduce(earliest)
        .unwrap_or(0);
    let new = match first {
        Wish::Nothing => {
            return Decision::Unchanged {
                why: "no CDS or CDNSKEY published".into(),
                inception: current.accepted_inception,
            }
        }
        Wish::Delete if !current.allow_delete => {
            return Decision::Refused(
                "the child asks for its DS to be removed (an RFC 8078 delete), and the \
                 delegation does not allow it (zone delegation add --allow-delete)"
                    .into(),
            )
        }
        Wish::Delete => Vec::new(),
        Wish::Ds(new) => new.clone(),
    };
    let mut now_ds = current.ds.to_vec();
    now_ds.sort();
    now_ds.dedup();
    if new == now_ds {
        return Decision::Unchanged {
            why: "the DS RRset already matches the child's CDS".into(),
            inception: later(inception, current.accepted_inception),
        };
    }
    if current.accepted_inception != 0 && after(current.accepted_inception, inception) {
        return Decision::Refused(format!(
            "the CDS/CDNSKEY RRset was signed at {}, before the one accepted (signed at {}): \
             an older request is not taken (RFC 7344 §6.2)",
            crate::clock::rfc3339(inception.into()),
            crate::clock::rfc3339(current.accepted_inception.into())
        ));
    }
    if !new.is_empty() {
        for (server, r) in &reads {
            let continues = r.self_signers.iter().any(|k| matches_key(apex, &new, k));
            if !continues {
                return Decision::Refused(format!(
                    "{server}: the requested DS RRset would break the delegation: none of \
                     its records matches a key that signs the child's DNSKEY RRset \
                     (RFC 7344 §4.1)"
                ));
            }
        }
    }
    Decision::Replace {
        why: describe(first),
        ds: new,
        inception,
    }
}

/// What a child's DNS operator signals under one of the child's name
/// servers (RFC 9615 §3): the name server, and the CDS and CDNSKEY RRsets
/// at its signalling name, validated; or why they could not be had.
pub type Signal = (String, Result<(Vec<Vec<u8>>, Vec<Vec<u8>>), String>);

/// Decides whether an insecure child gets its first DS RRset from its
/// CDS/CDNSKEY (RFC 9615 §4.2): every server of the child answers, and
/// all serve the same CDS and CDNSKEY RRsets; the DS RRset they ask for
/// keeps the child valid (a key it points to signs the DNSKEY RRset); and
/// under every name server, the signals validate and are the same RRsets.
/// Any failure refuses, naming each server or name server at fault.
///
/// Long because it is RFC 9615 §4.2's checks in order, each a refusal
/// naming what failed.
pub fn bootstrap(
    apex: &Name<Vec<u8>>,
    answers: &[(String, Result<Served, String>)],
    signals: &[Signal],
    now: u64,
) -> Decision {
    let unchanged = |why: &str| Decision::Unchanged {
        why: why.into(),
        inception: 0,
    };
    if answers.is_empty() {
        return Decision::Refused("no server of the child to ask".into());
    }
    let faults: Vec<String> = answers
        .iter()
        .filter_map(|(s, a)| a.as_ref().err().map(|e| format!("{s}: {e}")))
        .collect();
    if !faults.is_empty() {
        return Decision::Refused(faults.join("; "));
    }
    let served: Vec<(&String, &Served)> = answers
        .iter()
        .filter_map(|(s, a)| a.as_ref().ok().map(|a| (s, a)))
        .collect();
    let (first_server, first) = served[0];
    let (cds, cdnskey) = (sorted(&first.cds), sorted(&first.cdnskey));
    for (server, s) in &served[1..] {
        if sorted(&s.cds) != cds || sorted(&s.cdnskey) != cdnskey {
            return Decision::Refused(format!(
                "the child's servers disagree: {server} does not serve the CDS/CDNSKEY \
                 RRsets {first_server} serves"
            ));
        }
    }
    if cds.is_empty() && cdnskey.is_empty() {
        return unchanged(
            "an insecure delegation whose child publishes no CDS or CDNSKEY: nothing to bootstrap",
        );
    }
    let new = match wish(apex, first) {
        Err(e) => return Decision::Refused(format!("{first_server}: {e}")),
        Ok(Wish::Nothing) => return unchanged("no CDS or CDNSKEY published"),
        Ok(Wish::Delete) => return unchanged(
            "an insecure delegation whose child publishes a delete (RFC 8078): it stays insecure",
        ),
        Ok(Wish::Ds(new)) => new,
    };
    for (server, s) in &served {
        let continues = s.dnskey.iter().any(|k| {
            matches_key(apex, &new, k)
                && s.dnskey_sigs
                    .iter()
                    .any(|sig| verify_rrset(apex, Rtype::DNSKEY, &s.dnskey, sig, k, now).is_ok())
        });
        if !continues {
            return Decision::Refused(format!(
                "{server}: the requested DS RRset matches no key that signs the child's \
                 DNSKEY RRset: taking it would make the child bogus (RFC 7344 §4.1)"
            ));
        }
    }
    if signals.is_empty() {
        return Decision::Refused("no name server of the child to look for signals under".into());
    }
    let mut faults = Vec::new();
    for (ns, signal) in signals {
        match signal {
            Err(e) => faults.push(format!("under {ns}: {e}")),
            Ok((c, k)) if c.is_empty() && k.is_empty() => {
                faults.push(format!("under {ns}: no signal (no CDS or CDNSKEY)"))
            }
            Ok((c, k)) => {
                if sorted(c) != cds {
                    faults.push(format!(
                        "under {ns}: the signalled CDS RRset is not the child's"
                    ));
                }
                if sorted(k) != cdnskey {
                    faults.push(format!(
                        "under {ns}: the signalled CDNSKEY RRset is not the child's"
                    ));
                }
            }
        }
    }
    if !faults.is_empty() {
        return Decision::Refused(format!(
            "not bootstrapped (RFC 9615): {}",
            faults.join("; ")
        ));
    }
    // The earliest signature over the requests, by a key they name: what
    // a later request is measured against (RFC 7344 §6.2).
    let mut inception: Option<u32> = None;
    for (_, s) in &served {
        for (rtype, rdatas, sigs) in [
            (Rtype::CDS, &s.cds, &s.cds_sigs),
            (Rtype::CDNSKEY, &s.cdnskey, &s.cdnskey_sigs),
        ] {
            for sig in sigs {
                let by_new_key = s.dnskey.iter().any(|k| {
                    matches_key(apex, &new, k)
                        && verify_rrset(apex, rtype, rdatas, sig, k, now).is_ok()
                });
                if by_new_key {
                    let i = sig.inception().into_int();
                    inception = Some(inception.map_or(i, |e| earliest(e, i)));
                }
            }
        }
    }
    let inception = inception.unwrap_or(0);
    let under: Vec<&str> = signals.iter().map(|(ns, _)| ns.as_str()).collect();
    Decision::Replace {
        why: format!(
            "{}, signalled alike by its DNS operator under {} (RFC 9615 bootstrapping)",
            describe(&Wish::Ds(new.clone())),
            under.join(", ")
        ),
        ds: new,
        inception,
    }
}

fn sorted(v: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

fn describe(w: &Wish) -> String {
    match w {
        Wish::Nothing => "publishes no CDS or CDNSKEY".into(),
        Wish::Delete => "asks for the DS to be removed (RFC 8078 delete)".into(),
        Wish::Ds(ds) => format!(
            "asks for DS {}",
            ds.iter()
                .map(|d| crate::dnssec::ds::ds_text(d))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Checks one server's answer against the DS the parent publishes.
///
/// Long because one server's answer is read in one pass (CDS,
/// CDNSKEY, their RRSIGs, the SOA serial), each failure naming the server.
fn read(
    apex: &Name<Vec<u8>>,
    current_ds: &[Vec<u8>],
    s: &Served,
    now: u64,
) -> Result<Read, String> {
    let self_signers: Vec<Vec<u8>> = s
        .dnskey
        .iter()
        .filter(|k| {
            s.dnskey_sigs
                .iter()
                .any(|sig| verify_rrset(apex, Rtype::DNSKEY, &s.dnskey, sig, k, now).is_ok())
        })
        .cloned()
        .collect();
    // The keys both in the DNSKEY RRset and pointed to by the current DS,
    // that sign the DNSKEY RRset: the chain of trust the parent vouches for.
    let trusted: Vec<&Vec<u8>> = self_signers
        .iter()
        .filter(|k| matches_key(apex, current_ds, k))
        .collect();
    if trusted.is_empty() {
        if s.dnskey.is_empty() {
            return Err("serves no DNSKEY RRset".into());
        }
        let pointed: Vec<&Vec<u8>> = s
            .dnskey
            .iter()
            .filter(|k| matches_key(apex, current_ds, k))
            .collect();
        return Err(
            match bad_signature(
                apex,
                Rtype::DNSKEY,
                &s.dnskey,
                &s.dnskey_sigs,
                &pointed,
                now,
            ) {
                Some(why) => why,
                None => "its DNSKEY RRset is not signed by a key the current DS points to".into(),
            },
        );
    }
    let mut inception: Option<u32> = None;
    for (rtype, rdatas, sigs) in [
        (Rtype::CDS, &s.cds, &s.cds_sigs),
        (Rtype::CDNSKEY, &s.cdnskey, &s.cdnskey_sigs),
    ] {
        if rdatas.is_empty() {
            continue;
        }
        let good: Vec<&ReceivedRrsig> = sigs
            .iter()
            .filter(|sig| {
                trusted
                    .iter()
                    .any(|k| verify_rrset(apex, rtype, rdatas, sig, k, now).is_ok())
            })
            .collect();
        if good.is_empty() {
            if let Some(why) = bad_signature(apex, rtype, rdatas, sigs, &trusted, now) {
                return Err(why);
            }
            return Err(if sigs.is_empty() {
                format!("its {rtype} RRset is unsigned")
            } else {
                format!(
                    "its {rtype} RRset is not signed by a key the current DS points to (signed by {})",
                    sigs.iter()
                        .map(|s| s.key_tag().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        for sig in good {
            let i = sig.inception().into_int();
            inception = Some(inception.map_or(i, |e| earliest(e, i)));
        }
    }
    let wish = wish(apex, s)?;
    Ok(Read {
        wish,
        inception: inception.unwrap_or(0),
        self_signers,
    })
}

/// What the CDS and CDNSKEY RRsets ask for; CDS is the parent's default
/// (RFC 7344 §6), CDNSKEY made into SHA-256 DS records where there is no CDS.
fn wish(apex: &Name<Vec<u8>>, s: &Served) -> Result<Wish, String> {
    let is_delete_cds = |r: &Vec<u8>| r.get(2) == Some(&0);
    let is_delete_cdnskey = |r: &Vec<u8>| r.get(3) == Some(&0);
    let deletes = s.cds.iter().any(is_delete_cds) || s.cdnskey.iter().any(is_delete_cdnskey);
    if deletes {
        // RFC 8078 §4: a delete is exactly one record, in each RRset present.
        let one = |set: &Vec<Vec<u8>>, is: &dyn Fn(&Vec<u8>) -> bool| {
            set.is_empty() || (set.len() == 1 && is(&set[0]))
        };
        if one(&s.cds, &is_delete_cds) && one(&s.cdnskey, &is_delete_cdnskey) {
            return Ok(Wish::Delete);
        }
        return Err("a delete record (algorithm 0) is mixed with other CDS/CDNSKEY records".into());
    }
    let from_cdnskey = |types: &[u8]| -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        for k in &s.cdnskey {
            let key = parse_dnskey(k).ok_or("a CDNSKEY record is malformed")?;
            for &t in types {
                if let Some(d) = DsDigest::from_number(t.into()) {
                    out.push(ds_wire(&ds(apex, &key, d)));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    };
    if s.cds.is_empty() && s.cdnskey.is_empty() {
        return Ok(Wish::Nothing);
    }
    if s.cds.is_empty() {
        return Ok(Wish::Ds(from_cdnskey(&[DsDigest::Sha256.number()])?));
    }
    let mut cds = s.cds.clone();
    cds.sort();
    cds.dedup();
    if !s.cdnskey.is_empty() {
        let mut types: Vec<u8> = cds.iter().filter_map(|r| r.get(3).copied()).collect();
        types.sort();
        types.dedup();
        let known: Vec<Vec<u8>> = cds
            .iter()
            .filter(|r| {
                r.get(3)
                    .is_some_and(|t| DsDigest::from_number((*t).into()).is_some())
            })
            .cloned()
            .collect();
        if from_cdnskey(&types)? != known {
            return Err("its CDS and CDNSKEY RRsets do not match (RFC 7344 §4)".into());
        }
    }
    Ok(Wish::Ds(cds))
}

/// Whether one of the DS records (wire) is of this DNSKEY (wire).
/// When an RRset has a signature by a key the DS points to (by its key
/// tag and algorithm) that does not verify: that, apart from "signed by a
/// key the DS does not point to" (a forged or broken signature is not a
/// key the parent does not know).
fn bad_signature(
    apex: &Name<Vec<u8>>,
    rtype: Rtype,
    rdatas: &[Vec<u8>],
    sigs: &[ReceivedRrsig],
    keys: &[&Vec<u8>],
    now: u64,
) -> Option<String> {
    for sig in sigs {
        for k in keys {
            let Some(key) = parse_dnskey(k) else {
                continue;
            };
            if key.key_tag() != sig.key_tag() || key.algorithm() != sig.algorithm() {
                continue;
            }
            if let Err(e) = verify_rrset(apex, rtype, rdatas, sig, k, now) {
                return Some(format!(
                    "its {rtype} RRset's signature by key {}, which the current DS points to, \
                     does not verify ({e})",
                    sig.key_tag()
                ));
            }
        }
    }
    None
}

/// Whether a DS of `ds_set` matches the DNSKEY record data `dnskey`.
pub fn ds_matches_key(apex: &Name<Vec<u8>>, ds_set: &[Vec<u8>], dnskey: &[u8]) -> bool {
    matches_key(apex, ds_set, dnskey)
}

fn matches_key(apex: &Name<Vec<u8>>, ds_set: &[Vec<u8>], dnskey: &[u8]) -> bool {
    let Some(key) = parse_dnskey(dnskey) else {
        return false;
    };
    ds_set.iter().any(|d| {
        d.get(3)
            .and_then(|t| DsDigest::from_number((*t).into()))
            .is_some_and(|digest| ds_wire(&ds(apex, &key, digest)) == *d)
    })
}

/// The later and the earlier of two RRSIG times (RFC 1982, RFC 4034
/// §3.1.5).
fn later(a: u32, b: u32) -> u32 {
    if after(b, a) {
        b
    } else {
        a
    }
}

fn earliest(a: u32, b: u32) -> u32 {
    if after(b, a) {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::verify::tests::TestKey;
    use std::str::FromStr;

    const NOW: u64 = 1_800_000_000;

    fn apex() -> Name<Vec<u8>> {
        Name::from_str("child.example.").unwrap()
    }

    fn ds_of(k: &TestKey) -> Vec<u8> {
        ds_wire(&ds(&apex(), &k.dnskey(), DsDigest::Sha256))
    }

    /// A child's answer: DNSKEY RRset of `keys` signed by `dnskey_signers`,
    /// CDS for `cds_for` signed by `cds_signers`, at `inception`.
    fn served(
        keys: &[&TestKey],
        dnskey_signers: &[&TestKey],
        cds: Vec<Vec<u8>>,
        cds_signers: &[&TestKey],
        inception: u32,
    ) -> Served {
        let dnskey: Vec<Vec<u8>> = keys.iter().map(|k| k.rdata()).collect();
        Served {
            dnskey_sigs: dnskey_signers
                .iter()
                .map(|k| k.sign(&apex(), Rtype::DNSKEY, &dnskey, inception))
                .collect(),
            dnskey,
            cds_sigs: cds_signers
                .iter()
                .map(|k| k.sign(&apex(), Rtype::CDS, &cds, inception))
                .collect(),
            cds,
            ..Served::default()
        }
    }

    fn at(servers: Vec<Served>) -> Vec<(String, Result<Served, String>)> {
        servers
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("127.0.0.{}:53", i + 1), Ok(s)))
            .collect()
    }

    fn current(ds: &[Vec<u8>]) -> Current<'_> {
        Current {
            ds,
            accepted_inception: 0,
            allow_delete: false,
        }
    }

    fn refused(d: Decision) -> String {
        match d {
            Decision::Refused(why) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_ksk_roll_signed_by_the_current_ksk_replaces_the_ds() {
        let (old, new) = (TestKey::new(257), TestKey::new(257));
        let now_ds = [ds_of(&old)];
        let s = served(
            &[&old, &new],
            &[&old, &new],
            vec![ds_of(&new)],
            &[&old],
            NOW as u32 - 60,
        );
        let d = decide(&apex(), &current(&now_ds), &at(vec![s.clone(), s]), NOW);
        assert_eq!(
            d,
            Decision::Replace {
                ds: vec![ds_of(&new)],
                inception: NOW as u32 - 60,
                why: format!("asks for DS {}", crate::dnssec::ds::ds_text(&ds_of(&new))),
            }
        );
    }

    #[test]
    fn an_unsigned_cds_or_one_signed_by_a_key_without_ds_is_refused() {
        let (old, new) = (TestKey::new(257), TestKey::new(257));
        let now_ds = [ds_of(&old)];
        let unsigned = served(&[&old, &new], &[&old], vec![ds_of(&new)], &[], NOW as u32);
        let why = refused(decide(&apex(), &current(&now_ds), &at(vec![unsigned]), NOW));
        assert!(why.contains("CDS RRset is unsigned"), "{why}");
        let by_new = served(
            &[&old, &new],
            &[&old, &new],
            vec![ds_of(&new)],
            &[&new],
            NOW as u32,
        );
        let why = refused(decide(&apex(), &current(&now_ds), &at(vec![by_new]), NOW));
        assert!(
            why.contains("not signed by a key the current DS points to"),
            "{why}"
        );
        // A key that is not in the DNSKEY RRset at all, though the DS names it.
        let stranger = TestKey::new(257);
        let ds_for_stranger = [ds_of(&stranger)];
        let s = served(
            &[&old],
            &[&old],
            vec![ds_of(&old)],
            &[&stranger],
            NOW as u32,
        );
        let why = refused(decide(
            &apex(),
            &current(&ds_for_stranger),
            &at(vec![s]),
            NOW,
        ));
        assert!(
            why.contains("DNSKEY RRset is not signed by a key the current DS points to"),
            "{why}"
        );
    }

    #[test]
    fn servers_that_disagree_change_nothing() {
        let (old, new) = (TestKey::new(257), TestKey::new(257));
        let now_ds = [ds_of(&old)];
        let rolled = served(
            &[&old, &new],
            &[&old],
            vec![ds_of(&new)],
            &[&old],
            NOW as u32,
        );
        let behind = served(&[&old], &[&old], vec![], &[], NOW as u32);
        let why = refused(decide(
            &apex(),
            &current(&now_ds),
            &at(vec![rolled, behind]),
            NOW,
        ));
        assert!(why.contains("disagree"), "{why}");
        assert!(why.contains("127.0.0.2:53 publishes no CDS"), "{why}");
        let rolled = served(
            &[&old, &new],
            &[&old],
            vec![ds_of(&new)],
            &[&old],
            NOW as u32,
        );
        let answers = vec![
            ("127.0.0.1:53".to_string(), Ok(rolled)),
            ("127.0.0.2:53".to_string(), Err("no answer".to_string())),
        ];
        let why = refused(decide(&apex(), &current(&now_ds), &answers, NOW));
        assert_eq!(why, "127.0.0.2:53: no answer");
    }

    #[test]
    fn an_older_request_than_the_accepted_one_is_refused() {
        let (old, new) = (TestKey::new(257), TestKey::new(257));
        let now_ds = [ds_of(&old)];
        let s = served(
            &[&old, &new],
            &[&old],
            vec![ds_of(&new)],
            &[&old],
            NOW as u32 - 7200,
        );
        let mut c = current(&now_ds);
        c.accepted_inception = NOW as u32 - 3600;
        let why = refused(decide(&apex(), &c, &at(vec![s]), NOW));
        assert!(why.contains("RFC 7344 §6.2"), "{why}");
    }

    #[test]
    fn a_ds_that_would_break_the_delegation_is_refused() {
        let (old, spare) = (TestKey::new(257), TestKey::new(257));
        let now_ds = [ds_of(&old)];
        // The child asks for a DS of a key it does not sign its DNSKEY RRset with.
        let s = served(&[&old], &[&old], vec![ds_of(&spare)], &[&old], NOW as u32);
        let why = refused(decide(&apex(), &current(&now_ds), &at(vec![s]), NOW));
        assert!(why.contains("would break the delegation"), "{why}");
    }

    #[test]
    fn a_delete_takes_the_ds_away_only_where_allowed() {
        let old = TestKey::new(257);
        let now_ds = [ds_of(&old)];
        let delete = vec![vec![0, 0, 0, 0, 0]];
        let s = served(&[&old], &[&old], delete, &[&old], NOW as u32);
        let why = refused(decide(
            &apex(),
            &current(&now_ds),
            &at(vec![s.clone()]),
            NOW,
        ));
        assert!(why.contains("--allow-delete"), "{why}");
        let mut c = current(&now_ds);
        c.allow_delete = true;
        match decide(&apex(), &c, &at(vec![s]), NOW) {
            Decision::Replace { ds, .. } => assert!(ds.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_cds_and_a_matching_cds_change_nothing() {
        let old = TestKey::new(257);
        let now_ds = [ds_of(&old)];
        let none = served(&[&old], &[&old], vec![], &[], NOW as u32);
        assert!(matches!(
            decide(&apex(), &current(&now_ds), &at(vec![none]), NOW),
            Decision::Unchanged { .. }
        ));
        let same = served(&[&old], &[&old], vec![ds_of(&old)], &[&old], NOW as u32);
        assert_eq!(
            decide(&apex(), &current(&now_ds), &at(vec![same]), NOW),
            Decision::Unchanged {
                why: "the DS RRset already matches the child's CDS".into(),
                inception: NOW as u32,
            }
        );
    }

    fn signals(ns: &[&str], cds: &[Vec<u8>]) -> Vec<Signal> {
        ns.iter()
            .map(|n| (n.to_string(), Ok((cds.to_vec(), Vec::new()))))
            .collect()
    }

    #[test]
    fn an_insecure_child_signalled_under_every_name_server_is_bootstrapped() {
        let ksk = TestKey::new(257);
        let s = served(
            &[&ksk],
            &[&ksk],
            vec![ds_of(&ksk)],
            &[&ksk],
            NOW as u32 - 60,
        );
        let d = bootstrap(
            &apex(),
            &at(vec![s.clone(), s]),
            &signals(&["ns1.op.example.", "ns2.op.example."], &[ds_of(&ksk)]),
            NOW,
        );
        match d {
            Decision::Replace { ds, inception, why } => {
                assert_eq!(ds, vec![ds_of(&ksk)]);
                assert_eq!(inception, NOW as u32 - 60);
                assert!(
                    why.contains("under ns1.op.example., ns2.op.example."),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_signal_missing_wrong_or_not_validated_under_one_name_server_refuses() {
        let (ksk, other) = (TestKey::new(257), TestKey::new(257));
        let s = served(&[&ksk], &[&ksk], vec![ds_of(&ksk)], &[&ksk], NOW as u32);
        let mut sig = signals(&["ns1.op.example."], &[ds_of(&ksk)]);
        sig.push(("ns2.op.example.".into(), Ok((vec![], vec![]))));
        sig.push(("ns3.op.example.".into(), Ok((vec![ds_of(&other)], vec![]))));
        sig.push((
            "ns4.op.example.".into(),
            Err("_dsboot.child.example._signal.ns4.op.example. CDS is unsigned (no RRSIG)".into()),
        ));
        let why = refused(bootstrap(&apex(), &at(vec![s]), &sig, NOW));
        assert!(!why.contains("ns1.op"), "{why}");
        assert!(why.contains("under ns2.op.example.: no signal"), "{why}");
        assert!(
            why.contains("under ns3.op.example.: the signalled CDS RRset is not the child's"),
            "{why}"
        );
        assert!(why.contains("under ns4.op.example.: _dsboot"), "{why}");
        assert!(why.contains("is unsigned"), "{why}");
    }

    #[test]
    fn a_bootstrap_needs_servers_that_agree_and_a_ds_that_keeps_the_child_valid() {
        let (ksk, spare) = (TestKey::new(257), TestKey::new(257));
        let ok = signals(&["ns1.op.example."], &[ds_of(&ksk)]);
        let s = served(&[&ksk], &[&ksk], vec![ds_of(&ksk)], &[&ksk], NOW as u32);
        let none = served(&[&ksk], &[&ksk], vec![], &[], NOW as u32);
        let why = refused(bootstrap(&apex(), &at(vec![s, none.clone()]), &ok, NOW));
        assert!(why.contains("disagree: 127.0.0.2:53"), "{why}");
        let broken = served(&[&ksk], &[&ksk], vec![ds_of(&spare)], &[&ksk], NOW as u32);
        let sig = signals(&["ns1.op.example."], &[ds_of(&spare)]);
        let why = refused(bootstrap(&apex(), &at(vec![broken]), &sig, NOW));
        assert!(why.contains("would make the child bogus"), "{why}");
        assert!(matches!(
            bootstrap(&apex(), &at(vec![none]), &ok, NOW),
            Decision::Unchanged { .. }
        ));
        let delete = served(
            &[&ksk],
            &[&ksk],
            vec![vec![0, 0, 0, 0, 0]],
            &[&ksk],
            NOW as u32,
        );
        match bootstrap(&apex(), &at(vec![delete]), &ok, NOW) {
            Decision::Unchanged { why, .. } => assert!(why.contains("stays insecure"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
