//! The key lifecycle engine: where ZSK and KSK rollovers will run, on the
//! Key Master only (ARCHITECTURE.md, Not built yet).
//!
//! Its shape, so that it drops in beside what exists:
//! - a pure decision step (key states, observations, time → new states,
//!   actions, next wake-up) tested on `clock::ManualClock`;
//! - key states it changes through `keyset::Inventory`, each step one
//!   store write compared on the zone's epoch, with its audit entry;
//! - `keyset::KeySet` derives what the zone publishes and signs with from
//!   those states, so signing follows without changes of its own;
//! - it runs for the zones `mastership` says this node holds, waking with
//!   `Clock::sleep_until` for the earliest deadline.
