//! RRset signing: the data an RRSIG covers (RFC 4034 §3.1.8.1), the RRSIG
//! record itself, and the port through which signatures are made.
//!
//! The private keys live in a token; this module only sees a `SignWorker`,
//! able to sign bytes with a key by its id.

use domain::base::iana::{Class, Rtype};
use domain::base::name::{Name, ToName};
use domain::base::Ttl;
use domain::rdata::dnssec::{ProtoRrsig, Rrsig, Timestamp};

use super::algorithm::Algorithm;

/// What a key is used for in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    /// Key-signing key: signs the DNSKEY (and CDS/CDNSKEY) RRset; its DS is
    /// at the parent. DNSKEY flags 257.
    Ksk,
    /// Zone-signing key: signs everything else. DNSKEY flags 256.
    Zsk,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Ksk => "ksk",
            KeyRole::Zsk => "zsk",
        }
    }

    /// DNSKEY flags: Zone Key, plus Secure Entry Point for a KSK (RFC 4034 §2.1.1).
    pub fn dnskey_flags(self) -> u16 {
        match self {
            KeyRole::Ksk => 257,
            KeyRole::Zsk => 256,
        }
    }

    pub fn parse(s: &str) -> Option<KeyRole> {
        match s.to_ascii_lowercase().as_str() {
            "ksk" => Some(KeyRole::Ksk),
            "zsk" => Some(KeyRole::Zsk),
            _ => None,
        }
    }
}

/// A key that signs: what the RRSIG names, and how the token finds it.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub role: KeyRole,
    pub algorithm: Algorithm,
    pub key_tag: u16,
    /// The key's CKA_ID in the token.
    pub token_id: Vec<u8>,
}

/// Failure to make a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing with key {key_tag} failed: {reason}")]
pub struct SignError {
    pub key_tag: u16,
    pub reason: String,
}

/// Signs bytes with a key.
pub trait SignWorker {
    fn sign(&mut self, key: &SigningKey, data: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Signature inception and expiration, seconds since the epoch (serial
/// number arithmetic, RFC 4034 §3.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub inception: u32,
    pub expiration: u32,
}

/// The RRSIG labels field: labels of the owner without the root and without
/// a leading wildcard (RFC 4034 §3.1.3).
pub fn rrsig_labels(label_count: usize, wildcard: bool) -> u8 {
    (label_count - usize::from(wildcard)) as u8
}

/// An RRSIG in the making: the fields that precede the signature.
pub fn proto_rrsig(
    rtype: Rtype,
    key: &SigningKey,
    labels: u8,
    ttl: u32,
    validity: Validity,
    signer: &Name<Vec<u8>>,
) -> ProtoRrsig<Name<Vec<u8>>> {
    ProtoRrsig::new(
        rtype,
        key.algorithm.security_algorithm(),
        labels,
        Ttl::from_secs(ttl),
        Timestamp::from(validity.expiration),
        Timestamp::from(validity.inception),
        key.key_tag,
        signer.clone(),
    )
}

/// The bytes an RRSIG signs: its own fields, then each record of the RRset
/// in canonical form and order (RFC 4034 §3.1.8.1, §6.3). `owner` is the
/// lower-case wire form; `rdatas` are canonical and sorted, without
/// duplicates.
pub fn signed_data<'a>(
    proto: &ProtoRrsig<Name<Vec<u8>>>,
    owner: &[u8],
    rtype: Rtype,
    ttl: u32,
    rdatas: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut data = Vec::with_capacity(256);
    // Appending to a Vec cannot fail.
    let _ = proto.compose_canonical(&mut data);
    for rdata in rdatas {
        data.extend_from_slice(owner);
        data.extend_from_slice(&rtype.to_int().to_be_bytes());
        data.extend_from_slice(&Class::IN.to_int().to_be_bytes());
        data.extend_from_slice(&ttl.to_be_bytes());
        data.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        data.extend_from_slice(rdata);
    }
    data
}

/// Signs one RRset with one key and returns the RRSIG record data.
#[allow(clippy::too_many_arguments)]
pub fn sign_rrset<'a, W: SignWorker + ?Sized>(
    worker: &mut W,
    key: &SigningKey,
    signer: &Name<Vec<u8>>,
    owner: &[u8],
    labels: u8,
    rtype: Rtype,
    ttl: u32,
    rdatas: impl Iterator<Item = &'a [u8]>,
    validity: Validity,
) -> Result<Rrsig<Vec<u8>, Name<Vec<u8>>>, SignError> {
    let proto = proto_rrsig(rtype, key, labels, ttl, validity, signer);
    let data = signed_data(&proto, owner, rtype, ttl, rdatas);
    let signature = worker.sign(key, &data)?;
    proto.into_rrsig(signature).map_err(|_| SignError {
        key_tag: key.key_tag,
        reason: "signature too long for an RRSIG".into(),
    })
}

/// RRSIG record data in wire form.
pub fn rrsig_wire(rrsig: &Rrsig<Vec<u8>, Name<Vec<u8>>>) -> Vec<u8> {
    use domain::base::rdata::ComposeRecordData;
    let mut out = Vec::with_capacity(128);
    let _ = rrsig.compose_rdata(&mut out);
    out
}

/// Whether the name lies at or below the apex.
pub fn in_zone(name: &impl ToName, apex: &impl ToName) -> bool {
    name.ends_with(apex)
}
