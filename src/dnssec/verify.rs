//! Checking a signature someone else made: an RRSIG over an RRset at a
//! zone's apex, by a DNSKEY (RFC 4035 §5.3). keymaster needs it where it
//! takes what another zone publishes on trust: a child's CDS and CDNSKEY
//! (RFC 7344 §4.1). The cryptography is `domain`'s (on `ring`).

use domain::base::iana::{Rtype, SecurityAlgorithm};
use domain::base::name::{Name, ToName};
use domain::crypto::common::PublicKey;
use domain::rdata::dnssec::{ProtoRrsig, Rrsig};
use domain::rdata::Dnskey;

use super::serial::after;
use super::sign::signed_data;

/// An RRSIG as received, with owned data.
pub type ReceivedRrsig = Rrsig<Vec<u8>, Name<Vec<u8>>>;

/// Whether `rrsig` is a valid signature by `dnskey` (record data, wire form)
/// over the RRset of `rtype` at `apex` with these record data, at `now`
/// (Unix seconds): it names the key (tag, algorithm, signer = apex), covers
/// the type, is within its validity period, and verifies. The reason when
/// not.
pub fn verify_rrset(
    apex: &Name<Vec<u8>>,
    rtype: Rtype,
    rdatas: &[Vec<u8>],
    rrsig: &ReceivedRrsig,
    dnskey: &[u8],
    now: u64,
) -> Result<(), String> {
    verify_signed(apex, apex, rtype, rdatas, rrsig, dnskey, now)
}

/// `verify_rrset` for an RRset at `owner` in the zone `signer` (an RRSIG
/// names its zone), as a validator checks an answer from below an apex.
/// An answer made from a wildcard (fewer labels in the RRSIG than in the
/// owner) is refused: taking one needs the proof that the name itself
/// does not exist, which nothing here asks for. Long because each field of
/// the RRSIG is checked in turn, each failure its own message.
pub fn verify_signed(
    owner: &Name<Vec<u8>>,
    signer: &Name<Vec<u8>>,
    rtype: Rtype,
    rdatas: &[Vec<u8>],
    rrsig: &ReceivedRrsig,
    dnskey: &[u8],
    now: u64,
) -> Result<(), String> {
    let key = parse_dnskey(dnskey).ok_or("a DNSKEY record is malformed")?;
    // Neither the root label nor a wildcard's asterisk is counted (RFC
    // 4034 §3.1.3): the zone's own `*.example.` RRset is signed with one
    // label fewer than it has.
    let wildcard = owner.first().is_wildcard();
    let labels = owner.label_count() - 1 - usize::from(wildcard);
    if usize::from(rrsig.labels()) < labels {
        return Err(format!(
            "the RRSIG by key {} is over a wildcard ({} labels of {labels})",
            rrsig.key_tag(),
            rrsig.labels()
        ));
    }
    if usize::from(rrsig.labels()) > labels {
        return Err(format!(
            "the RRSIG by key {} is not over {owner} ({} labels of {labels})",
            rrsig.key_tag(),
            rrsig.labels()
        ));
    }
    if rrsig.type_covered() != rtype {
        return Err(format!("the RRSIG covers {}", rrsig.type_covered()));
    }
    if rrsig.key_tag() != key.key_tag() || rrsig.algorithm() != key.algorithm() {
        return Err(format!("the RRSIG is by key {}", rrsig.key_tag()));
    }
    if !rrsig.signer_name().name_eq(signer) {
        return Err(format!("the RRSIG is signed by {}", rrsig.signer_name()));
    }
    // Serial number arithmetic (RFC 4034 §3.1.5), so that it holds across
    // the 2106 wrap.
    let now32 = now as u32;
    let inception = rrsig.inception().into_int();
    let expiration = rrsig.expiration().into_int();
    if after(inception, now32) {
        return Err(format!(
            "the RRSIG by key {} is not valid yet",
            key.key_tag()
        ));
    }
    if after(now32, expiration) {
        return Err(format!("the RRSIG by key {} has expired", key.key_tag()));
    }
    let mut sorted: Vec<&[u8]> = rdatas.iter().map(Vec::as_slice).collect();
    sorted.sort();
    sorted.dedup();
    let proto = ProtoRrsig::new(
        rrsig.type_covered(),
        rrsig.algorithm(),
        rrsig.labels(),
        rrsig.original_ttl(),
        rrsig.expiration(),
        rrsig.inception(),
        rrsig.key_tag(),
        signer.clone(),
    );
    let mut owner_wire = Vec::new();
    let _ = owner.compose_canonical(&mut owner_wire);
    let data = signed_data(
        &proto,
        &owner_wire,
        rtype,
        rrsig.original_ttl().as_secs(),
        sorted.into_iter(),
    );
    let public = PublicKey::from_dnskey(&key)
        .map_err(|e| format!("key {} cannot be used: {e}", key.key_tag()))?;
    public
        .verify(&data, rrsig.signature())
        .map_err(|_| format!("the signature by key {} does not verify", key.key_tag()))
}

/// An RRSIG from a received message (or a zone file read back), with
/// owned data.
pub fn received<N: ToName>(r: &Rrsig<bytes::Bytes, N>) -> Option<ReceivedRrsig> {
    Rrsig::new(
        r.type_covered(),
        r.algorithm(),
        r.labels(),
        r.original_ttl(),
        r.expiration(),
        r.inception(),
        r.key_tag(),
        r.signer_name().to_name(),
        r.signature().to_vec(),
    )
    .ok()
}

/// DNSKEY record data from its wire form (flags, protocol, algorithm,
/// public key; RFC 4034 §2.1).
pub fn parse_dnskey(rdata: &[u8]) -> Option<Dnskey<Vec<u8>>> {
    let [f0, f1, protocol, algorithm, key @ ..] = rdata else {
        return None;
    };
    Dnskey::new(
        u16::from_be_bytes([*f0, *f1]),
        *protocol,
        SecurityAlgorithm::from_int(*algorithm),
        key.to_vec(),
    )
    .ok()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::dnssec::algorithm::Algorithm;
    use crate::dnssec::ds::{dnskey, dnskey_wire};
    use domain::base::Ttl;
    use domain::rdata::dnssec::Timestamp;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use std::str::FromStr;

    /// An Ed25519 key made in memory, to sign test data as another zone's
    /// operator would (the keys under test here are not keymaster's).
    pub struct TestKey {
        pair: Ed25519KeyPair,
        pub flags: u16,
    }

    impl TestKey {
        pub fn new(flags: u16) -> TestKey {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            TestKey {
                pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
                flags,
            }
        }

        pub fn dnskey(&self) -> Dnskey<Vec<u8>> {
            dnskey(
                self.flags,
                Algorithm::Ed25519,
                self.pair.public_key().as_ref(),
            )
        }

        pub fn rdata(&self) -> Vec<u8> {
            dnskey_wire(&self.dnskey())
        }

        /// An RRSIG by this key over the RRset, valid from `inception` for a day.
        pub fn sign(
            &self,
            apex: &Name<Vec<u8>>,
            rtype: Rtype,
            rdatas: &[Vec<u8>],
            inception: u32,
        ) -> ReceivedRrsig {
            self.sign_at(apex, apex, rtype, rdatas, inception)
        }

        /// `sign` for an RRset at `at` in the zone `zone`.
        pub fn sign_at(
            &self,
            at: &Name<Vec<u8>>,
            zone: &Name<Vec<u8>>,
            rtype: Rtype,
            rdatas: &[Vec<u8>],
            inception: u32,
        ) -> ReceivedRrsig {
            let proto = ProtoRrsig::new(
                rtype,
                self.dnskey().algorithm(),
                at.label_count() as u8 - 1,
                Ttl::from_secs(3600),
                Timestamp::from(inception + 86_400),
                Timestamp::from(inception),
                self.dnskey().key_tag(),
                zone.clone(),
            );
            let mut owner = Vec::new();
            let _ = at.compose_canonical(&mut owner);
            let mut sorted: Vec<&[u8]> = rdatas.iter().map(Vec::as_slice).collect();
            sorted.sort();
            let data = signed_data(&proto, &owner, rtype, 3600, sorted.into_iter());
            let sig = self.pair.sign(&data).as_ref().to_vec();
            proto.into_rrsig(sig).unwrap()
        }
    }

    #[test]
    fn a_signature_verifies_and_a_changed_rrset_does_not() {
        let apex = Name::<Vec<u8>>::from_str("child.example.").unwrap();
        let ksk = TestKey::new(257);
        let other = TestKey::new(257);
        let rrset = vec![ksk.rdata(), other.rdata()];
        let now: u64 = 1_800_000_000;
        let sig = ksk.sign(&apex, Rtype::DNSKEY, &rrset, now as u32 - 60);
        verify_rrset(&apex, Rtype::DNSKEY, &rrset, &sig, &ksk.rdata(), now).unwrap();
        let e =
            verify_rrset(&apex, Rtype::DNSKEY, &rrset[..1], &sig, &ksk.rdata(), now).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        let e = verify_rrset(&apex, Rtype::DNSKEY, &rrset, &sig, &other.rdata(), now).unwrap_err();
        assert!(e.contains("is by key"), "{e}");
        let e = verify_rrset(&apex, Rtype::CDS, &rrset, &sig, &ksk.rdata(), now).unwrap_err();
        assert!(e.contains("covers DNSKEY"), "{e}");
        let e = verify_rrset(
            &apex,
            Rtype::DNSKEY,
            &rrset,
            &sig,
            &ksk.rdata(),
            now + 90_000,
        )
        .unwrap_err();
        assert!(e.contains("expired"), "{e}");
        let e =
            verify_rrset(&apex, Rtype::DNSKEY, &rrset, &sig, &ksk.rdata(), now - 3600).unwrap_err();
        assert!(e.contains("not valid yet"), "{e}");
    }

    #[test]
    fn a_signature_below_the_apex_names_its_zone_and_owner() {
        let zone = Name::<Vec<u8>>::from_str("op.example.").unwrap();
        let at = Name::<Vec<u8>>::from_str("_dsboot.child.example._signal.op.example.").unwrap();
        let key = TestKey::new(256);
        let rrset = vec![vec![1, 2, 3, 4, 5]];
        let now: u64 = 1_800_000_000;
        let sig = key.sign_at(&at, &zone, Rtype::CDS, &rrset, now as u32 - 60);
        verify_signed(&at, &zone, Rtype::CDS, &rrset, &sig, &key.rdata(), now).unwrap();
        let e =
            verify_signed(&zone, &zone, Rtype::CDS, &rrset, &sig, &key.rdata(), now).unwrap_err();
        assert!(e.contains("is not over op.example"), "{e}");
        let deeper =
            Name::<Vec<u8>>::from_str("x._dsboot.child.example._signal.op.example.").unwrap();
        let e =
            verify_signed(&deeper, &zone, Rtype::CDS, &rrset, &sig, &key.rdata(), now).unwrap_err();
        assert!(e.contains("over a wildcard"), "{e}");
        let e = verify_signed(&at, &at, Rtype::CDS, &rrset, &sig, &key.rdata(), now).unwrap_err();
        assert!(e.contains("is signed by op.example"), "{e}");
    }
}
