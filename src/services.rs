//! The services one node runs, built together over its token, store and
//! clock. The gRPC layer calls them; nothing here knows gRPC.
//!
//! ```text
//!   lifecycle ─► keyset ──┐
//!   zones ──► keyset::Inventory ──► mastership::Gate ──► node
//!     │            │                                      ▲
//!     └──► mastership (leases, candidates, moves) ────────┤
//!   publish ──► signing, mastership::Gate (keeps zones signed, serves them)
//!   children ──► mastership::Gate (external children's DS, from their CDS)
//!   signing ──► keyset::KeySets ──────────────────────────┘
//!                      (node: id, hsm, store, clock, audit)
//! ```

use std::sync::Arc;

use crate::children::Children;
use crate::keyset::{Inventory, KeySets};
use crate::lifecycle::Lifecycle;
use crate::mastership::{Gate, Mastership, Peers};
use crate::node::Node;
use crate::publish::Publisher;
use crate::signing::{Limits, Signing};
use crate::zones::Zones;

pub struct Services {
    pub node: Arc<Node>,
    pub zones: Zones,
    pub inventory: Arc<Inventory>,
    pub signing: Arc<Signing>,
    pub mastership: Arc<Mastership>,
    pub lifecycle: Arc<Lifecycle>,
    pub publisher: Arc<Publisher>,
    pub children: Arc<Children>,
}

/// What the services take beyond the node.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub limits: Limits,
    /// Run when a KSK roll hands the parent a new DS.
    pub ds_submit_command: Option<std::path::PathBuf>,
    /// TSIG keys secondaries may sign transfer requests with.
    pub tsig_keys: crate::publish::tsig::TsigKeys,
    /// When a served zone's nearing expiry is a loud error (seconds before).
    pub expiry_warning: Option<u64>,
}

impl Services {
    /// Builds the services; `peers` lets this node call others (the
    /// candidate check, the release of a transfer).
    pub fn new(node: Node, settings: Settings, peers: Option<Arc<dyn Peers>>) -> Services {
        let node = Arc::new(node);
        let gate = Arc::new(Gate::new(node.clone()));
        let keysets = Arc::new(KeySets::new(node.clone()));
        let inventory = Arc::new(Inventory::new(node.clone(), gate.clone(), keysets.clone()));
        let mastership = Arc::new(Mastership::new(node.clone(), gate.clone(), peers));
        let lifecycle = Arc::new(Lifecycle::new(
            node.clone(),
            gate.clone(),
            inventory.clone(),
            keysets.clone(),
            &mastership,
            settings.ds_submit_command,
        ));
        let signing = Arc::new(Signing::new(node.clone(), keysets.clone(), settings.limits));
        let publisher = Arc::new(Publisher::new(
            node.clone(),
            gate.clone(),
            signing.clone(),
            keysets.clone(),
            mastership.held_zones(),
            settings.tsig_keys,
            settings.expiry_warning,
        ));
        let children = Arc::new(Children::new(node.clone(), gate.clone()));
        Services {
            children,
            lifecycle,
            publisher,
            zones: Zones::new(
                node.clone(),
                gate,
                inventory.clone(),
                keysets.clone(),
                mastership.clone(),
            ),
            signing,
            inventory,
            mastership,
            node,
        }
    }
}
