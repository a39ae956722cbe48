//! The rollover engine's decisions, without I/O: from a zone's stored
//! lifecycle, its keys and the time, what comes next. The runner does it
//! (generates keys, asks DNS servers, writes the step) and asks again.
//!
//! ```text
//!  ZSK pre-publication (RFC 7583 §3.2.1)
//!   due ─► start: successor published ─(Ipub, DNSKEY served)─► successor signs,
//!          predecessor retired ─(Iret, new RRSIGs served)─► predecessor removed
//!
//!  KSK double-KSK (RFC 7583 §3.3.1)
//!   due ─► start: successor published, signs DNSKEY ─(IpubC, DNSKEY served)─►
//!          DS swap submitted (CDS, hook) ─(parent serves the new DS)─►
//!          seen ─(DprpP + TTLds, DS still served)─► predecessor removed
//! ```
//! Time alone never moves a step that could break validation: each waits
//! for its interval and then for evidence, and one roll runs per zone at a
//! time; others queue.

pub mod plan;

use crate::dnssec::KeyRole;
use crate::policy::intervals::Intervals;
use crate::store::schema::{KeyRecord, KeyState, Roll, RollStep, Unsign, UnsignStep, ZoneRecord};

/// What to find out from DNS before a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Every server of the zone serves the DNSKEY RRset keymaster
    /// publishes now, signed by its KSKs.
    DnskeyServed,
    /// Every server serves the zone signed by this ZSK (the apex SOA's
    /// RRSIG names it).
    SignedBy { zsk: String },
    /// Every server of the parent serves a DS for this KSK.
    DsServed { ksk: String },
    /// Every server of the parent serves no DS for the zone.
    DsGone,
}

/// A move from one step to the next, to write (with its evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every server serves the step's change now: the wait for caches
    /// counts from here.
    Seen,
    /// The successor signs; the predecessor is retired.
    ZskActivate,
    /// The predecessor ZSK goes (record and token objects).
    ZskRemoveOld,
    /// The DS set handed to the parent becomes the successor's.
    KskSubmit,
    /// The parent serves the new DS, with this DS TTL measured.
    KskDsSeen { ds_ttl: u32 },
    /// Double DS: the successor's DNSKEY replaces the predecessor's (the
    /// parent serves both DS).
    KskSwap,
    /// The predecessor KSK goes (with a double DS, its DS is withdrawn).
    KskRemoveOld,
    /// RFC 5011: the predecessor KSK is revoked, still published.
    KskRevoke,
    /// Algorithm roll: the new algorithm's DNSKEYs are published (its KSK
    /// incoming, its ZSK active), the old ones stay.
    AlgPublish,
    /// The old algorithm's DNSKEYs are withdrawn; its keys still sign.
    AlgUnpublishOld,
    /// The old algorithm's keys go, and their signatures with them.
    AlgRemoveOld,
    /// Unsigning: the parent serves no DS any more.
    UnsignDsGone,
    /// Unsigning: no cache can hold the DS; the zone is published unsigned.
    UnsignStop,
}

/// Where a key stands in the lifecycle, by Windows' CurrentRolloverStatus
/// names, with keymaster's own beside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NotRolling,
    /// Due, waiting for another roll of the zone to end.
    Queued,
    RollStarted,
    ZskWaitingForDnskeyTtl,
    ZskWaitingForMaxZoneTtl,
    KskWaitingForDnskeyTtl,
    KskWaitingForDsUpdate,
    KskWaitingForDsTtl,
    /// A revoked KSK stays published for validators' remove hold-down.
    KskWaitingForRfc5011RemoveHoldDown,
    /// The interval has passed; some server does not serve the change yet.
    WaitingForPublication,
    RollError,
    /// The engine leaves the zone alone.
    Paused,
    /// `zone unsign`: the delete CDS/CDNSKEY are out; waiting for the
    /// parent to serve no DS.
    UnsignWaitingForDsRemoval,
    /// The parent serves no DS; waiting for caches to forget it.
    UnsignWaitingForDsTtl,
    /// Published without DNSSEC.
    Unsigned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotRolling => "NotRolling",
            Status::Queued => "Queued",
            Status::RollStarted => "RollStarted",
            Status::ZskWaitingForDnskeyTtl => "ZskWaitingForDnskeyTtl",
            Status::ZskWaitingForMaxZoneTtl => "ZskWaitingForMaxZoneTtl",
            Status::KskWaitingForDnskeyTtl => "KskWaitingForDnskeyTtl",
            Status::KskWaitingForDsUpdate => "KskWaitingForDsUpdate",
            Status::KskWaitingForDsTtl => "KskWaitingForDsTtl",
            Status::KskWaitingForRfc5011RemoveHoldDown => "KskWaitingForRfc5011RemoveHoldDown",
            Status::WaitingForPublication => "WaitingForPublication",
            Status::RollError => "RollError",
            Status::Paused => "Paused",
            Status::UnsignWaitingForDsRemoval => "UnsignWaitingForDsRemoval",
            Status::UnsignWaitingForDsTtl => "UnsignWaitingForDsTtl",
            Status::Unsigned => "Unsigned",
        }
    }
}

/// What comes next for a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing until `at` (a key's lifetime ends); None: nothing planned.
    Idle { at: Option<u64> },
    /// Roll this key: generate its successor and start.
    Start {
        role: KeyRole,
        old: String,
        manual: bool,
    },
    /// The policy's algorithm is not the keys': roll to it (RFC 6781
    /// §4.1.4) from this KSK and ZSK.
    StartAlgorithmRoll { old_ksk: String, old_zsk: String },
    /// The step's interval runs until `until`.
    Wait { until: u64, status: Status },
    /// The interval has passed: if the check holds, take the step.
    Check {
        check: Check,
        then: Step,
        status: Status,
    },
}

/// The lifetime of a key's role in the zone's policy (0: not rolled).
fn lifetime(zone: &ZoneRecord, role: KeyRole) -> u64 {
    u64::from(match role {
        KeyRole::Ksk => zone.policy.ksk_rollover_period,
        KeyRole::Zsk => zone.policy.zsk_rollover_period,
    })
}

/// When an active key's lifetime ends: its activation plus the lifetime,
/// and for the zone's first keys the initial rollover offset too.
pub fn due_at(zone: &ZoneRecord, key: &KeyRecord) -> Option<u64> {
    let life = lifetime(zone, key.role);
    if key.state != KeyState::Active || life == 0 {
        return None;
    }
    let first = key.created <= zone.created;
    let offset = if first {
        u64::from(zone.policy.initial_rollover_offset)
    } else {
        0
    };
    Some(key.activated + life + offset)
}

/// The next decision for a zone at `now`.
pub fn next(zone: &ZoneRecord, keys: &[KeyRecord], now: u64) -> Next {
    let life = &zone.lifecycle;
    if life.paused || life.error.is_some() {
        return Next::Idle { at: None };
    }
    if let Some(u) = &life.unsign {
        return next_in_unsign(zone, u, now);
    }
    match &life.roll {
        Some(roll) => next_in_roll(zone, roll, now),
        None => next_roll(zone, keys, now),
    }
}

/// Going insecure (`zone unsign`): the DS must be gone at every parent
/// server, then out of every cache (DprpP + the DS TTL + the safety
/// margin, as for an old DS after a KSK roll), before the signatures go.
fn next_in_unsign(zone: &ZoneRecord, u: &Unsign, now: u64) -> Next {
    match u.step {
        UnsignStep::DeletePublished => Next::Check {
            check: Check::DsGone,
            then: Step::UnsignDsGone,
            status: Status::UnsignWaitingForDsRemoval,
        },
        UnsignStep::DsGone => {
            let t = Intervals::of(&zone.policy, zone.lifecycle.max_zone_ttl_seen);
            let until = u.since + t.ksk_iret(u.ttl);
            if now < until {
                return Next::Wait {
                    until,
                    status: Status::UnsignWaitingForDsTtl,
                };
            }
            Next::Check {
                check: Check::DsGone,
                then: Step::UnsignStop,
                status: Status::UnsignWaitingForDsTtl,
            }
        }
        UnsignStep::Unsigned => Next::Idle { at: None },
    }
}

/// The status of an unsigning under way or done (None: none).
fn unsign_status(zone: &ZoneRecord, now: u64) -> Option<Status> {
    let u = zone.lifecycle.unsign.as_ref()?;
    Some(match next_in_unsign(zone, u, now) {
        Next::Wait { status, .. } | Next::Check { status, .. } => status,
        _ => Status::Unsigned,
    })
}

/// No roll in flight: the first key an operator asked to roll, else the
/// key whose lifetime ends first.
fn next_roll(zone: &ZoneRecord, keys: &[KeyRecord], now: u64) -> Next {
    if let Some(start) = algorithm_roll(zone, keys) {
        return start;
    }
    if let Some(k) = zone
        .lifecycle
        .queue
        .iter()
        .find_map(|id| keys.iter().find(|k| &k.id == id && rollable(k)))
    {
        return Next::Start {
            role: k.role,
            old: k.id.clone(),
            manual: true,
        };
    }
    let due = keys
        .iter()
        .filter_map(|k| due_at(zone, k).map(|at| (at, k)))
        .min_by_key(|(at, k)| (*at, k.id.clone()));
    match due {
        Some((at, k)) if at <= now => Next::Start {
            role: k.role,
            old: k.id.clone(),
            manual: false,
        },
        Some((at, _)) => Next::Idle { at: Some(at) },
        None => Next::Idle { at: None },
    }
}

/// An algorithm roll when the policy names another algorithm than the
/// zone's active keys have (`zone set --algorithm`); it comes before any
/// other roll.
fn algorithm_roll(zone: &ZoneRecord, keys: &[KeyRecord]) -> Option<Next> {
    let wanted = zone.policy.algorithm.number();
    let old = |role| {
        keys.iter().find(|k| {
            k.role == role && k.state == KeyState::Active && k.algorithm.number() != wanted
        })
    };
    let (ksk, zsk) = (old(KeyRole::Ksk)?, old(KeyRole::Zsk)?);
    Some(Next::StartAlgorithmRoll {
        old_ksk: ksk.id.clone(),
        old_zsk: zsk.id.clone(),
    })
}

/// Keys that can be rolled: the active ones.
fn rollable(k: &KeyRecord) -> bool {
    k.state == KeyState::Active
}

/// Within a roll: first wait until every server serves the step's change
/// (`Seen`); then the step's interval, counted from the step's start and
/// at least a TTL (and the safety margin) from when it was seen, since
/// caches may have fetched the old records just before; then, evidence
/// asked again, the step.
///
/// Long because it is the roll's table: one arm per roll step, each
/// its interval and its evidence, so that the whole roll reads in one place
/// against RFC 7583.
fn next_in_roll(zone: &ZoneRecord, roll: &Roll, now: u64) -> Next {
    let t = Intervals::of(&zone.policy, zone.lifecycle.max_zone_ttl_seen);
    let (interval, cache_ttl, status, check, then) = match roll.step {
        RollStep::ZskPublished => (
            t.zsk_ipub(roll.ttl),
            t.ttl_key.max(u64::from(roll.ttl)),
            Status::ZskWaitingForDnskeyTtl,
            Check::DnskeyServed,
            Step::ZskActivate,
        ),
        RollStep::ZskRetired => (
            t.zsk_iret(roll.ttl),
            t.ttl_sig.max(u64::from(roll.ttl)),
            Status::ZskWaitingForMaxZoneTtl,
            Check::SignedBy {
                zsk: roll.new.clone(),
            },
            Step::ZskRemoveOld,
        ),
        RollStep::ZskDoubleSigned => (
            t.zsk_double_iret(roll.ttl),
            t.ttl_key.max(t.ttl_sig).max(u64::from(roll.ttl)),
            Status::ZskWaitingForMaxZoneTtl,
            Check::SignedBy {
                zsk: roll.new.clone(),
            },
            Step::ZskRemoveOld,
        ),
        RollStep::KskPublished => (
            t.ksk_ipub(roll.ttl),
            t.ttl_key.max(u64::from(roll.ttl)),
            Status::KskWaitingForDnskeyTtl,
            Check::DnskeyServed,
            Step::KskSubmit,
        ),
        // Dreg is an event: the parent serving the new DS ends the step.
        RollStep::KskDsSubmitted => {
            return Next::Check {
                check: Check::DsServed {
                    ksk: roll.new.clone(),
                },
                then: Step::KskDsSeen { ds_ttl: roll.ttl },
                status: Status::KskWaitingForDsUpdate,
            }
        }
        // Entered when the DS was seen: its interval counts from then. A
        // CSK's old signatures must also leave the caches (Iret of a ZSK,
        // counted from here though the new ones began at the DS swap).
        RollStep::KskDsSeen => (
            if roll.csk {
                t.ksk_iret(roll.ttl).max(t.zsk_iret(0))
            } else {
                t.ksk_iret(roll.ttl)
            },
            0,
            Status::KskWaitingForDsTtl,
            Check::DsServed {
                ksk: roll.new.clone(),
            },
            if roll.is_algorithm_roll() {
                Step::AlgUnpublishOld
            } else if roll.double_ds {
                Step::KskSwap
            } else if roll.rfc5011 {
                Step::KskRevoke
            } else {
                Step::KskRemoveOld
            },
        ),
        // RFC 5011: the revoked KSK in every cache and every validator's
        // bookkeeping for the remove hold-down, then it goes.
        RollStep::KskRevoked => (
            t.irev(),
            t.ttl_key.max(u64::from(roll.ttl)),
            Status::KskWaitingForRfc5011RemoveHoldDown,
            Check::DnskeyServed,
            Step::KskRemoveOld,
        ),
        // Double DS after the swap: the old DNSKEY leaves the caches.
        RollStep::KskSwapped => (
            t.ksk_ipub(roll.ttl),
            t.ttl_key.max(u64::from(roll.ttl)),
            Status::KskWaitingForDnskeyTtl,
            Check::DnskeyServed,
            Step::KskRemoveOld,
        ),
        // The new signatures must be in every cache before the new
        // DNSKEYs are: Dsgn + Dprp + TTLsig, as a ZSK's retirement.
        RollStep::AlgSigned => (
            t.zsk_iret(roll.ttl),
            t.ttl_sig.max(u64::from(roll.ttl)),
            Status::ZskWaitingForMaxZoneTtl,
            Check::SignedBy {
                zsk: roll.new_zsk.clone(),
            },
            Step::AlgPublish,
        ),
        RollStep::AlgPublished => (
            t.ksk_ipub(roll.ttl),
            t.ttl_key.max(u64::from(roll.ttl)),
            Status::KskWaitingForDnskeyTtl,
            Check::DnskeyServed,
            Step::KskSubmit,
        ),
        RollStep::AlgOldUnpublished => (
            t.ksk_ipub(roll.ttl),
            t.ttl_key.max(u64::from(roll.ttl)),
            Status::KskWaitingForDnskeyTtl,
            Check::DnskeyServed,
            Step::AlgRemoveOld,
        ),
    };
    let seen_first = roll.step != RollStep::KskDsSeen;
    if seen_first && roll.seen_at == 0 {
        return Next::Check {
            check,
            then: Step::Seen,
            status,
        };
    }
    let until = (roll.since + interval).max(if seen_first {
        roll.seen_at + cache_ttl + t.safety
    } else {
        0
    });
    if now < until {
        return Next::Wait { until, status };
    }
    Next::Check {
        check,
        then,
        status,
    }
}

/// The status of the zone's roll under way (NotRolling without one).
pub fn roll_status(zone: &ZoneRecord, now: u64) -> Status {
    let life = &zone.lifecycle;
    if let Some(status) = unsign_status(zone, now).filter(|_| life.error.is_none()) {
        return status;
    }
    match &life.roll {
        _ if life.error.is_some() => Status::RollError,
        _ if life.paused => Status::Paused,
        None => Status::NotRolling,
        // Waiting for the parent's servers to serve the new DS is Windows'
        // KskWaitingForDsUpdate; for the zone's own servers, keymaster's
        // WaitingForPublication.
        Some(roll) if !life.waiting_on.is_empty() && roll.step == RollStep::KskDsSubmitted => {
            Status::KskWaitingForDsUpdate
        }
        Some(_) if !life.waiting_on.is_empty() => Status::WaitingForPublication,
        Some(roll) => match next_in_roll(zone, roll, now) {
            Next::Wait { status, .. } | Next::Check { status, .. } => status,
            _ => Status::RollStarted,
        },
    }
}

/// A key's status, for `key list`.
pub fn key_status(zone: &ZoneRecord, keys: &[KeyRecord], key: &KeyRecord, now: u64) -> Status {
    let life = &zone.lifecycle;
    if let Some(status) = unsign_status(zone, now).filter(|_| life.error.is_none()) {
        return status;
    }
    let in_roll = life.roll.as_ref().is_some_and(|r| r.involves(&key.id));
    if in_roll && life.error.is_some() {
        return Status::RollError;
    }
    if life.paused && (in_roll || due_at(zone, key).is_some()) {
        return Status::Paused;
    }
    if in_roll {
        return match next(zone, keys, now) {
            Next::Wait { status, .. } => status,
            Next::Check { status, .. } => status,
            _ => Status::RollStarted,
        };
    }
    let due = due_at(zone, key).is_some_and(|at| at <= now) || life.queue.contains(&key.id);
    if due {
        return if life.roll.is_some() || life.error.is_some() {
            Status::Queued
        } else {
            Status::RollStarted
        };
    }
    Status::NotRolling
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::Algorithm;
    use crate::policy::Policy;
    use crate::store::schema::SCHEMA_VERSION;

    const T0: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    fn zone() -> ZoneRecord {
        let policy = Policy {
            max_zone_ttl: 86_400,
            ..Policy::default()
        };
        ZoneRecord::new("z.example.", policy, "a", T0)
    }

    fn key(id: &str, role: KeyRole, state: KeyState, activated: u64) -> KeyRecord {
        KeyRecord {
            schema: SCHEMA_VERSION,
            zone: "z.example.".into(),
            id: id.into(),
            role,
            algorithm: Algorithm::EcdsaP256Sha256,
            key_tag: 1,
            state,
            label: String::new(),
            public_key: String::new(),
            token_label: "t".into(),
            token_serial: "s".into(),
            created: activated,
            published: activated,
            activated,
            retired: 0,
            csk: false,
        }
    }

    #[test]
    fn a_zsk_is_due_at_the_end_of_its_lifetime_and_the_first_keys_later() {
        let mut z = zone();
        z.policy.initial_rollover_offset = 3 * DAY as u32;
        let keys = vec![
            key("k", KeyRole::Ksk, KeyState::Active, T0),
            key("z", KeyRole::Zsk, KeyState::Active, T0),
        ];
        // The first ZSK: 90 days and the 3-day offset.
        assert_eq!(
            next(&z, &keys, T0),
            Next::Idle {
                at: Some(T0 + 93 * DAY)
            }
        );
        assert!(matches!(
            next(&z, &keys, T0 + 93 * DAY),
            Next::Start { role: KeyRole::Zsk, ref old, manual: false } if old == "z"
        ));
        // A later ZSK, activated after the zone's creation: no offset.
        let later = [key("z2", KeyRole::Zsk, KeyState::Active, T0 + DAY)];
        assert_eq!(due_at(&z, &later[0]), Some(T0 + 91 * DAY));
        z.policy.zsk_rollover_period = 0;
        assert_eq!(due_at(&z, &later[0]), None, "lifetime 0: never rolled");
    }

    fn roll(role: KeyRole, step: RollStep, since: u64, ttl: u32) -> Roll {
        Roll {
            role,
            old: "old".into(),
            new: "new".into(),
            step,
            since,
            ttl,
            manual: false,
            seen_at: since,
            old_zsk: String::new(),
            new_zsk: String::new(),
            double_ds: false,
            rfc5011: false,
            csk: false,
        }
    }

    #[test]
    fn each_zsk_step_waits_its_rfc_7583_interval_then_asks_for_evidence() {
        let mut z = zone();
        // Ipub = Dprp (2 d) + TTLkey (1 h) + safety (1 h).
        let ipub = 2 * DAY + 3600 + 3600;
        z.lifecycle.roll = Some(roll(KeyRole::Zsk, RollStep::ZskPublished, T0, 3600));
        assert_eq!(
            next(&z, &[], T0 + ipub - 1),
            Next::Wait {
                until: T0 + ipub,
                status: Status::ZskWaitingForDnskeyTtl
            }
        );
        assert_eq!(
            next(&z, &[], T0 + ipub),
            Next::Check {
                check: Check::DnskeyServed,
                then: Step::ZskActivate,
                status: Status::ZskWaitingForDnskeyTtl
            }
        );
        // Iret = Dprp (2 d) + TTLsig (1 d) + safety (1 h).
        let iret = 3 * DAY + 3600;
        z.lifecycle.roll = Some(roll(KeyRole::Zsk, RollStep::ZskRetired, T0, 86_400));
        assert_eq!(
            next(&z, &[], T0 + 1),
            Next::Wait {
                until: T0 + iret,
                status: Status::ZskWaitingForMaxZoneTtl
            }
        );
        assert!(matches!(
            next(&z, &[], T0 + iret),
            Next::Check { check: Check::SignedBy { ref zsk }, then: Step::ZskRemoveOld, .. }
                if zsk == "new"
        ));
    }

    #[test]
    fn the_wait_for_caches_counts_from_when_every_server_served_the_change() {
        let mut z = zone();
        let ipub = 2 * DAY + 3600 + 3600;
        let mut r = roll(KeyRole::Zsk, RollStep::ZskPublished, T0, 3600);
        r.seen_at = 0;
        z.lifecycle.roll = Some(r.clone());
        // Not yet seen at every server: ask, whatever the time.
        for later in [0, ipub, 10 * DAY] {
            assert!(matches!(
                next(&z, &[], T0 + later),
                Next::Check {
                    check: Check::DnskeyServed,
                    then: Step::Seen,
                    status: Status::ZskWaitingForDnskeyTtl
                }
            ));
        }
        // Seen late (propagation took 3 days): TTLkey + safety from then.
        r.seen_at = T0 + 3 * DAY;
        z.lifecycle.roll = Some(r);
        assert_eq!(
            next(&z, &[], T0 + ipub),
            Next::Wait {
                until: T0 + 3 * DAY + 3600 + 3600,
                status: Status::ZskWaitingForDnskeyTtl
            }
        );
    }

    #[test]
    fn a_ksk_roll_waits_for_the_parent_for_as_long_as_it_takes() {
        let mut z = zone();
        z.lifecycle.roll = Some(roll(KeyRole::Ksk, RollStep::KskDsSubmitted, T0, 7200));
        for later in [0, DAY, 400 * DAY] {
            assert!(matches!(
                next(&z, &[], T0 + later),
                Next::Check {
                    check: Check::DsServed { .. },
                    then: Step::KskDsSeen { ds_ttl: 7200 },
                    status: Status::KskWaitingForDsUpdate
                }
            ));
        }
        // Seen: DprpP (1 h) + the measured DS TTL (2 h) + safety (1 h).
        z.lifecycle.roll = Some(roll(KeyRole::Ksk, RollStep::KskDsSeen, T0, 7200));
        assert_eq!(
            next(&z, &[], T0),
            Next::Wait {
                until: T0 + 3 * 3600 + 3600,
                status: Status::KskWaitingForDsTtl
            }
        );
    }

    #[test]
    fn one_roll_at_a_time_and_the_others_queue() {
        let mut z = zone();
        let keys = vec![
            key("old", KeyRole::Ksk, KeyState::Leaving, T0),
            key("new", KeyRole::Ksk, KeyState::Active, T0),
            key("z", KeyRole::Zsk, KeyState::Active, T0 - 100 * DAY),
        ];
        z.lifecycle.roll = Some(roll(KeyRole::Ksk, RollStep::KskDsSubmitted, T0, 3600));
        let now = T0 + DAY;
        assert_eq!(key_status(&z, &keys, &keys[2], now), Status::Queued);
        assert_eq!(
            key_status(&z, &keys, &keys[1], now),
            Status::KskWaitingForDsUpdate
        );
        z.lifecycle.roll = None;
        assert!(matches!(next(&z, &keys, now), Next::Start { ref old, .. } if old == "z"));
        // An operator's request goes first; a paused or failed zone waits.
        z.lifecycle.queue = vec!["new".into()];
        assert!(
            matches!(next(&z, &keys, now), Next::Start { ref old, manual: true, .. } if old == "new")
        );
        z.lifecycle.paused = true;
        assert_eq!(next(&z, &keys, now), Next::Idle { at: None });
        assert_eq!(key_status(&z, &keys, &keys[2], now), Status::Paused);
        z.lifecycle.paused = false;
        z.lifecycle.error = Some("the DS hook failed".into());
        assert_eq!(next(&z, &keys, now), Next::Idle { at: None });
    }
}
