//! Asking DNS servers whether a change has reached them, with NLnet Labs'
//! `domain` client: UDP with TCP when the answer is truncated, RD off, the
//! DO bit set, an authoritative answer required, a timeout and one retry.
//! A server that does not answer, or answers otherwise than expected,
//! counts as behind and is named (ARCHITECTURE.md, The key lifecycle).

use std::net::SocketAddr;

use bytes::Bytes;
use domain::base::iana::{Rcode, Rtype};
use domain::base::name::Name;
use domain::base::Message;
use domain::rdata::Rrsig;

use crate::dns::{answer_rdata, answer_soa_serial, query, send};

use crate::dnssec::serial::at_least;

/// What the rollover engine asks of DNS: the live implementation asks
/// the servers (`DnsProbe`); unit tests of the runner script the answers.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    /// Whether every server serves exactly this DNSKEY RRset, signed by
    /// each of these KSKs (and, given a serial, the zone at that SOA serial
    /// or later: the version that carries the change).
    async fn dnskey_served(
        &self,
        servers: &[SocketAddr],
        apex: &Name<Vec<u8>>,
        expected: &[Vec<u8>],
        ksk_tags: &[u16],
        serial: Option<u32>,
    ) -> Evidence;
    /// Whether every server serves the zone signed by this ZSK (and, given
    /// a serial, at that SOA serial or later).
    async fn signed_by(
        &self,
        servers: &[SocketAddr],
        apex: &Name<Vec<u8>>,
        zsk_tag: u16,
        serial: Option<u32>,
    ) -> Evidence;
    /// Whether every parent server serves one of these DS records.
    async fn ds_served(
        &self,
        servers: &[SocketAddr],
        zone: &Name<Vec<u8>>,
        wanted: &[Vec<u8>],
    ) -> Evidence;
    /// Whether every parent server serves no DS for the zone.
    async fn ds_absent(&self, servers: &[SocketAddr], zone: &Name<Vec<u8>>) -> Evidence;
    /// The zone's servers by its NS RRsets (`servers_by_ns`).
    async fn servers_by_ns(
        &self,
        apex: &Name<Vec<u8>>,
        zone_servers: &[SocketAddr],
        parent_servers: &[SocketAddr],
    ) -> Found;
}

/// Asks the servers themselves.
#[derive(Debug, Default)]
pub struct DnsProbe;

#[async_trait::async_trait]
impl Probe for DnsProbe {
    async fn dnskey_served(
        &self,
        servers: &[SocketAddr],
        apex: &Name<Vec<u8>>,
        expected: &[Vec<u8>],
        ksk_tags: &[u16],
        serial: Option<u32>,
    ) -> Evidence {
        dnskey_served(servers, apex, expected, ksk_tags, serial).await
    }

    async fn signed_by(
        &self,
        servers: &[SocketAddr],
        apex: &Name<Vec<u8>>,
        zsk_tag: u16,
        serial: Option<u32>,
    ) -> Evidence {
        signed_by(servers, apex, zsk_tag, serial).await
    }

    async fn ds_served(
        &self,
        servers: &[SocketAddr],
        zone: &Name<Vec<u8>>,
        wanted: &[Vec<u8>],
    ) -> Evidence {
        ds_served(servers, zone, wanted).await
    }

    async fn ds_absent(&self, servers: &[SocketAddr], zone: &Name<Vec<u8>>) -> Evidence {
        ds_absent(servers, zone).await
    }

    async fn servers_by_ns(
        &self,
        apex: &Name<Vec<u8>>,
        zone_servers: &[SocketAddr],
        parent_servers: &[SocketAddr],
    ) -> Found {
        servers_by_ns(apex, zone_servers, parent_servers).await
    }
}

/// The servers the NS RRsets name, and what could not be found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Each address with the NS name it is of.
    pub servers: Vec<(SocketAddr, String)>,
    /// NS names without an address, and NS RRsets that could not be read.
    pub unreached: Vec<String>,
}

/// The zone's servers by its NS RRsets (RFC 7583's "all authoritative
/// servers"): the apex NS RRset as the zone's configured servers serve it,
/// and the delegation's as the parent's configured servers refer to it;
/// each name's addresses from the zone itself (A and AAAA at a zone
/// server, for names in the zone) or from the system resolver, port 53.
pub async fn servers_by_ns(
    apex: &Name<Vec<u8>>,
    zone_servers: &[SocketAddr],
    parent_servers: &[SocketAddr],
) -> Found {
    let mut found = Found::default();
    let mut names: Vec<Name<Vec<u8>>> = Vec::new();
    let mut add = |n: Name<Vec<u8>>| {
        if !names.contains(&n) {
            names.push(n);
        }
    };
    for &s in zone_servers {
        match query(s, apex, Rtype::NS).await {
            Ok(answer) => {
                for (rdata, _) in answer_rdata(&answer, apex, Rtype::NS) {
                    if let Ok(n) = Name::from_octets(rdata) {
                        add(n);
                    }
                }
            }
            Err(e) => found.unreached.push(format!("{s}: the apex NS RRset: {e}")),
        }
    }
    for &s in parent_servers {
        match query_referral(s, apex).await {
            Ok(targets) => targets.into_iter().for_each(&mut add),
            Err(e) => found
                .unreached
                .push(format!("{s}: the delegation's NS RRset: {e}")),
        }
    }
    for name in names {
        let addrs = addresses_of(&name, apex, zone_servers).await;
        if addrs.is_empty() {
            found.unreached.push(format!("{name}.: no address found"));
        }
        for a in addrs {
            if !found.servers.iter().any(|(s, _)| *s == a) {
                found.servers.push((a, name.to_string()));
            }
        }
    }
    found
}

/// The NS targets of a parent's referral to the zone (authority section;
/// a referral has no AA bit).
async fn query_referral(
    server: SocketAddr,
    apex: &Name<Vec<u8>>,
) -> Result<Vec<Name<Vec<u8>>>, String> {
    let answer = send(server, apex, Rtype::NS).await?;
    if answer.header().rcode() != Rcode::NOERROR {
        return Err(format!("answered {}", answer.header().rcode()));
    }
    let mut out = Vec::new();
    for section in [answer.answer(), answer.authority()].into_iter().flatten() {
        for r in section
            .limit_to::<domain::rdata::Ns<domain::base::ParsedName<Bytes>>>()
            .flatten()
        {
            if r.owner()
                .to_string()
                .eq_ignore_ascii_case(&apex.to_string())
            {
                let name: Name<Vec<u8>> = domain::base::ToName::to_name(r.data().nsdname());
                out.push(name);
            }
        }
    }
    if out.is_empty() {
        return Err("no NS records for the zone".into());
    }
    Ok(out)
}

/// A name's addresses, port 53: for a name in the zone, its A and AAAA
/// records as a zone server serves them; otherwise the system resolver's.
async fn addresses_of(
    name: &Name<Vec<u8>>,
    apex: &Name<Vec<u8>>,
    zone_servers: &[SocketAddr],
) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    if name.ends_with(apex) {
        for &s in zone_servers {
            for rtype in [Rtype::A, Rtype::AAAA] {
                let Ok(answer) = query(s, name, rtype).await else {
                    continue;
                };
                for (rdata, _) in answer_rdata(&answer, name, rtype) {
                    let ip = match rdata.len() {
                        4 => std::net::IpAddr::from(
                            <[u8; 4]>::try_from(rdata.as_slice()).unwrap_or_default(),
                        ),
                        16 => std::net::IpAddr::from(
                            <[u8; 16]>::try_from(rdata.as_slice()).unwrap_or_default(),
                        ),
                        _ => continue,
                    };
                    let a = SocketAddr::new(ip, 53);
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
            }
            if !out.is_empty() {
                break;
            }
        }
        return out;
    }
    let host = name.to_string();
    if let Ok(addrs) = tokio::net::lookup_host((host.as_str(), 53)).await {
        for a in addrs {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// What every asked server said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Per server: what it serves, or why it does not count.
    pub servers: Vec<(SocketAddr, Result<String, String>)>,
    /// The largest TTL among the matching answers (a DS TTL, say).
    pub max_ttl: u32,
    /// Servers that could not even be asked (an NS name without an
    /// address, an NS RRset that did not read): each blocks.
    pub unreached: Vec<String>,
}

impl Evidence {
    /// Whether every server answered as expected (and there was one).
    pub fn holds(&self) -> bool {
        !self.servers.is_empty()
            && self.servers.iter().all(|(_, r)| r.is_ok())
            && self.unreached.is_empty()
    }

    /// The servers still behind, each with why.
    pub fn behind(&self) -> Vec<String> {
        if self.servers.is_empty() {
            return vec!["no server to ask: set the zone's publication/parent servers".into()];
        }
        self.servers
            .iter()
            .filter_map(|(s, r)| r.as_ref().err().map(|why| format!("{s}: {why}")))
            .chain(self.unreached.iter().cloned())
            .collect()
    }

    /// Every server behind for the same reason (nothing asked).
    pub fn behind_all(servers: &[SocketAddr], why: &str) -> Evidence {
        Evidence {
            servers: servers.iter().map(|s| (*s, Err(why.to_string()))).collect(),
            ..Evidence::default()
        }
    }

    /// Both: a server counts only if it does in each (its two answers
    /// joined); a server asked in one only does not count.
    pub fn and(self, other: Evidence) -> Evidence {
        let servers = self
            .servers
            .into_iter()
            .map(|(s, a)| {
                let b = other
                    .servers
                    .iter()
                    .find(|(t, _)| *t == s)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| Err("not asked".into()));
                let r = match (a, b) {
                    (Ok(a), Ok(b)) => Ok(format!("{a}, {b}")),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
                (s, r)
            })
            .collect();
        Evidence {
            servers,
            max_ttl: self.max_ttl.max(other.max_ttl),
            unreached: self.unreached.into_iter().chain(other.unreached).collect(),
        }
    }

    /// One line for the audit log: which server said what.
    pub fn summary(&self) -> String {
        self.servers
            .iter()
            .map(|(s, r)| match r {
                Ok(what) => format!("{s} {what}"),
                Err(why) => format!("{s} NOT: {why}"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Key tags of the RRSIGs covering `covered` in the answer.
fn rrsig_tags(answer: &Message<Bytes>, covered: Rtype) -> Vec<u16> {
    let Ok(section) = answer.answer() else {
        return Vec::new();
    };
    section
        .limit_to::<Rrsig<Bytes, domain::base::ParsedName<Bytes>>>()
        .flatten()
        .filter(|r| r.data().type_covered() == covered)
        .map(|r| r.data().key_tag())
        .collect()
}

/// Asks every server the same question and judges each authoritative
/// answer.
async fn each_server(
    servers: &[SocketAddr],
    qname: &Name<Vec<u8>>,
    qtype: Rtype,
    mut judge: impl FnMut(&Message<Bytes>) -> Result<String, String>,
) -> Evidence {
    let mut evidence = Evidence::default();
    for &server in servers {
        let result = query(server, qname, qtype)
            .await
            .and_then(|answer| judge(&answer));
        evidence.servers.push((server, result));
    }
    evidence
}

/// Whether every server serves exactly this DNSKEY RRset (record data,
/// canonical), signed by each of these KSKs; and given a serial, the zone
/// at that serial or later (asked by SOA).
pub async fn dnskey_served(
    servers: &[SocketAddr],
    apex: &Name<Vec<u8>>,
    expected: &[Vec<u8>],
    ksk_tags: &[u16],
    serial: Option<u32>,
) -> Evidence {
    let mut want = expected.to_vec();
    want.sort();
    let served = each_server(servers, apex, Rtype::DNSKEY, |answer| {
        let mut got: Vec<Vec<u8>> = answer_rdata(answer, apex, Rtype::DNSKEY)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        got.sort();
        got.dedup();
        if got != want {
            return Err(format!(
                "serves {} DNSKEY records, not the {} expected",
                got.len(),
                want.len()
            ));
        }
        let tags = rrsig_tags(answer, Rtype::DNSKEY);
        if let Some(missing) = ksk_tags.iter().find(|t| !tags.contains(t)) {
            return Err(format!("the DNSKEY RRset has no RRSIG by KSK {missing}"));
        }
        Ok(format!(
            "serves the {} DNSKEY records, signed by {tags:?}",
            got.len()
        ))
    })
    .await;
    match serial {
        None => served,
        Some(n) => {
            served.and(each_server(servers, apex, Rtype::SOA, |a| serial_reached(a, n)).await)
        }
    }
}

/// Whether every server serves the zone signed by this ZSK: the apex SOA
/// carries an RRSIG by it (and, given a serial, is at that serial or later).
pub async fn signed_by(
    servers: &[SocketAddr],
    apex: &Name<Vec<u8>>,
    zsk_tag: u16,
    serial: Option<u32>,
) -> Evidence {
    each_server(servers, apex, Rtype::SOA, |answer| {
        let tags = rrsig_tags(answer, Rtype::SOA);
        if !tags.contains(&zsk_tag) {
            return Err(format!(
                "the SOA is signed by {tags:?}, not by ZSK {zsk_tag}"
            ));
        }
        let signed = format!("serves the SOA signed by ZSK {zsk_tag}");
        match serial {
            None => Ok(signed),
            Some(n) => serial_reached(answer, n).map(|at| format!("{signed}, {at}")),
        }
    })
    .await
}

/// Whether the SOA in an answer is at serial `wanted` or later (RFC 1982):
/// the version that carries a change.
fn serial_reached(answer: &Message<Bytes>, wanted: u32) -> Result<String, String> {
    let served = answer_soa_serial(answer).ok_or("serves no SOA")?;
    if at_least(served, wanted) {
        Ok(format!("serial {served}"))
    } else {
        Err(format!(
            "serves serial {served}, not yet {wanted} (the version with the change)"
        ))
    }
}

/// Whether every parent server serves a DS that is one of `wanted` (the
/// new key's DS in each digest we accept). Other DS records beside it do
/// not matter; the largest TTL seen is kept (the RRSIG's original TTL
/// where there is one, as that is what caches count down from).
pub async fn ds_served(
    servers: &[SocketAddr],
    zone: &Name<Vec<u8>>,
    wanted: &[Vec<u8>],
) -> Evidence {
    let mut max_ttl = 0;
    let mut evidence = each_server(servers, zone, Rtype::DS, |answer| {
        let ds = answer_rdata(answer, zone, Rtype::DS);
        let original = answer
            .answer()
            .ok()
            .into_iter()
            .flat_map(|s| {
                s.limit_to::<Rrsig<Bytes, domain::base::ParsedName<Bytes>>>()
                    .flatten()
            })
            .filter(|r| r.data().type_covered() == Rtype::DS)
            .map(|r| r.data().original_ttl().as_secs())
            .max();
        let ttl = ds_matches(&ds, wanted, original)?;
        max_ttl = max_ttl.max(ttl);
        Ok(format!("serves the new DS (TTL {ttl})"))
    })
    .await;
    evidence.max_ttl = max_ttl;
    evidence
}

/// Whether every parent server answers, with authority, that it has no
/// DS for the zone (NODATA).
pub async fn ds_absent(servers: &[SocketAddr], zone: &Name<Vec<u8>>) -> Evidence {
    each_server(servers, zone, Rtype::DS, |answer| {
        match answer_rdata(answer, zone, Rtype::DS).len() {
            0 => Ok("serves no DS".to_string()),
            n => Err(format!("still serves {n} DS records")),
        }
    })
    .await
}

/// Whether a parent's DS RRset (record data and TTL) holds one of the
/// `wanted` records; other DS records beside it do not matter (a stale
/// one the parent has not cleaned up, say). Returns the TTL caches count
/// down from: the RRSIG's original TTL where there is one, or the TTL.
pub fn ds_matches(
    ds: &[(Vec<u8>, u32)],
    wanted: &[Vec<u8>],
    original_ttl: Option<u32>,
) -> Result<u32, String> {
    let Some((_, ttl)) = ds.iter().find(|(r, _)| wanted.contains(r)) else {
        return Err(format!(
            "serves {} DS records, none for the new key",
            ds.len()
        ));
    };
    Ok(original_ttl.unwrap_or(*ttl).max(*ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_extra_ds_beside_the_new_one_does_not_block() {
        let new = vec![1u8, 2, 3];
        let stale = vec![9u8, 9, 9];
        let served = [(stale.clone(), 3600), (new.clone(), 3600)];
        assert_eq!(
            ds_matches(&served, std::slice::from_ref(&new), Some(7200)),
            Ok(7200)
        );
        let e = ds_matches(&[(stale, 3600)], &[new], None).unwrap_err();
        assert!(e.contains("none for the new key"), "{e}");
    }

    #[test]
    fn both_kinds_of_evidence_must_hold_at_each_server() {
        let a: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:53".parse().unwrap();
        let keys = Evidence {
            servers: vec![
                (a, Ok("serves the DNSKEYs".into())),
                (b, Ok("serves them".into())),
            ],
            ..Evidence::default()
        };
        let serials = Evidence {
            servers: vec![
                (a, Ok("serial 9".into())),
                (b, Err("serves serial 8, not yet 9".into())),
            ],
            unreached: vec!["ns3.example.: no address found".into()],
            ..Evidence::default()
        };
        let both = keys.and(serials);
        assert!(!both.holds());
        assert_eq!(
            both.behind(),
            [
                "127.0.0.2:53: serves serial 8, not yet 9",
                "ns3.example.: no address found"
            ]
        );
        assert!(both
            .summary()
            .contains("127.0.0.1:53 serves the DNSKEYs, serial 9"));
    }

    #[test]
    fn evidence_holds_only_when_every_server_says_so() {
        let a: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:53".parse().unwrap();
        let mut e = Evidence::default();
        assert!(!e.holds(), "no server asked: nothing holds");
        e.servers.push((a, Ok("serves it".into())));
        assert!(e.holds());
        e.servers.push((b, Err("no answer".into())));
        assert!(!e.holds());
        assert_eq!(e.behind(), vec!["127.0.0.2:53: no answer".to_string()]);
        assert!(e
            .summary()
            .contains("127.0.0.1:53 serves it; 127.0.0.2:53 NOT: no answer"));
    }
}
