//! The gate every management call on a zone passes: only the zone's Key
//! Master may change it, one call at a time per zone, and not while the
//! zone is being handed over to another node. A transfer's release waits
//! at the gate for the calls under way to finish, then closes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Result, RoleError};
use crate::node::{Node, ZoneName};
use crate::store::schema::ZoneRecord;

/// How long a released zone stays closed on the old Key Master if the role
/// does not move after all (the mover failed): then it takes up its work
/// again. Fencing by epoch holds either way.
pub const RELEASE_HOLD_SECS: u64 = 10;

/// Per-zone locks and release marks of this node.
pub struct Gate {
    node: Arc<Node>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Zones released for a transfer: (epoch, until when, Unix seconds).
    released: Mutex<HashMap<String, (u64, u64)>>,
}

/// A zone a management call may change: this node is its Key Master and
/// has not released it. The zone's lock is held while this lives.
pub struct Managed {
    pub key: String,
    pub zone: ZoneRecord,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Gate {
    pub fn new(node: Arc<Node>) -> Gate {
        Gate {
            node,
            locks: Mutex::new(HashMap::new()),
            released: Mutex::new(HashMap::new()),
        }
    }

    fn lock_of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    /// Opens a management call on a zone: takes its lock, then checks that
    /// this node is its Key Master and has not released it.
    pub async fn managed(&self, name: &ZoneName) -> Result<Managed> {
        let key = name.key().to_string();
        let guard = self.lock_of(&key).lock_owned().await;
        let zone = self.node.zone(name).await?.zone;
        require_key_master(&self.node.id, &zone)?;
        let released = self
            .released
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied();
        if let Some((epoch, until)) = released {
            if epoch == zone.epoch && self.node.clock.now() < until {
                return Err(RoleError::HandingOver {
                    zone: key,
                    node: self.node.id.clone(),
                }
                .into());
            }
        }
        Ok(Managed {
            key,
            zone,
            _guard: guard,
        })
    }

    /// Closes the zone for a hand-over at `epoch`, once the calls under way
    /// have passed; refused unless this node holds it at that epoch.
    pub async fn release(&self, name: &ZoneName, epoch: u64) -> Result<()> {
        let key = name.key().to_string();
        let _guard = self.lock_of(&key).lock_owned().await;
        let zone = self.node.zone(name).await?.zone;
        if zone.key_master != self.node.id || zone.epoch != epoch {
            return Err(RoleError::NotHeldAt {
                zone: key,
                node: self.node.id.clone(),
                epoch,
                key_master: zone.key_master,
                actual: zone.epoch,
            }
            .into());
        }
        self.released
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (epoch, self.node.clock.now() + RELEASE_HOLD_SECS));
        Ok(())
    }
}

/// Refuses unless `node` is the zone's Key Master.
pub fn require_key_master(node: &str, zone: &ZoneRecord) -> Result<()> {
    if zone.key_master != node {
        return Err(RoleError::NotKeyMaster {
            zone: zone.name.clone(),
            node: node.to_string(),
            key_master: zone.key_master.clone(),
        }
        .into());
    }
    Ok(())
}
