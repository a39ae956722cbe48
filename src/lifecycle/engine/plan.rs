//! What each step of a roll writes, decided without I/O: the engine says
//! which step comes next (`super::next`), this says what it changes. The
//! runner generates keys, asks the servers and writes the plan; nothing of
//! a step is decided there.
//!
//! A plan is the zone record as it is to be written (its lifecycle moved
//! on), the key records to put and to destroy, whether the parent is to be
//! handed the DS set after the write, and the words of the audit entry.

use super::Step;
use crate::dnssec::KeyRole;
use crate::error::{KeyError, Result};
use crate::keyset::Publication;
use crate::policy::intervals::Intervals;
use crate::store::schema::{KeyRecord, KeyState, Roll, RollStep, UnsignStep, ZoneRecord};

/// One write of the lifecycle.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The zone record to write.
    pub zone: ZoneRecord,
    pub put: Vec<KeyRecord>,
    /// Ids of the keys to remove (records, then token objects).
    pub delete: Vec<String>,
    /// Hand the parent the DS set after the write (the submission command).
    pub submit_ds: bool,
    /// The audit entry's action and words.
    pub action: &'static str,
    pub what: String,
}

impl Plan {
    /// A write of the zone record alone, no key changed.
    fn zone_only(zone: ZoneRecord, action: &'static str, what: String) -> Plan {
        Plan {
            zone,
            put: Vec::new(),
            delete: Vec::new(),
            submit_ds: false,
            action,
            what,
        }
    }
}

/// The plan of a step: the roll moved on, or ended; the steps of going
/// insecure too. None when the zone has no roll (nothing to do).
pub fn step(step: &Step, zone: &ZoneRecord, at: &StepInputs) -> Result<Option<Plan>> {
    if matches!(step, Step::UnsignDsGone | Step::UnsignStop) {
        return Ok(unsign_plan(step, zone, at));
    }
    let mut zone = zone.clone();
    let Some(roll) = zone.lifecycle.roll.clone() else {
        return Ok(None);
    };
    let Some(StepChange {
        put,
        delete,
        next,
        what,
    }) = step_change(step, &mut zone, &roll, at)?
    else {
        return Ok(None);
    };
    zone.lifecycle.roll = match step {
        Step::ZskRemoveOld | Step::KskRemoveOld | Step::AlgRemoveOld => None,
        _ => Some(next),
    };
    zone.lifecycle.waiting_on.clear();
    // The new DS goes to the parent at the swap; after a double DS roll,
    // the old one is withdrawn and the parent handed the new alone.
    let submit_ds = *step == Step::KskSubmit || (*step == Step::KskRemoveOld && roll.double_ds);
    Ok(Some(Plan {
        zone,
        put,
        delete,
        submit_ds,
        action: "roll-step",
        what,
    }))
}

/// The state a roll's successor is generated in: a ZSK published (signing
/// too with double signatures), a KSK incoming (published and signing the
/// DNSKEY RRset), or, with double DS, its DS only.
pub fn successor_state(policy: &crate::policy::Policy, role: KeyRole) -> KeyState {
    match role {
        KeyRole::Zsk if policy.zsk_double_signature => KeyState::Active,
        KeyRole::Zsk => KeyState::Published,
        KeyRole::Ksk if policy.ksk_double_ds => KeyState::DsOnly,
        KeyRole::Ksk => KeyState::Incoming,
    }
}

/// The start of a roll of `old`: the successor `new` (generated in
/// `successor_state`) recorded with the roll's first step and the TTL it
/// waits out; a double DS roll hands the parent the new DS at once.
/// `old_ds_ttl`: the old DS's TTL at the parent (double DS only).
/// Long because the roll record is written out field by field, each with
/// the method it depends on.
pub fn start(
    zone: &ZoneRecord,
    old: &KeyRecord,
    mut new: KeyRecord,
    manual: bool,
    now: u64,
    old_ds_ttl: u32,
) -> Plan {
    let role = old.role;
    let double = role == KeyRole::Zsk && zone.policy.zsk_double_signature;
    let double_ds = role == KeyRole::Ksk && zone.policy.ksk_double_ds;
    let t = Intervals::of(&zone.policy, zone.lifecycle.max_zone_ttl_seen);
    new.csk = old.csk;
    let mut zone = zone.clone();
    zone.lifecycle.queue.retain(|id| *id != old.id);
    zone.lifecycle.roll = Some(Roll {
        role,
        old: old.id.clone(),
        new: new.id.clone(),
        step: match role {
            KeyRole::Zsk if double => RollStep::ZskDoubleSigned,
            KeyRole::Zsk => RollStep::ZskPublished,
            // Double DS: the new DS goes to the parent at once.
            KeyRole::Ksk if double_ds => RollStep::KskDsSubmitted,
            KeyRole::Ksk => RollStep::KskPublished,
        },
        since: now,
        // The TTLs the step waits out, as in force now.
        ttl: if double {
            t.ttl_key.max(t.ttl_sig) as u32
        } else if double_ds {
            old_ds_ttl
        } else {
            zone.policy.dnskey_ttl
        },
        manual,
        seen_at: 0,
        old_zsk: String::new(),
        new_zsk: String::new(),
        double_ds,
        rfc5011: role == KeyRole::Ksk && zone.policy.rfc5011,
        csk: old.csk,
    });
    zone.lifecycle.waiting_on.clear();
    let what = role.as_str().to_uppercase();
    let detail = format!(
        "{what} roll of {} started ({}): successor {what} {} generated and published{}",
        old.key_tag,
        if manual {
            "asked for"
        } else {
            "lifetime ended"
        },
        new.key_tag,
        if double {
            ", signing beside it (double signature)"
        } else if double_ds {
            " as a DS only: its DS goes to the parent beside the old one (double DS)"
        } else {
            ""
        }
    );
    Plan {
        zone,
        put: vec![new],
        delete: Vec::new(),
        submit_ds: double_ds,
        action: "roll-start",
        what: detail,
    }
}

/// The start of an algorithm roll (RFC 6781 §4.1.4, conservative): the
/// new algorithm's KSK and ZSK (generated pre-active: signing, not
/// published) recorded with the roll.
pub fn algorithm_start(
    zone: &ZoneRecord,
    old_ksk: &KeyRecord,
    old_zsk: &KeyRecord,
    ksk: KeyRecord,
    zsk: KeyRecord,
    now: u64,
) -> Plan {
    let mut zone = zone.clone();
    let t = Intervals::of(&zone.policy, zone.lifecycle.max_zone_ttl_seen);
    zone.lifecycle.roll = Some(Roll {
        role: KeyRole::Ksk,
        old: old_ksk.id.clone(),
        new: ksk.id.clone(),
        step: RollStep::AlgSigned,
        since: now,
        ttl: t.ttl_sig as u32,
        manual: true,
        seen_at: 0,
        old_zsk: old_zsk.id.clone(),
        new_zsk: zsk.id.clone(),
        double_ds: false,
        rfc5011: false,
        csk: false,
    });
    zone.lifecycle.waiting_on.clear();
    let detail = format!(
        "algorithm roll from {} to {} started: KSK {} and ZSK {} generated; they sign, \
         not yet published (RFC 6781 §4.1.4: signatures first)",
        old_ksk.algorithm, zone.policy.algorithm, ksk.key_tag, zsk.key_tag
    );
    Plan {
        zone,
        put: vec![ksk, zsk],
        delete: Vec::new(),
        submit_ds: false,
        action: "roll-start",
        what: detail,
    }
}

/// An operator's `key roll`: the key queued (it rolls now, or after the
/// roll under way), a stopped roll's error cleared (the operator has
/// looked). Only an active key that is not in the roll under way.
pub fn roll_request(zone: &ZoneRecord, k: &KeyRecord) -> Result<Plan> {
    if k.state != KeyState::Active {
        return Err(KeyError::NotRollable {
            zone: zone.name.clone(),
            tag: k.key_tag,
            state: k.state.as_str(),
        }
        .into());
    }
    if let Some(r) = zone.lifecycle.roll.as_ref().filter(|r| r.involves(&k.id)) {
        return Err(KeyError::InRoll {
            zone: zone.name.clone(),
            tag: k.key_tag,
            step: format!("{:?}", r.step),
        }
        .into());
    }
    let mut zone = zone.clone();
    if !zone.lifecycle.queue.contains(&k.id) {
        zone.lifecycle.queue.push(k.id.clone());
    }
    zone.lifecycle.error = None;
    let what = format!(
        "roll of {} {} asked for",
        k.role.as_str().to_uppercase(),
        k.key_tag
    );
    Ok(Plan::zone_only(zone, "roll-request", what))
}

/// An operator's `key step`: a KSK roll that waits for the parent's new
/// DS takes it as served (no check can see it; the audit says who said
/// so), and waits the larger of the DS TTL measured and the policy's.
pub fn operator_step(zone: &ZoneRecord, k: &KeyRecord, now: u64) -> Result<Plan> {
    let mut zone = zone.clone();
    let parent_ds_ttl = zone.policy.parent_ds_ttl;
    let Some(roll) = zone
        .lifecycle
        .roll
        .as_mut()
        .filter(|r| r.step == RollStep::KskDsSubmitted && (r.new == k.id || r.old == k.id))
    else {
        return Err(KeyError::NothingToStep {
            zone: zone.name.clone(),
            which: k.key_tag.to_string(),
        }
        .into());
    };
    roll.step = RollStep::KskDsSeen;
    roll.since = now;
    roll.ttl = roll.ttl.max(parent_ds_ttl);
    zone.lifecycle.waiting_on.clear();
    let what = format!(
        "the parent serves the new DS (KSK roll of {}): said by the operator, not checked",
        k.key_tag
    );
    Ok(Plan::zone_only(zone, "roll-step", what))
}

/// An operator's `key revoke` (RFC 5011, Windows' RevokeStandby): a
/// standby KSK, or an active one beside another active KSK, published with
/// the REVOKE bit and signing the DNSKEY RRset for the remove hold-down, as
/// a roll of its own (so no other roll runs meanwhile); then it goes. The
/// revoked key is `put[0]`; the parent is to be handed the DS without it.
pub fn revoke(zone: &ZoneRecord, keys: &[KeyRecord], k: &KeyRecord, now: u64) -> Result<Plan> {
    if let Some(r) = &zone.lifecycle.roll {
        return Err(KeyError::RollUnderWay {
            zone: zone.name.clone(),
            step: format!("{:?}", r.step),
        }
        .into());
    }
    let other_active = keys
        .iter()
        .any(|o| o.id != k.id && o.role == KeyRole::Ksk && o.state == KeyState::Active);
    let revocable = k.role == KeyRole::Ksk
        && (k.state == KeyState::Published || (k.state == KeyState::Active && other_active));
    if !revocable {
        return Err(KeyError::NotRevocable {
            zone: zone.name.clone(),
            tag: k.key_tag,
            state: format!("a {} {}", k.role.as_str().to_uppercase(), k.state.as_str()),
        }
        .into());
    }
    let mut k = k.clone();
    k.state = KeyState::Revoked;
    let mut zone = zone.clone();
    zone.lifecycle.roll = Some(Roll {
        role: KeyRole::Ksk,
        old: k.id.clone(),
        new: k.id.clone(),
        step: RollStep::KskRevoked,
        since: now,
        ttl: zone.policy.dnskey_ttl,
        manual: true,
        seen_at: 0,
        old_zsk: String::new(),
        new_zsk: String::new(),
        double_ds: false,
        rfc5011: true,
        csk: false,
    });
    zone.lifecycle.waiting_on.clear();
    let what = format!(
        "KSK {} revoked by the operator (published with the REVOKE bit as key {}, signing \
         the DNSKEY RRset); it goes after the remove hold-down",
        k.key_tag,
        crate::keyset::dnskey_of(&k)?.key_tag()
    );
    Ok(Plan {
        zone,
        put: vec![k],
        delete: Vec::new(),
        submit_ds: true,
        action: "key-revoke",
        what,
    })
}

/// A step of going insecure: the DS seen gone at the parent, then the
/// zone published unsigned (and its keys removed if asked).
fn unsign_plan(step: &Step, zone: &ZoneRecord, at: &StepInputs) -> Option<Plan> {
    let mut zone = zone.clone();
    let t = Intervals::of(&zone.policy, zone.lifecycle.max_zone_ttl_seen);
    let u = zone.lifecycle.unsign.as_mut()?;
    u.since = at.now;
    let mut delete = Vec::new();
    let what = if *step == Step::UnsignDsGone {
        u.step = UnsignStep::DsGone;
        format!(
            "unsigning: the parent serves no DS; signing goes on for {} s while caches forget it",
            t.ksk_iret(u.ttl)
        )
    } else {
        u.step = UnsignStep::Unsigned;
        if u.remove_keys {
            delete = at.keys.iter().map(|k| k.id.clone()).collect();
        }
        format!(
            "unsigned: the zone is published without DNSSEC; its {} keys {}",
            at.keys.len(),
            if delete.is_empty() {
                "are kept"
            } else {
                "are removed"
            }
        )
    };
    zone.lifecycle.waiting_on.clear();
    Some(Plan {
        zone,
        put: Vec::new(),
        delete,
        submit_ds: false,
        action: "unsign-step",
        what,
    })
}

/// What a step is decided from, besides the zone: what the runner read
/// and asked.
pub struct StepInputs<'a> {
    pub keys: &'a [KeyRecord],
    /// The largest TTL the servers' evidence showed (a DS TTL measured).
    pub evidence_ttl: u32,
    pub now: u64,
    /// The old DS's TTL at the parent (for `KskSubmit` only).
    pub old_ds_ttl: u32,
    /// A DS submission command is set (named in the audit entry).
    pub submits_ds: bool,
}

/// What one roll step writes: the key records to put and to destroy, the
/// roll as it goes on, and the words for its audit entry and log line.
struct StepChange {
    put: Vec<KeyRecord>,
    delete: Vec<String>,
    next: Roll,
    what: String,
}

/// The change a roll step makes, without writing it; the zone record is
/// changed in place where a step ends a roll (its last-rollover times).
/// None for the steps of going insecure (`unsign_plan`). One
/// arm per step, so that what a roll does reads as one table; the longer
/// arms are functions of their own.
fn step_change(
    step: &Step,
    zone: &mut ZoneRecord,
    roll: &Roll,
    at: &StepInputs,
) -> Result<Option<StepChange>> {
    let now = at.now;
    let mut old = find(at.keys, &zone.name, &roll.old)?.clone();
    let mut new = find(at.keys, &zone.name, &roll.new)?.clone();
    let mut c = StepChange {
        put: Vec::new(),
        delete: Vec::new(),
        next: Roll {
            since: now,
            seen_at: 0,
            ..roll.clone()
        },
        what: String::new(),
    };
    let dnskey_ttl = zone.policy.dnskey_ttl;
    c.what = match step {
        Step::UnsignDsGone | Step::UnsignStop => return Ok(None),
        Step::Seen => {
            c.next = roll.clone();
            c.next.seen_at = now;
            let role = roll.role.as_str().to_uppercase();
            format!(
                "every server serves the change of the {role} roll to {}",
                new.key_tag
            )
        }
        Step::ZskActivate => {
            let t = Intervals::of(&zone.policy, zone.lifecycle.max_zone_ttl_seen);
            (new.state, new.activated) = (KeyState::Active, now);
            (old.state, old.retired) = (KeyState::Retired, now);
            c.put = vec![new.clone(), old.clone()];
            (c.next.step, c.next.ttl) = (RollStep::ZskRetired, t.ttl_sig as u32);
            format!("ZSK {} signs; ZSK {} retired", new.key_tag, old.key_tag)
        }
        Step::KskSubmit => {
            (new.state, new.activated) = (KeyState::Active, now);
            old.state = KeyState::Leaving;
            c.put = vec![new.clone(), old.clone()];
            (c.next.step, c.next.ttl) = (RollStep::KskDsSubmitted, at.old_ds_ttl);
            let command = if at.submits_ds {
                ", submission command"
            } else {
                ""
            };
            let push = match zone.policy.ds_push.as_str() {
                "" => String::new(),
                "dsync" => ", UPDATE to the parent's DSYNC target".to_string(),
                to => format!(", UPDATE to {to}"),
            };
            format!(
                "KSK {} takes over: its DS handed to the parent (CDS/CDNSKEY{command}{push}); KSK {} leaving",
                new.key_tag, old.key_tag
            )
        }
        &Step::KskDsSeen { ds_ttl } => {
            c.next.step = RollStep::KskDsSeen;
            c.next.ttl = ds_ttl.max(at.evidence_ttl);
            format!(
                "the parent serves the DS of KSK {} (DS TTL {} s)",
                new.key_tag, c.next.ttl
            )
        }
        Step::AlgPublish => algorithm_published(zone, roll, at, &mut c, new)?,
        Step::AlgUnpublishOld => algorithm_unpublished(zone, at, &mut c),
        Step::AlgRemoveOld => algorithm_removed(zone, at, &mut c),
        Step::KskSwap => {
            (new.state, new.published, new.activated) = (KeyState::Active, now, now);
            (old.state, old.retired) = (KeyState::DsOnly, now);
            c.put = vec![new.clone(), old.clone()];
            (c.next.step, c.next.ttl) = (RollStep::KskSwapped, dnskey_ttl);
            format!(
                "KSK {} published and signing in place of KSK {} (both DS at the parent)",
                new.key_tag, old.key_tag
            )
        }
        Step::KskRevoke => {
            let t = Intervals::of(&zone.policy, zone.lifecycle.max_zone_ttl_seen);
            old.state = KeyState::Revoked;
            c.put.push(old.clone());
            (c.next.step, c.next.ttl) = (RollStep::KskRevoked, dnskey_ttl);
            format!(
                "KSK {} revoked for RFC 5011 validators (published with the REVOKE bit as \
                 key {}, signing the DNSKEY RRset); it goes after the remove hold-down ({} s)",
                old.key_tag,
                crate::keyset::dnskey_of(&old)?.key_tag(),
                t.irev()
            )
        }
        Step::KskRemoveOld if roll.old == roll.new => {
            c.delete = vec![old.id.clone()];
            format!(
                "revoked KSK {} removed after the remove hold-down",
                old.key_tag
            )
        }
        Step::ZskRemoveOld | Step::KskRemoveOld => {
            c.delete = vec![old.id.clone()];
            match roll.role {
                KeyRole::Zsk => zone.lifecycle.last_zsk_rollover = now,
                KeyRole::Ksk => zone.lifecycle.last_ksk_rollover = now,
            }
            let role = roll.role.as_str().to_uppercase();
            format!(
                "{role} {} removed: the roll to {} is done",
                old.key_tag, new.key_tag
            )
        }
    };
    Ok(Some(c))
}

/// Algorithm roll: the new algorithm's KSK (incoming) and ZSK (active)
/// published beside the old algorithm's keys.
fn algorithm_published(
    zone: &ZoneRecord,
    roll: &Roll,
    at: &StepInputs,
    c: &mut StepChange,
    mut new: KeyRecord,
) -> Result<String> {
    let mut zsk = find(at.keys, &zone.name, &roll.new_zsk)?.clone();
    (new.state, new.published) = (KeyState::Incoming, at.now);
    (zsk.state, zsk.published, zsk.activated) = (KeyState::Active, at.now, at.now);
    c.put = vec![new.clone(), zsk.clone()];
    (c.next.step, c.next.ttl) = (RollStep::AlgPublished, zone.policy.dnskey_ttl);
    Ok(format!(
        "the DNSKEYs of KSK {} and ZSK {} ({}) published beside the old algorithm's",
        new.key_tag, zsk.key_tag, zone.policy.algorithm
    ))
}

/// Algorithm roll: the old algorithm's DNSKEYs withdrawn; its keys that
/// sign go on signing (post-active), the others go.
fn algorithm_unpublished(zone: &ZoneRecord, at: &StepInputs, c: &mut StepChange) -> String {
    let wanted = zone.policy.algorithm.number();
    let mut tags = Vec::new();
    for k in at.keys.iter().filter(|k| k.algorithm.number() != wanted) {
        tags.push(k.key_tag.to_string());
        if Publication::of(k.state).signs {
            let mut k = k.clone();
            (k.state, k.retired) = (KeyState::PostActive, at.now);
            c.put.push(k);
        } else {
            c.delete.push(k.id.clone());
        }
    }
    (c.next.step, c.next.ttl) = (RollStep::AlgOldUnpublished, zone.policy.dnskey_ttl);
    format!(
        "the old algorithm's DNSKEYs withdrawn ({}); their keys still sign",
        tags.join(", ")
    )
}

/// Algorithm roll: the old algorithm's keys removed; the roll is done.
fn algorithm_removed(zone: &mut ZoneRecord, at: &StepInputs, c: &mut StepChange) -> String {
    let wanted = zone.policy.algorithm.number();
    c.delete = at
        .keys
        .iter()
        .filter(|k| k.algorithm.number() != wanted)
        .map(|k| k.id.clone())
        .collect();
    zone.lifecycle.last_zsk_rollover = at.now;
    zone.lifecycle.last_ksk_rollover = at.now;
    format!(
        "the old algorithm's keys removed, their signatures with them: the roll to {} is done",
        zone.policy.algorithm
    )
}

/// A key of the zone by its id.
pub fn find<'a>(keys: &'a [KeyRecord], zone: &str, id: &str) -> Result<&'a KeyRecord> {
    keys.iter().find(|k| k.id == id).ok_or_else(|| {
        KeyError::NoSuchKey {
            zone: zone.to_string(),
            which: id.to_string(),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    //! The plans as plain functions: a zone, its keys and a time in, the
    //! record to write out; no store, token or clock.
    use super::*;
    use crate::dnssec::Algorithm;
    use crate::policy::Policy;
    use crate::store::schema::SCHEMA_VERSION;

    const T0: u64 = 1_800_000_000;
    const H: u64 = 3600;

    fn zone(policy: Policy) -> ZoneRecord {
        let policy = Policy {
            dnskey_ttl: H as u32,
            max_zone_ttl: 2 * H as u32,
            propagation_time: H as u32,
            safety_margin: 0,
            ..policy
        };
        ZoneRecord::new("example.", policy, "a", 0)
    }

    fn key(id: &str, role: KeyRole, state: KeyState, tag: u16) -> KeyRecord {
        KeyRecord {
            schema: SCHEMA_VERSION,
            zone: "example.".into(),
            id: id.into(),
            role,
            algorithm: Algorithm::EcdsaP256Sha256,
            key_tag: tag,
            state,
            label: String::new(),
            public_key: "11".repeat(64),
            token_label: "t".into(),
            token_serial: "s".into(),
            created: T0,
            published: T0,
            activated: T0,
            retired: 0,
            csk: false,
        }
    }

    fn inputs(keys: &[KeyRecord], now: u64) -> StepInputs<'_> {
        StepInputs {
            keys,
            evidence_ttl: 0,
            now,
            old_ds_ttl: 0,
            submits_ds: false,
        }
    }

    #[test]
    fn a_zsk_roll_is_three_writes_each_planned_from_the_last() {
        let z = zone(Policy::default());
        let old = key("01", KeyRole::Zsk, KeyState::Active, 1);
        let state = successor_state(&z.policy, KeyRole::Zsk);
        assert_eq!(state, KeyState::Published);
        let new = key("02", KeyRole::Zsk, state, 2);
        let p = start(&z, &old, new.clone(), false, T0, 0);
        let roll = p.zone.lifecycle.roll.clone().unwrap();
        assert_eq!(
            (roll.step, roll.ttl, roll.since),
            (RollStep::ZskPublished, H as u32, T0)
        );
        assert_eq!(
            (p.put.len(), p.action, p.submit_ds),
            (1, "roll-start", false)
        );
        assert!(
            p.what.contains("ZSK roll of 1 started (lifetime ended)"),
            "{}",
            p.what
        );

        // Ipub later and served: the successor signs, the old one retires;
        // the step waits out the max zone TTL next.
        let keys = [old.clone(), new.clone()];
        let t1 = T0 + 3 * H;
        let p = step(&Step::ZskActivate, &p.zone, &inputs(&keys, t1))
            .unwrap()
            .unwrap();
        let states: Vec<(&str, KeyState)> =
            p.put.iter().map(|k| (k.id.as_str(), k.state)).collect();
        assert_eq!(
            states,
            [("02", KeyState::Active), ("01", KeyState::Retired)]
        );
        let roll = p.zone.lifecycle.roll.clone().unwrap();
        assert_eq!(
            (roll.step, roll.ttl, roll.since),
            (RollStep::ZskRetired, 2 * H as u32, t1)
        );

        // Iret later: the old key goes, and the roll ends.
        let keys = [p.put[1].clone(), p.put[0].clone()];
        let t2 = t1 + 4 * H;
        let p = step(&Step::ZskRemoveOld, &p.zone, &inputs(&keys, t2))
            .unwrap()
            .unwrap();
        assert_eq!(p.delete, ["01"]);
        assert!(p.zone.lifecycle.roll.is_none());
        assert_eq!(p.zone.lifecycle.last_zsk_rollover, t2);
        assert!(!p.submit_ds);
    }

    #[test]
    fn a_double_ds_roll_hands_the_parent_the_ds_at_its_start_and_its_end() {
        let z = zone(Policy {
            ksk_double_ds: true,
            ..Policy::default()
        });
        let old = key("01", KeyRole::Ksk, KeyState::Active, 1);
        let state = successor_state(&z.policy, KeyRole::Ksk);
        assert_eq!(state, KeyState::DsOnly);
        let p = start(&z, &old, key("02", KeyRole::Ksk, state, 2), true, T0, 7200);
        let roll = p.zone.lifecycle.roll.clone().unwrap();
        assert_eq!((roll.step, roll.ttl), (RollStep::KskDsSubmitted, 7200));
        assert!(p.submit_ds, "the new DS goes beside the old at once");
        let mut z = p.zone;
        z.lifecycle.roll.as_mut().unwrap().step = RollStep::KskSwapped;
        let keys = [old, key("02", KeyRole::Ksk, KeyState::Active, 2)];
        let p = step(&Step::KskRemoveOld, &z, &inputs(&keys, T0 + 9 * H))
            .unwrap()
            .unwrap();
        assert!(p.submit_ds, "the old DS is withdrawn: the new alone");
        assert_eq!(p.delete, ["01"]);
    }

    #[test]
    fn an_operator_may_step_only_a_roll_that_waits_for_the_parent() {
        let z = zone(Policy::default());
        let k = key("01", KeyRole::Ksk, KeyState::Active, 1);
        let e = operator_step(&z, &k, T0).unwrap_err();
        assert!(e.to_string().contains("no KSK roll waiting"), "{e}");
        let e = roll_request(&z, &key("02", KeyRole::Zsk, KeyState::Retired, 2)).unwrap_err();
        assert!(
            e.to_string().contains("only an active key is rolled"),
            "{e}"
        );
        let p = roll_request(&z, &k).unwrap();
        assert_eq!(p.zone.lifecycle.queue, ["01"]);
    }

    #[test]
    fn unsigning_removes_the_keys_only_when_asked() {
        use crate::store::schema::Unsign;
        let mut z = zone(Policy::default());
        z.lifecycle.unsign = Some(Unsign {
            step: UnsignStep::DsGone,
            since: T0,
            ttl: 3600,
            remove_keys: false,
        });
        let keys = [key("01", KeyRole::Ksk, KeyState::Active, 1)];
        let p = step(&Step::UnsignStop, &z, &inputs(&keys, T0 + H))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.zone.lifecycle.unsign.as_ref().unwrap().step,
            UnsignStep::Unsigned
        );
        assert!(p.delete.is_empty() && p.action == "unsign-step");
        z.lifecycle.unsign.as_mut().unwrap().remove_keys = true;
        let p = step(&Step::UnsignStop, &z, &inputs(&keys, T0 + H))
            .unwrap()
            .unwrap();
        assert_eq!(p.delete, ["01"]);
    }
}
