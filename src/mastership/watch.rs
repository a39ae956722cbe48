//! Noticing role changes made elsewhere, and automatic failover; both run
//! from the node's lease loop (and role changes on every store watch
//! signal).

use std::collections::HashMap;

use super::Mastership;
use crate::error::Result;
use crate::node::ZoneName;

impl Mastership {
    /// Compares the zones this node is Key Master of with its last look and
    /// logs every role it lost (it stops managing that zone: its writes
    /// would be fenced anyway) or was given.
    pub async fn notice_role_changes(&self) -> Result<()> {
        let zones = self.node.store.list_zones().await?;
        let now: HashMap<String, u64> = zones
            .iter()
            .filter(|z| z.key_master == self.node.id)
            .map(|z| (z.name.clone(), z.epoch))
            .collect();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_ref() {
            None => tracing::info!(zones = now.len(), "Key Master of {} zone(s)", now.len()),
            Some(before) => {
                for (name, epoch) in before {
                    if now.contains_key(name) {
                        continue;
                    }
                    match zones.iter().find(|z| &z.name == name) {
                        Some(z) => tracing::warn!(
                            zone = %name,
                            held_epoch = epoch,
                            epoch = z.epoch,
                            key_master = %z.key_master,
                            "this node is no longer the Key Master of the zone; it stops managing it"
                        ),
                        None => tracing::info!(zone = %name, "zone removed"),
                    }
                }
                for (name, epoch) in &now {
                    if !before.contains_key(name) {
                        tracing::info!(zone = %name, epoch, "this node is now the Key Master of the zone");
                    }
                }
            }
        }
        let names: std::collections::HashSet<String> = now.keys().cloned().collect();
        self.held_names.send_if_modified(|old| {
            if old.as_deref() == Some(&names) {
                return false;
            }
            *old = Some(std::sync::Arc::new(names));
            true
        });
        *held = Some(now);
        Ok(())
    }

    /// One pass of automatic failover: for every zone that asks for it
    /// whose Key Master's lease has been gone for its failover time, this
    /// node seizes the role if it is a candidate. Of several nodes racing,
    /// the epoch compare-and-set lets exactly one win.
    pub async fn failover_pass(&self) -> Result<()> {
        let now = self.node.clock.now();
        let nodes = self.node.store.list_nodes().await?;
        let Some(me) = nodes.iter().find(|n| n.node_id == self.node.id) else {
            return Ok(());
        };
        for z in self.node.store.list_zones().await? {
            if z.policy.auto_failover == 0 || z.key_master == self.node.id {
                continue;
            }
            let gone_since = match nodes.iter().find(|n| n.node_id == z.key_master) {
                Some(km) if km.online(now) => continue,
                Some(km) => km.last_seen + km.lease_secs,
                None => continue,
            };
            if now < gone_since + u64::from(z.policy.auto_failover) {
                continue;
            }
            let keys = self.node.store.list_keys(&z.name).await?;
            if self.why_not(me, &keys, z.policy.algorithm).await.is_some() {
                continue;
            }
            let Ok(name) = ZoneName::of(&z) else {
                continue;
            };
            match self
                .seize("auto-failover", &name, &self.node.id, false)
                .await
            {
                Ok(r) => {
                    tracing::warn!(zone = %z.name, epoch = r.epoch, "automatic failover: this node took the Key Master role")
                }
                Err(e) => {
                    tracing::info!(zone = %z.name, error = %e, "automatic failover not taken")
                }
            }
        }
        Ok(())
    }
}
