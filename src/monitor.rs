//! What an operator's monitoring scrapes (ARCHITECTURE.md, Metrics):
//! `GET /metrics` on `--metrics-listen`, plain HTTP/1.1. At each scrape
//! the state gauges are set from the store and the zone signer (each
//! zone's epoch and Key Master, each node's lease, the roll in flight, the
//! served signatures' expiry), then every metric of the process is encoded:
//! Prometheus' text format, or OpenMetrics when the scraper asks for it.
//! The metrics carry no secret (zone and node names, counts, times); the
//! listener is meant for a loopback or management address.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::metrics::{self, NodeLabels, RoleChangeLabels, RollLabels, ZoneLabels};
use crate::services::Services;

/// How long a scrape may spend reading the state; past it the state
/// gauges keep their last values and `keymaster_state_read_ok` says 0.
const STATE_WITHIN: Duration = Duration::from_secs(5);

/// Listens on `addr` and serves the metrics until the process ends.
/// Returns the address bound (a port of 0 is chosen by the system).
pub async fn serve(addr: &str, services: Arc<Services>) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
    let at = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(count_role_changes(services.clone()));
    // One scrape reads and encodes at a time: the state gauges are
    // cleared and set again by each, from the store at most once a second
    // (a flood of scrapes costs the store nothing more).
    let scraping = Arc::new(tokio::sync::Mutex::new(None));
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (services, scraping) = (services.clone(), scraping.clone());
            tokio::spawn(async move {
                let answer = hyper::service::service_fn(move |request| {
                    let (services, scraping) = (services.clone(), scraping.clone());
                    async move { Ok::<_, Infallible>(answer(request, &services, &scraping).await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), answer)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "metrics connection ended");
                }
            });
        }
    });
    Ok(at)
}

async fn answer(
    request: Request<Incoming>,
    services: &Services,
    scraping: &tokio::sync::Mutex<Option<std::time::Instant>>,
) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    let openmetrics = request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let text = {
        let mut last = scraping.lock().await;
        let clock = &services.node.clock;
        if last.is_none_or(|at| clock.instant().duration_since(at) >= Duration::from_secs(1)) {
            read_state(services).await;
            *last = Some(clock.instant());
        }
        metrics::get().encode(openmetrics)
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Sets the state gauges from the store and the zone signer.
///
/// Long because the gauges are many: one block per gauge family.
async fn read_state(services: &Services) {
    let m = metrics::get();
    // Known on the node, also (above all) while the store is away.
    if let Some(spool) = &services.node.spool {
        m.spooled.set(spool.len() as i64);
    }
    let read = tokio::time::timeout(STATE_WITHIN, async {
        let zones = services.node.store.list_zones().await;
        let zones = zones.map_err(|e| e.to_string())?;
        let nodes = services.mastership.list_nodes().await;
        Ok::<_, String>((zones, nodes.map_err(|e| e.to_string())?))
    })
    .await
    .unwrap_or_else(|_| Err(format!("not read within {STATE_WITHIN:?}")));
    let (zones, nodes) = match read {
        Ok(state) => state,
        Err(e) => {
            tracing::debug!(error = %e, "metrics: the state cannot be read; last values kept");
            m.state_read_ok.set(0);
            return;
        }
    };
    m.state_read_ok.set(1);
    let now = services.node.clock.now() as i64;
    let served: HashSet<String> = services.publisher.served.names().into_iter().collect();
    for family in [
        &m.epoch,
        &m.key_master,
        &m.rollover_failed,
        &m.rollover_queue,
        &m.signature_expiry,
    ] {
        family.clear();
    }
    m.rollover.clear();
    for z in &zones {
        let zone = ZoneLabels {
            zone: z.name.clone(),
        };
        m.epoch.get_or_create(&zone).set(z.epoch as i64);
        m.key_master
            .get_or_create(&zone)
            .set(i64::from(z.key_master == services.node.id));
        m.rollover_failed
            .get_or_create(&zone)
            .set(i64::from(z.lifecycle.error.is_some()));
        m.rollover_queue
            .get_or_create(&zone)
            .set(z.lifecycle.queue.len() as i64);
        if let Some(roll) = &z.lifecycle.roll {
            let step = serde_json::to_value(roll.step)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            m.rollover
                .get_or_create(&RollLabels {
                    zone: z.name.clone(),
                    role: roll.role.as_str().to_string(),
                    step,
                })
                .set(1);
        }
        if served.contains(&z.name) && z.publishing.expires > 0 {
            m.signature_expiry
                .get_or_create(&zone)
                .set(z.publishing.expires as i64 - now);
        }
    }
    m.node_online.clear();
    m.node_lease_expiry.clear();
    for (node, online) in &nodes {
        let labels = NodeLabels {
            node: node.node_id.clone(),
        };
        m.node_online.get_or_create(&labels).set(i64::from(*online));
        m.node_lease_expiry
            .get_or_create(&labels)
            .set((node.last_seen + node.lease_secs) as i64);
    }
}

/// Counts the zones this process gains and loses the Key Master role of,
/// as its view of the held zones changes (the zones held when it started
/// count as gained then).
async fn count_role_changes(services: Arc<Services>) {
    let mut held = services.mastership.held_zones();
    let mut before: Arc<HashSet<String>> = Arc::default();
    loop {
        // Unknown (the store not yet or not now readable) is no change.
        let now = held.borrow_and_update().clone();
        if let Some(now) = now {
            let m = metrics::get();
            for (zones, change) in [
                (now.difference(&before), "gained"),
                (before.difference(&now), "lost"),
            ] {
                for zone in zones {
                    m.role_changes
                        .get_or_create(&RoleChangeLabels {
                            zone: zone.clone(),
                            change,
                        })
                        .inc();
                }
            }
            before = now;
        }
        if held.changed().await.is_err() {
            return;
        }
    }
}
