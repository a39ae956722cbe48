//! keymaster from outside, in one test binary: real keymasterd processes,
//! SoftHSM2 tokens, etcd, Knot DNS, NSD and Unbound, on 127.0.0.1 with
//! ports chosen at run time, each stopped by its PID. One binary links
//! once and runs its tests in parallel threads (`scripts/test.sh` sets how
//! many); each module is what was a test file of its own.
// Tests drive real processes in real time: they read the system clock.
#![allow(clippy::disallowed_methods)]

mod common;

mod bad_input;
mod bootstrap;
mod chaos;
mod checked_versions;
mod delegations;
mod ds_push;
mod dsync;
mod etcd_members;
mod etcd_outage;
mod external_children;
mod find_servers;
mod health;
mod keymaster_role;
mod lifecycle;
mod metrics;
mod operator_output;
mod primary_ixfr;
mod primary_tsig;
mod review;
mod rfc5011;
mod rollover;
mod security;
mod signals;
mod signer_service;
mod startup;
mod store_conformance;
mod systemd;
mod trust_anchors;
mod zone_signer;
mod zone_signing;
