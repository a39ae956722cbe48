//! What operators do to the engine (the counterparts of
//! Invoke-/Step-DnsServerSigningKeyRollover and of pausing a zone), and
//! what it shows them (Get-DnsServerSigningKey's rollover fields).

use super::engine::{self, plan, Status};
use super::runner::Lifecycle;
use crate::error::Result;
use crate::keyset::inventory::find_key;
use crate::mastership::gate::Managed;
use crate::node::ZoneName;
use crate::store::schema::{KeyRecord, ZoneRecord};

/// A key's place in the lifecycle, for `key list`.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub status: Status,
    /// When its lifetime ends (0: not rolled by the engine).
    pub next_rollover: u64,
    /// The servers its roll still waits for.
    pub waiting_on: Vec<String>,
    /// When a roll of keys of its role last finished (0: never).
    pub last_rollover: u64,
}

/// Every key's status at `now`.
pub fn statuses(zone: &ZoneRecord, keys: &[KeyRecord], now: u64) -> Vec<KeyStatus> {
    keys.iter()
        .map(|k| {
            let status = engine::key_status(zone, keys, k, now);
            let rolling = zone
                .lifecycle
                .roll
                .as_ref()
                .is_some_and(|r| r.involves(&k.id));
            KeyStatus {
                // The zone's status while it waits for servers: which
                // servers (the zone's, or the parent's) it tells.
                status: if rolling && !zone.lifecycle.waiting_on.is_empty() {
                    engine::roll_status(zone, now)
                } else {
                    status
                },
                next_rollover: engine::due_at(zone, k).unwrap_or(0),
                last_rollover: zone.lifecycle.last_rollover(k.role),
                waiting_on: if rolling {
                    zone.lifecycle.waiting_on.clone()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

impl Lifecycle {
    /// Rolls a key now, or after the roll under way (`key roll`). Clears
    /// a stopped roll's error: the operator has looked.
    pub async fn roll_key(&self, who: &str, zone: &ZoneName, which: &str) -> Result<KeyRecord> {
        let m = self.gate().managed(zone).await?;
        let keys = self.node().store.list_keys(&m.key).await?;
        let k = find_key(&keys, &m.key, which)?.clone();
        let plan = plan::roll_request(&m.zone, &k)?;
        self.write(&m, &plan.zone, who, plan.action, plan.what)
            .await?;
        self.wake(&m.key);
        Ok(k)
    }

    /// Tells a KSK roll that the parent serves the new DS when no check
    /// can see it (`key step`); the audit log records who said so.
    pub async fn step_key(&self, who: &str, zone: &ZoneName, which: &str) -> Result<KeyRecord> {
        let m = self.gate().managed(zone).await?;
        let keys = self.node().store.list_keys(&m.key).await?;
        let k = find_key(&keys, &m.key, which)?.clone();
        let plan = plan::operator_step(&m.zone, &k, self.node().clock.now())?;
        self.write(&m, &plan.zone, who, plan.action, plan.what)
            .await?;
        self.wake(&m.key);
        Ok(k)
    }

    /// Revokes a KSK for RFC 5011 validators (`key revoke`, Windows'
    /// RevokeStandby), as the engine plans it (`plan::revoke`); the parent
    /// is handed the DS RRset without it.
    pub async fn revoke_key(&self, who: &str, zone: &ZoneName, which: &str) -> Result<KeyRecord> {
        let m = self.gate().managed(zone).await?;
        let keys = self.node().store.list_keys(&m.key).await?;
        let k = find_key(&keys, &m.key, which)?.clone();
        let plan = plan::revoke(&m.zone, &keys, &k, self.node().clock.now())?;
        let audit = self.node().draft(who, &m.key, plan.action, plan.what);
        self.node()
            .store
            .update_zone(&plan.zone, m.zone.epoch, &plan.put, &[], &audit)
            .await?;
        self.submit_ds(&m, &plan.zone).await?;
        self.wake(&m.key);
        Ok(plan.put[0].clone())
    }

    /// Stops or restarts the engine for a zone (`zone pause`/`resume`);
    /// resuming clears a stopped roll's error.
    pub async fn set_paused(&self, who: &str, zone: &ZoneName, paused: bool) -> Result<()> {
        let m = self.gate().managed(zone).await?;
        let mut z = m.zone.clone();
        z.lifecycle.paused = paused;
        if !paused {
            z.lifecycle.error = None;
        }
        let (action, detail) = if paused {
            ("pause", "rollover engine paused".to_string())
        } else {
            ("resume", "rollover engine resumed".to_string())
        };
        self.write(&m, &z, who, action, detail).await?;
        self.wake(&m.key);
        Ok(())
    }

    /// Keeps the largest TTL the zone was just signed with (its max zone
    /// TTL, which ZSK rolls wait for) when this node is its Key Master and
    /// the value changed; elsewhere, or if the zone is busy, it is left for
    /// the next signing.
    pub async fn zone_signed(&self, zone: &ZoneName, max_ttl: u32) {
        let Ok(m) = self.gate().managed(zone).await else {
            return;
        };
        if m.zone.lifecycle.max_zone_ttl_seen == max_ttl {
            return;
        }
        let mut z = m.zone.clone();
        z.lifecycle.max_zone_ttl_seen = max_ttl;
        let detail = format!("max zone TTL measured: {max_ttl} s");
        if let Err(e) = self
            .write(&m, &z, "zone-sign", "max-zone-ttl", detail)
            .await
        {
            tracing::warn!(%zone, error = %e, "the measured max zone TTL was not stored");
        }
    }

    /// Writes the zone's record at the epoch it was opened at, with its
    /// audit entry (an operator's change to the engine's state).
    pub(super) async fn write(
        &self,
        m: &Managed,
        z: &ZoneRecord,
        who: &str,
        action: &str,
        detail: String,
    ) -> Result<()> {
        let audit = self.node().draft(who, &m.key, action, detail);
        Ok(self
            .node()
            .store
            .update_zone(z, m.zone.epoch, &[], &[], &audit)
            .await?)
    }
}
