//! Zones under management: their policy (ARCHITECTURE.md, Defaults), their settings as
//! stored, and their key inventory. `service` runs the operations on them.

pub mod policy;
pub mod service;
pub mod token_signer;

pub use policy::{DenialPolicy, Policy};

use serde::{Deserialize, Serialize};

use crate::dnssec::{Algorithm, KeyRole};

/// Version of the stored records' layout.
pub const SCHEMA_VERSION: u32 = 1;

/// A zone as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneRecord {
    pub schema: u32,
    /// The apex in lower-case presentation form with the trailing dot.
    pub name: String,
    pub policy: Policy,
    /// Node id of the Key Master.
    pub key_master: String,
    /// Fencing epoch of the Key Master role; grows by one on every change.
    pub epoch: u64,
    pub key_master_since: u64,
    pub created: u64,
    /// Set by a forced seize to a node that cannot reach the keys: the zone
    /// must be re-keyed and its trust anchors replaced.
    #[serde(default)]
    pub needs_rekey: bool,
}

/// A node as registered in the store, with its liveness lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub schema: u32,
    pub node_id: String,
    /// The gRPC address other nodes and operators reach it at.
    pub address: String,
    /// The token it reaches.
    pub token_label: String,
    pub token_serial: String,
    /// DNSSEC algorithm numbers its token supports.
    pub algorithms: Vec<u8>,
    /// When it last renewed its lease, and for how long a lease holds.
    pub last_seen: u64,
    pub lease_secs: u64,
    /// Whether the store's own lease for the node holds, where the store
    /// keeps one (etcd); None: judged from `last_seen` and the clock.
    #[serde(skip)]
    pub store_lease: Option<bool>,
}

impl NodeRecord {
    pub fn online(&self, now: u64) -> bool {
        match self.store_lease {
            Some(alive) => alive,
            None => now.saturating_sub(self.last_seen) <= self.lease_secs,
        }
    }
}

/// Lifecycle state of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the DNSKEY RRset, not signing (a standby or next key).
    Published,
    /// Published and signing.
    Active,
    /// Published, no longer signing.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Published => "published",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

/// A key as stored. The private half is in the token under `id` (CKA_ID).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub schema: u32,
    pub zone: String,
    /// Hex of the CKA_ID.
    pub id: String,
    pub role: KeyRole,
    pub algorithm: Algorithm,
    pub key_tag: u16,
    pub state: KeyState,
    /// CKA_LABEL of the objects in the token.
    pub label: String,
    /// The DNSKEY public key field, hex.
    pub public_key: String,
    /// The token that holds the private key.
    pub token_label: String,
    pub token_serial: String,
    pub created: u64,
    pub published: u64,
    pub activated: u64,
    pub retired: u64,
}
