//! DNSSEC on top of NLnet Labs' `domain`: algorithms, canonical records,
//! RRset signatures, NSEC/NSEC3 chains, DS/DNSKEY material and whole-zone
//! signing, checking other zones' signatures and its own signed versions. Private keys are reached only through `sign::SignWorker`; no
//! threads, no I/O.

pub mod algorithm;
pub mod anchors;
pub mod check;
pub mod denial;
pub mod ds;
pub mod dsync;
pub mod patch;
pub mod record;
pub mod reuse;
pub mod rrset;
pub mod serial;
pub mod sign;
pub mod verify;
pub mod zone;

pub use algorithm::Algorithm;
pub use sign::{KeyRole, SigningKey, Validity};
