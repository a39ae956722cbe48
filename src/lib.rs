//! keymaster: DNSSEC keys in a PKCS#11 token, signing for DNS servers over
//! gRPC, and the Key Master role per zone.

pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod clock;
pub mod config;
pub mod dnssec;
pub mod error;
pub mod grpc;
pub mod hex;
pub mod hsm;
pub mod keymaster;
pub mod policy;
pub mod secret;
pub mod store;
pub mod zone;

/// Code generated from `proto/keymaster/v1/keymaster.proto`.
pub mod proto {
    #![allow(clippy::all)]
    tonic::include_proto!("keymaster.v1");
}
