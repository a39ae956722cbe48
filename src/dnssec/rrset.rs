//! Single RRsets from DNS servers: checking them and putting them in the
//! canonical form that is signed (RFC 4034 §6).

use domain::base::iana::{Class, Rtype};
use domain::base::name::Name;
use domain::base::rdata::{ComposeRecordData, ParseRecordData};
use domain::dep::octseq::Parser;
use domain::rdata::ZoneRecordData;

use super::denial::Denial;
use super::record;

/// One record as a DNS server sends it.
#[derive(Debug, Clone)]
pub struct WireRecord {
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

/// An RRset ready to sign: lower-case owner, canonical and sorted record
/// data without duplicates.
#[derive(Debug, Clone)]
pub struct CanonicalRrset {
    pub owner: Name<Vec<u8>>,
    pub owner_wire: Vec<u8>,
    pub labels: u8,
    pub rtype: Rtype,
    pub ttl: u32,
    pub rdatas: Vec<Vec<u8>>,
}

/// Why an RRset cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RrsetError {
    #[error("owner name is not a valid uncompressed wire-format name")]
    BadOwner,
    #[error("owner {owner} is outside the zone {apex}")]
    OutsideZone { owner: String, apex: String },
    #[error("type {0} cannot be signed")]
    BadType(String),
    #[error("the RRset has no records")]
    Empty,
    #[error("record {index} has class {class}; only IN (1) is signed")]
    Class { index: usize, class: u16 },
    #[error("records differ in TTL ({first} and {other}, RFC 2181 §5.2)")]
    TtlMismatch { first: u32, other: u32 },
    #[error("record {index}: record data is not valid {rtype} data")]
    BadRdata { index: usize, rtype: String },
    #[error("record {index}: record data of {len} octets is over the 65,535 a record can hold")]
    RdataTooLong { index: usize, len: usize },
    #[error("TTL {0} is over 2^31 - 1 (RFC 2181 §8)")]
    TtlTooLarge(u32),
    #[error("{0}")]
    Denial(String),
}

/// The largest TTL (RFC 2181 §8).
pub const MAX_TTL: u32 = i32::MAX as u32;

/// Refuses denial records that do not fit the zone's chain: NSEC in an
/// NSEC3 zone and the other way round, and NSEC3 or NSEC3PARAM records
/// whose hash parameters (algorithm, iterations, salt) differ from the
/// zone's (RFC 5155 §7.1: one set of parameters per chain).
pub fn check_denial(c: &CanonicalRrset, denial: &Denial) -> Result<(), RrsetError> {
    let nsec3 = matches!(c.rtype, Rtype::NSEC3 | Rtype::NSEC3PARAM);
    match denial {
        Denial::Nsec if nsec3 => Err(RrsetError::Denial(format!(
            "{} records do not belong in this zone: it uses NSEC",
            c.rtype
        ))),
        Denial::Nsec3(_) if c.rtype == Rtype::NSEC => Err(RrsetError::Denial(
            "NSEC records do not belong in this zone: it uses NSEC3".into(),
        )),
        Denial::Nsec3(p) if nsec3 => {
            for rdata in &c.rdatas {
                // Hash algorithm, flags, iterations (2), salt length, salt.
                let ours = (1u8, p.iterations, p.salt.as_slice());
                let theirs = (rdata.len() >= 5)
                    .then(|| {
                        (
                            rdata[0],
                            u16::from_be_bytes([rdata[2], rdata[3]]),
                            &rdata[5..],
                        )
                    })
                    .and_then(|(a, i, rest)| {
                        let n = usize::from(rdata[4]);
                        (rest.len() >= n).then(|| (a, i, &rest[..n]))
                    });
                if theirs != Some(ours) {
                    return Err(RrsetError::Denial(format!(
                        "{} parameters differ from the zone's (hash algorithm 1, {} iterations, salt {})",
                        c.rtype,
                        p.iterations,
                        if p.salt.is_empty() {
                            "-".to_string()
                        } else {
                            crate::hex::hex(&p.salt)
                        }
                    )));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Types that never form a signable RRset: RRSIG itself, and meta and
/// query types (RFC 6895 §3.1).
fn signable(rtype: Rtype) -> bool {
    let n = rtype.to_int();
    !(rtype == Rtype::RRSIG || n == 0 || (128..=255).contains(&n) || n == 41)
}

/// Checks an RRset and puts it in canonical form.
pub fn canonicalize(
    apex: &Name<Vec<u8>>,
    owner_wire: &[u8],
    rtype: u16,
    records: &[WireRecord],
) -> Result<CanonicalRrset, RrsetError> {
    let owner = Name::from_octets(owner_wire.to_vec()).map_err(|_| RrsetError::BadOwner)?;
    if !owner.ends_with(apex) {
        return Err(RrsetError::OutsideZone {
            owner: owner.to_string(),
            apex: apex.to_string(),
        });
    }
    let rtype = Rtype::from_int(rtype);
    if !signable(rtype) {
        return Err(RrsetError::BadType(rtype.to_string()));
    }
    let first = records.first().ok_or(RrsetError::Empty)?;
    if first.ttl > MAX_TTL {
        return Err(RrsetError::TtlTooLarge(first.ttl));
    }
    let mut rdatas = records
        .iter()
        .enumerate()
        .map(|(index, r)| canonical_record(rtype, first.ttl, index, r))
        .collect::<Result<Vec<_>, _>>()?;
    rdatas.sort_unstable();
    rdatas.dedup();
    let key = record::name_key(&owner);
    let owner_wire = record::key_to_wire(&key);
    let labels =
        super::sign::rrsig_labels(record::key_label_count(&key), record::key_is_wildcard(&key));
    Ok(CanonicalRrset {
        owner: Name::from_octets(owner_wire.clone()).map_err(|_| RrsetError::BadOwner)?,
        owner_wire,
        labels,
        rtype,
        ttl: first.ttl,
        rdatas,
    })
}

/// One record's data in canonical form, after checking it belongs in the
/// RRset: class IN, the RRset's TTL, at most 65,535 octets.
fn canonical_record(
    rtype: Rtype,
    ttl: u32,
    index: usize,
    r: &WireRecord,
) -> Result<Vec<u8>, RrsetError> {
    if Class::from_int(r.class) != Class::IN {
        return Err(RrsetError::Class {
            index,
            class: r.class,
        });
    }
    if r.ttl != ttl {
        return Err(RrsetError::TtlMismatch {
            first: ttl,
            other: r.ttl,
        });
    }
    if r.rdata.len() > usize::from(u16::MAX) {
        return Err(RrsetError::RdataTooLong {
            index,
            len: r.rdata.len(),
        });
    }
    canonical_rdata(rtype, &r.rdata).ok_or_else(|| RrsetError::BadRdata {
        index,
        rtype: rtype.to_string(),
    })
}

/// Parses record data of a type and composes it in canonical form; data of
/// a type the library does not know is taken as it is (RFC 3597).
pub fn canonical_rdata(rtype: Rtype, rdata: &[u8]) -> Option<Vec<u8>> {
    let mut parser = Parser::from_ref(rdata);
    let parsed =
        ZoneRecordData::<&[u8], domain::base::ParsedName<&[u8]>>::parse_rdata(rtype, &mut parser)
            .ok()??;
    if parser.remaining() != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(rdata.len());
    parsed.compose_canonical_rdata(&mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn apex() -> Name<Vec<u8>> {
        Name::from_str("example.com.").unwrap()
    }

    fn rec(ttl: u32, rdata: &[u8]) -> WireRecord {
        WireRecord {
            class: 1,
            ttl,
            rdata: rdata.to_vec(),
        }
    }

    fn wire(s: &str) -> Vec<u8> {
        Name::<Vec<u8>>::from_str(s).unwrap().as_slice().to_vec()
    }

    #[test]
    fn rrset_is_lower_cased_sorted_and_deduplicated() {
        let r = canonicalize(
            &apex(),
            &wire("WWW.Example.COM."),
            1,
            &[
                rec(60, &[192, 0, 2, 2]),
                rec(60, &[192, 0, 2, 1]),
                rec(60, &[192, 0, 2, 2]),
            ],
        )
        .unwrap();
        assert_eq!(r.owner.to_string(), "www.example.com");
        assert_eq!(r.rdatas, vec![vec![192, 0, 2, 1], vec![192, 0, 2, 2]]);
        assert_eq!(r.labels, 3);
    }

    #[test]
    fn names_in_record_data_are_lower_cased() {
        let r = canonicalize(
            &apex(),
            &wire("example.com."),
            2,
            &[rec(60, &wire("NS1.Example.COM."))],
        )
        .unwrap();
        assert_eq!(r.rdatas[0], wire("ns1.example.com."));
    }

    #[test]
    fn bad_rrsets_are_refused_with_the_reason() {
        let a = apex();
        assert_eq!(
            canonicalize(&a, &wire("example.com."), 1, &[]).unwrap_err(),
            RrsetError::Empty
        );
        assert!(matches!(
            canonicalize(&a, &wire("example.org."), 1, &[rec(1, &[1, 2, 3, 4])]),
            Err(RrsetError::OutsideZone { .. })
        ));
        assert!(matches!(
            canonicalize(
                &a,
                &wire("example.com."),
                1,
                &[rec(1, &[1, 2, 3, 4]), rec(2, &[1, 2, 3, 5])]
            ),
            Err(RrsetError::TtlMismatch { first: 1, other: 2 })
        ));
        let mut ch = rec(1, &[1, 2, 3, 4]);
        ch.class = 3;
        assert!(matches!(
            canonicalize(&a, &wire("example.com."), 1, &[ch]),
            Err(RrsetError::Class { index: 0, class: 3 })
        ));
        assert!(matches!(
            canonicalize(&a, &wire("example.com."), 1, &[rec(1, &[1, 2, 3])]),
            Err(RrsetError::BadRdata { index: 0, .. })
        ));
        assert!(matches!(
            canonicalize(&a, &wire("example.com."), 46, &[rec(1, &[1])]),
            Err(RrsetError::BadType(_))
        ));
        assert_eq!(
            canonicalize(&a, &[3, b'c', b'o'], 1, &[rec(1, &[1, 2, 3, 4])]).unwrap_err(),
            RrsetError::BadOwner
        );
    }
}
