//! Public material: DNSKEY, DS, CDS and CDNSKEY record data (RFC 4034 §2,
//! §5; RFC 7344).

use domain::base::iana::DigestAlgorithm;
use domain::base::name::{Name, ToName};
use domain::base::rdata::ComposeRecordData;
use domain::rdata::dnssec::{Dnskey, Ds};

use super::algorithm::Algorithm;

/// DS digest algorithms we make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsDigest {
    Sha256,
    Sha384,
}

impl DsDigest {
    pub fn number(self) -> u8 {
        match self {
            DsDigest::Sha256 => 2,
            DsDigest::Sha384 => 4,
        }
    }

    pub fn from_number(n: u32) -> Option<DsDigest> {
        match n {
            2 => Some(DsDigest::Sha256),
            4 => Some(DsDigest::Sha384),
            _ => None,
        }
    }

    /// Parses "sha256", "sha-384", "2", "4".
    pub fn parse(s: &str) -> Option<DsDigest> {
        match s.trim().to_ascii_lowercase().replace('-', "").as_str() {
            "sha256" | "2" => Some(DsDigest::Sha256),
            "sha384" | "4" => Some(DsDigest::Sha384),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DsDigest::Sha256 => "SHA-256",
            DsDigest::Sha384 => "SHA-384",
        }
    }
}

/// DNSKEY record data for a public key.
pub fn dnskey(flags: u16, algorithm: Algorithm, public_key: &[u8]) -> Dnskey<Vec<u8>> {
    // A public key from a supported algorithm is far below the 64 KiB limit.
    Dnskey::new(
        flags,
        3,
        algorithm.security_algorithm(),
        public_key.to_vec(),
    )
    .expect("public key fits a DNSKEY")
}

/// DNSKEY record data in wire form.
pub fn dnskey_wire(key: &Dnskey<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = key.compose_rdata(&mut out);
    out
}

/// The DS record data for a DNSKEY of zone `apex` (RFC 4034 §5.1.4):
/// digest over the owner name in canonical form and the DNSKEY RDATA.
pub fn ds(apex: &Name<Vec<u8>>, key: &Dnskey<Vec<u8>>, digest: DsDigest) -> Ds<Vec<u8>> {
    let mut data = Vec::new();
    let _ = apex.compose_canonical(&mut data);
    let _ = key.compose_rdata(&mut data);
    let (alg, d) = match digest {
        DsDigest::Sha256 => (
            DigestAlgorithm::SHA256,
            ring::digest::digest(&ring::digest::SHA256, &data),
        ),
        DsDigest::Sha384 => (
            DigestAlgorithm::SHA384,
            ring::digest::digest(&ring::digest::SHA384, &data),
        ),
    };
    Ds::new(key.key_tag(), key.algorithm(), alg, d.as_ref().to_vec()).expect("digest fits a DS")
}

/// DS (or CDS: same data) record data in wire form.
pub fn ds_wire(ds: &Ds<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = ds.compose_rdata(&mut out);
    out
}

/// A DS record in presentation form: `TAG ALG DIGEST-TYPE HEX`.
pub fn ds_text(wire: &[u8]) -> String {
    match wire {
        [t0, t1, alg, dt, digest @ ..] => format!(
            "{} {alg} {dt} {}",
            u16::from_be_bytes([*t0, *t1]),
            crate::hex::hex(digest).to_uppercase()
        ),
        _ => crate::hex::hex(wire),
    }
}

/// A DS record from `TAG ALG DIGEST-TYPE HEX` (the digest may be split by
/// spaces, as in zone files), in wire form.
pub fn ds_from_text(text: &str) -> std::result::Result<Vec<u8>, String> {
    let mut fields = text.split_whitespace();
    let mut number = |what: &str, max: u32| -> std::result::Result<u32, String> {
        let f = fields.next().ok_or(format!("the {what} is missing"))?;
        f.parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or(format!("the {what} {f:?} is not a number up to {max}"))
    };
    let tag = number("key tag", 65535)? as u16;
    let alg = number("algorithm", 255)? as u8;
    let dt = number("digest type", 255)? as u8;
    let hex: String = fields.collect();
    let digest = crate::hex::unhex(&hex).ok_or("the digest is not hexadecimal")?;
    if digest.is_empty() {
        return Err("the digest is missing".into());
    }
    if let Some(d) = DsDigest::from_number(dt.into()) {
        let len = match d {
            DsDigest::Sha256 => 32,
            DsDigest::Sha384 => 48,
        };
        if digest.len() != len {
            return Err(format!(
                "a {} digest is {len} octets, not {}",
                d.name(),
                digest.len()
            ));
        }
    }
    let mut wire = tag.to_be_bytes().to_vec();
    wire.extend([alg, dt]);
    wire.extend(digest);
    Ok(wire)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn ds_of_rfc8080_example_key_matches_the_rfc() {
        // RFC 8080 §6.1, the Ed25519 KSK of example.com. and its DS.
        let pk = domain::utils::base64::decode::<Vec<u8>>(
            "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=",
        )
        .unwrap();
        let key = dnskey(257, Algorithm::Ed25519, &pk);
        assert_eq!(key.key_tag(), 3613);
        let apex = Name::<Vec<u8>>::from_str("example.com.").unwrap();
        let d = ds(&apex, &key, DsDigest::Sha256);
        let hex: String = d.digest().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b"
        );
    }

    #[test]
    fn ds_text_reads_back() {
        let text = "2371 13 2 1F987CC6583E92DF0890718C42A1E95F9B2B6C0E8E7A2D6A5A9D6EC5F5D7A9C2";
        let wire = ds_from_text(text).unwrap();
        assert_eq!(ds_text(&wire), text);
        let split = "2371 13 2 1F987CC6583E92DF0890718C42A1E95F 9B2B6C0E8E7A2D6A5A9D6EC5F5D7A9C2";
        assert_eq!(ds_from_text(split).unwrap(), wire);
        assert!(ds_from_text("2371 13 2 1F98")
            .unwrap_err()
            .contains("32 octets"));
        assert!(ds_from_text("70000 13 2 00")
            .unwrap_err()
            .contains("key tag"));
        assert!(ds_from_text("1 13 2 xyz")
            .unwrap_err()
            .contains("hexadecimal"));
    }

    #[test]
    fn digest_names_parse() {
        assert_eq!(DsDigest::parse("SHA-256"), Some(DsDigest::Sha256));
        assert_eq!(DsDigest::parse("4"), Some(DsDigest::Sha384));
        assert_eq!(DsDigest::parse("md5"), None);
    }
}
