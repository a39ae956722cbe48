//! The gRPC transport: the only module that uses tonic's server side. Thin
//! handlers validate, convert and call the zone service.

pub mod client;
pub mod convert;
pub mod forward;
pub mod limits;
pub mod server;
pub mod status;
pub mod tls;

pub use server::{serve, ServeOptions};
