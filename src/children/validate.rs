//! A validating lookup for what a parent takes from outside its child's
//! own servers: RFC 9615's signals, which live in the zones of the child's
//! DNS operator. The operator of the parent's Key Master names the trust
//! anchors (`--bootstrap-anchors`) and a recursive resolver
//! (`--bootstrap-resolver`) that fetches the records; keymaster asks it
//! with checking disabled and builds the chain itself, bottom up: an
//! RRset's RRSIG names its zone; that zone's DNSKEY RRset must be signed
//! by a key its trust anchor or its DS RRset points to; the DS RRset is an
//! RRset of the zone above, checked the same way, until a trust anchor
//! (RFC 4035 §5). The resolver is trusted with nothing but finding.
//!
//! An RRset that is absent is taken as absent without proof (no NSEC or
//! NSEC3 is checked): a parent reads a missing signal only as a refusal,
//! or as agreeing with a child that publishes nothing, so a forged
//! absence can stop a bootstrap but never make one.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use domain::base::iana::Rtype;
use domain::base::name::{Name, ToName};
use domain::base::Message;
use domain::rdata::Rrsig;

use crate::dnssec::verify::{received, verify_signed, ReceivedRrsig};

/// What vouches for a zone's keys from outside the DNS: a DS record or a
/// DNSKEY record (record data, wire form).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Anchor {
    Ds(Vec<u8>),
    Dnskey(Vec<u8>),
}

/// The operator's trust anchors, by zone (lower case, no trailing dot).
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    by_zone: HashMap<String, Vec<Anchor>>,
}

/// A name as `Anchors` keys it: lower case, without the trailing dot (the
/// root is "").
fn key(name: &impl std::fmt::Display) -> String {
    name.to_string()
        .to_ascii_lowercase()
        .trim_end_matches('.')
        .to_string()
}

impl Anchors {
    /// Reads DS and DNSKEY records in zone file form (one per line, `;`
    /// comments; what `keymasterctl trust-anchor --format ds` or
    /// `--format keyset` writes, and `dsset-`/`keyset-` files).
    pub fn load(path: &std::path::Path) -> Result<Anchors, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("bootstrap anchors {}: {e}", path.display()))?;
        Anchors::parse(&text).map_err(|e| format!("bootstrap anchors {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Anchors, String> {
        let mut by_zone: HashMap<String, Vec<Anchor>> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split(';').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with('$') {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", i + 1);
            let f: Vec<&str> = line.split_whitespace().collect();
            let at = f
                .iter()
                .position(|t| t.eq_ignore_ascii_case("DS") || t.eq_ignore_ascii_case("DNSKEY"))
                .ok_or_else(|| bad("not a DS or DNSKEY record"))?;
            if at == 0 || !f[0].ends_with('.') {
                return Err(bad("the owner must be an absolute name (ending in a dot)"));
            }
            let owner: Name<Vec<u8>> = f[0]
                .parse()
                .map_err(|_| bad(&format!("{:?} is not a domain name", f[0])))?;
            let rdata = f[at + 1..].join(" ");
            let anchor = if f[at].eq_ignore_ascii_case("DS") {
                Anchor::Ds(crate::dnssec::ds::ds_from_text(&rdata).map_err(|e| bad(&e))?)
            } else {
                Anchor::Dnskey(dnskey_from_text(&rdata).map_err(|e| bad(&e))?)
            };
            by_zone.entry(key(&owner)).or_default().push(anchor);
        }
        if by_zone.is_empty() {
            return Err("no DS or DNSKEY record".into());
        }
        Ok(Anchors { by_zone })
    }

    /// The zones anchored, lower case with the trailing dot.
    pub fn zones(&self) -> Vec<String> {
        let mut z: Vec<String> = self.by_zone.keys().map(|k| format!("{k}.")).collect();
        z.sort();
        z
    }

    /// Whether an anchor is at `name` or above it.
    fn covers(&self, name: &str) -> bool {
        let mut n = name;
        loop {
            if self.by_zone.contains_key(n) {
                return true;
            }
            match n.split_once('.') {
                Some((_, up)) => n = up,
                None if n.is_empty() => return false,
                None => n = "",
            }
        }
    }
}

/// DNSKEY record data from `FLAGS PROTOCOL ALGORITHM BASE64` (the key may
/// be split by spaces), in wire form.
fn dnskey_from_text(text: &str) -> Result<Vec<u8>, String> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let [flags, protocol, algorithm, key @ ..] = f.as_slice() else {
        return Err("a DNSKEY record needs flags, protocol, algorithm and key".into());
    };
    let flags: u16 = flags.parse().map_err(|_| "the flags are not a number")?;
    let protocol: u8 = protocol
        .parse()
        .map_err(|_| "the protocol is not a number")?;
    let algorithm: u8 = algorithm
        .parse()
        .map_err(|_| "the algorithm is not a number")?;
    let key = domain::utils::base64::decode::<Vec<u8>>(&key.concat())
        .map_err(|_| "the key is not base64")?;
    if key.is_empty() {
        return Err("the key is missing".into());
    }
    let mut wire = flags.to_be_bytes().to_vec();
    wire.extend([protocol, algorithm]);
    wire.extend(key);
    Ok(wire)
}

/// An RRset that validated (empty: absent, see the module comment), with
/// the inception of the signature that made it so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validated {
    pub rdatas: Vec<Vec<u8>>,
    pub inception: u32,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One round of lookups at one time; the zones' keys found on the way are
/// kept for the round (several signals share their operator's zones).
pub struct Validator<'a> {
    resolver: SocketAddr,
    anchors: &'a Anchors,
    now: u64,
    keys: HashMap<String, Result<Vec<Vec<u8>>, String>>,
}

impl<'a> Validator<'a> {
    pub fn new(resolver: SocketAddr, anchors: &'a Anchors, now: u64) -> Validator<'a> {
        Validator {
            resolver,
            anchors,
            now,
            keys: HashMap::new(),
        }
    }

    /// The RRset of `rtype` at `name`, validated; or why it does not
    /// validate. Long because each RRSIG found is tried in turn, and what
    /// each one lacked is kept for the answer.
    pub fn rrset<'s>(
        &'s mut self,
        name: Name<Vec<u8>>,
        rtype: Rtype,
    ) -> Boxed<'s, Result<Validated, String>> {
        Box::pin(async move {
            if !self.anchors.covers(&key(&name)) {
                return Err(format!("no trust anchor at or above {name}."));
            }
            let answer = crate::dns::resolve(self.resolver, &name, rtype)
                .await
                .map_err(|e| format!("{name}. {rtype}: {e}"))?;
            let rdatas: Vec<Vec<u8>> = crate::dns::answer_rdata(&answer, &name, rtype)
                .into_iter()
                .map(|(r, _)| r)
                .collect();
            if rdatas.is_empty() {
                return Ok(Validated::default());
            }
            let sigs = rrsigs(&answer, &name, rtype);
            if sigs.is_empty() {
                return Err(format!("{name}. {rtype} is unsigned (no RRSIG)"));
            }
            let mut why = Vec::new();
            for sig in &sigs {
                let signer = sig.signer_name().clone();
                let below = name.ends_with(&signer);
                // A DS RRset is the parent's, signed by the zone above.
                if !below || (rtype == Rtype::DS && signer.name_eq(&name)) {
                    why.push(format!("an RRSIG by {signer}., which is not above it"));
                    continue;
                }
                let keys = match self.zone_keys(signer.clone()).await {
                    Ok(k) => k,
                    Err(e) => {
                        why.push(e);
                        continue;
                    }
                };
                let mut errors = Vec::new();
                for k in &keys {
                    match verify_signed(&name, &signer, rtype, &rdatas, sig, k, self.now) {
                        Ok(()) => {
                            return Ok(Validated {
                                rdatas,
                                inception: sig.inception().into_int(),
                            })
                        }
                        Err(e) => errors.push(e),
                    }
                }
                why.push(
                    errors
                        .into_iter()
                        .find(|e| !e.contains("is by key"))
                        .unwrap_or(format!(
                            "its RRSIG by key {} is by no key of {signer}.",
                            sig.key_tag()
                        )),
                );
            }
            why.dedup();
            Err(format!(
                "{name}. {rtype} does not validate: {}",
                why.join("; ")
            ))
        })
    }

    /// The keys of `zone` that validate: those of its DNSKEY RRset, when
    /// that RRset is signed by a key its trust anchor or its validated DS
    /// RRset points to (zone keys only, none revoked).
    fn zone_keys<'s>(&'s mut self, zone: Name<Vec<u8>>) -> Boxed<'s, Result<Vec<Vec<u8>>, String>> {
        Box::pin(async move {
            let k = key(&zone);
            if let Some(known) = self.keys.get(&k) {
                return known.clone();
            }
            let found = self.find_zone_keys(&zone).await;
            self.keys.insert(k, found.clone());
            found
        })
    }

    async fn find_zone_keys(&mut self, zone: &Name<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
        let answer = crate::dns::resolve(self.resolver, zone, Rtype::DNSKEY)
            .await
            .map_err(|e| format!("{zone}. DNSKEY: {e}"))?;
        let keys: Vec<Vec<u8>> = crate::dns::answer_rdata(&answer, zone, Rtype::DNSKEY)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        if keys.is_empty() {
            return Err(format!("{zone}. has no DNSKEY RRset"));
        }
        let (vouched, by): (Vec<&Vec<u8>>, &str) = match self.anchors.by_zone.get(&key(zone)) {
            Some(anchors) => (
                keys.iter()
                    .filter(|k| {
                        anchors.iter().any(|a| match a {
                            Anchor::Dnskey(d) => d == *k,
                            Anchor::Ds(d) => {
                                super::cds::ds_matches_key(zone, std::slice::from_ref(d), k)
                            }
                        })
                    })
                    .collect(),
                "its trust anchor",
            ),
            None => {
                let ds = self.rrset(zone.clone(), Rtype::DS).await?;
                if ds.rdatas.is_empty() {
                    return Err(format!(
                        "{zone}. has no DS at its parent: it is not signed, or not \
                         delegated securely, so nothing in it validates"
                    ));
                }
                (
                    keys.iter()
                        .filter(|k| super::cds::ds_matches_key(zone, &ds.rdatas, k))
                        .collect(),
                    "its DS",
                )
            }
        };
        let sigs = rrsigs(&answer, zone, Rtype::DNSKEY);
        let signed = sigs.iter().any(|s| {
            vouched
                .iter()
                .any(|k| verify_signed(zone, zone, Rtype::DNSKEY, &keys, s, k, self.now).is_ok())
        });
        if !signed {
            return Err(format!(
                "{zone}. DNSKEY RRset is not signed by a key {by} points to"
            ));
        }
        Ok(keys
            .into_iter()
            .filter(|k| {
                crate::dnssec::verify::parse_dnskey(k)
                    .is_some_and(|d| d.flags() & 0x0100 != 0 && d.flags() & 0x0080 == 0)
            })
            .collect())
    }
}

/// The RRSIGs in an answer over the RRset of `rtype` at `name`.
pub fn rrsigs(answer: &Message<Bytes>, name: &Name<Vec<u8>>, rtype: Rtype) -> Vec<ReceivedRrsig> {
    let Ok(section) = answer.answer() else {
        return Vec::new();
    };
    section
        .limit_to::<Rrsig<Bytes, domain::base::ParsedName<Bytes>>>()
        .flatten()
        .filter(|r| r.data().type_covered() == rtype && r.owner().name_eq(name))
        .filter_map(|r| received(r.data()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_ds_and_dnskey_records_by_zone() {
        let a = Anchors::parse(
            "; op.example's KSK\nop.example. 3600 IN DS 12345 13 2 \
             0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n\
             $TTL 60\nother.example. DNSKEY 257 3 13 AAEC AwQ=\n",
        )
        .unwrap();
        assert_eq!(a.zones(), vec!["op.example.", "other.example."]);
        assert!(a.covers("_dsboot.child.test._signal.ns1.op.example"));
        assert!(a.covers("op.example"));
        assert!(!a.covers("example"));
        assert!(!a.covers("ns1.example"));
        assert_eq!(
            a.by_zone["other.example"],
            vec![Anchor::Dnskey(vec![1, 1, 3, 13, 0, 1, 2, 3, 4])]
        );
    }

    #[test]
    fn a_bad_anchor_is_named_by_its_line() {
        for (text, why) in [
            (
                "op.example. A 192.0.2.1\n",
                "line 1: not a DS or DNSKEY record",
            ),
            (
                "op.example DS 1 13 2 00\n",
                "line 1: the owner must be an absolute",
            ),
            (
                "\nop.example. DS 1 13 2 zz\n",
                "line 2: the digest is not hexadecimal",
            ),
            (
                "op.example. DNSKEY 257 3 13 !!\n",
                "line 1: the key is not base64",
            ),
            ("; nothing\n", "no DS or DNSKEY record"),
        ] {
            let e = Anchors::parse(text).unwrap_err();
            assert!(e.starts_with(why), "{text:?}: {e}");
        }
    }
}
