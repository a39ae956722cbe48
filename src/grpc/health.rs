//! The standard `grpc.health.v1.Health` service (tonic-health): SERVING
//! while this node's token and store answer, NOT_SERVING while either does
//! not, for the whole server ("") and each of its services. Looked at every
//! 2 s; each change is logged with its reason.

use std::sync::Arc;
use std::time::Duration;

use tonic_health::pb::health_server::Health;
use tonic_health::server::{health_reporter, HealthReporter};
use tonic_health::ServingStatus;

use crate::services::Services;

/// The names a health check may ask for, besides "" (the whole server).
const SERVICES: [&str; 4] = [
    "keymaster.v1.Signer",
    "keymaster.v1.Zones",
    "keymaster.v1.Audit",
    "keymaster.v1.KeyMaster",
];

/// How often the token and the store are asked, and how long the store
/// may take (the token: its bound, `hsm::bound`).
const EVERY: Duration = Duration::from_secs(2);
const WITHIN: Duration = Duration::from_secs(5);

/// The health service, and the task that keeps its statuses. Until the
/// first look, every name is NOT_SERVING (a name unknown to the service
/// would be NOT_FOUND, which a load balancer reads as misconfiguration).
pub async fn service(
    services: Arc<Services>,
) -> tonic_health::pb::health_server::HealthServer<impl Health> {
    let (reporter, server) = health_reporter();
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    for name in SERVICES {
        reporter
            .set_service_status(name, ServingStatus::NotServing)
            .await;
    }
    tokio::spawn(keep(services, reporter));
    server
}

async fn keep(services: Arc<Services>, reporter: HealthReporter) {
    let mut last: Option<Result<(), String>> = None;
    loop {
        let now = check(&services).await;
        if last.as_ref() != Some(&now) {
            let status = match &now {
                Ok(()) => {
                    tracing::info!("health: SERVING (token and store answer)");
                    ServingStatus::Serving
                }
                Err(why) => {
                    tracing::error!(reason = %why, "health: NOT_SERVING");
                    ServingStatus::NotServing
                }
            };
            reporter.set_service_status("", status).await;
            for name in SERVICES {
                reporter.set_service_status(name, status).await;
            }
            last = Some(now);
        }
        services.node.clock.sleep(EVERY).await;
    }
}

/// Whether the token and the store answer now; if not, which and why.
async fn check(services: &Services) -> Result<(), String> {
    // A call into the token that has not returned: no further call is
    // added to it (each would hold a thread of its own).
    let stalled = crate::hsm::bound::stalled();
    if stalled > 0 {
        return Err(format!(
            "{}; {stalled} call(s) into it have not returned",
            crate::hsm::bound::stalled_error()
        ));
    }
    let hsm = services.node.hsm.clone();
    match crate::hsm::bound::call(move || hsm.check()).await {
        None => return Err("the token check failed".to_string()),
        Some(Err(stalled)) => return Err(stalled.to_string()),
        Some(Ok(Err(e))) => return Err(format!("token: {e}")),
        Some(Ok(Ok(()))) => {}
    }
    match tokio::time::timeout(WITHIN, services.node.store.list_nodes()).await {
        Err(_) => Err(format!("the store did not answer within {WITHIN:?}")),
        Ok(Err(e)) => Err(format!("store: {e}")),
        Ok(Ok(_)) => Ok(()),
    }
}
