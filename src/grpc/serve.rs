//! The server: the four services, the standard health service and server
//! reflection on one listener, behind TLS 1.3 with client certificates (or the
//! development-only plaintext listener).

use std::sync::Arc;

use tonic::transport::server::TcpIncoming;

use super::context::Api;
use super::forward::Forwarder;
use super::limits::{CallerLimits, Limiter};
use crate::auth::AccessControl;
use crate::proto::audit_server::AuditServer;
use crate::proto::key_master_server::KeyMasterServer;
use crate::proto::signer_server::SignerServer;
use crate::proto::zones_server::ZonesServer;
use crate::services::Services;

/// Transport and access settings.
pub struct ServeOptions {
    /// Largest request message, bytes.
    pub max_message_bytes: usize,
    /// TLS (1.3, client certificates required), or None for the
    /// development-only plaintext listener.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Who may do what.
    pub access: Arc<AccessControl>,
    /// Per-caller limits.
    pub limits: CallerLimits,
    /// How management calls reach the Key Master.
    pub forwarder: Arc<Forwarder>,
}

/// Serves the four services on `listener` until `shutdown` completes.
///
/// Long because it builds the server in order: TLS, the call-metrics
/// and request-id layers, health, reflection, the four services.
pub async fn serve(
    services: Arc<Services>,
    listener: tokio::net::TcpListener,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let api = Api {
        limiter: Limiter::new(options.limits.clone(), services.node.clock.clone()),
        sign_rate: options.limits.sign_rate,
        services,
        access: options.access,
        plaintext: options.tls.is_none(),
        forwarder: options.forwarder,
        max_message_bytes: options.max_message_bytes,
    };
    let max = options.max_message_bytes;
    let clock = api.services.node.clock.clone();
    let health = super::health::service(api.services.clone()).await;
    // Server reflection (v1 and the older v1alpha that many tools still
    // ask): generic gRPC clients list and call the API from it.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the API's own descriptors are valid");
    let reflection = reflection
        .build_v1()
        .expect("the API's own descriptors are valid");
    let router = tonic::transport::Server::builder()
        .layer(tower::layer::layer_fn(super::call_metrics::CallMetrics))
        .layer(tower::layer::layer_fn(super::request_id::RequestIds))
        .layer(tower::util::MapRequestLayer::new(
            move |mut r: tonic::codegen::http::Request<tonic::body::Body>| {
                r.extensions_mut().insert(Arrived(clock.instant()));
                r
            },
        ))
        .layer(tower::util::MapResponseLayer::new(
            move |r: tonic::codegen::http::Response<tonic::body::Body>| {
                oversized_is_exhaustion(r, max)
            },
        ))
        .add_service(
            SignerServer::new(api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            ZonesServer::new(api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(KeyMasterServer::new(api.clone()))
        .add_service(AuditServer::new(api).max_encoding_message_size(usize::MAX))
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha);
    match options.tls {
        Some(config) => {
            router
                .serve_with_incoming_shutdown(super::tls::incoming(listener, config), shutdown)
                .await
        }
        None => {
            // Request/response traffic: without TCP_NODELAY, Nagle and
            // delayed ACKs add tens of milliseconds to every answer.
            router
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    shutdown,
                )
                .await
        }
    }
}

/// When a request reached the server: tonic's own deadline timer starts
/// then, so a handler's deadline is counted from it too.
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub std::time::Instant);

/// tonic refuses a request over the decoding limit with OutOfRange before
/// any handler runs; callers are told ResourceExhausted with the setting
/// named, like every other limit.
fn oversized_is_exhaustion(
    mut response: tonic::codegen::http::Response<tonic::body::Body>,
    max: usize,
) -> tonic::codegen::http::Response<tonic::body::Body> {
    use tonic::codegen::http::HeaderValue;
    let headers = response.headers_mut();
    let oversized = headers.get("grpc-status").is_some_and(|v| v == "11")
        && headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| {
                m.contains("message%20length%20too%20large")
                    || m.contains("message length too large")
            });
    if oversized {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
        let msg =
            format!("request%20is%20over%20the%20limit%20of%20{max}%20bytes%20(max_message_bytes)");
        if let Ok(v) = HeaderValue::from_str(&msg) {
            headers.insert("grpc-message", v);
        }
    }
    response
}
