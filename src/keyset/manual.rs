//! Whether a key change made by hand (`key retire`, `key remove`) would
//! break validation: the RFC 7583 waits a roll keeps, applied to a change
//! an operator asks for at once. Pure: from the zone, its keys and the
//! time, when the change is safe at the earliest, and why not before.
//!
//! ```text
//! retire K (stops signing; a KSK also leaves the DS set):
//!   another active key L of K's role must be in every cache's DNSKEY RRset:
//!     L published + Ipub (ZSK: Dprp + TTLkey; KSK: IpubC, RFC 7583 §3.2.1, §3.3.1)
//!   and, for a KSK, L's DS at the parent and in every cache:
//!     L published + DprpP + TTLds (+ the safety margin)
//! remove K (leaves the DNSKEY RRset):
//!   K still signs (active): never; retire it first, or `key roll`
//!   K retired: K retired + Iret (ZSK: Dprp + TTLsig, the signatures it
//!     made gone from caches; KSK: the larger of Dprp + TTLkey, the DNSKEY
//!     RRsets it signed, and DprpP + TTLds, the DS that pointed to it)
//!   K published, never active (a standby): at once (nothing needs it)
//! ```
//! The parent's DS is judged by time only: a hand-made change has no
//! evidence from the parent's servers (a roll has, `key roll`).

use crate::dnssec::KeyRole;
use crate::policy::intervals::Intervals;
use crate::store::schema::{KeyRecord, KeyState, ZoneRecord};

/// A change that is not safe yet: when it will be, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooEarly {
    /// Unix seconds; None: not by waiting (the key must leave signing first).
    pub earliest: Option<u64>,
    pub why: String,
}

fn intervals(zone: &ZoneRecord) -> Intervals {
    Intervals::of(&zone.policy, zone.lifecycle.max_zone_ttl_seen)
}

/// When a key entered the DNSKEY RRset (and, a KSK, the DS set).
fn published_at(k: &KeyRecord) -> u64 {
    if k.published != 0 {
        k.published
    } else {
        k.created
    }
}

/// Whether retiring `k` now keeps the zone valid.
pub fn check_retire(
    zone: &ZoneRecord,
    keys: &[KeyRecord],
    k: &KeyRecord,
    now: u64,
) -> Result<(), TooEarly> {
    if k.state != KeyState::Active {
        // A standby (or a key already out of signing): nothing signed
        // with it. A standby KSK leaves the DS set, which other DS records
        // still cover (an active KSK has its own).
        return Ok(());
    }
    let t = intervals(zone);
    let ready_at = |l: &KeyRecord| -> u64 {
        let since = published_at(l);
        match k.role {
            KeyRole::Zsk => since + t.zsk_ipub(0),
            KeyRole::Ksk => {
                (since + t.ksk_ipub(0)).max(since + t.ksk_iret(zone.policy.parent_ds_ttl))
            }
        }
    };
    let successor = keys
        .iter()
        .filter(|l| l.id != k.id && l.role == k.role && l.state == KeyState::Active)
        .min_by_key(|l| ready_at(l));
    let Some(l) = successor else {
        return Ok(()); // the last active key: refused elsewhere, by name
    };
    let earliest = ready_at(l);
    if now >= earliest {
        return Ok(());
    }
    let why = match k.role {
        KeyRole::Zsk => format!(
            "the other active ZSK {} was published at {}; validators may hold a DNSKEY RRset \
             without it until Ipub (propagation + DNSKEY TTL + safety margin) has passed",
            l.key_tag,
            crate::clock::rfc3339(published_at(l))
        ),
        KeyRole::Ksk => format!(
            "the other active KSK {} was published at {}; until its DNSKEY and its DS at the \
             parent are in every cache (IpubC, and the parent's propagation + DS TTL), \
             validators that hold only this key's DS would fail",
            l.key_tag,
            crate::clock::rfc3339(published_at(l))
        ),
    };
    Err(TooEarly {
        earliest: Some(earliest),
        why,
    })
}

/// Whether removing `k` from the DNSKEY RRset now keeps the zone valid.
pub fn check_remove(zone: &ZoneRecord, k: &KeyRecord, now: u64) -> Result<(), TooEarly> {
    let t = intervals(zone);
    match k.state {
        KeyState::Retired => {
            let wait = match k.role {
                KeyRole::Zsk => t.zsk_iret(0),
                KeyRole::Ksk => {
                    (t.dprp + t.ttl_key + t.safety).max(t.ksk_iret(zone.policy.parent_ds_ttl))
                }
            };
            let earliest = k.retired + wait;
            if now >= earliest {
                return Ok(());
            }
            let what = match k.role {
                KeyRole::Zsk => "the signatures it made",
                KeyRole::Ksk => "the DNSKEY RRsets it signed and the DS that pointed to it",
            };
            Err(TooEarly {
                earliest: Some(earliest),
                why: format!(
                    "it was retired at {}; {what} may be in caches until Iret has passed",
                    crate::clock::rfc3339(k.retired)
                ),
            })
        }
        KeyState::Published if k.activated == 0 => Ok(()),
        KeyState::DsOnly => Ok(()),
        state => Err(TooEarly {
            earliest: None,
            why: format!(
                "it is {} (signing or published for use): retire it first (`key retire`) and \
                 wait, or replace it with `key roll`",
                state.as_str()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::Algorithm;
    use crate::policy::Policy;
    use crate::store::schema::SCHEMA_VERSION;

    const H: u64 = 3600;
    const T0: u64 = 1_800_000_000;

    fn zone() -> ZoneRecord {
        let policy = Policy {
            propagation_time: H as u32,
            dnskey_ttl: H as u32,
            safety_margin: 0,
            max_zone_ttl: 2 * H as u32,
            parent_ds_ttl: 5 * H as u32,
            parent_propagation: H as u32,
            ..Policy::default()
        };
        ZoneRecord::new("example.", policy, "a", 0)
    }

    fn key(id: &str, role: KeyRole, state: KeyState, published: u64) -> KeyRecord {
        KeyRecord {
            schema: SCHEMA_VERSION,
            zone: "example.".into(),
            id: id.into(),
            role,
            algorithm: Algorithm::EcdsaP256Sha256,
            key_tag: 1,
            state,
            label: String::new(),
            public_key: String::new(),
            token_label: "t".into(),
            token_serial: "s".into(),
            created: published,
            published,
            activated: if state == KeyState::Active {
                published
            } else {
                0
            },
            retired: 0,
            csk: false,
        }
    }

    #[test]
    fn retiring_an_active_key_waits_until_its_successor_is_in_every_cache() {
        let z = zone();
        let old = key("01", KeyRole::Zsk, KeyState::Active, T0);
        let new = key("02", KeyRole::Zsk, KeyState::Active, T0 + 10 * H);
        let keys = [old.clone(), new.clone()];
        // ZSK Ipub = Dprp + TTLkey = 2 h after the new one was published.
        let e = check_retire(&z, &keys, &old, T0 + 10 * H + 60).unwrap_err();
        assert_eq!(e.earliest, Some(T0 + 12 * H));
        assert!(check_retire(&z, &keys, &old, T0 + 12 * H).is_ok());
        // A KSK also waits for its successor's DS: DprpP + TTLds = 6 h.
        let old = key("03", KeyRole::Ksk, KeyState::Active, T0);
        let new = key("04", KeyRole::Ksk, KeyState::Active, T0 + 10 * H);
        let e = check_retire(&z, &[old.clone(), new], &old, T0 + 11 * H).unwrap_err();
        assert_eq!(e.earliest, Some(T0 + 16 * H));
        assert!(e.why.contains("DS"), "{}", e.why);
    }

    #[test]
    fn removing_waits_for_iret_after_retirement_and_never_while_signing() {
        let z = zone();
        let mut k = key("01", KeyRole::Zsk, KeyState::Active, T0);
        let e = check_remove(&z, &k, T0 + 100 * H).unwrap_err();
        assert_eq!(e.earliest, None);
        assert!(e.why.contains("key roll"), "{}", e.why);
        k.state = KeyState::Retired;
        k.retired = T0 + 10 * H;
        // ZSK Iret = Dprp + TTLsig = 1 h + 2 h.
        assert_eq!(
            check_remove(&z, &k, T0 + 11 * H).unwrap_err().earliest,
            Some(T0 + 13 * H)
        );
        assert!(check_remove(&z, &k, T0 + 13 * H).is_ok());
        // A KSK: the larger of Dprp + TTLkey (2 h) and DprpP + TTLds (6 h).
        k.role = KeyRole::Ksk;
        assert_eq!(
            check_remove(&z, &k, T0 + 11 * H).unwrap_err().earliest,
            Some(T0 + 16 * H)
        );
        // A standby that never signed goes at once.
        let standby = key("02", KeyRole::Zsk, KeyState::Published, T0);
        assert!(check_remove(&z, &standby, T0).is_ok());
    }
}
