//! DNSSEC signing algorithms that keymaster supports, by number and mnemonic
//! (RFC 8624 §3.1 lists what should be used today).

use std::fmt;
use std::str::FromStr;

use domain::base::iana::SecurityAlgorithm;

use crate::hsm::{KeySpec, SignScheme};

/// A DNSSEC algorithm with the key size where the algorithm has a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    /// RSASHA256 (8), RFC 5702, with the modulus size in bits.
    RsaSha256 { bits: u32 },
    /// ECDSAP256SHA256 (13), RFC 6605.
    EcdsaP256Sha256,
    /// ECDSAP384SHA384 (14), RFC 6605.
    EcdsaP384Sha384,
    /// ED25519 (15), RFC 8080.
    Ed25519,
}

/// RSA modulus sizes we generate.
pub const RSA_BITS: [u32; 3] = [2048, 3072, 4096];

impl Algorithm {
    /// The IANA algorithm number.
    pub fn number(self) -> u8 {
        match self {
            Algorithm::RsaSha256 { .. } => 8,
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::EcdsaP384Sha384 => 14,
            Algorithm::Ed25519 => 15,
        }
    }

    pub fn mnemonic(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 { .. } => "RSASHA256",
            Algorithm::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Algorithm::EcdsaP384Sha384 => "ECDSAP384SHA384",
            Algorithm::Ed25519 => "ED25519",
        }
    }

    pub fn security_algorithm(self) -> SecurityAlgorithm {
        SecurityAlgorithm::from_int(self.number())
    }

    pub fn bits(self) -> u32 {
        self.key_spec().bits()
    }

    pub fn key_spec(self) -> KeySpec {
        match self {
            Algorithm::RsaSha256 { bits } => KeySpec::Rsa(bits),
            Algorithm::EcdsaP256Sha256 => KeySpec::EcP256,
            Algorithm::EcdsaP384Sha384 => KeySpec::EcP384,
            Algorithm::Ed25519 => KeySpec::Ed25519,
        }
    }

    pub fn sign_scheme(self) -> SignScheme {
        SignScheme::for_spec(self.key_spec())
    }

    /// The algorithm for a number and, for RSA, a size (0 = 2048).
    pub fn from_number(number: u32, rsa_bits: u32) -> Result<Self, AlgorithmError> {
        match number {
            8 => {
                let bits = if rsa_bits == 0 { 2048 } else { rsa_bits };
                if RSA_BITS.contains(&bits) {
                    Ok(Algorithm::RsaSha256 { bits })
                } else {
                    Err(AlgorithmError::RsaBits(bits))
                }
            }
            13 => Ok(Algorithm::EcdsaP256Sha256),
            14 => Ok(Algorithm::EcdsaP384Sha384),
            15 => Ok(Algorithm::Ed25519),
            n => Err(AlgorithmError::Unknown(n.to_string())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::RsaSha256 { bits } => write!(f, "RSASHA256 ({bits} bits)"),
            a => f.write_str(a.mnemonic()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlgorithmError {
    #[error("unknown or unsupported DNSSEC algorithm {0:?} (use rsasha256, ecdsap256sha256, ecdsap384sha384, ed25519 or 8, 13, 14, 15)")]
    Unknown(String),
    #[error("RSA key size {0} is not supported (use 2048, 3072 or 4096)")]
    RsaBits(u32),
}

impl FromStr for Algorithm {
    type Err = AlgorithmError;

    /// Parses a mnemonic or number; RSA takes its size after a colon or
    /// dash (`rsasha256:3072`) and defaults to 2048 bits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, bits) = match lower.split_once([':', '-']) {
            Some((n, b)) => (
                n.to_string(),
                b.parse::<u32>()
                    .map_err(|_| AlgorithmError::Unknown(s.to_string()))?,
            ),
            None => (lower.clone(), 0),
        };
        let number = match name.as_str() {
            "rsasha256" | "8" => 8,
            "ecdsap256sha256" | "13" => 13,
            "ecdsap384sha384" | "14" => 14,
            "ed25519" | "15" => 15,
            _ => return Err(AlgorithmError::Unknown(s.to_string())),
        };
        if number != 8 && bits != 0 {
            return Err(AlgorithmError::Unknown(s.to_string()));
        }
        Algorithm::from_number(number, bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_parse_by_mnemonic_and_number() {
        assert_eq!("ECDSAP256SHA256".parse(), Ok(Algorithm::EcdsaP256Sha256));
        assert_eq!("13".parse(), Ok(Algorithm::EcdsaP256Sha256));
        assert_eq!("ed25519".parse(), Ok(Algorithm::Ed25519));
        assert_eq!("14".parse(), Ok(Algorithm::EcdsaP384Sha384));
        assert_eq!("rsasha256".parse(), Ok(Algorithm::RsaSha256 { bits: 2048 }));
        assert_eq!("8:4096".parse(), Ok(Algorithm::RsaSha256 { bits: 4096 }));
    }

    #[test]
    fn wrong_algorithm_names_are_refused_with_the_name() {
        let e = "rsasha1".parse::<Algorithm>().unwrap_err();
        assert!(e.to_string().contains("rsasha1"));
        assert_eq!(
            "rsasha256:1024".parse::<Algorithm>(),
            Err(AlgorithmError::RsaBits(1024))
        );
        assert!("ed25519:256".parse::<Algorithm>().is_err());
    }
}
