//! Authenticated denial of existence: NSEC (RFC 4034 §4) and NSEC3
//! (RFC 5155) record data, with the parameters RFC 9276 recommends.

use domain::base::iana::{Nsec3HashAlgorithm, Rtype};
use domain::base::name::Name;
use domain::dnssec::common::nsec3_hash;
use domain::rdata::dnssec::RtypeBitmapBuilder;
use domain::rdata::nsec3::Nsec3Salt;

/// How a zone denies existence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    Nsec,
    Nsec3(Nsec3Params),
}

/// NSEC3 parameters (RFC 5155 §3.1). RFC 9276: 0 extra iterations, no salt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nsec3Params {
    pub iterations: u16,
    pub salt: Vec<u8>,
    pub opt_out: bool,
}

/// NSEC3 hash algorithm 1, SHA-1, the only one defined.
const SHA1: u8 = 1;

/// The type bitmap field for these types (RFC 4034 §4.1.2).
pub fn type_bitmap(types: impl IntoIterator<Item = Rtype>) -> Vec<u8> {
    let mut b = RtypeBitmapBuilder::new_vec();
    for t in types {
        // Appending to a Vec cannot fail.
        let _ = b.add(t);
    }
    b.finalize().as_slice().to_vec()
}

/// NSEC record data: next owner (wire) and type bitmap.
pub fn nsec_rdata(next_owner_wire: &[u8], bitmap: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(next_owner_wire.len() + bitmap.len());
    out.extend_from_slice(next_owner_wire);
    out.extend_from_slice(bitmap);
    out
}

/// NSEC3PARAM record data (RFC 5155 §4.2); flags are zero.
pub fn nsec3param_rdata(p: &Nsec3Params) -> Vec<u8> {
    let mut out = vec![SHA1, 0];
    out.extend_from_slice(&p.iterations.to_be_bytes());
    out.push(p.salt.len() as u8);
    out.extend_from_slice(&p.salt);
    out
}

/// NSEC3 record data (RFC 5155 §3.2).
pub fn nsec3_rdata(p: &Nsec3Params, next_hash: &[u8], bitmap: &[u8]) -> Vec<u8> {
    let mut out = vec![SHA1, u8::from(p.opt_out)];
    out.extend_from_slice(&p.iterations.to_be_bytes());
    out.push(p.salt.len() as u8);
    out.extend_from_slice(&p.salt);
    out.push(next_hash.len() as u8);
    out.extend_from_slice(next_hash);
    out.extend_from_slice(bitmap);
    out
}

/// The NSEC3 hash of a name in wire form (RFC 5155 §5).
pub fn hash_name(wire: &[u8], p: &Nsec3Params) -> Vec<u8> {
    let name = Name::from_slice(wire).expect("wire names come from valid keys");
    let salt = Nsec3Salt::from_octets(p.salt.clone()).expect("salt checked at zone creation");
    let h: domain::rdata::nsec3::OwnerHash<Vec<u8>> =
        nsec3_hash(name, Nsec3HashAlgorithm::SHA1, p.iterations, &salt)
            .expect("SHA-1 NSEC3 hashing does not fail");
    h.as_slice().to_vec()
}

/// The hashed owner label: the hash in Base32hex without padding, lower case.
pub fn hash_label(hash: &[u8]) -> String {
    domain::utils::base32::encode_string_hex(hash).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn nsec3_hash_matches_rfc5155_appendix_a() {
        // RFC 5155 Appendix A: salt aabbccdd, 12 iterations;
        // example. -> 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom
        let p = Nsec3Params {
            iterations: 12,
            salt: vec![0xaa, 0xbb, 0xcc, 0xdd],
            opt_out: false,
        };
        let name = Name::<Vec<u8>>::from_str("example.").unwrap();
        assert_eq!(
            hash_label(&hash_name(name.as_slice(), &p)),
            "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"
        );
        let a = Name::<Vec<u8>>::from_str("a.example.").unwrap();
        assert_eq!(
            hash_label(&hash_name(a.as_slice(), &p)),
            "35mthgpgcu1qg68fab165klnsnk3dpvl"
        );
    }

    #[test]
    fn bitmap_of_a_and_rrsig_is_the_rfc4034_encoding() {
        // Window 0, length 6: A (1), RRSIG (46) -> bits 1 and 46.
        let b = type_bitmap([Rtype::A, Rtype::RRSIG]);
        assert_eq!(b, vec![0, 6, 0x40, 0, 0, 0, 0, 0x02]);
    }
}
