//! Zones under management: adding one (its first KSK and ZSK generated and
//! recorded with it, this node its Key Master), showing, listing and
//! removing them.

use std::sync::Arc;

use crate::dnssec::KeyRole;
use crate::error::{KeyError, Result, ZonesError};
use crate::keyset::{Inventory, KeySet, KeySets};
use crate::mastership::gate::{Gate, Managed};
use crate::mastership::Mastership;
use crate::node::{Node, ZoneName};
use crate::policy::{DenialPolicy, Policy};
use crate::store::schema::{KeyState, ZoneRecord};

/// A zone's settings as shown to operators.
#[derive(Debug, Clone)]
pub struct ZoneView {
    pub zone: ZoneRecord,
    /// When the view was taken (for the rollover status).
    pub now: u64,
    pub is_key_master: bool,
    pub key_master_online: bool,
    pub is_signed: bool,
    /// Set when the store could not be read and this is the last-known
    /// state: when it was read (Unix seconds).
    pub last_known_at: Option<u64>,
}

/// The zones of this node's store.
pub struct Zones {
    node: Arc<Node>,
    gate: Arc<Gate>,
    inventory: Arc<Inventory>,
    keysets: Arc<KeySets>,
    mastership: Arc<Mastership>,
}

impl Zones {
    pub fn new(
        node: Arc<Node>,
        gate: Arc<Gate>,
        inventory: Arc<Inventory>,
        keysets: Arc<KeySets>,
        mastership: Arc<Mastership>,
    ) -> Zones {
        Zones {
            node,
            gate,
            inventory,
            keysets,
            mastership,
        }
    }

    /// Adds a zone: generates its KSK and ZSK and makes this node its Key
    /// Master.
    ///
    /// Long because generating the first keys and recording the zone
    /// with them, or destroying them when the write is refused, read in order.
    pub async fn add_zone(&self, who: &str, name: &ZoneName, policy: Policy) -> Result<ZoneView> {
        let (key, apex) = (name.key().to_string(), name.apex().clone());
        policy.validate()?;
        // An NSEC3 owner is a 32-character hash label (33 octets) over the
        // apex, and a name holds at most 255 octets (RFC 5155 §3, RFC 1035
        // §3.1).
        if matches!(policy.denial, DenialPolicy::Nsec3 { .. }) && apex.as_slice().len() > 222 {
            return Err(ZonesError::ApexTooLongForNsec3 {
                zone: key,
                len: apex.as_slice().len(),
            }
            .into());
        }
        if self.node.store.get_zone(&key).await?.is_some() {
            return Err(ZonesError::Exists(key).into());
        }
        let now = self.node.clock.now();
        let keys = if policy.csk {
            let mut csk = self
                .inventory
                .generate_key(&key, KeyRole::Ksk, policy.algorithm, KeyState::Active)
                .await?;
            csk.csk = true;
            vec![csk]
        } else {
            self.inventory
                .generate_ksk_and_zsk(&key, policy.algorithm)
                .await?
        };
        let zone = ZoneRecord::new(&key, policy, &self.node.id, now);
        let audit = self.node.draft(
            who,
            &key,
            "generate",
            format!(
                "zone added, Key Master {} epoch 1; {} ({}) generated, published and active",
                self.node.id,
                match keys.as_slice() {
                    [csk] => format!("CSK {}", csk.key_tag),
                    [ksk, zsk, ..] => format!("KSK {} and ZSK {}", ksk.key_tag, zsk.key_tag),
                    [] => "no key".to_string(),
                },
                zone.policy.algorithm
            ),
        );
        if let Err(e) = self.node.store.create_zone(&zone, &keys, &audit).await {
            self.inventory.undo_generated(&keys, &e).await;
            return Err(e.into());
        }
        tracing::info!(zone = %key, keys = ?keys.iter().map(|k| k.key_tag).collect::<Vec<_>>(), "zone added");
        // Held from now on, should the store go away next.
        self.keysets.changed(name).await;
        let set = KeySet::new(zone, apex, keys)?;
        Ok(self.view(&set).await)
    }

    /// The zone as the store has it; while the store cannot be read, as
    /// last known (ARCHITECTURE.md, Signing through a store outage).
    pub async fn get_zone(&self, name: &ZoneName) -> Result<ZoneView> {
        let read = async {
            let z = self.node.zone(name).await?;
            self.view_of(z.zone).await
        };
        match read.await {
            Err(e) if crate::keyset::store_unusable(&e) => {
                let (set, at) = self.keysets.last_known(name, e)?;
                let mut view = self.view(&set).await;
                view.last_known_at = Some(at);
                Ok(view)
            }
            r => r,
        }
    }

    pub async fn list_zones(&self) -> Result<Vec<ZoneView>> {
        let mut out = Vec::new();
        for zone in self.node.store.list_zones().await? {
            out.push(self.view_of(zone).await?);
        }
        Ok(out)
    }

    async fn view_of(&self, zone: ZoneRecord) -> Result<ZoneView> {
        let apex = ZoneName::of(&zone)?.apex().clone();
        let keys = self.node.store.list_keys(&zone.name).await?;
        let set = KeySet::new(zone, apex, keys)?;
        Ok(self.view(&set).await)
    }

    async fn view(&self, set: &KeySet) -> ZoneView {
        let zone = set.zone.clone();
        let is_key_master = zone.key_master == self.node.id;
        let key_master_online = is_key_master
            || self
                .mastership
                .is_online(&zone.key_master)
                .await
                .unwrap_or(false);
        ZoneView {
            now: self.node.clock.now(),
            is_key_master,
            key_master_online,
            is_signed: set.is_signed(),
            zone,
            last_known_at: None,
        }
    }

    /// Replaces a zone's policy (`zone set`): checked as a new zone's is.
    pub async fn set_policy(&self, who: &str, name: &ZoneName, policy: Policy) -> Result<ZoneView> {
        let Managed { key, zone, .. } = &self.gate.managed(name).await?;
        policy.validate()?;
        if policy.csk != zone.policy.csk {
            return Err(ZonesError::CskChange { zone: key.clone() }.into());
        }
        if policy.csk && policy.algorithm.number() != zone.policy.algorithm.number() {
            return Err(ZonesError::CskAlgorithm { zone: key.clone() }.into());
        }
        if policy.algorithm.number() != zone.policy.algorithm.number() {
            let life = &zone.lifecycle;
            let why = if let Some(r) = &life.roll {
                Some(format!(
                    "the {} roll under way ({:?}) must end first",
                    r.role.as_str().to_uppercase(),
                    r.step
                ))
            } else if life.paused {
                Some("its rollover engine is paused (keymasterctl zone resume)".to_string())
            } else {
                life.error
                    .as_ref()
                    .map(|e| format!("its last roll stopped ({e}); resume the zone first"))
            };
            if let Some(why) = why {
                return Err(KeyError::AlgorithmRoll {
                    zone: key.clone(),
                    why,
                }
                .into());
            }
        }
        let mut changed = zone.clone();
        changed.policy = policy;
        let detail = format!(
            "policy changed: {}",
            crate::policy::differences(&zone.policy, &changed.policy).join(", ")
        );
        let audit = self.node.draft(who, key, "set-policy", detail);
        self.node
            .store
            .update_zone(&changed, zone.epoch, &[], &[], &audit)
            .await?;
        self.keysets.changed(name).await;
        self.view_of(changed).await
    }

    /// Removes a zone. Its keys are destroyed in the token, which needs
    /// `force`. Returns how many keys were destroyed.
    pub async fn remove_zone(&self, who: &str, name: &ZoneName, force: bool) -> Result<usize> {
        let Managed { key, zone, .. } = &self.gate.managed(name).await?;
        let keys = self.node.store.list_keys(key).await?;
        if !keys.is_empty() && !force {
            return Err(ZonesError::HasKeys {
                zone: key.clone(),
                count: keys.len(),
            }
            .into());
        }
        let tags: Vec<String> = keys.iter().map(|k| k.key_tag.to_string()).collect();
        let audit = self.node.draft(
            who,
            key,
            "delete",
            format!(
                "zone removed; keys {} destroyed in the token",
                tags.join(", ")
            ),
        );
        self.node.store.delete_zone(key, zone.epoch, &audit).await?;
        self.keysets.changed(name).await;
        let n = self
            .inventory
            .destroy_in_token(keys.iter().map(|k| k.id.clone()).collect())
            .await;
        tracing::info!(zone = %key, keys_destroyed = n, "zone removed");
        Ok(n)
    }
}
