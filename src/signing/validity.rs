//! Signature inception and expiration: what the policy gives, and what a
//! caller may ask for within it.

use crate::dnssec::Validity;
use crate::error::ValidityError;
use crate::policy::Policy;

/// Which signatures a validity is for: the apex DNSKEY, CDS and CDNSKEY
/// RRsets (signed by the KSK) have their own, shorter validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigKind {
    Zone,
    Dnskey,
}

/// Inception and expiration of signatures made now. A caller may ask for
/// its own times (0 = the policy's: inception now minus the inception
/// offset, expiration now plus the validity), but never for more than the
/// policy gives: the expiration must lie in the future and at most the
/// zone's validity from now, and the window from inception to expiration
/// at most validity plus inception offset. (A long-lived signature can be
/// replayed long after the data or the key has changed.)
pub fn validity_for(
    policy: &Policy,
    now: u64,
    inception: u32,
    expiration: u32,
    kind: SigKind,
) -> Result<Validity, ValidityError> {
    let (span, setting) = match kind {
        SigKind::Zone => (policy.signature_validity, "signature_validity"),
        SigKind::Dnskey => (
            policy.dnskey_signature_validity,
            "dnskey_signature_validity",
        ),
    };
    let span = u64::from(span);
    let inception = match inception {
        0 => now.saturating_sub(u64::from(policy.signature_inception_offset)),
        i => u64::from(i),
    };
    let expiration = match expiration {
        0 => now + span,
        e => u64::from(e),
    };
    if expiration <= now {
        return Err(ValidityError::Past { expiration, now });
    }
    if expiration > now + span {
        return Err(ValidityError::TooLong {
            expiration,
            ahead: expiration - now,
            limit: span,
            setting,
        });
    }
    if expiration <= inception {
        return Err(ValidityError::Order {
            inception,
            expiration,
        });
    }
    let limit = span + u64::from(policy.signature_inception_offset);
    if expiration - inception > limit {
        return Err(ValidityError::Window {
            inception,
            expiration,
            span: expiration - inception,
            limit,
            setting,
        });
    }
    // Both fit in 32 bits: the RRSIG fields use serial number arithmetic
    // (RFC 4034 §3.1.5), and `now` is before 2106.
    Ok(Validity {
        inception: inception as u32,
        expiration: expiration as u32,
    })
}

/// The validity of the KSK's signatures in a zone signed with `validity`:
/// the same inception, expiring with the zone's other signatures or when
/// the DNSKEY validity (from now, and from the inception) runs out,
/// whichever comes first.
pub fn dnskey_validity_within(
    policy: &Policy,
    now: u64,
    validity: Validity,
) -> Result<Validity, ValidityError> {
    let span = u64::from(policy.dnskey_signature_validity);
    let inception = u64::from(validity.inception);
    let expiration = u64::from(validity.expiration)
        .min(now + span)
        .min(inception + span + u64::from(policy.signature_inception_offset));
    if expiration <= now {
        return Err(ValidityError::DnskeyInception {
            inception,
            limit: span,
        });
    }
    Ok(Validity {
        inception: validity.inception,
        expiration: expiration as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn default_validity_runs_from_the_inception_offset_to_the_validity() {
        let p = Policy::default();
        let v = validity_for(&p, NOW, 0, 0, SigKind::Zone).unwrap();
        assert_eq!(u64::from(v.inception), NOW - 3600);
        assert_eq!(u64::from(v.expiration), NOW + 240 * 3600);
        let d = validity_for(&p, NOW, 0, 0, SigKind::Dnskey).unwrap();
        assert_eq!(u64::from(d.expiration), NOW + 168 * 3600);
    }

    #[test]
    fn validity_beyond_the_policy_or_in_the_past_is_refused() {
        let p = Policy::default();
        let twenty_years = (NOW + 20 * 365 * 86400) as u32;
        let e = validity_for(&p, NOW, 0, twenty_years, SigKind::Zone).unwrap_err();
        assert!(e.to_string().contains("at most 864000 s"), "{e}");
        let e = validity_for(&p, NOW, 0, (NOW - 10) as u32, SigKind::Zone).unwrap_err();
        assert!(e.to_string().contains("not in the future"), "{e}");
        let e = validity_for(&p, NOW, 1, (NOW + 60) as u32, SigKind::Zone).unwrap_err();
        assert!(e.to_string().contains("span"), "{e}");
        let ok = validity_for(&p, NOW, 0, (NOW + 86400) as u32, SigKind::Zone).unwrap();
        assert_eq!(u64::from(ok.expiration), NOW + 86400);
    }

    #[test]
    fn ksk_signatures_expire_with_the_zone_or_at_the_dnskey_validity() {
        let p = Policy::default();
        let short = validity_for(&p, NOW, 0, (NOW + 86400) as u32, SigKind::Zone).unwrap();
        assert_eq!(dnskey_validity_within(&p, NOW, short).unwrap(), short);
        let long = validity_for(&p, NOW, 0, 0, SigKind::Zone).unwrap();
        let d = dnskey_validity_within(&p, NOW, long).unwrap();
        assert_eq!(u64::from(d.expiration), NOW + 168 * 3600);
        assert_eq!(d.inception, long.inception);
    }
}
