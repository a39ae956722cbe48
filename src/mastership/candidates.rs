//! Who could hold a zone's role: live nodes that support its algorithm and
//! whose own token answers that it holds every key of the zone.

use super::Mastership;
use crate::dnssec::Algorithm;
use crate::error::Result;
use crate::error::RoleError;
use crate::node::{blocking, ZoneName};
use crate::store::schema::{KeyRecord, NodeRecord};
use crate::text::shown;

/// A node considered for the role, and why it does not qualify.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: NodeRecord,
    pub online: bool,
    /// None: a candidate.
    pub reason: Option<String>,
}

/// Why a node cannot hold the role of a zone, from its record: offline,
/// or an algorithm its token lacks. Whether its token holds the keys is
/// asked of the token itself (`Mastership::why_not`).
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

pub(super) fn keys_out_of_reach(node: &NodeRecord, k: &KeyRecord) -> String {
    format!(
        "its token (serial {}) does not hold key {} (in token serial {})",
        node.token_serial, k.key_tag, k.token_serial
    )
}

impl Mastership {
    /// Every registered node, each a candidate or with the reason why not.
    pub async fn candidates(&self, zone: &ZoneName) -> Result<Vec<Candidate>> {
        let z = self.node.zone(zone).await?;
        let keys = self.node.store.list_keys(&z.key).await?;
        let now = self.node.clock.now();
        let mut out = Vec::new();
        for n in self.node.store.list_nodes().await? {
            out.push(Candidate {
                online: n.online(now),
                reason: self.why_not(&n, &keys, z.zone.policy.algorithm).await,
                node: n,
            });
        }
        Ok(out)
    }

    /// Why the node cannot hold the role of a zone with these keys (None:
    /// it can): offline, an algorithm its token lacks, or a key its token
    /// does not hold, as the token itself answers.
    pub(super) async fn why_not(
        &self,
        node: &NodeRecord,
        keys: &[KeyRecord],
        algorithm: Algorithm,
    ) -> Option<String> {
        if let Some(reason) = disqualification(node, algorithm, self.node.clock.now()) {
            return Some(reason);
        }
        match self.keys_missing_on(node, keys).await {
            Ok(missing) => missing.first().map(|k| keys_out_of_reach(node, k)),
            Err(e) => Some(format!("its token could not be asked: {e}")),
        }
    }

    /// The zone's keys that the node's token does not hold, asked of that
    /// token: this node's own directly, another node's by a peer call. (A
    /// token serial is not enough: HSM clusters replicate keys between
    /// tokens of different serials, and a shared token may have lost one.)
    pub(super) async fn keys_missing_on(
        &self,
        node: &NodeRecord,
        keys: &[KeyRecord],
    ) -> Result<Vec<KeyRecord>> {
        let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
        let missing = if node.node_id == self.node.id {
            self.missing_keys(ids).await?
        } else {
            let peers = self.peers.as_ref().ok_or(RoleError::NoPeers)?;
            peers.missing_keys(node, &ids).await?
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
    /// answers no (TOKEN.md, Several processes on one token).
    pub async fn missing_keys(&self, ids: Vec<String>) -> Result<Vec<String>> {
        let hsm = self.node.hsm.clone();
        blocking(move || {
            let mut missing = Vec::new();
            for id in ids {
                let raw = crate::hex::unhex(&id).ok_or_else(|| RoleError::BadKeyId(shown(&id)))?;
                if !hsm.has_private_key(&raw)? {
                    missing.push(id);
                }
            }
            Ok(missing)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::KeyRole;
    use crate::mastership::SUPPORTED_ALGORITHMS;
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
            csk: false,
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
