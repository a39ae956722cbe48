//! The process's Prometheus metrics (ARCHITECTURE.md, Metrics): counters
//! and histograms kept where things happen (calls, signatures, token
//! errors, store writes), and the gauges of state (the role, leases,
//! rollovers, served signatures) that `monitor` sets at each scrape. One
//! registry per process, as a DNS server's or a Go program's: a counter is
//! bumped from wherever the event is, without threading a handle through
//! every layer.

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CallLabels {
    pub service: String,
    pub method: String,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MethodLabels {
    pub service: String,
    pub method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ZoneRoleLabels {
    pub zone: String,
    pub role: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ZoneLabels {
    pub zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TokenErrorLabels {
    pub function: String,
    pub rv: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RoleChangeLabels {
    pub zone: String,
    pub change: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RollLabels {
    pub zone: String,
    pub role: String,
    pub step: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type F64Gauge = Gauge<f64, AtomicU64>;

/// Every metric of the process. Names are prefixed `keymaster_`.
pub struct Metrics {
    registry: Registry,
    pub calls: Family<CallLabels, Counter>,
    pub call_seconds: HistogramFamily<MethodLabels>,
    pub rrsigs: Family<ZoneRoleLabels, Counter>,
    pub zone_signing_rate: Family<ZoneLabels, F64Gauge>,
    pub token_errors: Family<TokenErrorLabels, Counter>,
    pub token_reinitialisations: Counter,
    pub signing_queue_wait: Histogram,
    pub store_conflicts: Counter,
    pub store_fenced: Counter,
    pub store_retries: Family<ReasonLabels, Counter>,
    pub role_changes: Family<RoleChangeLabels, Counter>,
    // Set at each scrape from the state (monitor.rs).
    pub epoch: Family<ZoneLabels, Gauge>,
    pub key_master: Family<ZoneLabels, Gauge>,
    pub node_online: Family<NodeLabels, Gauge>,
    pub node_lease_expiry: Family<NodeLabels, Gauge>,
    pub rollover: Family<RollLabels, Gauge>,
    pub rollover_failed: Family<ZoneLabels, Gauge>,
    pub rollover_queue: Family<ZoneLabels, Gauge>,
    pub signature_expiry: Family<ZoneLabels, Gauge>,
    pub versions_refused: Family<ZoneLabels, Counter>,
    pub state_read_ok: Gauge,
    pub spooled: Gauge,
}

fn seconds_buckets() -> Histogram {
    // 100 µs to ~100 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

impl Metrics {
    /// Registers every metric: long because the metrics are many, one
    /// registration each, read as the list of what is exported.
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(seconds_buckets),
            rrsigs: Family::default(),
            zone_signing_rate: Family::default(),
            token_errors: Family::default(),
            token_reinitialisations: Counter::default(),
            signing_queue_wait: seconds_buckets(),
            store_conflicts: Counter::default(),
            store_fenced: Counter::default(),
            store_retries: Family::default(),
            role_changes: Family::default(),
            epoch: Family::default(),
            key_master: Family::default(),
            node_online: Family::default(),
            node_lease_expiry: Family::default(),
            rollover: Family::default(),
            rollover_failed: Family::default(),
            rollover_queue: Family::default(),
            signature_expiry: Family::default(),
            versions_refused: Family::default(),
            state_read_ok: Gauge::default(),
            spooled: Gauge::default(),
        };
        // Registered by clones, which share their values.
        let mut r = Registry::with_prefix("keymaster");
        r.register(
            "grpc_calls",
            "gRPC calls answered, by method and status code",
            m.calls.clone(),
        );
        r.register(
            "grpc_call_duration_seconds",
            "How long gRPC calls took, from arrival to the end of the answer",
            m.call_seconds.clone(),
        );
        r.register(
            "rrsigs",
            "RRSIGs made in the token, by zone and key role",
            m.rrsigs.clone(),
        );
        r.register(
            "zone_signing_rrsigs_per_second",
            "RRSIGs made per second by the zone's last whole-zone signing",
            m.zone_signing_rate.clone(),
        );
        r.register(
            "token_errors",
            "PKCS#11 calls that failed, by function and return value",
            m.token_errors.clone(),
        );
        r.register(
            "token_reinitialisations",
            "Times the PKCS#11 module was finalised and initialised again",
            m.token_reinitialisations.clone(),
        );
        r.register(
            "signing_queue_wait_seconds",
            "How long signing jobs waited for a worker of the token's signing pool",
            m.signing_queue_wait.clone(),
        );
        r.register(
            "store_write_conflicts",
            "Store writes that met another write and were read and planned again",
            m.store_conflicts.clone(),
        );
        r.register(
            "store_fenced_writes",
            "Writes refused because the zone's Key Master epoch had moved on",
            m.store_fenced.clone(),
        );
        r.register(
            "store_retries",
            "Store calls sent again, by reason",
            m.store_retries.clone(),
        );
        r.register(
            "role_changes",
            "Key Master roles this node gained or lost, by zone",
            m.role_changes.clone(),
        );
        r.register(
            "role_epoch",
            "The zone's Key Master fencing epoch (grows by one on every role change)",
            m.epoch.clone(),
        );
        r.register(
            "key_master",
            "1 when this node is the zone's Key Master",
            m.key_master.clone(),
        );
        r.register(
            "node_online",
            "1 while the node's lease holds",
            m.node_online.clone(),
        );
        r.register(
            "node_lease_expiry_timestamp_seconds",
            "When the node's lease runs out unless renewed, Unix seconds",
            m.node_lease_expiry.clone(),
        );
        r.register(
            "rollover_in_progress",
            "1 for the roll in flight in the zone, with the key role and the step it is at",
            m.rollover.clone(),
        );
        r.register(
            "rollover_failed",
            "1 when the zone's last roll failed and the lifecycle waits for an operator",
            m.rollover_failed.clone(),
        );
        r.register(
            "rollover_queued",
            "Rolls asked for that wait for the one in flight",
            m.rollover_queue.clone(),
        );
        r.register(
            "served_signature_expiry_seconds",
            "Seconds until the earliest signature of the zone's served version expires",
            m.signature_expiry.clone(),
        );
        r.register(
            "zone_versions_refused",
            "Signed versions the zone signer did not serve because they failed their check",
            m.versions_refused.clone(),
        );
        r.register(
            "state_read_ok",
            "1 when this scrape read the state gauges from the store; 0: they are as last read",
            m.state_read_ok.clone(),
        );
        r.register(
            "spooled_records",
            "Records of signing work waiting in the node's spool for the store",
            m.spooled.clone(),
        );
        m.registry = r;
        m
    }

    /// The metrics in Prometheus' text format (0.0.4), or in OpenMetrics.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// A failed PKCS#11 call: the function (`C_Sign`) and its return value
/// (`CKR_DEVICE_ERROR`).
pub fn token_error(function: String, rv: String) {
    let labels = TokenErrorLabels { function, rv };
    get().token_errors.get_or_create(&labels).inc();
}

/// A store call sent again: `reason` says why.
pub fn store_retry(reason: &'static str) {
    get()
        .store_retries
        .get_or_create(&ReasonLabels { reason })
        .inc();
}

/// RRSIGs made for `zone` with keys of `role` ("ksk" or "zsk").
pub fn rrsigs_made(zone: &str, role: &'static str, count: u64) {
    if count == 0 {
        return;
    }
    get()
        .rrsigs
        .get_or_create(&ZoneRoleLabels {
            zone: zone.to_string(),
            role,
        })
        .inc_by(count);
}

/// The rate of a whole-zone signing that made `made` RRSIGs in `took`.
/// A signed version the zone signer refused to serve (it failed its check).
pub fn version_refused(zone: &str) {
    get()
        .versions_refused
        .get_or_create(&ZoneLabels {
            zone: zone.to_string(),
        })
        .inc();
}

pub fn zone_signed(zone: &str, made: u64, took: Duration) {
    if made == 0 || took.is_zero() {
        return;
    }
    get()
        .zone_signing_rate
        .get_or_create(&ZoneLabels {
            zone: zone.to_string(),
        })
        .set(made as f64 / took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_both_formats() {
        rrsigs_made("metrics-test.", "zsk", 3);
        let text = get().encode(false);
        assert!(
            text.contains("keymaster_rrsigs_total{zone=\"metrics-test.\",role=\"zsk\"} 3"),
            "{text}"
        );
        let open = get().encode(true);
        assert!(open.ends_with("# EOF\n"), "{open}");
    }
}
