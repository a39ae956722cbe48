//! The intervals a roll waits, from RFC 7583 §3.2.1 (ZSK pre-publication)
//! and §3.3.1 (KSK double-signature), with BIND's safety margin added to
//! each. Pure arithmetic on the policy and the TTLs in force.
//!
//! ```text
//! ZSK  Ipub  = Dprp  + TTLkey + safety      (publish → sign with the new key)
//!      Iret  = Dsgn  + Dprp + TTLsig + safety (retire → remove the old key)
//! KSK  IpubC = DprpC + TTLkey + safety      (publish → submit the new DS)
//!      Dreg  = until the parent serves it   (an event, not a time)
//!      Iret  = DprpP + TTLds + safety       (DS seen → remove the old key)
//! ```
//! Dsgn is 0: keymaster signs a zone whole with the new key, and the step
//! after it waits for the servers to serve those signatures.

use super::Policy;

/// What the zone's largest TTL is taken to be when it was never measured.
const UNKNOWN_MAX_ZONE_TTL: u32 = 86_400;

/// The parameters of the formulas, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    /// Dprp = DprpC: primary to every secondary.
    pub dprp: u64,
    /// DprpP: inside the parent.
    pub dprp_parent: u64,
    pub ttl_key: u64,
    /// TTLsig: the largest TTL of any RRSIG (the max zone TTL).
    pub ttl_sig: u64,
    /// TTLds at the parent, until measured.
    pub ttl_ds: u64,
    pub safety: u64,
    /// RFC 5011 (0 without it): modifiedQueryInterval, the trust-point
    /// interval Itrp = add hold-down + 2·mQI, and the remove hold-down.
    pub mqi: u64,
    pub itrp: u64,
    pub remove_hold_down: u64,
}

/// mQI = MAX(1 h, MIN(15 d, TTLkey / 2)) (RFC 5011 §2.3, RFC 7583
/// §3.3.4); without the one-hour floor when the hold-downs are below the
/// RFC's 30 days (a test set-up, as Unbound's permit-small-holddown).
fn rfc5011_mqi(p: &Policy) -> u64 {
    if !p.rfc5011 {
        return 0;
    }
    let half = (u64::from(p.dnskey_ttl) / 2).clamp(1, 15 * 86_400);
    let small = p.rfc5011_add_hold_down < 30 * 86_400;
    if small {
        half
    } else {
        half.max(3600)
    }
}

impl Intervals {
    /// The policy's values; `seen_max_ttl` is the max zone TTL measured
    /// when the zone was last signed (0: never).
    pub fn of(p: &Policy, seen_max_ttl: u32) -> Intervals {
        let max_ttl = match (p.max_zone_ttl, seen_max_ttl) {
            (0, 0) => UNKNOWN_MAX_ZONE_TTL,
            (0, seen) => seen,
            (set, _) => set,
        };
        Intervals {
            dprp: u64::from(p.propagation_time),
            dprp_parent: u64::from(p.parent_propagation),
            ttl_key: u64::from(p.dnskey_ttl),
            // Signatures over the DNSKEY RRset live as long as the RRset.
            ttl_sig: u64::from(max_ttl.max(p.dnskey_ttl)),
            ttl_ds: u64::from(p.parent_ds_ttl),
            safety: u64::from(p.safety_margin),
            mqi: rfc5011_mqi(p),
            itrp: match p.rfc5011 {
                true => u64::from(p.rfc5011_add_hold_down) + 2 * rfc5011_mqi(p),
                false => 0,
            },
            remove_hold_down: match p.rfc5011 {
                true => u64::from(p.rfc5011_remove_hold_down),
                false => 0,
            },
        }
    }

    /// ZSK Ipub, with the larger of the DNSKEY TTL in force when the key
    /// was published and now.
    pub fn zsk_ipub(&self, ttl_then: u32) -> u64 {
        self.dprp + self.ttl_key.max(u64::from(ttl_then)) + self.safety
    }

    /// ZSK Iret, with the larger of the max zone TTL then and now.
    pub fn zsk_iret(&self, ttl_then: u32) -> u64 {
        self.dprp + self.ttl_sig.max(u64::from(ttl_then)) + self.safety
    }

    /// ZSK Iret of a double-signature roll: Dsgn + Dprp + max(TTLkey,
    /// TTLsig), both the new DNSKEY and the new signatures in every cache
    /// (RFC 7583 §3.2.2), with the larger TTLs of then and now.
    pub fn zsk_double_iret(&self, ttl_then: u32) -> u64 {
        self.dprp + self.ttl_key.max(self.ttl_sig).max(u64::from(ttl_then)) + self.safety
    }

    /// KSK IpubC; for an RFC 5011 zone at least Itrp too (RFC 7583
    /// §3.3.4: IpubC ≥ DprpC + max(Itrp, TTLkey)).
    pub fn ksk_ipub(&self, ttl_then: u32) -> u64 {
        self.dprp + self.ttl_key.max(u64::from(ttl_then)).max(self.itrp) + self.safety
    }

    /// How long an RFC 5011 KSK stays published revoked: the remove
    /// hold-down, and at least Irev = DprpC + mQI (RFC 7583 §3.3.4).
    pub fn irev(&self) -> u64 {
        self.remove_hold_down.max(self.dprp + self.mqi) + self.safety
    }

    /// KSK Iret after the new DS is seen, `ds_ttl` the parent's DS TTL as
    /// measured (the larger of before and after the swap).
    pub fn ksk_iret(&self, ds_ttl: u32) -> u64 {
        self.dprp_parent + u64::from(ds_ttl) + self.safety
    }

    /// How long a whole ZSK roll takes at the least.
    pub fn zsk_roll(&self) -> u64 {
        self.zsk_ipub(0) + self.zsk_iret(0)
    }

    /// How long a KSK roll takes at the least (the parent's own delay in
    /// publishing the DS comes on top).
    pub fn ksk_roll(&self) -> u64 {
        let revoked = if self.itrp > 0 { self.irev() } else { 0 };
        revoked + self.ksk_ipub(0) + self.ksk_iret(self.ttl_ds as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LIFECYCLE-style worked example: TTLkey 1 h, max zone TTL 1 d, Dprp
    /// 5 min, safety 1 h, TTLds 1 d, DprpP 1 h.
    fn example() -> Policy {
        Policy {
            dnskey_ttl: 3600,
            max_zone_ttl: 86_400,
            propagation_time: 300,
            safety_margin: 3600,
            parent_ds_ttl: 86_400,
            parent_propagation: 3600,
            ..Policy::default()
        }
    }

    #[test]
    fn intervals_follow_rfc_7583_with_the_safety_margin() {
        let t = Intervals::of(&example(), 0);
        // Ipub = Dprp + TTLkey + safety = 5 min + 1 h + 1 h.
        assert_eq!(t.zsk_ipub(0), 300 + 3600 + 3600);
        // Iret = Dsgn (0) + Dprp + TTLsig + safety = 5 min + 1 d + 1 h.
        assert_eq!(t.zsk_iret(0), 300 + 86_400 + 3600);
        // IpubC = DprpC + TTLkey + safety; Iret = DprpP + TTLds + safety.
        assert_eq!(t.ksk_ipub(0), 300 + 3600 + 3600);
        assert_eq!(t.ksk_iret(86_400), 3600 + 86_400 + 3600);
        assert_eq!(t.zsk_roll(), 7500 + 90_300);
    }

    #[test]
    fn a_roll_waits_for_the_larger_of_the_ttls_then_and_now() {
        let t = Intervals::of(&example(), 0);
        // The DNSKEY TTL was 2 h when the key was published, 1 h now.
        assert_eq!(t.zsk_ipub(7200), 300 + 7200 + 3600);
        // A lowered TTL does not shorten the wait.
        let mut p = example();
        p.dnskey_ttl = 600;
        let t = Intervals::of(&p, 0);
        assert_eq!(t.zsk_ipub(3600), 300 + 3600 + 3600);
    }

    #[test]
    fn the_max_zone_ttl_is_the_policys_or_the_measured_one_or_a_day() {
        let mut p = example();
        p.max_zone_ttl = 0;
        assert_eq!(Intervals::of(&p, 0).ttl_sig, 86_400);
        assert_eq!(Intervals::of(&p, 600).ttl_sig, 3600, "never below TTLkey");
        assert_eq!(Intervals::of(&p, 7200).ttl_sig, 7200);
        p.max_zone_ttl = 300;
        assert_eq!(Intervals::of(&p, 7200).ttl_sig, 3600);
    }
}
