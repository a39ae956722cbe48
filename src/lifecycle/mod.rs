//! The key lifecycle engine: the Key Master rolls a zone's ZSKs and KSKs
//! when their lifetimes end, each step gated on its RFC 7583 interval
//! (`crate::policy::intervals`) and on evidence from DNS (ARCHITECTURE.md,
//! The key lifecycle).
//!
//! - `engine`: the decisions, pure (lifecycle, keys, time → what next);
//! - `probe`: asking the zone's and the parent's servers;
//! - `push`: the DS RRset sent to the parent's primary by UPDATE;
//! - `dsync`: NOTIFY(CDS) to the endpoint the parent's DSYNC RRset names;
//! - `control`: what operators do (key roll/step, pause) and see;
//! - `unsign`: going back to insecure (`zone unsign`), whose steps the
//!   engine then takes like a roll's;
//! - `runner`: on the Key Master only, one scheduler for all zones: it
//!   generates successors, asks the probes, writes each step as one
//!   epoch-fenced store write with its audit entry and evidence.

pub mod control;
pub mod dsync;
pub mod engine;
pub mod probe;
pub mod push;
pub mod runner;
pub mod unsign;

pub use runner::Lifecycle;
