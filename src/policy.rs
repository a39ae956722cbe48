//! A zone's signing policy and its defaults (ARCHITECTURE.md, Defaults): modern by default,
//! Windows-compatible where that is not worse.

use serde::{Deserialize, Serialize};

use crate::dnssec::denial::{Denial, Nsec3Params};
use crate::dnssec::ds::DsDigest;
use crate::dnssec::Algorithm;

const HOUR: u32 = 3600;
const DAY: u32 = 24 * HOUR;

/// How the zone denies existence, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DenialPolicy {
    Nsec,
    Nsec3 {
        iterations: u16,
        /// Salt in hex; empty for none (RFC 9276 §3.1).
        salt: String,
        opt_out: bool,
    },
}

/// Signing settings of a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub algorithm: Algorithm,
    pub denial: DenialPolicy,
    /// Validity of signatures over DNSKEY, CDS and CDNSKEY, seconds.
    pub dnskey_signature_validity: u32,
    /// Validity of other signatures, seconds.
    pub signature_validity: u32,
    /// How far before now a signature's inception lies, seconds.
    pub signature_inception_offset: u32,
    pub dnskey_ttl: u32,
    pub ds_ttl: u32,
    /// DS digest algorithm numbers.
    pub ds_digests: Vec<u8>,
    pub publish_cds: bool,
    pub propagation_time: u32,
    pub zsk_rollover_period: u32,
    pub ksk_rollover_period: u32,
    /// Automatic failover (beyond Windows): seconds after the Key Master's
    /// lease is gone before a candidate seizes the role by itself; 0 = off.
    #[serde(default)]
    pub auto_failover: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            algorithm: Algorithm::EcdsaP256Sha256,
            denial: DenialPolicy::Nsec3 {
                iterations: 0,
                salt: String::new(),
                opt_out: false,
            },
            dnskey_signature_validity: 168 * HOUR,
            signature_validity: 240 * HOUR,
            signature_inception_offset: HOUR,
            dnskey_ttl: HOUR,
            ds_ttl: HOUR,
            ds_digests: vec![2],
            publish_cds: false,
            propagation_time: 2 * DAY,
            zsk_rollover_period: 90 * DAY,
            ksk_rollover_period: 755 * DAY,
            auto_failover: 0,
        }
    }
}

/// A policy that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy: {0}")]
pub struct PolicyError(pub String);

impl Policy {
    /// Checks the values against what resolvers and RFCs accept.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if let DenialPolicy::Nsec3 {
            iterations, salt, ..
        } = &self.denial
        {
            // RFC 9276 §3.2: validators may treat more than 100 iterations
            // as insecure; 0 is what everyone should use.
            if *iterations > 100 {
                return Err(PolicyError(format!(
                    "NSEC3 iterations {iterations} is above 100 (RFC 9276 recommends 0)"
                )));
            }
            let bytes = crate::hex::unhex(salt)
                .ok_or_else(|| PolicyError(format!("NSEC3 salt {salt:?} is not hex")))?;
            if bytes.len() > 255 {
                return Err(PolicyError("NSEC3 salt is longer than 255 bytes".into()));
            }
        }
        for (name, v) in [
            ("dnskey signature validity", self.dnskey_signature_validity),
            ("signature validity", self.signature_validity),
        ] {
            if !(HOUR..=366 * DAY).contains(&v) {
                return Err(PolicyError(format!(
                    "{name} of {v} s is outside 1 hour .. 366 days"
                )));
            }
        }
        if self.signature_inception_offset > 7 * DAY {
            return Err(PolicyError("inception offset is above 7 days".into()));
        }
        for (name, v) in [("DNSKEY TTL", self.dnskey_ttl), ("DS TTL", self.ds_ttl)] {
            if v > 7 * DAY {
                return Err(PolicyError(format!("{name} {v} is above 7 days")));
            }
        }
        if self.ds_digests.is_empty() {
            return Err(PolicyError("no DS digest algorithm".into()));
        }
        for d in &self.ds_digests {
            if DsDigest::from_number(u32::from(*d)).is_none() {
                return Err(PolicyError(format!(
                    "DS digest algorithm {d} is not supported (2 = SHA-256, 4 = SHA-384)"
                )));
            }
        }
        Ok(())
    }

    pub fn denial(&self) -> Denial {
        match &self.denial {
            DenialPolicy::Nsec => Denial::Nsec,
            DenialPolicy::Nsec3 {
                iterations,
                salt,
                opt_out,
            } => Denial::Nsec3(Nsec3Params {
                iterations: *iterations,
                salt: crate::hex::unhex(salt).unwrap_or_default(),
                opt_out: *opt_out,
            }),
        }
    }

    pub fn ds_digests(&self) -> Vec<DsDigest> {
        self.ds_digests
            .iter()
            .filter_map(|d| DsDigest::from_number(u32::from(*d)))
            .collect()
    }
}

/// Parses a duration: plain seconds, or a number with s, m, h, d or w.
pub fn parse_duration(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 3600, 1h, 10d)"))?;
    let mult: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m, h, d, w)")),
    };
    u32::try_from(n * mult).map_err(|_| format!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_design_section_8() {
        let p = Policy::default();
        assert_eq!(p.algorithm, Algorithm::EcdsaP256Sha256);
        assert_eq!(p.dnskey_signature_validity, 168 * 3600);
        assert_eq!(p.signature_validity, 240 * 3600);
        assert_eq!(p.ds_digests, vec![2]);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn policies_out_of_range_are_refused() {
        let mut p = Policy {
            denial: DenialPolicy::Nsec3 {
                iterations: 500,
                salt: String::new(),
                opt_out: false,
            },
            ..Policy::default()
        };
        assert!(p.validate().unwrap_err().0.contains("500"));
        p.denial = DenialPolicy::Nsec3 {
            iterations: 0,
            salt: "xyz".into(),
            opt_out: false,
        };
        assert!(p.validate().unwrap_err().0.contains("salt"));
        p.denial = DenialPolicy::Nsec;
        p.ds_digests = vec![1];
        assert!(p.validate().is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("168h"), Ok(168 * 3600));
        assert_eq!(parse_duration("10d"), Ok(864000));
        assert!(parse_duration("10y").is_err());
        assert!(parse_duration("h").is_err());
    }
}
