//! The gRPC transport: the only module that uses tonic's server side. Thin
//! handlers validate, convert and call the zone service.

pub mod convert;
pub mod server;
pub mod status;

pub use server::{serve, ServeOptions};
