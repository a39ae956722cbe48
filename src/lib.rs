//! keymaster: DNSSEC keys in a PKCS#11 token, signing for DNS servers over
//! gRPC, and the Key Master role per zone.

pub mod dnssec;
pub mod hsm;
pub mod secret;

/// Code generated from `proto/keymaster/v1/keymaster.proto`.
pub mod proto {
    tonic::include_proto!("keymaster.v1");
}
