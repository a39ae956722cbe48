//! The Key Master role (ARCHITECTURE.md, The Key Master role): node
//! registration and liveness leases, candidates, transfer (a hand-over the
//! holder agrees to), seize, automatic failover, and which zones this node
//! holds. Every role change is one compare-and-set on the zone's epoch in
//! the store, written with its audit entry, so a node holding a stale epoch
//! can never write (ARCHITECTURE.md, Invariants 2).
//!
//! ```text
//!            transfer: the holder releases the zone, then the role moves
//!   node A ─────────────────────────────────────────────────► node B   epoch+1
//!      │      seize (holder's lease gone; target reaches the keys,
//!      └────────────── or --force: zone marked needs-rekey) ─────► node C   epoch+1
//! ```
//!
//! - `gate`: management calls open a zone through it: Key Master only, one
//!   at a time per zone, closed while the zone is being handed over;
//! - `leases`: registration, liveness, where a management call must run;
//! - `candidates`: who could hold a zone's role, asked of each node's token;
//! - `moves`: transfer, release, seize;
//! - `watch`: noticing role changes made elsewhere, and automatic failover.

mod candidates;
pub mod gate;
mod leases;
mod moves;
mod watch;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::error::{Result, RoleError};
use crate::node::Node;
use crate::store::schema::{NodeRecord, ZoneRecord};
use crate::store::StoreError;

pub use candidates::{disqualification, Candidate};
pub use gate::{Gate, Managed};

/// Algorithms every node's token supports here (all that keymaster makes).
pub const SUPPORTED_ALGORITHMS: [u8; 4] = [8, 13, 14, 15];

/// Other nodes, asked over the network (the gRPC layer implements it with
/// peer calls).
#[async_trait::async_trait]
pub trait Peers: Send + Sync {
    /// Which of these key ids (hex CKA_IDs) the node's token does not hold.
    async fn missing_keys(&self, node: &NodeRecord, ids: &[String]) -> Result<Vec<String>>;
    /// Asks the Key Master of a zone to release it at `epoch` for `to`
    /// (see `Mastership::release`).
    async fn release(&self, node: &NodeRecord, zone: &str, epoch: u64, to: &str) -> Result<()>;
}

/// The role of a zone as shown to operators.
#[derive(Debug, Clone)]
pub struct RoleView {
    pub zone: ZoneRecord,
    pub online: bool,
}

/// The Key Master role, as this node plays its part in it.
pub struct Mastership {
    node: Arc<Node>,
    gate: Arc<Gate>,
    /// Other nodes, for the candidate check and the release of a transfer.
    peers: Option<Arc<dyn Peers>>,
    /// Zones this node was Key Master of at its last look, with the epoch:
    /// to notice and log a role it lost (or took) elsewhere.
    held: Mutex<Option<HashMap<String, u64>>>,
    /// The same zones' names, for the rollover engine to follow without
    /// listing every zone itself (None until the first look).
    held_names: tokio::sync::watch::Sender<Option<Arc<HashSet<String>>>>,
}

impl Mastership {
    pub fn new(node: Arc<Node>, gate: Arc<Gate>, peers: Option<Arc<dyn Peers>>) -> Mastership {
        Mastership {
            node,
            gate,
            peers,
            held: Mutex::new(None),
            held_names: tokio::sync::watch::channel(None).0,
        }
    }

    /// The zones this node is Key Master of, as of its last look at the
    /// store (the lease loop's, or a watch signal's); changes when they do.
    pub fn held_zones(&self) -> tokio::sync::watch::Receiver<Option<Arc<HashSet<String>>>> {
        self.held_names.subscribe()
    }
}

/// A role move that lost its compare-and-set: another move of the same
/// zone landed first (two seizes racing, say).
fn moved_meanwhile(e: StoreError) -> crate::error::Error {
    match e {
        StoreError::Fenced {
            zone,
            expected,
            actual,
        } => RoleError::MovedMeanwhile {
            zone,
            expected,
            actual,
        }
        .into(),
        e => e.into(),
    }
}
