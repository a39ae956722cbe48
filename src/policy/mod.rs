//! A zone's signing policy and its defaults (ARCHITECTURE.md, Defaults): modern by default,
//! Windows-compatible where that is not worse.

pub mod intervals;

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
    /// CDS/CDNSKEY at all times (RFC 7344, 8078) ...
    pub publish_cds: bool,
    /// ... or only while a KSK roll waits for the parent to take the new
    /// DS (from the DS swap until the old KSK goes): a parent that scans
    /// for CDS then acts, and between rolls nothing asks it to.
    #[serde(default)]
    pub cds_during_rollover: bool,
    /// Propagation delay from the primary to every secondary (Dprp, DprpC
    /// of RFC 7583), seconds.
    pub propagation_time: u32,
    /// Key lifetimes (Lzsk, Lksk), seconds; 0 = never rolled by the engine.
    pub zsk_rollover_period: u32,
    pub ksk_rollover_period: u32,
    /// ZSK rolls by double signature (RFC 7583 §3.2.2) rather than
    /// pre-publication: faster, with bigger answers during the roll.
    #[serde(default)]
    pub zsk_double_signature: bool,
    /// KSK rolls by double DS (RFC 7583 §3.3.2) rather than double KSK:
    /// the successor's DS goes to the parent first, the DNSKEYs swap once
    /// it is in the caches, and the old DS is withdrawn last.
    #[serde(default)]
    pub ksk_double_ds: bool,
    /// Automatic failover (beyond Windows): seconds after the Key Master's
    /// lease is gone before a candidate seizes the role by itself; 0 = off.
    #[serde(default)]
    pub auto_failover: u32,
    /// Delays the first roll of a zone's first keys (Windows'
    /// InitialRolloverOffset), to stagger zones added together.
    #[serde(default)]
    pub initial_rollover_offset: u32,
    /// The TTL of the DS RRset at the parent (TTLds) until it is measured,
    /// and the parent's own propagation delay (DprpP), seconds.
    #[serde(default = "default_parent_ds_ttl")]
    pub parent_ds_ttl: u32,
    #[serde(default = "default_parent_propagation")]
    pub parent_propagation: u32,
    /// The largest TTL in the zone (TTLsig); 0: as measured when the zone
    /// was last signed.
    #[serde(default)]
    pub max_zone_ttl: u32,
    /// Added to every interval a roll waits (BIND's publish-safety and
    /// retire-safety).
    #[serde(default = "default_safety_margin")]
    pub safety_margin: u32,
    /// Where the zone is served, as IP:PORT: each must serve a change
    /// before a roll moves on (beyond what the zone's NS set names).
    #[serde(default)]
    pub publication_servers: Vec<String>,
    /// The parent's servers (or a validating resolver) to ask for the DS.
    #[serde(default)]
    pub parent_servers: Vec<String>,
    /// Also ask every address of every name in the zone's NS RRsets (the
    /// apex's, as the publication servers serve it, and the delegation's,
    /// as the parent servers refer to it), port 53.
    #[serde(default)]
    pub find_servers: bool,
    /// KSK rolls for validators that trust the zone by RFC 5011: the
    /// successor published at least Itrp (the add hold-down + 2·mQI)
    /// before the DS swap, the predecessor revoked and kept for the remove
    /// hold-down (RFC 7583 §3.3.4).
    #[serde(default)]
    pub rfc5011: bool,
    /// The validators' add and remove hold-downs (RFC 5011 §2.4.1: 30 days),
    /// seconds. Shorter ones are for tests against validators told the
    /// same (Unbound's permit-small-holddown), and drop the one-hour floor
    /// of mQI as such a validator does.
    #[serde(default = "default_hold_down")]
    pub rfc5011_add_hold_down: u32,
    #[serde(default = "default_hold_down")]
    pub rfc5011_remove_hold_down: u32,
    /// One combined signing key (RFC 7583 §1.4's CSK: a KSK that also
    /// signs the zone's data) instead of a KSK and a ZSK; it rolls as a
    /// double-KSK roll at the KSK lifetime.
    #[serde(default)]
    pub csk: bool,
    /// The parent's primary, IP:PORT, to which a KSK roll sends the DS
    /// RRset it needs at the parent by DNS UPDATE (RFC 2136; Knot's
    /// ds-push), or "dsync": the target the parent's DSYNC record of
    /// scheme UPDATE names; empty: none. The roll still waits until the
    /// parent servers serve it.
    #[serde(default)]
    pub ds_push: String,
    /// The TSIG key (a name in the node's --tsig-keys file) that signs
    /// those UPDATEs; empty: unsigned.
    #[serde(default)]
    pub ds_push_tsig: String,
    /// Sends NOTIFY(CDS) to the endpoint the parent's DSYNC RRset names
    /// (RFC 9859) when a roll hands the parent a new DS (a zone that
    /// publishes CDS/CDNSKEY); a parent without DSYNC is not told.
    #[serde(default = "default_true")]
    pub cds_notify: bool,
    /// As a parent: the endpoint (HOST:PORT) announced for the children's
    /// NOTIFY(CDS) and NOTIFY(CDNSKEY) by a DSYNC RRset at `_dsync.ZONE`
    /// (RFC 9859), normally a name of this node's DNS listener; empty: none.
    #[serde(default)]
    pub dsync: String,
    /// RFC 9615 as the zone's DNS operator: the name servers (host names)
    /// under whose `_signal` zones this zone's CDS and CDNSKEY are also
    /// published, at `_dsboot.ZONE._signal.NS`, for a parent to bootstrap
    /// its DS from. Each `_signal.NS` zone must be one keymaster keeps
    /// signed; a name server inside the zone itself is skipped (§4.4).
    #[serde(default)]
    pub signal_ns: Vec<String>,
    /// Review before publication: `none`; `hook`: the Key Master's
    /// `--review-command` approves every version whose data changed;
    /// `manual`: an operator does (`zone approve|reject`). A refresh of
    /// approved data passes without review.
    #[serde(default)]
    pub review: Review,
    /// Seconds the review hook may take before the version is refused;
    /// by hand, how long a version may wait before it is a loud error.
    #[serde(default = "default_review_timeout")]
    pub review_timeout: u32,
}

/// How a zone's versions are reviewed before they are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Review {
    #[default]
    None,
    Hook,
    Manual,
}

impl Review {
    pub fn parse(s: &str) -> Result<Review, PolicyError> {
        match s {
            "" | "none" => Ok(Review::None),
            "hook" => Ok(Review::Hook),
            "manual" => Ok(Review::Manual),
            other => Err(PolicyError(format!(
                "review {:?}: use none, hook or manual",
                crate::text::shown(other)
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Review::None => "none",
            Review::Hook => "hook",
            Review::Manual => "manual",
        }
    }
}

fn default_review_timeout() -> u32 {
    60
}

fn default_true() -> bool {
    true
}

fn default_hold_down() -> u32 {
    30 * DAY
}

fn default_parent_ds_ttl() -> u32 {
    DAY
}

fn default_parent_propagation() -> u32 {
    HOUR
}

fn default_safety_margin() -> u32 {
    HOUR
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
            cds_during_rollover: false,
            propagation_time: 2 * DAY,
            zsk_rollover_period: 90 * DAY,
            ksk_rollover_period: 755 * DAY,
            auto_failover: 0,
            zsk_double_signature: false,
            ksk_double_ds: false,
            initial_rollover_offset: 0,
            parent_ds_ttl: default_parent_ds_ttl(),
            parent_propagation: default_parent_propagation(),
            max_zone_ttl: 0,
            safety_margin: default_safety_margin(),
            publication_servers: Vec::new(),
            parent_servers: Vec::new(),
            rfc5011: false,
            find_servers: false,
            csk: false,
            rfc5011_add_hold_down: default_hold_down(),
            rfc5011_remove_hold_down: default_hold_down(),
            ds_push: String::new(),
            ds_push_tsig: String::new(),
            cds_notify: true,
            dsync: String::new(),
            signal_ns: Vec::new(),
            review: Review::None,
            review_timeout: default_review_timeout(),
        }
    }
}

/// Where a parent takes its children's NOTIFY(CDS): a host name and port.
pub type DsyncTarget = (domain::base::Name<Vec<u8>>, u16);

/// A policy that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy: {0}")]
pub struct PolicyError(pub String);

impl Policy {
    /// Checks the values against what resolvers and RFCs accept.
    ///
    /// Long because the checks are many: one per value or pair of
    /// values, each with its own message.
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
            // A minute is short, but a zone kept signed by the zone signer
            // is refreshed at three quarters of it; `zone sign` output must
            // be re-signed by whoever publishes it before that.
            if !(60..=366 * DAY).contains(&v) {
                return Err(PolicyError(format!(
                    "{name} of {v} s is outside 1 minute .. 366 days"
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
        for s in self.publication_servers.iter().chain(&self.parent_servers) {
            server_address(s)?;
        }
        if !self.ds_push.is_empty() {
            if self.ds_push != "dsync" {
                server_address(&self.ds_push)?;
            }
        } else if !self.ds_push_tsig.is_empty() {
            return Err(PolicyError(
                "a DS push TSIG key without a DS push address (--ds-push)".into(),
            ));
        }
        self.check_parent_signals()?;
        if self.rfc5011 && self.ksk_double_ds {
            return Err(PolicyError(
                "RFC 5011 rolls are double-KSK: the successor must be in the DNSKEY RRset for \
                 the add hold-down (drop --ksk-method double-ds or --rfc5011)"
                    .into(),
            ));
        }
        if self.csk && (self.ksk_double_ds || self.rfc5011) {
            return Err(PolicyError(
                "a CSK rolls by double KSK only: --ksk-method double-ds and --rfc5011 are not \
                 built for it"
                    .into(),
            ));
        }
        for (name, v) in [
            ("add hold-down", self.rfc5011_add_hold_down),
            ("remove hold-down", self.rfc5011_remove_hold_down),
        ] {
            if v > 366 * DAY {
                return Err(PolicyError(format!(
                    "RFC 5011 {name} {v} s is above 366 days"
                )));
            }
        }
        self.check_lifetimes()?;
        Ok(())
    }

    /// The DSYNC endpoint is HOST:PORT; each signal name server a host
    /// name (RFC 9859, RFC 9615).
    fn check_parent_signals(&self) -> Result<(), PolicyError> {
        self.dsync_endpoint()?;
        for ns in &self.signal_ns {
            format!("_signal.{}.", ns.trim_end_matches('.'))
                .parse::<domain::base::Name<Vec<u8>>>()
                .map_err(|_| {
                    PolicyError(format!(
                        "signal name server {} is not a host name",
                        crate::text::shown(ns)
                    ))
                })?;
        }
        Ok(())
    }

    /// A lifetime must be longer than the roll it starts, or rolls would
    /// overlap (BIND refuses such a policy too). The open-ended wait for
    /// the parent's DS is not counted.
    fn check_lifetimes(&self) -> Result<(), PolicyError> {
        let t = intervals::Intervals::of(self, 0);
        for (what, lifetime, roll) in [
            ("ZSK", self.zsk_rollover_period, t.zsk_roll()),
            ("KSK", self.ksk_rollover_period, t.ksk_roll()),
        ] {
            if lifetime != 0 && u64::from(lifetime) <= roll {
                return Err(PolicyError(format!(
                    "a {what} lifetime of {lifetime} s is not longer than its roll ({roll} s: \
                     propagation, TTLs and safety margins); lengthen it or shorten those"
                )));
            }
        }
        Ok(())
    }

    /// The DSYNC endpoint announced (`dsync`): target name and port.
    pub fn dsync_endpoint(&self) -> Result<Option<DsyncTarget>, PolicyError> {
        if self.dsync.is_empty() {
            return Ok(None);
        }
        let bad = || {
            PolicyError(format!(
                "DSYNC endpoint {} is not HOST:PORT (a host name and a port number)",
                crate::text::shown(&self.dsync)
            ))
        };
        let (host, port) = self.dsync.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|&p| p != 0).ok_or_else(bad)?;
        let host = format!("{}.", host.trim_end_matches('.'));
        let target = host.parse().map_err(|_| bad())?;
        Ok(Some((target, port)))
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

/// The settings that differ between two policies, as "name: old → new".
pub fn differences(a: &Policy, b: &Policy) -> Vec<String> {
    let (ja, jb) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let (Some(ma), Some(mb)) = (ja.as_object(), jb.as_object()) else {
        return Vec::new();
    };
    mb.iter()
        .filter(|(k, v)| ma.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {} → {v}", ma.get(k).cloned().unwrap_or_default()))
        .collect()
}

/// A server address as IP:PORT (IPv6 in brackets), or an IP for port 53.
pub fn server_address(s: &str) -> Result<std::net::SocketAddr, PolicyError> {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| PolicyError(format!("server {} is not IP:PORT", crate::text::shown(s))))
}

/// A duration as `parse_duration` reads it, in the largest unit that
/// divides it (`12h`, `90d`, `45s`).
pub fn format_duration(secs: u64) -> String {
    match secs {
        0 => "0s".to_string(),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
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
    fn lifetimes_shorter_than_their_roll_and_bad_servers_are_refused() {
        let p = Policy {
            zsk_rollover_period: 3600,
            ..Policy::default()
        };
        let e = p.validate().unwrap_err();
        assert!(
            e.0.contains("ZSK lifetime of 3600 s is not longer than its roll"),
            "{e}"
        );
        let short = Policy {
            zsk_rollover_period: 60,
            ksk_rollover_period: 60,
            propagation_time: 1,
            dnskey_ttl: 2,
            max_zone_ttl: 2,
            parent_ds_ttl: 2,
            parent_propagation: 1,
            safety_margin: 1,
            ..Policy::default()
        };
        assert!(
            short.validate().is_ok(),
            "a 60 s lifetime fits a roll of seconds"
        );
        let bad = Policy {
            parent_servers: vec!["ns1.example".into()],
            ..Policy::default()
        };
        assert!(bad.validate().unwrap_err().0.contains("is not IP:PORT"));
        assert_eq!(server_address("::1").unwrap().port(), 53);
        assert_eq!(server_address("127.0.0.1:5300").unwrap().port(), 5300);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("168h"), Ok(168 * 3600));
        assert_eq!(parse_duration("10d"), Ok(864000));
        assert!(parse_duration("10y").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn a_dsync_endpoint_is_a_host_and_a_port() {
        let with = |v: &str| Policy {
            dsync: v.into(),
            ..Policy::default()
        };
        let (target, port) = with("notify.example:5359")
            .dsync_endpoint()
            .unwrap()
            .unwrap();
        assert_eq!(
            (target.to_string().as_str(), port),
            ("notify.example", 5359)
        );
        assert_eq!(with("").dsync_endpoint(), Ok(None));
        for bad in [
            "notify.example",
            "notify.example:0",
            "notify.example:x",
            "a..b:53",
        ] {
            let e = with(bad).validate().unwrap_err();
            assert!(e.0.contains("is not HOST:PORT"), "{bad}: {e}");
        }
    }
}
