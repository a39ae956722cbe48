//! Zones under management: the services the gRPC handlers call.

pub mod service;
pub mod token_signer;
