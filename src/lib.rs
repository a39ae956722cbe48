//! keymaster: DNSSEC keys in a PKCS#11 token, signing for DNS servers over
//! gRPC, and the Key Master role per zone. `docs/ARCHITECTURE.md` draws
//! the layers; dependencies run one way:
//!
//! ```text
//! bin ─► app ─► grpc ─► services ─► zones, signing, keyset, mastership, lifecycle, children
//!                                        └──► node ─► hsm, store, clock, audit
//!                              dnssec, policy (pure) ◄── used by all above
//! ```

pub mod anchor_files;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod children;
pub mod clock;
pub mod config;
pub mod dns;
pub mod dnssec;
pub mod error;
pub mod grpc;
pub mod hex;
pub mod hsm;
pub mod keyset;
pub mod lifecycle;
pub mod mastership;
pub mod metrics;
pub mod monitor;
pub mod node;
pub mod policy;
pub mod publish;
pub mod secret;
pub mod services;
pub mod signing;
pub mod spool;
pub mod store;
pub mod text;
pub mod tsig;
pub mod zones;

/// Code generated from `proto/keymaster/v1/keymaster.proto`.
pub mod proto {
    #![allow(clippy::all)]
    tonic::include_proto!("keymaster.v1");

    /// The API's descriptors, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("keymaster_descriptor");
}
