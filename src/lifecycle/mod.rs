//! The key lifecycle engine: the Key Master rolls a zone's ZSKs and KSKs
//! when their lifetimes end, each step gated on its RFC 7583 interval and
//! on evidence from DNS (ARCHITECTURE.md, The key lifecycle).
//!
//! - `timing`: the intervals, from the policy and the TTLs in force;
//! - `engine`: the decisions, pure (lifecycle, keys, time → what next);
//! - `probe`: asking the zone's and the parent's servers;
//! - `runner`: on the Key Master only, one scheduler for all zones: it
//!   generates successors, asks the probes, writes each step as one
//!   epoch-fenced store write with its audit entry and evidence.

pub mod control;
pub mod engine;
pub mod probe;
pub mod runner;
pub mod timing;

pub use runner::Lifecycle;
