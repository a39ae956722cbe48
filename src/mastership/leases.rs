//! Node registration and liveness leases, and where a management call for
//! a zone must run.

use super::{Mastership, SUPPORTED_ALGORITHMS};
use crate::error::Result;
use crate::error::RoleError;
use crate::node::ZoneName;
use crate::store::schema::{NodeRecord, SCHEMA_VERSION};
use crate::text::shown;

impl Mastership {
    /// Registers this node or renews its lease.
    pub async fn renew_lease(&self, address: &str, lease_secs: u64) -> Result<()> {
        let identity = self.node.hsm.identity();
        let record = NodeRecord {
            schema: SCHEMA_VERSION,
            node_id: self.node.id.clone(),
            address: address.to_string(),
            token_label: identity.label.clone(),
            token_serial: identity.serial.clone(),
            algorithms: SUPPORTED_ALGORITHMS.to_vec(),
            last_seen: self.node.clock.now(),
            lease_secs,
            store_lease: None,
        };
        Ok(self.node.store.put_node(&record).await?)
    }

    /// Every registered node, with whether its lease holds.
    pub async fn list_nodes(&self) -> Result<Vec<(NodeRecord, bool)>> {
        let now = self.node.clock.now();
        Ok(self
            .node
            .store
            .list_nodes()
            .await?
            .into_iter()
            .map(|n| {
                let online = n.online(now);
                (n, online)
            })
            .collect())
    }

    /// Whether the node is registered and its lease holds.
    pub async fn is_online(&self, id: &str) -> Result<bool> {
        Ok(self
            .list_nodes()
            .await?
            .iter()
            .any(|(n, online)| n.node_id == id && *online))
    }

    /// A registered node's record.
    pub(super) async fn registered(&self, id: &str) -> Result<NodeRecord> {
        self.node
            .store
            .list_nodes()
            .await?
            .into_iter()
            .find(|n| n.node_id == id)
            .ok_or_else(|| RoleError::NotRegistered { node: shown(id) }.into())
    }

    /// A registered node whose lease holds, or why not.
    pub async fn live_node(&self, id: &str, what: &str) -> Result<NodeRecord> {
        let node = self.registered(id).await?;
        let now = self.node.clock.now();
        if !node.online(now) {
            return Err(RoleError::Offline {
                what: what.to_string(),
                node: id.to_string(),
                secs: now.saturating_sub(node.last_seen),
            }
            .into());
        }
        Ok(node)
    }

    /// Where a management call for the zone must run: None here (this node
    /// is its Key Master, or the zone is unknown and the call will say so);
    /// the Key Master's node record when its lease holds; refused, naming
    /// it, when its lease is gone.
    pub async fn management_target(&self, zone: &ZoneName) -> Result<Option<NodeRecord>> {
        let Ok(z) = self.node.zone(zone).await else {
            return Ok(None);
        };
        if z.zone.key_master == self.node.id {
            return Ok(None);
        }
        self.live_node(&z.zone.key_master, &format!("the Key Master of {}", z.key))
            .await
            .map(Some)
    }
}
