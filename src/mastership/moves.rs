//! Moving the role: transfer (a hand-over the holder agrees to, by
//! releasing the zone), the holder's release, and seize.

use std::time::Duration;

use super::candidates::keys_out_of_reach;
use super::{moved_meanwhile, Mastership};
use crate::error::{Error, Result, RoleError};
use crate::node::ZoneName;
use crate::store::schema::{NodeRecord, ZoneRecord};
use crate::text::shown;

/// How long a transfer waits for the Key Master to release the zone: a
/// live node answers in milliseconds; a killed or paused one never does.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

impl Mastership {
    /// Moves the role while the current Key Master is online: it is asked
    /// to release the zone first, and must answer.
    pub async fn transfer(&self, who: &str, zone: &ZoneName, to: &str) -> Result<ZoneRecord> {
        let (key, zone) = self.zone_to_move(zone, to).await?;
        let target = self.registered(to).await?;
        if !self.is_online(&zone.key_master).await? {
            return Err(self.unreachable(&zone, to, "its lease has expired".into(), None));
        }
        let keys = self.node.store.list_keys(&key).await?;
        if let Some(reason) = self.why_not(&target, &keys, zone.policy.algorithm).await {
            return Err(RoleError::NotCandidate {
                zone: key,
                node: to.to_string(),
                reason,
            }
            .into());
        }
        // A hand-over: the holder stops its work for the zone and says so
        // before the role moves.
        self.ask_release(&zone, to).await?;
        let audit = self.node.draft(
            who,
            &key,
            "transfer",
            format!(
                "Key Master {} → {to}, epoch {} → {}; released by {}",
                zone.key_master,
                zone.epoch,
                zone.epoch + 1,
                zone.key_master
            ),
        );
        let now = self.node.clock.now();
        let moved = self
            .node
            .store
            .move_key_master(&key, zone.epoch, to, now, false, &audit)
            .await
            .map_err(moved_meanwhile)?;
        tracing::info!(zone = %key, from = %zone.key_master, to, epoch = moved.epoch, "Key Master transferred");
        Ok(moved)
    }

    /// The Key Master's side of a transfer: once the management calls for
    /// the zone under way here have finished, this node stops managing it
    /// (new calls are refused, saying it is being handed over) and
    /// answers; the caller then moves the role with epoch + 1.
    pub async fn release(&self, zone: &ZoneName, epoch: u64, to: &str) -> Result<()> {
        self.gate.release(zone, epoch).await?;
        tracing::info!(%zone, epoch, to = %shown(to), "released the zone for a transfer: this node stops managing it");
        Ok(())
    }

    /// Asks the zone's Key Master to release it: this node itself, or a
    /// peer that must answer within RELEASE_TIMEOUT.
    async fn ask_release(&self, zone: &ZoneRecord, to: &str) -> Result<()> {
        if zone.key_master == self.node.id {
            return self.release(&ZoneName::of(zone)?, zone.epoch, to).await;
        }
        let holder = self.registered(&zone.key_master).await?;
        let Some(peers) = &self.peers else {
            return Err(self.unreachable(zone, to, RoleError::NoPeers.to_string(), Some(&holder)));
        };
        let asked = tokio::time::timeout(
            RELEASE_TIMEOUT,
            peers.release(&holder, &zone.name, zone.epoch, to),
        )
        .await;
        match asked {
            Ok(Ok(())) => Ok(()),
            // The holder answered, and refused: the role moved meanwhile.
            Ok(Err(e @ Error::Role(RoleError::PeerRefused { .. }))) => Err(e),
            Ok(Err(e)) => Err(self.unreachable(zone, to, e.to_string(), Some(&holder))),
            Err(_) => Err(self.unreachable(
                zone,
                to,
                format!("no answer within {} s", RELEASE_TIMEOUT.as_secs()),
                Some(&holder),
            )),
        }
    }

    /// Whether the zone needs new keys if `target` takes it: its token is
    /// asked for every key; without them it takes the role only by force.
    async fn needs_rekey(&self, zone: &str, target: &NodeRecord, force: bool) -> Result<bool> {
        let keys = self.node.store.list_keys(zone).await?;
        let missing =
            self.keys_missing_on(target, &keys)
                .await
                .map_err(|e| RoleError::CannotAsk {
                    zone: zone.to_string(),
                    node: target.node_id.clone(),
                    why: e.to_string(),
                })?;
        match (missing.first(), force) {
            (None, _) => Ok(false),
            (Some(k), false) => Err(RoleError::KeysOutOfReach {
                zone: zone.to_string(),
                node: target.node_id.clone(),
                reason: keys_out_of_reach(target, k),
            }
            .into()),
            (Some(_), true) => Ok(true),
        }
    }

    /// The zone whose role is to move to `to`: refused if `to` holds it.
    async fn zone_to_move(&self, zone: &ZoneName, to: &str) -> Result<(String, ZoneRecord)> {
        let z = self.node.zone(zone).await?;
        if z.zone.key_master == to {
            return Err(RoleError::AlreadyHolder {
                zone: z.key,
                node: to.to_string(),
            }
            .into());
        }
        Ok((z.key, z.zone))
    }

    /// The holder did not answer a transfer; says when a seize will be
    /// allowed if its lease still holds (`holder`'s record).
    fn unreachable(
        &self,
        zone: &ZoneRecord,
        to: &str,
        why: String,
        holder: Option<&NodeRecord>,
    ) -> Error {
        let now = self.node.clock.now();
        RoleError::HolderUnreachable {
            zone: zone.name.clone(),
            holder: zone.key_master.clone(),
            to: to.to_string(),
            why,
            lease: holder
                .filter(|h| h.online(now))
                .map(|h| crate::clock::rfc3339(lease_end(h, now))),
        }
        .into()
    }

    /// Takes the role for `to` when the Key Master's lease is gone. A node
    /// that cannot reach the keys gets it only with `force`, and then the
    /// zone needs new keys.
    pub async fn seize(
        &self,
        who: &str,
        zone: &ZoneName,
        to: &str,
        force: bool,
    ) -> Result<ZoneRecord> {
        let (key, zone) = self.zone_to_move(zone, to).await?;
        let now = self.node.clock.now();
        if let Ok(holder) = self.registered(&zone.key_master).await {
            if holder.online(now) {
                let end = lease_end(&holder, now);
                return Err(RoleError::HolderOnline {
                    zone: key,
                    holder: zone.key_master,
                    to: to.to_string(),
                    until: crate::clock::rfc3339(end),
                    secs: end.saturating_sub(now),
                }
                .into());
            }
        }
        let target = self.registered(to).await?;
        let now = self.node.clock.now();
        if !target.online(now) {
            return Err(RoleError::TargetOffline {
                node: to.to_string(),
            }
            .into());
        }
        let needs_rekey = self.needs_rekey(&key, &target, force).await?;
        let audit = self.node.draft(
            who,
            &key,
            if force { "seize --force" } else { "seize" },
            format!(
                "Key Master {} (offline) → {to}, epoch {} → {}{}",
                zone.key_master,
                zone.epoch,
                zone.epoch + 1,
                if needs_rekey {
                    "; zone needs new keys"
                } else {
                    ""
                }
            ),
        );
        let moved = self
            .node
            .store
            .move_key_master(&key, zone.epoch, to, now, needs_rekey, &audit)
            .await
            .map_err(moved_meanwhile)?;
        tracing::warn!(zone = %key, from = %zone.key_master, to, epoch = moved.epoch, needs_rekey, "Key Master role seized");
        Ok(moved)
    }
}

/// When a node's lease runs out if it is not renewed: its last renewal
/// and the lease's length (an etcd lease is renewed at the same times).
fn lease_end(n: &NodeRecord, now: u64) -> u64 {
    (n.last_seen + n.lease_secs).max(now)
}
