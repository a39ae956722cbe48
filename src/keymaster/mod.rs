//! The Key Master role (ARCHITECTURE.md, The Key Master role): node registration and liveness leases,
//! candidates, transfer and seize. Every role change is one compare-and-set
//! on the zone's epoch in the store, written with its audit entry, so a
//! node holding a stale epoch can never write (ARCHITECTURE.md, Invariants 2); management
//! calls re-read the zone record and refuse on any node that is not its
//! Key Master.
//!
//! ```text
//!            transfer (holder online, target a candidate)
//!   node A ─────────────────────────────────────────────► node B   epoch+1
//!      │      seize (holder's lease gone; target reaches the keys,
//!      └────────────── or --force: zone marked needs-rekey) ─────► node C   epoch+1
//! ```

use std::collections::HashMap;

use crate::dnssec::Algorithm;
use crate::error::{shown, Error, Result};
use crate::store::schema::{KeyRecord, NodeRecord, ZoneRecord, SCHEMA_VERSION};
use crate::store::StoreError;
use crate::zone::service::{hsm_blocking, parse_zone_name, Managed, ZoneService};

/// Algorithms every node's token supports here (all that keymaster makes).
pub const SUPPORTED_ALGORITHMS: [u8; 4] = [8, 13, 14, 15];

/// A node considered for the role, and why it does not qualify.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: NodeRecord,
    pub online: bool,
    /// None: a candidate.
    pub reason: Option<String>,
}

/// Other nodes, asked over the network (the gRPC layer implements it with
/// peer calls).
#[async_trait::async_trait]
pub trait PeerTokens: Send + Sync {
    /// Which of these key ids (hex CKA_IDs) the node's token does not hold.
    async fn missing_keys(&self, node: &NodeRecord, ids: &[String]) -> Result<Vec<String>>;
    /// Asks the Key Master of a zone to release it at `epoch` for `to`
    /// (see `ZoneService::release`).
    async fn release(&self, node: &NodeRecord, zone: &str, epoch: u64, to: &str) -> Result<()>;
}

/// How long a transfer waits for the Key Master to release the zone: a
/// live node answers in milliseconds; a killed or paused one never does.
const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// How long a released zone stays closed to management on the old Key
/// Master if the role does not move after all (the mover failed): then it
/// takes up its work again. Fencing by epoch holds either way.
const RELEASE_HOLD_SECS: u64 = 10;

/// Why a node cannot hold the role of a zone, from its record: offline,
/// or an algorithm its token lacks. Whether its token holds the keys is
/// asked of the token itself (`ZoneService::why_not`).
pub fn disqualification(node: &NodeRecord, algorithm: Algorithm, now: u64) -> Option<String> {
    if !node.online(now) {
        return Some(format!(
            "offline (last seen {} s ago, lease {} s)",
            now.saturating_sub(node.last_seen),
            node.lease_secs
        ));
    }
    if !node.algorithms.contains(&algorithm.number()) {
        return Some(format!(
            "its token does not support {}",
            algorithm.mnemonic()
        ));
    }
    None
}

fn keys_out_of_reach(node: &NodeRecord, k: &KeyRecord) -> String {
    format!(
        "its token (serial {}) does not hold key {} (in token serial {})",
        node.token_serial, k.key_tag, k.token_serial
    )
}

/// A role move that lost its compare-and-set: another move of the same
/// zone landed first (two seizes racing, say). Nothing was changed.
fn moved_meanwhile(e: StoreError) -> Error {
    match e {
        StoreError::Fenced {
            zone,
            expected,
            actual,
        } => Error::FailedPrecondition(format!(
            "the Key Master role of {zone} moved while this call ran (epoch {expected} → {actual}); \
             nothing was changed: see `keymasterctl role show {zone}`"
        )),
        e => e.into(),
    }
}

/// The role of a zone as shown to operators.
#[derive(Debug, Clone)]
pub struct RoleView {
    pub zone: ZoneRecord,
    pub online: bool,
}

impl ZoneService {
    /// Registers this node or renews its lease.
    pub async fn renew_lease(&self, address: &str, lease_secs: u64) -> Result<()> {
        let identity = self.token.identity();
        let node = NodeRecord {
            schema: SCHEMA_VERSION,
            node_id: self.node_id.clone(),
            address: address.to_string(),
            token_label: identity.label.clone(),
            token_serial: identity.serial.clone(),
            algorithms: SUPPORTED_ALGORITHMS.to_vec(),
            last_seen: self.clock.now(),
            lease_secs,
            store_lease: None,
        };
        Ok(self.store.put_node(&node).await?)
    }

    /// Every registered node, with whether its lease holds.
    pub async fn list_nodes(&self) -> Result<Vec<(NodeRecord, bool)>> {
        let now = self.clock.now();
        Ok(self
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

    pub async fn role_show(&self, zone: &str) -> Result<RoleView> {
        let (_, _, z) = self.zone(zone).await?;
        let online = self.is_online(&z.key_master, self.clock.now()).await?;
        Ok(RoleView { zone: z, online })
    }

    /// Every registered node, each a candidate or with the reason why not.
    pub async fn candidates(&self, zone: &str) -> Result<Vec<Candidate>> {
        let (key, _, z) = self.zone(zone).await?;
        let keys = self.store.list_keys(&key).await?;
        let now = self.clock.now();
        let mut out = Vec::new();
        for n in self.store.list_nodes().await? {
            out.push(Candidate {
                online: n.online(now),
                reason: self.why_not(&n, &keys, z.policy.algorithm, now).await,
                node: n,
            });
        }
        Ok(out)
    }

    /// Why the node cannot hold the role of a zone with these keys (None:
    /// it can): offline, an algorithm its token lacks, or a key its token
    /// does not hold, as the token itself answers.
    pub(crate) async fn why_not(
        &self,
        node: &NodeRecord,
        keys: &[KeyRecord],
        algorithm: Algorithm,
        now: u64,
    ) -> Option<String> {
        if let Some(reason) = disqualification(node, algorithm, now) {
            return Some(reason);
        }
        match self.keys_missing_on(node, keys).await {
            Ok(missing) => missing.first().map(|k| keys_out_of_reach(node, k)),
            Err(e) => Some(format!("its token could not be asked: {e}")),
        }
    }

    /// The zone's keys that the node's token does not hold, asked of that
    /// token: this node's own directly, another node's by a peer call.
    /// (A token serial is not enough: HSM clusters replicate keys between
    /// tokens of different serials, and a shared token may have lost one.)
    async fn keys_missing_on(
        &self,
        node: &NodeRecord,
        keys: &[KeyRecord],
    ) -> Result<Vec<KeyRecord>> {
        let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
        let missing = if node.node_id == self.node_id {
            self.missing_keys(ids).await?
        } else {
            match &self.peers {
                Some(peers) => peers.missing_keys(node, &ids).await?,
                None => {
                    return Err(Error::Unavailable(
                        "this node cannot call other nodes".into(),
                    ))
                }
            }
        };
        Ok(keys
            .iter()
            .filter(|k| missing.contains(&k.id))
            .cloned()
            .collect())
    }

    /// The key ids (hex CKA_IDs) whose private key this node's token does
    /// not hold. A key another process made may be visible only after the
    /// module is re-initialised; `has_private_key` does that before it
    /// answers no.
    pub async fn missing_keys(&self, ids: Vec<String>) -> Result<Vec<String>> {
        let token = self.token.clone();
        hsm_blocking(move || {
            let mut missing = Vec::new();
            for id in ids {
                let raw = crate::hex::unhex(&id)
                    .ok_or_else(|| Error::InvalidArgument(format!("key id {id:?} is not hex")))?;
                if !token.has_private_key(&raw)? {
                    missing.push(id);
                }
            }
            Ok(missing)
        })
        .await
    }

    /// Whether the node is registered and its lease holds.
    pub(crate) async fn is_online(&self, id: &str, now: u64) -> Result<bool> {
        Ok(self
            .store
            .list_nodes()
            .await?
            .iter()
            .any(|n| n.node_id == id && n.online(now)))
    }

    async fn node(&self, id: &str) -> Result<NodeRecord> {
        self.store
            .list_nodes()
            .await?
            .into_iter()
            .find(|n| n.node_id == id)
            .ok_or_else(|| Error::NotFound(format!("node {} is not registered", shown(id))))
    }

    /// The Key Master's side of a transfer: once the management calls for
    /// the zone under way here have finished, this node stops managing
    /// the zone (new calls are refused, saying it is being handed over)
    /// and answers; the caller then moves the role with epoch + 1. Refused
    /// unless this node holds the zone at `epoch`.
    pub async fn release(&self, zone: &str, epoch: u64, to: &str) -> Result<()> {
        let (key, _) = parse_zone_name(zone)?;
        let lock = self.zone_lock(&key);
        let _guard = lock.lock().await;
        let (_, _, z) = self.zone(&key).await?;
        if z.key_master != self.node_id || z.epoch != epoch {
            return Err(Error::FailedPrecondition(format!(
                "node {} does not hold {key} at epoch {epoch} (its Key Master is {} at epoch {}); \
                 nothing was released",
                self.node_id, z.key_master, z.epoch
            )));
        }
        self.released
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), (epoch, self.clock.now() + RELEASE_HOLD_SECS));
        tracing::info!(zone = %key, epoch, to = %shown(to), "released the zone for a transfer: this node stops managing it");
        Ok(())
    }

    /// Asks the zone's Key Master to release it (this node itself, or by a
    /// peer call that must answer within RELEASE_TIMEOUT).
    async fn ask_release(&self, z: &ZoneRecord, to: &str) -> Result<()> {
        if z.key_master == self.node_id {
            return self.release(&z.name, z.epoch, to).await;
        }
        let unreachable = |why: String| {
            Error::FailedPrecondition(format!(
                "the Key Master {} is not reachable ({why}); seize the role if it is gone for good \
                 (keymasterctl role seize {} --to {to}); nothing was changed",
                z.key_master, z.name
            ))
        };
        let holder = self.node(&z.key_master).await?;
        let Some(peers) = &self.peers else {
            return Err(unreachable("this node cannot call other nodes".into()));
        };
        match tokio::time::timeout(
            RELEASE_TIMEOUT,
            peers.release(&holder, &z.name, z.epoch, to),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Error::FailedPrecondition(m))) => Err(Error::FailedPrecondition(m)),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable(format!(
                "no answer within {} s",
                RELEASE_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Where a management call for the zone must run: None here (this
    /// node is its Key Master, or the zone is unknown and the call will say
    /// so); the Key Master's node record when its lease holds; refused,
    /// naming it, when its lease is gone.
    pub async fn management_target(&self, zone: &str) -> Result<Option<NodeRecord>> {
        let Ok((key, _, z)) = self.zone(zone).await else {
            return Ok(None);
        };
        if z.key_master == self.node_id {
            return Ok(None);
        }
        self.live_node(&z.key_master, &format!("the Key Master of {key}"))
            .await
            .map(Some)
    }

    /// A registered node whose lease holds, or why not.
    pub async fn live_node(&self, id: &str, what: &str) -> Result<NodeRecord> {
        let node = self.node(id).await?;
        let now = self.clock.now();
        if !node.online(now) {
            return Err(Error::FailedPrecondition(format!(
                "{what}, node {id}, is offline (last seen {} s ago); nothing was changed. \
                 Seize the role if it is gone for good",
                now.saturating_sub(node.last_seen)
            )));
        }
        Ok(node)
    }

    /// Moves the role while the current Key Master is online.
    pub async fn transfer(&self, who: &str, zone: &str, to: &str) -> Result<ZoneRecord> {
        let (key, _, z) = self.zone(zone).await?;
        let now = self.clock.now();
        if z.key_master == to {
            return Err(Error::FailedPrecondition(format!(
                "{to} is already the Key Master of {key}"
            )));
        }
        let target = self.node(to).await?;
        if !self.is_online(&z.key_master, now).await? {
            return Err(Error::FailedPrecondition(format!(
                "the Key Master {} is not reachable (its lease has expired); seize the role if it \
                 is gone for good (keymasterctl role seize {key} --to {to}); nothing was changed",
                z.key_master
            )));
        }
        let keys = self.store.list_keys(&key).await?;
        if let Some(reason) = self.why_not(&target, &keys, z.policy.algorithm, now).await {
            return Err(Error::FailedPrecondition(format!(
                "{to} is not a candidate for {key}: {reason}"
            )));
        }
        // A hand-over: the holder stops its work for the zone and says so
        // before the role moves.
        self.ask_release(&z, to).await?;
        let audit = self.draft(
            who,
            &key,
            "transfer",
            format!(
                "Key Master {} → {to}, epoch {} → {}; released by {}",
                z.key_master,
                z.epoch,
                z.epoch + 1,
                z.key_master
            ),
        );
        let moved = self
            .store
            .move_key_master(&key, z.epoch, to, now, false, &audit)
            .await
            .map_err(moved_meanwhile)?;
        self.forget_context(&key);
        tracing::info!(zone = %key, from = %z.key_master, to, epoch = moved.epoch, "Key Master transferred");
        Ok(moved)
    }

    /// Takes the role for `to` when the Key Master's lease is gone. A node
    /// that cannot reach the keys gets it only with `force`, and then the
    /// zone needs new keys.
    pub async fn seize(&self, who: &str, zone: &str, to: &str, force: bool) -> Result<ZoneRecord> {
        let (key, _, z) = self.zone(zone).await?;
        let now = self.clock.now();
        if z.key_master == to {
            return Err(Error::FailedPrecondition(format!(
                "{to} is already the Key Master of {key}"
            )));
        }
        if self.is_online(&z.key_master, now).await? {
            return Err(Error::FailedPrecondition(format!(
                "the Key Master of {key}, {}, is online; transfer the role instead",
                z.key_master
            )));
        }
        let target = self.node(to).await?;
        if !target.online(now) {
            return Err(Error::FailedPrecondition(format!("{to} is offline")));
        }
        let keys = self.store.list_keys(&key).await?;
        let missing = self.keys_missing_on(&target, &keys).await.map_err(|e| {
            Error::FailedPrecondition(format!(
                "cannot ask {to}'s token whether it holds the keys of {key}: {e}; nothing was changed"
            ))
        })?;
        let needs_rekey = match (missing.first(), force) {
            (None, _) => false,
            (Some(k), false) => {
                return Err(Error::FailedPrecondition(format!(
                    "{to} cannot take {key} with its keys: {}; with --force it takes the role and \
                     the zone must be re-keyed and every trust anchor replaced",
                    keys_out_of_reach(&target, k)
                )))
            }
            (Some(_), true) => true,
        };
        let audit = self.draft(
            who,
            &key,
            if force { "seize --force" } else { "seize" },
            format!(
                "Key Master {} (offline) → {to}, epoch {} → {}{}",
                z.key_master,
                z.epoch,
                z.epoch + 1,
                if needs_rekey {
                    "; zone needs new keys"
                } else {
                    ""
                }
            ),
        );
        let moved = self
            .store
            .move_key_master(&key, z.epoch, to, now, needs_rekey, &audit)
            .await
            .map_err(moved_meanwhile)?;
        self.forget_context(&key);
        tracing::warn!(zone = %key, from = %z.key_master, to, epoch = moved.epoch, needs_rekey, "Key Master role seized");
        Ok(moved)
    }
}

impl ZoneService {
    /// Compares the zones this node is Key Master of with its last look and
    /// logs every role it lost (it stops managing that zone: its writes
    /// would be fenced anyway) or was given. Runs on every watch signal
    /// from the store and at every lease renewal.
    pub async fn notice_role_changes(&self) -> Result<()> {
        let zones = self.store.list_zones().await?;
        let now: HashMap<String, u64> = zones
            .iter()
            .filter(|z| z.key_master == self.node_id)
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
        *held = Some(now);
        Ok(())
    }

    /// One pass of automatic failover: for every zone that asks for it
    /// whose Key Master's lease has been gone for its failover time, this
    /// node seizes the role if it is a candidate. Of several nodes racing,
    /// the epoch compare-and-set lets exactly one win.
    pub async fn failover_pass(&self) -> Result<()> {
        let now = self.clock.now();
        let nodes = self.store.list_nodes().await?;
        let Some(me) = nodes.iter().find(|n| n.node_id == self.node_id) else {
            return Ok(());
        };
        for z in self.store.list_zones().await? {
            if z.policy.auto_failover == 0 || z.key_master == self.node_id {
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
            let keys = self.store.list_keys(&z.name).await?;
            if self
                .why_not(me, &keys, z.policy.algorithm, now)
                .await
                .is_some()
            {
                continue;
            }
            match self
                .seize("auto-failover", &z.name, &self.node_id, false)
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

    /// After a forced seize: new KSK and ZSK in this node's token replace
    /// every old key (which this node cannot reach). Only on the Key Master.
    /// The old objects stay in the old token: they are no longer referred
    /// to, and the old token's node reports them at its next start.
    pub async fn rekey(&self, who: &str, zone: &str) -> Result<Vec<KeyRecord>> {
        let Managed { key, zone: z, .. } = &self.managed(zone).await?;
        let key = key.clone();
        if !z.needs_rekey {
            return Err(Error::FailedPrecondition(format!(
                "{key} does not need new keys (only a forced seize asks for a re-key)"
            )));
        }
        let keys = self
            .generate_ksk_and_zsk(&key, z.policy.algorithm, self.clock.now())
            .await?;
        let old: Vec<String> = self
            .store
            .list_keys(&key)
            .await?
            .iter()
            .map(|k| k.key_tag.to_string())
            .collect();
        let audit = self.draft(
            who,
            &key,
            "re-key",
            format!(
                "new KSK {} and ZSK {} on {}; old keys {} dropped; every trust anchor must be replaced",
                keys[0].key_tag,
                keys[1].key_tag,
                self.node_id,
                old.join(", ")
            ),
        );
        if let Err(e) = self.store.replace_keys(&key, z.epoch, &keys, &audit).await {
            self.undo_generated(&keys, &e).await;
            return Err(e.into());
        }
        self.forget_context(&key);
        tracing::warn!(zone = %key, "zone re-keyed; trust anchors must be replaced");
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::KeyRole;
    use crate::store::schema::KeyState;

    fn node(id: &str, serial: &str, last_seen: u64) -> NodeRecord {
        NodeRecord {
            schema: 1,
            node_id: id.into(),
            address: "127.0.0.1:1".into(),
            token_label: "t".into(),
            token_serial: serial.into(),
            algorithms: SUPPORTED_ALGORITHMS.to_vec(),
            last_seen,
            lease_secs: 10,
            store_lease: None,
        }
    }

    fn key(serial: &str) -> KeyRecord {
        KeyRecord {
            schema: 1,
            zone: "z.".into(),
            id: "01".into(),
            role: KeyRole::Ksk,
            algorithm: Algorithm::EcdsaP256Sha256,
            key_tag: 7,
            state: KeyState::Active,
            label: "z-ksk-7".into(),
            public_key: "00".into(),
            token_label: "t".into(),
            token_serial: serial.into(),
            created: 0,
            published: 0,
            activated: 0,
            retired: 0,
        }
    }

    #[test]
    fn candidates_must_be_online_and_support_the_algorithm() {
        let alg = Algorithm::EcdsaP256Sha256;
        assert_eq!(disqualification(&node("b", "s1", 100), alg, 105), None);
        let r = disqualification(&node("c", "s1", 80), alg, 105).unwrap();
        assert!(r.contains("offline"), "{r}");
        let mut e = node("e", "s1", 100);
        e.algorithms = vec![13];
        let r = disqualification(&e, Algorithm::Ed25519, 105).unwrap();
        assert!(r.contains("ED25519"), "{r}");
        let r = keys_out_of_reach(&node("d", "s2", 100), &key("s1"));
        assert!(r.contains("does not hold key 7"), "{r}");
    }
}
