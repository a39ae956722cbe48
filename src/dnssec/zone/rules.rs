//! What a zone's data must be before it is signed or served: the
//! structural rules of RFC 1034, 1035, 2181 and 6672 that a secondary or a
//! resolver relies on. A zone that breaks one is refused with the owner and
//! the rule, so that the last good version stays served.

use domain::base::iana::Rtype;

use super::ZoneError;
use crate::dnssec::record::{self, Rec};
use crate::dnssec::rrset::MAX_TTL;

/// Checks records in canonical order (a whole zone, or whole owners of it:
/// a chunk patched). `has_apex`: the records hold the apex's, which are
/// then checked as the apex's (SOA and NS there, no CNAME).
///
/// Below a zone cut only address records (glue) may be; below a DNAME
/// nothing. Names below a cut sort right after it, so one pass that
/// remembers the last cut or DNAME sees each name under it. Long because
/// it is that one pass, with one arm per rule.
pub fn check_structure(recs: &[Rec], apex_key: &[u8], has_apex: bool) -> Result<(), ZoneError> {
    let refuse = |key: &[u8], rule: &str| ZoneError::Structure {
        owner: fqdn(key),
        rule: rule.to_string(),
    };
    if has_apex {
        let at_apex = |t: Rtype| recs.iter().any(|r| r.rtype == t && r.key() == apex_key);
        if !at_apex(Rtype::NS) {
            return Err(refuse(
                apex_key,
                "no NS RRset at the zone apex (RFC 1034 §4.2.1: the apex has SOA and NS)",
            ));
        }
    }
    // The last zone cut or DNAME seen: (its key, it is a DNAME).
    let mut above: Option<(&[u8], bool)> = None;
    let mut i = 0;
    while i < recs.len() {
        let key = recs[i].key();
        let mut end = i + 1;
        while end < recs.len() && recs[end].key() == key {
            end += 1;
        }
        let here = &recs[i..end];
        i = end;
        if let Some(r) = here.iter().find(|r| r.ttl > MAX_TTL) {
            return Err(refuse(
                key,
                &format!("{} TTL {} is over 2^31 - 1 (RFC 2181 §8)", r.rtype, r.ttl),
            ));
        }
        match above {
            Some((cut, true)) if record::key_is_below(key, cut) => {
                return Err(refuse(
                    key,
                    &format!(
                        "data below the DNAME at {} (RFC 6672 §2.3: no names below a DNAME)",
                        fqdn(cut)
                    ),
                ));
            }
            Some((cut, false)) if record::key_is_below(key, cut) => {
                if let Some(r) = here
                    .iter()
                    .find(|r| !matches!(r.rtype, Rtype::A | Rtype::AAAA))
                {
                    return Err(refuse(
                        key,
                        &format!(
                            "{} below the zone cut at {}: only glue (A, AAAA) may be there \
                             (RFC 1034 §4.2.1)",
                            r.rtype,
                            fqdn(cut)
                        ),
                    ));
                }
                continue;
            }
            _ => {}
        }
        check_owner(here, key == apex_key).map_err(|rule| refuse(key, &rule))?;
        let has = |t: Rtype| here.iter().any(|r| r.rtype == t);
        if key != apex_key && has(Rtype::NS) {
            above = Some((key, false));
        } else if has(Rtype::DNAME) {
            above = Some((key, true));
        }
    }
    Ok(())
}

/// A name as operators write it in a zone file: with its final dot.
fn fqdn(key: &[u8]) -> String {
    let name = record::key_to_name(key).to_string();
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}

/// The rules of one owner's records: CNAME alone (RFC 1034 §3.6.2, RFC
/// 2181 §10.1), never at the apex; a DNAME not beside a delegation's NS
/// (RFC 6672 §2.3).
fn check_owner(here: &[Rec], apex: bool) -> Result<(), String> {
    let count = |t: Rtype| here.iter().filter(|r| r.rtype == t).count();
    let cnames = count(Rtype::CNAME);
    if cnames > 0 && apex {
        return Err("CNAME at the zone apex (RFC 1034 §3.6.2: the apex has SOA and NS)".into());
    }
    if cnames > 1 {
        return Err(format!(
            "{cnames} CNAME records; an owner has at most one (RFC 2181 §10.1)"
        ));
    }
    if let Some(other) = here
        .iter()
        .find(|r| r.rtype != Rtype::CNAME)
        .filter(|_| cnames > 0)
    {
        return Err(format!(
            "CNAME beside {} data (RFC 1034 §3.6.2, RFC 2181 §10.1: a CNAME stands alone)",
            other.rtype
        ));
    }
    if !apex && count(Rtype::DNAME) > 0 && count(Rtype::NS) > 0 {
        return Err("DNAME beside NS away from the apex (RFC 6672 §2.3)".into());
    }
    if count(Rtype::DNAME) > 1 {
        return Err("more than one DNAME record (RFC 6672 §2.4)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::zone::{read_zone, ZoneStats};
    use domain::base::name::Name;

    /// The check's answer for a zone text of example.com.
    fn check(text: &str) -> Result<(), String> {
        let apex: Name<Vec<u8>> = "example.com.".parse().unwrap();
        let mut stats = ZoneStats::default();
        let mut recs = read_zone(text.as_bytes(), &apex, 10_000, &mut stats).unwrap();
        recs.sort_unstable_by(Rec::canonical_cmp);
        check_structure(&recs, &record::name_key(&apex), true).map_err(|e| e.to_string())
    }

    const HEAD: &str = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n";

    #[test]
    fn a_zone_as_rfc_1034_wants_it_passes() {
        let z = format!(
            "{HEAD}@ NS ns\nns A 192.0.2.1\nwww CNAME ns\nsub NS ns.sub\nns.sub A 192.0.2.2\n\
             deep.ns.sub AAAA 2001:db8::1\nold DNAME new.example.\n"
        );
        assert_eq!(check(&z), Ok(()));
    }

    #[test]
    fn each_broken_rule_is_refused_naming_the_owner_and_the_rule() {
        let cases = [
            (
                "ns A 192.0.2.1\n",
                "example.com.",
                "no NS RRset at the zone apex",
            ),
            (
                "@ NS ns\n@ CNAME x.example.\n",
                "example.com.",
                "CNAME at the zone apex",
            ),
            (
                "@ NS ns\nwww CNAME a\nwww A 192.0.2.1\n",
                "www.example.com.",
                "CNAME beside A",
            ),
            (
                "@ NS ns\nwww CNAME a\nwww CNAME b\n",
                "www.example.com.",
                "2 CNAME records",
            ),
            (
                "@ NS ns\nold DNAME new.example.\nx.old A 192.0.2.1\n",
                "x.old.example.com.",
                "below the DNAME at old.example.com.",
            ),
            (
                "@ NS ns\nsub NS ns.sub\nwww.sub TXT hello\n",
                "www.sub.example.com.",
                "TXT below the zone cut at sub.example.com.",
            ),
            (
                "@ NS ns\nsub NS ns.sub\nsub DNAME x.example.\n",
                "sub.example.com.",
                "DNAME beside NS",
            ),
        ];
        for (body, owner, rule) in cases {
            let e = check(&format!("{HEAD}{body}")).unwrap_err();
            assert!(e.starts_with(owner) && e.contains(rule), "{body:?}: {e}");
        }
    }
}
