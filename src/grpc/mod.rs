//! The gRPC transport: the only module that uses tonic's server side. Thin
//! handlers validate, convert and call the services.
//!
//! - `serve`: the listener, TLS, the four services;
//! - `context`: caller, authorization, audit of refusals, and whether a
//!   management call runs here or on the Key Master, written once;
//! - `signer`, `zones`, `audit`, `key_master`: one file per service;
//! - `status`: the one table from errors to gRPC status codes;
//! - `convert`: protobuf messages to and from the services' types;
//! - `forward`: how a node reaches its peers; `limits`: per-caller limits;
//!   `tls`, `client`: TLS for the server and for clients;
//! - `health`: the standard health service; `request_id`: an id per call;
//!   `call_metrics`: calls per method and status, and their latency.

pub mod audit;
pub mod call_metrics;
pub mod client;
pub mod context;
pub mod convert;
pub mod forward;
pub mod health;
pub mod key_master;
pub mod limits;
pub mod request_id;
pub mod serve;
pub mod signer;
pub mod status;
pub mod tls;
pub mod zones;

pub use serve::{serve, ServeOptions};
