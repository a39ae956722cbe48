//! A zone's keys in the token and in the store. Writes follow Parsec's
//! order (ARCHITECTURE.md, Invariants 3): generate in the token, then
//! record; if the store refuses, destroy the new objects. Removals go the
//! other way: forget the record first, then destroy, so a crash leaves at
//! worst an unreferenced object that `reconcile` reports, never a record
//! without its key. Every change passes the zone's gate (Key Master only)
//! and compares its epoch.

use std::sync::Arc;

use super::KeySets;
use crate::dnssec::{ds, Algorithm, KeyRole};
use crate::error::{KeyError, Result};
use crate::hsm::keys;
use crate::mastership::gate::{Gate, Managed};
use crate::node::{blocking, Node, ZoneName};
use crate::store::schema::{KeyRecord, KeyState, ZoneRecord, SCHEMA_VERSION};
use crate::store::StoreError;
use crate::text::shown;

/// The key inventory of this node's zones.
pub struct Inventory {
    node: Arc<Node>,
    gate: Arc<Gate>,
    keysets: Arc<KeySets>,
}

impl Inventory {
    pub fn new(node: Arc<Node>, gate: Arc<Gate>, keysets: Arc<KeySets>) -> Inventory {
        Inventory {
            node,
            gate,
            keysets,
        }
    }

    /// The zone's record and keys; while the store cannot be read, as last
    /// known, with when they were read (Unix seconds).
    pub async fn zone_keys(
        &self,
        zone: &ZoneName,
    ) -> Result<(ZoneRecord, Vec<KeyRecord>, Option<u64>)> {
        let read = async {
            let z = self.node.zone(zone).await?;
            let keys = self.node.store.list_keys(&z.key).await?;
            Ok::<_, crate::error::Error>((z.zone, keys))
        };
        match read.await {
            Ok((z, keys)) => Ok((z, keys, None)),
            Err(e) if super::store_unusable(&e) => {
                let (set, at) = self.keysets.last_known(zone, e)?;
                Ok((set.zone.clone(), set.keys.clone(), Some(at)))
            }
            Err(e) => Err(e),
        }
    }

    /// A new active KSK and ZSK (in that order) for a zone, in this node's
    /// token; if the second cannot be made, the first is destroyed.
    pub async fn generate_ksk_and_zsk(
        &self,
        zone: &str,
        algorithm: Algorithm,
    ) -> Result<Vec<KeyRecord>> {
        let ksk = self
            .generate_key(zone, KeyRole::Ksk, algorithm, KeyState::Active)
            .await?;
        match self
            .generate_key(zone, KeyRole::Zsk, algorithm, KeyState::Active)
            .await
        {
            Ok(zsk) => Ok(vec![ksk, zsk]),
            Err(e) => {
                self.destroy_in_token(vec![ksk.id]).await;
                Err(e)
            }
        }
    }

    /// A new key pair in the token, labelled ZONE-ROLE-KEYTAG, as the record
    /// to store.
    pub async fn generate_key(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: Algorithm,
        state: KeyState,
    ) -> Result<KeyRecord> {
        let hsm = self.node.hsm.clone();
        let zone = zone.to_string();
        let now = self.node.clock.now();
        crate::node::generating(move || {
            let id = keys::new_id()?;
            let stem = format!("{}-{}", zone.trim_end_matches('.'), role.as_str());
            let public = hsm
                .generate(algorithm.key_spec(), &id, &format!("{stem}-new"))
                .inspect_err(|e| {
                    let token = &hsm.identity().label;
                    tracing::warn!(%zone, role = role.as_str(), ?algorithm, token, error = %e, "key generation in the token failed");
                })?;
            let key_tag = ds::dnskey(role.dnskey_flags(), algorithm, &public).key_tag();
            let label = format!("{stem}-{key_tag}");
            // The key is this process's alone until it is recorded, so its
            // label may still change (TOKEN.md, Several processes on one token).
            if let Err(e) = hsm.set_label(&id, &label) {
                let _ = hsm.destroy(&id);
                return Err(e.into());
            }
            let identity = hsm.identity();
            Ok(KeyRecord {
                schema: SCHEMA_VERSION,
                zone,
                id: crate::hex::hex(&id),
                role,
                algorithm,
                key_tag,
                state,
                label,
                public_key: crate::hex::hex(&public),
                token_label: identity.label.clone(),
                token_serial: identity.serial.clone(),
                created: now,
                published: now,
                activated: if state == KeyState::Active { now } else { 0 },
                retired: 0,
                csk: false,
            })
        })
        .await
    }

    /// Undoes keys just generated for a store write that failed. A refusal
    /// the store gave (a constraint, a fenced epoch, disk full) is definite:
    /// the objects go. When the store could not be reached, the write may
    /// have landed all the same (the answer was lost): the keys stay, since
    /// destroying a key the store refers to would break the zone; an
    /// unreferenced one is only an orphan, which `reconcile` reports.
    pub async fn undo_generated(&self, keys: &[KeyRecord], failure: &StoreError) {
        if matches!(failure, StoreError::Unavailable { .. }) {
            for k in keys {
                tracing::warn!(zone = %k.zone, key = %k.id, key_tag = k.key_tag, "store unreachable during the write: key kept in the token in case the write landed");
            }
            return;
        }
        self.destroy_in_token(keys.iter().map(|k| k.id.clone()).collect())
            .await;
    }

    /// Destroys key pairs in the token; failures are logged, not returned,
    /// since the store no longer refers to them (reconcile reports them).
    pub async fn destroy_in_token(&self, ids: Vec<String>) -> usize {
        let hsm = self.node.hsm.clone();
        blocking(move || {
            let mut n = 0;
            for id in ids {
                match crate::hex::unhex(&id).map(|raw| hsm.destroy(&raw)) {
                    Some(Ok(count)) if count > 0 => n += 1,
                    Some(Ok(_)) => tracing::warn!(key = %id, "key to destroy was not in the token"),
                    Some(Err(e)) => tracing::warn!(key = %id, error = %e, "could not destroy key"),
                    None => tracing::warn!(key = %id, "stored key id is not hex"),
                }
            }
            Ok(n)
        })
        .await
        .unwrap_or(0)
    }

    /// Adds a key to a zone: published only (a standby or next key), or
    /// active at once.
    pub async fn add_key(
        &self,
        who: &str,
        zone: &ZoneName,
        role: KeyRole,
        activate: bool,
    ) -> Result<KeyRecord> {
        let Managed { key, zone: z, .. } = &self.gate.managed(zone).await?;
        let state = if activate {
            KeyState::Active
        } else {
            KeyState::Published
        };
        let k = self
            .generate_key(key, role, z.policy.algorithm, state)
            .await?;
        let audit = self.node.draft(
            who,
            key,
            if activate {
                "generate+activate"
            } else {
                "generate+publish"
            },
            format!(
                "{} {} generated, {}",
                role.as_str().to_uppercase(),
                k.key_tag,
                state.as_str()
            ),
        );
        if let Err(e) = self.node.store.put_key(&k, z.epoch, &audit).await {
            self.undo_generated(std::slice::from_ref(&k), &e).await;
            return Err(e.into());
        }
        self.keysets.changed(zone).await;
        tracing::info!(zone = %key, key_tag = k.key_tag, role = role.as_str(), state = state.as_str(), "key added");
        Ok(k)
    }

    /// Takes a key out of signing; it stays published.
    ///
    /// Refused while it would break validation (`manual::check_retire`),
    /// unless `force`, which the audit entry says.
    pub async fn retire_key(
        &self,
        who: &str,
        zone: &ZoneName,
        which: &str,
        force: bool,
    ) -> Result<KeyRecord> {
        let Managed { key, zone: z, .. } = &self.gate.managed(zone).await?;
        let keys = self.node.store.list_keys(key).await?;
        let k = find_key(&keys, key, which)?;
        not_in_roll(z, k)?;
        if k.state == KeyState::Retired {
            return Err(KeyError::AlreadyRetired {
                zone: key.clone(),
                tag: k.key_tag,
            }
            .into());
        }
        check_not_last_active(&keys, k, "retired")?;
        let now = self.node.clock.now();
        let forced = unless_forced(
            super::manual::check_retire(z, &keys, k, now),
            k,
            "retired",
            force,
        )?;
        let mut k = k.clone();
        k.state = KeyState::Retired;
        k.retired = now;
        let audit = self.node.draft(
            who,
            key,
            "retire",
            format!(
                "{} {} retired{forced}",
                k.role.as_str().to_uppercase(),
                k.key_tag
            ),
        );
        self.node.store.put_key(&k, z.epoch, &audit).await?;
        self.keysets.changed(zone).await;
        if let Some(id) = crate::hex::unhex(&k.id) {
            // Drops the session copy the key was signing with.
            let hsm = self.node.hsm.clone();
            let _ = blocking(move || {
                hsm.forget_handle(&id);
                Ok(())
            })
            .await;
        }
        tracing::info!(zone = %key, key_tag = k.key_tag, "key retired");
        Ok(k)
    }

    /// Removes a key from the zone and destroys it in the token.
    ///
    /// Refused while it would break validation (`manual::check_remove`:
    /// still signing, or retired too recently), unless `force`, which the
    /// audit entry says.
    pub async fn remove_key(
        &self,
        who: &str,
        zone: &ZoneName,
        which: &str,
        force: bool,
    ) -> Result<KeyRecord> {
        let Managed { key, zone: z, .. } = &self.gate.managed(zone).await?;
        let keys = self.node.store.list_keys(key).await?;
        let k = find_key(&keys, key, which)?.clone();
        not_in_roll(z, &k)?;
        check_not_last_active(&keys, &k, "removed")?;
        let now = self.node.clock.now();
        let forced = unless_forced(
            super::manual::check_remove(z, &k, now),
            &k,
            "removed",
            force,
        )?;
        let audit = self.node.draft(
            who,
            key,
            "delete",
            format!(
                "{} {} removed and destroyed in the token{forced}",
                k.role.as_str().to_uppercase(),
                k.key_tag
            ),
        );
        self.node
            .store
            .delete_key(key, &k.id, z.epoch, &audit)
            .await?;
        self.keysets.changed(zone).await;
        self.destroy_in_token(vec![k.id.clone()]).await;
        tracing::info!(zone = %key, key_tag = k.key_tag, "key removed");
        Ok(k)
    }

    /// After a forced seize: new KSK and ZSK in this node's token replace
    /// every old key (which this node cannot reach). Only on the Key
    /// Master. The old objects stay in the old token: they are no longer
    /// referred to, and the old token's node reports them at its next start.
    pub async fn rekey(&self, who: &str, zone: &ZoneName) -> Result<Vec<KeyRecord>> {
        let Managed { key, zone: z, .. } = &self.gate.managed(zone).await?;
        if !z.needs_rekey {
            return Err(KeyError::NoRekeyNeeded { zone: key.clone() }.into());
        }
        let keys = self.generate_ksk_and_zsk(key, z.policy.algorithm).await?;
        let old: Vec<String> = self
            .node
            .store
            .list_keys(key)
            .await?
            .iter()
            .map(|k| k.key_tag.to_string())
            .collect();
        let audit = self.node.draft(
            who,
            key,
            "re-key",
            format!(
                "new KSK {} and ZSK {} on {}; old keys {} dropped; every trust anchor must be replaced",
                keys[0].key_tag,
                keys[1].key_tag,
                self.node.id,
                old.join(", ")
            ),
        );
        if let Err(e) = self
            .node
            .store
            .replace_keys(key, z.epoch, &keys, &audit)
            .await
        {
            self.undo_generated(&keys, &e).await;
            return Err(e.into());
        }
        self.keysets.changed(zone).await;
        tracing::warn!(zone = %key, "zone re-keyed; trust anchors must be replaced");
        Ok(keys)
    }

    /// Compares the token's private keys with the stored key records and
    /// logs what does not match. Returns (orphans in token, records
    /// without key).
    pub async fn reconcile(&self) -> Result<(usize, usize)> {
        let mut stored = Vec::new();
        for z in self.node.store.list_zones().await? {
            stored.extend(self.node.store.list_keys(&z.name).await?);
        }
        let hsm = self.node.hsm.clone();
        let objects = blocking(move || Ok(hsm.list_private_keys()?)).await?;
        let serial = self.node.hsm.identity().serial.clone();
        let mut orphans = 0;
        for o in &objects {
            let id = crate::hex::hex(&o.id);
            if !stored.iter().any(|k| k.id == id) {
                orphans += 1;
                tracing::warn!(key_id = %id, label = %o.label, "token holds a private key that no zone refers to");
            }
        }
        let mut missing = 0;
        for k in stored.iter().filter(|k| k.token_serial == serial) {
            if !objects.iter().any(|o| crate::hex::hex(&o.id) == k.id) {
                missing += 1;
                tracing::warn!(zone = %k.zone, key_tag = k.key_tag, key_id = %k.id, "stored key is missing from the token");
            }
        }
        Ok((orphans, missing))
    }
}

impl Inventory {
    /// Private keys in this node's token that no key record of any zone
    /// names: (hex CKA_ID, label). A key generated a moment ago on another
    /// node may show here until its record is written.
    pub async fn orphans(&self) -> Result<Vec<(String, String)>> {
        let named = self.named_ids().await?;
        let hsm = self.node.hsm.clone();
        let objects = blocking(move || Ok(hsm.list_private_keys()?)).await?;
        Ok(objects
            .into_iter()
            .map(|o| (crate::hex::hex(&o.id), o.label))
            .filter(|(id, _)| !named.contains(id))
            .collect())
    }

    /// Destroys orphaned key pairs by id, each after its audit entry is
    /// written (fail closed). Refused, and nothing destroyed, if any id is
    /// named by a key record (looked at again now) or not in the token.
    pub async fn destroy_orphans(&self, who: &str, ids: &[String]) -> Result<usize> {
        let named = self.named_ids().await?;
        let stored = self.all_keys().await?;
        let orphans: Vec<String> = self
            .orphans()
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let ids: Vec<String> = ids.iter().map(|i| i.trim().to_ascii_lowercase()).collect();
        for id in &ids {
            if let Some(k) = stored.iter().find(|k| &k.id == id) {
                return Err(KeyError::NotOrphan {
                    id: id.clone(),
                    zone: k.zone.clone(),
                    tag: k.key_tag,
                }
                .into());
            }
            if named.contains(id) || !orphans.contains(id) {
                return Err(KeyError::NoSuchObject { id: shown(id) }.into());
            }
        }
        let mut destroyed = 0;
        for id in &ids {
            let serial = &self.node.hsm.identity().serial;
            let audit = self.node.draft(
                who,
                "",
                "destroy-orphan",
                format!("key pair {id} in token {serial}, named by no key record"),
            );
            self.node.store.append_audit(&audit).await?;
            let raw =
                crate::hex::unhex(id).ok_or_else(|| KeyError::NoSuchObject { id: shown(id) })?;
            let hsm = self.node.hsm.clone();
            destroyed += blocking(move || Ok(hsm.destroy(&raw)?)).await?;
            tracing::info!(key_id = %id, caller = who, "orphaned key pair destroyed");
        }
        Ok(destroyed)
    }

    async fn all_keys(&self) -> Result<Vec<crate::store::schema::KeyRecord>> {
        let mut stored = Vec::new();
        for z in self.node.store.list_zones().await? {
            stored.extend(self.node.store.list_keys(&z.name).await?);
        }
        Ok(stored)
    }

    async fn named_ids(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self.all_keys().await?.into_iter().map(|k| k.id).collect())
    }
}

/// A key of the zone by id (hex CKA_ID) or by key tag when that is unique.
pub fn find_key<'a>(keys: &'a [KeyRecord], zone: &str, which: &str) -> Result<&'a KeyRecord> {
    let which = which.trim();
    if let Some(k) = keys.iter().find(|k| k.id.eq_ignore_ascii_case(which)) {
        return Ok(k);
    }
    if let Ok(tag) = which.parse::<u16>() {
        let found: Vec<_> = keys.iter().filter(|k| k.key_tag == tag).collect();
        match found.as_slice() {
            [one] => return Ok(one),
            [] => {}
            _ => {
                return Err(KeyError::AmbiguousTag {
                    zone: zone.to_string(),
                    tag,
                    count: found.len(),
                }
                .into())
            }
        }
    }
    Err(KeyError::NoSuchKey {
        zone: zone.to_string(),
        which: shown(which),
    }
    .into())
}

/// Refuses to change by hand a key the roll under way changes: removing
/// it could take away what caches still need.
fn not_in_roll(zone: &crate::store::schema::ZoneRecord, k: &KeyRecord) -> Result<()> {
    match &zone.lifecycle.roll {
        Some(r) if r.involves(&k.id) => Err(KeyError::InRoll {
            zone: zone.name.clone(),
            tag: k.key_tag,
            step: format!("{:?}", r.step),
        }
        .into()),
        _ => Ok(()),
    }
}

/// A hand-made change that is not safe yet: refused with when it will be
/// and the safe way, or, forced, done with a note for the audit entry
/// (empty when it was safe).
fn unless_forced(
    check: std::result::Result<(), super::manual::TooEarly>,
    k: &KeyRecord,
    verb: &'static str,
    force: bool,
) -> Result<String> {
    match check {
        Ok(()) => Ok(String::new()),
        Err(e) if force => Ok(format!(" (forced, before it was safe: {})", e.why)),
        Err(e) => Err(KeyError::TooEarly {
            zone: k.zone.clone(),
            tag: k.key_tag,
            role: k.role.as_str().to_uppercase(),
            verb,
            earliest: match e.earliest {
                Some(t) => format!("before {}", crate::clock::rfc3339(t)),
                None => "now".to_string(),
            },
            why: e.why,
        }
        .into()),
    }
}

/// Refuses to take the last active key of a role out of signing.
fn check_not_last_active(keys: &[KeyRecord], k: &KeyRecord, verb: &'static str) -> Result<()> {
    if k.state != KeyState::Active {
        return Ok(());
    }
    let others = keys
        .iter()
        .filter(|o| o.id != k.id && o.role == k.role && o.state == KeyState::Active)
        .count();
    if others == 0 {
        return Err(KeyError::LastActive {
            zone: k.zone.clone(),
            tag: k.key_tag,
            role: k.role.as_str().to_uppercase(),
            verb,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::hsm::fake::FakeHsm;
    use crate::policy::Policy;
    use crate::store::schema::ZoneRecord;

    async fn inventory() -> (Inventory, Arc<Node>, crate::store::testing::TempStore) {
        let store = crate::store::testing::TempStore::new().await;
        let node = Arc::new(Node {
            id: "n1".into(),
            hsm: Arc::new(FakeHsm::new("inv")),
            store: store.store.clone(),
            clock: Arc::new(ManualClock::new(1_800_000_000)),
            spool: None,
        });
        let gate = Arc::new(Gate::new(node.clone()));
        let keysets = Arc::new(KeySets::new(node.clone(), None));
        (Inventory::new(node.clone(), gate, keysets), node, store)
    }

    #[tokio::test]
    async fn keys_are_made_in_the_token_then_recorded_and_the_last_active_one_stays() {
        let (inv, node, _store) = inventory().await;
        let keys = inv
            .generate_ksk_and_zsk("z.example.", Algorithm::EcdsaP256Sha256)
            .await
            .unwrap();
        let zone = ZoneRecord::new("z.example.", Policy::default(), "n1", 0);
        let audit = node.draft("t", "z.example.", "generate", String::new());
        node.store.create_zone(&zone, &keys, &audit).await.unwrap();
        assert_eq!(node.hsm.list_private_keys().unwrap().len(), 2);
        let name = crate::node::ZoneName::parse("z.example.").unwrap();
        let zsk = inv.add_key("t", &name, KeyRole::Zsk, false).await.unwrap();
        assert_eq!(zsk.state, KeyState::Published);
        assert!(zsk.label.starts_with("z.example-zsk-"));
        // The only active ZSK can be neither retired nor removed.
        let first_zsk = keys[1].key_tag.to_string();
        let e = inv
            .retire_key("t", &name, &first_zsk, false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("last active ZSK"), "{e}");
        let e = inv.remove_key("t", &name, "nope", false).await.unwrap_err();
        assert!(e.to_string().contains("has no key \"nope\""), "{e}");
        // Removing forgets the record, then destroys the objects.
        inv.remove_key("t", &name, &zsk.id, false).await.unwrap();
        assert_eq!(node.hsm.list_private_keys().unwrap().len(), 2);
        assert_eq!(inv.reconcile().await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn a_refused_write_destroys_the_new_keys_and_an_unknown_outcome_keeps_them() {
        let (inv, node, _store) = inventory().await;
        let keys = inv
            .generate_ksk_and_zsk("u.example.", Algorithm::EcdsaP256Sha256)
            .await
            .unwrap();
        let refused = StoreError::ZoneExists("u.example.".into());
        inv.undo_generated(&keys[..1], &refused).await;
        assert_eq!(node.hsm.list_private_keys().unwrap().len(), 1);
        let lost = StoreError::Unavailable {
            location: "x".into(),
            reason: "answer lost".into(),
        };
        let rolled_back = StoreError::Refused {
            location: "sqlite:x".into(),
            reason: "database or disk is full".into(),
        };
        let third = inv
            .generate_ksk_and_zsk("v.example.", Algorithm::EcdsaP256Sha256)
            .await
            .unwrap();
        inv.undo_generated(&third, &rolled_back).await;
        assert_eq!(
            node.hsm.list_private_keys().unwrap().len(),
            1,
            "a write known not to have landed leaves no orphan"
        );
        inv.undo_generated(&keys[1..], &lost).await;
        assert_eq!(node.hsm.list_private_keys().unwrap().len(), 1);
        assert_eq!(
            inv.reconcile().await.unwrap(),
            (1, 0),
            "an orphan, reported"
        );
    }
}
