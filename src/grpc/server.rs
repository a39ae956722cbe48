//! The Signer and Zones services: thin handlers over the zone service.

use crate::clock::Clock;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{
    key_to_proto, policy_from_proto, record_to_proto, signing_parameters_to_proto, zone_to_proto,
};
use super::forward::{self, Forwarder};
use super::limits::{CallerLimits, Limiter};
use crate::auth::{certificate_names, AccessControl, Caller, Right};
use crate::dnssec::ds::DsDigest;
use crate::dnssec::rrset::WireRecord;
use crate::dnssec::KeyRole;
use crate::error::Error;
use crate::proto::audit_server::{Audit, AuditServer};
use crate::proto::key_master_client::KeyMasterClient;
use crate::proto::key_master_server::{KeyMaster, KeyMasterServer};
use crate::proto::signer_server::{Signer, SignerServer};
use crate::proto::zones_client::ZonesClient;
use crate::proto::zones_server::{Zones, ZonesServer};
use crate::proto::{self, sign_zone_request, sign_zone_response};
use crate::zone::service::{parse_zone_name, Cancel, RrsetRequest, ZoneService};

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

/// Serves both services on `listener` until `shutdown` completes.
pub async fn serve(
    service: Arc<ZoneService>,
    listener: tokio::net::TcpListener,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let api = Api {
        limiter: Limiter::new(options.limits.clone(), service.clock().clone()),
        service,
        access: options.access,
        plaintext: options.tls.is_none(),
        sign_rate: options.limits.sign_rate,
        forwarder: options.forwarder,
        max_message_bytes: options.max_message_bytes,
    };
    let max = options.max_message_bytes;
    let router = tonic::transport::Server::builder()
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
        .add_service(AuditServer::new(api).max_encoding_message_size(usize::MAX));
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

/// Sets a `Cancel` when dropped: a call whose future is dropped (its
/// client went away, or tonic's deadline fired) stops its signing work.
struct StopOnDrop(Cancel);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// When a handler must answer to beat the caller's deadline: a little
/// before the `grpc-timeout` it sent (`1-8 digits` + H, M, S, m, u or n),
/// so that it answers DEADLINE_EXCEEDED itself before tonic's own timer
/// ends the call with CANCELLED.
fn answer_by(md: &tonic::metadata::MetadataMap, clock: &dyn Clock) -> Option<tokio::time::Instant> {
    let v = md.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => std::time::Duration::from_secs(n * 3600),
        "M" => std::time::Duration::from_secs(n * 60),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    };
    let margin = (timeout / 20).clamp(
        std::time::Duration::from_millis(1),
        std::time::Duration::from_millis(50),
    );
    Some(tokio::time::Instant::from_std(clock.instant()) + timeout.saturating_sub(margin))
}

#[derive(Clone)]
struct Api {
    service: Arc<ZoneService>,
    access: Arc<AccessControl>,
    plaintext: bool,
    limiter: Arc<Limiter>,
    /// For GetSigningParameters: the request size limit and the signing
    /// rate per caller.
    max_message_bytes: usize,
    sign_rate: u32,
    forwarder: Arc<Forwarder>,
}

impl Api {
    /// Who is calling: the names in its client certificate.
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Error> {
        if self.plaintext {
            return Ok(Caller {
                names: Vec::new(),
                plaintext: true,
            });
        }
        let certs = request
            .peer_certs()
            .ok_or_else(|| Error::Unauthenticated("no client certificate".into()))?;
        let names = certs
            .first()
            .map(|c| certificate_names(c.as_ref()))
            .unwrap_or_default();
        if names.is_empty() {
            return Err(Error::Unauthenticated(
                "the client certificate names no one (no SAN, no CN)".into(),
            ));
        }
        Ok(Caller {
            names,
            plaintext: false,
        })
    }

    /// Identifies the caller and checks its right; refusals are audited.
    async fn authorize<T>(
        &self,
        request: &Request<T>,
        right: Right,
        action: &str,
        zone: &str,
    ) -> Result<Caller, Status> {
        let direct = match self.caller(request) {
            Ok(c) => c,
            Err(e) => {
                self.service
                    .audit_refusal("unauthenticated", zone, action, &e.to_string())
                    .await;
                return Err(e.into());
            }
        };
        // A call forwarded by another node: only a node may speak for
        // someone else; the original caller's rights are then checked here.
        let caller = match forward::forwarded(request.metadata()).and_then(|f| match f {
            None => Ok(direct.clone()),
            Some((names, by)) => self.access.check(&direct, &Right::Peer).map(|_| {
                let mut all = vec![format!("{} via {by}", names[0])];
                all.extend(names);
                Caller {
                    names: all,
                    plaintext: direct.plaintext,
                }
            }),
        }) {
            Ok(c) => c,
            Err(e) => {
                self.service
                    .audit_refusal(direct.identity(), zone, action, &e.to_string())
                    .await;
                return Err(e.into());
            }
        };
        if let Err(e) = self.access.check(&caller, &right) {
            self.service
                .audit_refusal(caller.identity(), zone, action, &e.to_string())
                .await;
            tracing::info!(
                caller = caller.identity(),
                action,
                zone,
                "call refused: {e}"
            );
            return Err(e.into());
        }
        Ok(caller)
    }

    /// `authorize` for a call about one zone: the zone's name is checked
    /// first, so that an empty or malformed name is InvalidArgument (and
    /// audited, escaped) rather than a permission refusal.
    async fn authorize_zone<T>(
        &self,
        request: &Request<T>,
        right: Right,
        action: &str,
        zone: &str,
    ) -> Result<Caller, Status> {
        if let Err(e) = parse_zone_name(zone) {
            let who = self.caller(request).map(|c| c.identity().to_string());
            self.service
                .audit_refusal(
                    who.as_deref().unwrap_or("unauthenticated"),
                    zone,
                    action,
                    &e.to_string(),
                )
                .await;
            return Err(e.into());
        }
        self.authorize(request, right, action, zone).await
    }

    /// For a management call made here directly on a node that is not
    /// the zone's Key Master: a channel to the Key Master, to send the call
    /// on. None: run it here (this node is the Key Master, the zone is
    /// unknown, or the call was already forwarded once and must not travel
    /// again). A Key Master that is down is a refusal naming it.
    async fn key_master_channel<T>(
        &self,
        request: &Request<T>,
        caller: &Caller,
        action: &str,
        zone: &str,
    ) -> Result<Option<Channel>, Status> {
        if request.metadata().contains_key(forward::ON_BEHALF_OF) {
            return Ok(None);
        }
        let target = self.service.management_target(zone).await;
        match self.audited(caller, action, zone, target).await? {
            None => Ok(None),
            Some(node) => self.channel_to(&node, caller, action, zone).await.map(Some),
        }
    }

    async fn channel_to(
        &self,
        node: &crate::store::schema::NodeRecord,
        caller: &Caller,
        action: &str,
        zone: &str,
    ) -> Result<Channel, Status> {
        tracing::info!(
            caller = caller.identity(),
            action,
            zone,
            key_master = %node.node_id,
            "sending the call on to the Key Master"
        );
        let channel = self.forwarder.connect(node).await;
        self.audited(caller, action, zone, channel).await
    }

    /// Passes a result on, recording a refusal in the audit log.
    async fn audited<T>(
        &self,
        caller: &Caller,
        action: &str,
        zone: &str,
        result: Result<T, Error>,
    ) -> Result<T, Status> {
        if let Err(e) = &result {
            self.service
                .audit_refusal(caller.identity(), zone, action, &e.to_string())
                .await;
        }
        result.map_err(Status::from)
    }
}

#[tonic::async_trait]
impl Signer for Api {
    async fn sign_rrsets(
        &self,
        request: Request<proto::SignRrsetsRequest>,
    ) -> Result<Response<proto::SignRrsetsResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Sign(zone.clone()), "SignRrsets", &zone)
            .await?;
        let deadline = answer_by(request.metadata(), self.service.clock().as_ref());
        let r = request.into_inner();
        let n = r.rrsets.len();
        if let Err(e) = self.limiter.take_signatures(caller.identity(), n) {
            return self.audited(&caller, "SignRrsets", &zone, Err(e)).await;
        }
        let rrsets = r
            .rrsets
            .into_iter()
            .map(|s| {
                let rtype = u16::try_from(s.rtype).map_err(|_| {
                    Status::invalid_argument(format!("type {} is not a 16-bit number", s.rtype))
                })?;
                let records = s
                    .records
                    .into_iter()
                    .map(|d| {
                        Ok(WireRecord {
                            class: u16::try_from(d.rclass).map_err(|_| {
                                Status::invalid_argument(format!(
                                    "class {} is not a 16-bit number",
                                    d.rclass
                                ))
                            })?,
                            ttl: d.ttl,
                            rdata: d.rdata,
                        })
                    })
                    .collect::<Result<Vec<_>, Status>>()?;
                Ok(RrsetRequest {
                    owner: s.owner,
                    rtype,
                    records,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        // The workers stop at the next RRset when the caller goes away (this
        // future is dropped) or the deadline passes. tonic ends a call at its
        // grpc-timeout with CANCELLED; answering a little before, this
        // handler says DEADLINE_EXCEEDED, as gRPC has it.
        let cancel = Cancel::default();
        let _stop_on_drop = StopOnDrop(cancel.clone());
        let signing = self.service.sign_rrsets(
            &r.zone,
            rrsets,
            r.inception,
            r.expiration,
            r.include_text,
            cancel.clone(),
        );
        let signed = match deadline {
            None => signing.await,
            Some(at) => tokio::select! {
                r = signing => r,
                _ = tokio::time::sleep_until(at) => {
                    cancel.set();
                    Err(Error::DeadlineExceeded(format!(
                        "the call's deadline passed before {n} RRsets were signed; signing stopped"
                    )))
                }
            },
        };
        let signed = self.audited(&caller, "SignRrsets", &zone, signed).await?;
        Ok(Response::new(proto::SignRrsetsResponse {
            signatures: signed
                .into_iter()
                .enumerate()
                .map(|(i, sigs)| proto::RrsetSignatures {
                    index: i as u32,
                    rrsigs: sigs.into_iter().map(record_to_proto).collect(),
                })
                .collect(),
        }))
    }

    async fn get_dnskeys(
        &self,
        request: Request<proto::GetDnskeysRequest>,
    ) -> Result<Response<proto::GetDnskeysResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(
                &request,
                Right::ReadPublic(zone.clone()),
                "GetDnskeys",
                &zone,
            )
            .await?;
        let r = self.service.signed_dnskeys(caller.identity(), &zone).await;
        let (dnskeys, rrsigs) = self.audited(&caller, "GetDnskeys", &zone, r).await?;
        Ok(Response::new(proto::GetDnskeysResponse {
            dnskeys: dnskeys.into_iter().map(record_to_proto).collect(),
            rrsigs: rrsigs.into_iter().map(record_to_proto).collect(),
        }))
    }

    async fn get_cds(
        &self,
        request: Request<proto::GetCdsRequest>,
    ) -> Result<Response<proto::GetCdsResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::ReadPublic(zone.clone()), "GetCds", &zone)
            .await?;
        let r = self.service.signed_cds(caller.identity(), &zone).await;
        let signed = self.audited(&caller, "GetCds", &zone, r).await?;
        Ok(Response::new(proto::GetCdsResponse {
            cds: signed.cds.into_iter().map(record_to_proto).collect(),
            cdnskeys: signed.cdnskeys.into_iter().map(record_to_proto).collect(),
            rrsigs: signed.rrsigs.into_iter().map(record_to_proto).collect(),
        }))
    }

    async fn get_signing_parameters(
        &self,
        request: Request<proto::GetSigningParametersRequest>,
    ) -> Result<Response<proto::SigningParameters>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(
                &request,
                Right::ReadPublic(zone.clone()),
                "GetSigningParameters",
                &zone,
            )
            .await?;
        let r = self.service.signing_parameters(&zone).await;
        let p = self
            .audited(&caller, "GetSigningParameters", &zone, r)
            .await?;
        Ok(Response::new(signing_parameters_to_proto(
            p,
            self.max_message_bytes,
            self.sign_rate,
        )))
    }

    async fn get_ds(
        &self,
        request: Request<proto::GetDsRequest>,
    ) -> Result<Response<proto::GetDsResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::ReadPublic(zone.clone()), "GetDs", &zone)
            .await?;
        let r = request.into_inner();
        let digests = r
            .digests
            .iter()
            .map(|&n| {
                DsDigest::from_number(n).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "DS digest algorithm {n} is not supported (2 = SHA-256, 4 = SHA-384)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let result = self.service.ds(&r.zone, &digests).await;
        let (ds, dnskeys) = self.audited(&caller, "GetDs", &zone, result).await?;
        Ok(Response::new(proto::GetDsResponse {
            ds: ds.into_iter().map(record_to_proto).collect(),
            dnskeys: dnskeys.into_iter().map(record_to_proto).collect(),
        }))
    }
}

type SignZoneStream = ReceiverStream<Result<proto::SignZoneResponse, Status>>;

#[tonic::async_trait]
impl Zones for Api {
    async fn add_zone(
        &self,
        request: Request<proto::AddZoneRequest>,
    ) -> Result<Response<proto::ZoneSettings>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Manage, "AddZone", &zone)
            .await?;
        let key_master = request.get_ref().key_master.clone();
        if !key_master.is_empty() && key_master != self.service.node_id() {
            // The Key Master generates the keys, in its own token. A call
            // passed on once is not passed on again.
            let target = if request.metadata().contains_key(forward::ON_BEHALF_OF) {
                Err(Error::FailedPrecondition(format!(
                    "asked to make {key_master} the Key Master of {zone}, but this is node {}",
                    self.service.node_id()
                )))
            } else {
                self.service
                    .live_node(&key_master, "the Key Master asked for")
                    .await
            };
            let node = self.audited(&caller, "AddZone", &zone, target).await?;
            let channel = self.channel_to(&node, &caller, "AddZone", &zone).await?;
            return ZonesClient::new(channel)
                .add_zone(self.forwarder.request(request.into_inner(), &caller))
                .await;
        }
        let r = request.into_inner();
        let result = match policy_from_proto(r.policy) {
            Ok(policy) => {
                self.service
                    .add_zone(caller.identity(), &r.zone, policy)
                    .await
            }
            Err(e) => Err(e),
        };
        let view = self.audited(&caller, "AddZone", &zone, result).await?;
        Ok(Response::new(zone_to_proto(&view)))
    }

    async fn get_zone(
        &self,
        request: Request<proto::GetZoneRequest>,
    ) -> Result<Response<proto::ZoneSettings>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::ReadZone(zone.clone()), "GetZone", &zone)
            .await?;
        let result = self.service.get_zone(&zone).await;
        let view = self.audited(&caller, "GetZone", &zone, result).await?;
        Ok(Response::new(zone_to_proto(&view)))
    }

    async fn list_zones(
        &self,
        request: Request<proto::ListZonesRequest>,
    ) -> Result<Response<proto::ListZonesResponse>, Status> {
        let caller = self
            .authorize(&request, Right::ReadSome, "ListZones", "")
            .await?;
        let readable = self.access.readable_zones(&caller);
        let readable = self.audited(&caller, "ListZones", "", readable).await?;
        let result = self.service.list_zones().await;
        let zones = self.audited(&caller, "ListZones", "", result).await?;
        Ok(Response::new(proto::ListZonesResponse {
            zones: zones
                .iter()
                .filter(|z| readable.as_ref().is_none_or(|r| r.contains(&z.zone.name)))
                .map(zone_to_proto)
                .collect(),
        }))
    }

    async fn remove_zone(
        &self,
        request: Request<proto::RemoveZoneRequest>,
    ) -> Result<Response<proto::RemoveZoneResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Manage, "RemoveZone", &zone)
            .await?;
        if let Some(channel) = self
            .key_master_channel(&request, &caller, "RemoveZone", &zone)
            .await?
        {
            return ZonesClient::new(channel)
                .remove_zone(self.forwarder.request(request.into_inner(), &caller))
                .await;
        }
        let r = request.into_inner();
        let result = self
            .service
            .remove_zone(caller.identity(), &r.zone, r.force)
            .await;
        let n = self.audited(&caller, "RemoveZone", &zone, result).await?;
        Ok(Response::new(proto::RemoveZoneResponse {
            keys_destroyed: n as u32,
        }))
    }

    async fn list_keys(
        &self,
        request: Request<proto::ListKeysRequest>,
    ) -> Result<Response<proto::ListKeysResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::ReadZone(zone.clone()), "ListKeys", &zone)
            .await?;
        let result = self.service.list_keys(&zone).await;
        let keys = self.audited(&caller, "ListKeys", &zone, result).await?;
        Ok(Response::new(proto::ListKeysResponse {
            keys: keys.iter().map(key_to_proto).collect(),
        }))
    }

    async fn add_key(
        &self,
        request: Request<proto::AddKeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Manage, "AddKey", &zone)
            .await?;
        if let Some(channel) = self
            .key_master_channel(&request, &caller, "AddKey", &zone)
            .await?
        {
            return ZonesClient::new(channel)
                .add_key(self.forwarder.request(request.into_inner(), &caller))
                .await;
        }
        let r = request.into_inner();
        let result = match KeyRole::parse(&r.role) {
            Some(role) => {
                self.service
                    .add_key(caller.identity(), &r.zone, role, r.activate)
                    .await
            }
            None => Err(Error::InvalidArgument(format!(
                "role {:?} is not ksk or zsk",
                r.role
            ))),
        };
        let k = self.audited(&caller, "AddKey", &zone, result).await?;
        Ok(Response::new(key_to_proto(&k)))
    }

    async fn retire_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Manage, "RetireKey", &zone)
            .await?;
        if let Some(channel) = self
            .key_master_channel(&request, &caller, "RetireKey", &zone)
            .await?
        {
            return ZonesClient::new(channel)
                .retire_key(self.forwarder.request(request.into_inner(), &caller))
                .await;
        }
        let r = request.into_inner();
        let result = self
            .service
            .retire_key(caller.identity(), &r.zone, &r.key)
            .await;
        let k = self.audited(&caller, "RetireKey", &zone, result).await?;
        Ok(Response::new(key_to_proto(&k)))
    }

    async fn remove_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Manage, "RemoveKey", &zone)
            .await?;
        if let Some(channel) = self
            .key_master_channel(&request, &caller, "RemoveKey", &zone)
            .await?
        {
            return ZonesClient::new(channel)
                .remove_key(self.forwarder.request(request.into_inner(), &caller))
                .await;
        }
        let r = request.into_inner();
        let result = self
            .service
            .remove_key(caller.identity(), &r.zone, &r.key)
            .await;
        let k = self.audited(&caller, "RemoveKey", &zone, result).await?;
        Ok(Response::new(key_to_proto(&k)))
    }

    type SignZoneStream = SignZoneStream;

    async fn sign_zone(
        &self,
        request: Request<Streaming<proto::SignZoneRequest>>,
    ) -> Result<Response<SignZoneStream>, Status> {
        let caller = match self.caller(&request) {
            Ok(c) => c,
            Err(e) => {
                self.service
                    .audit_refusal("unauthenticated", "", "SignZone", &e.to_string())
                    .await;
                return Err(e.into());
            }
        };
        let mut input = request.into_inner();
        let start = match input.message().await? {
            Some(proto::SignZoneRequest {
                msg: Some(sign_zone_request::Msg::Start(s)),
            }) => s,
            _ => {
                return Err(Status::invalid_argument(
                    "the first SignZone message must be `start` naming the zone",
                ))
            }
        };
        if let Err(e) = parse_zone_name(&start.zone) {
            return self.audited(&caller, "SignZone", &start.zone, Err(e)).await;
        }
        if let Err(e) = self.access.check(&caller, &Right::Sign(start.zone.clone())) {
            return self.audited(&caller, "SignZone", &start.zone, Err(e)).await;
        }
        let slot = match self.limiter.open_stream(caller.identity()) {
            Ok(s) => s,
            Err(e) => return self.audited(&caller, "SignZone", &start.zone, Err(e)).await,
        };
        let prepared = self
            .service
            .zone_signing(&start.zone, start.inception, start.expiration)
            .await;
        let prepared = self
            .audited(&caller, "SignZone", &start.zone, prepared)
            .await?;
        let limit = self.service.limits().max_zone_bytes;
        let mut text: Vec<u8> = Vec::new();
        let mut size = 0usize;
        while let Some(m) = input.message().await? {
            match m.msg {
                Some(sign_zone_request::Msg::Chunk(c)) => {
                    size += c.len();
                    if size > limit {
                        let e = Error::ResourceExhausted(format!(
                            "zone file is over the limit of {limit} bytes (max_zone_bytes)"
                        ));
                        return self.audited(&caller, "SignZone", &start.zone, Err(e)).await;
                    }
                    text.extend_from_slice(&c);
                }
                _ => {
                    return Err(Status::invalid_argument(
                        "after `start`, SignZone messages must be `chunk`",
                    ))
                }
            }
        }
        let (tx, rx) = mpsc::channel(8);
        let service = self.service.clone();
        let who = caller.identity().to_string();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            // The stream slot is held until signing ends.
            let _slot = slot;
            let clock = service.clock().clone();
            let began = clock.instant();
            let send = |m: sign_zone_response::Msg| {
                tx.blocking_send(Ok(proto::SignZoneResponse { msg: Some(m) }))
                    .map_err(|_| "the client went away".to_string())
            };
            let mut emit = |chunk: Vec<u8>| send(sign_zone_response::Msg::Chunk(chunk));
            let mut last = clock.instant();
            let mut progress = |done: u64, total: u64| {
                // A few updates a second are enough for a progress bar.
                let now = clock.instant();
                if now.duration_since(last).as_millis() >= 200 || done == total {
                    last = now;
                    let _ = tx.try_send(Ok(proto::SignZoneResponse {
                        msg: Some(sign_zone_response::Msg::Progress(proto::SignZoneProgress {
                            signed_rrsets: done,
                            total_rrsets: total,
                        })),
                    }));
                }
            };
            let result = service.sign_zone_blocking(&prepared, &text, &mut emit, &mut progress);
            // A signed zone is a key event (ARCHITECTURE.md, Invariants 4); if it cannot be
            // recorded, the caller gets an error instead of the summary.
            let result = result.and_then(|stats| {
                runtime
                    .block_on(service.audit_event(
                        &who,
                        &start.zone,
                        "sign-zone",
                        format!(
                            "{} records in, {} RRSIGs; {}",
                            stats.records_in, stats.rrsigs, prepared.ksk_use
                        ),
                    ))
                    .map(|_| stats)
            });
            match result {
                Ok(stats) => {
                    tracing::info!(
                        zone = %start.zone,
                        records_in = stats.records_in,
                        rrsigs = stats.rrsigs,
                        seconds = clock.instant().duration_since(began).as_secs_f64(),
                        "zone signed"
                    );
                    let _ = send(sign_zone_response::Msg::Summary(proto::SignZoneSummary {
                        records_in: stats.records_in,
                        records_out: stats.records_out,
                        rrsigs: stats.rrsigs,
                        seconds: clock.instant().duration_since(began).as_secs_f64(),
                    }));
                }
                Err(e) => {
                    tracing::warn!(zone = %start.zone, error = %e, "zone not signed");
                    runtime.block_on(service.audit_refusal(
                        &who,
                        &start.zone,
                        "SignZone",
                        &e.to_string(),
                    ));
                    let _ = tx.blocking_send(Err(e.into()));
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[tonic::async_trait]
impl Audit for Api {
    async fn list_audit(
        &self,
        request: Request<proto::ListAuditRequest>,
    ) -> Result<Response<proto::ListAuditResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        // One zone's entries need the right to read that zone; the whole
        // log shows a reader with zones only the entries of its zones.
        let (caller, readable) = if zone.is_empty() {
            let caller = self
                .authorize(&request, Right::ReadSome, "ListAudit", "")
                .await?;
            let readable = self.access.readable_zones(&caller);
            let readable = self.audited(&caller, "ListAudit", "", readable).await?;
            (caller, readable)
        } else {
            let caller = self
                .authorize_zone(&request, Right::ReadZone(zone.clone()), "ListAudit", &zone)
                .await?;
            (caller, None)
        };
        let r = request.into_inner();
        let zone_filter = (!r.zone.is_empty()).then_some(r.zone.as_str());
        let result = self.service.read_audit(zone_filter, r.since).await;
        let entries = self.audited(&caller, "ListAudit", &zone, result).await?;
        Ok(Response::new(proto::ListAuditResponse {
            entries: entries
                .into_iter()
                .filter(|e| readable.as_ref().is_none_or(|r| r.contains(&e.zone)))
                .map(|e| proto::AuditEntry {
                    json: serde_json::to_string(&e).unwrap_or_default(),
                    seq: e.seq,
                    time: e.time,
                    node: e.node,
                    caller: e.caller,
                    zone: e.zone,
                    action: e.action,
                    outcome: e.outcome,
                    detail: e.detail,
                    prev: e.prev,
                    hash: e.hash,
                })
                .collect(),
        }))
    }

    async fn verify_audit(
        &self,
        request: Request<proto::VerifyAuditRequest>,
    ) -> Result<Response<proto::VerifyAuditResponse>, Status> {
        let caller = self
            .authorize(&request, Right::Read, "VerifyAudit", "")
            .await?;
        let result = self.service.verify_audit().await;
        let (n, broken) = self.audited(&caller, "VerifyAudit", "", result).await?;
        Ok(Response::new(proto::VerifyAuditResponse {
            intact: broken.is_none(),
            entries: n as u64,
            first_bad_seq: broken.as_ref().map_or(0, |b| b.seq),
            reason: broken.map(|b| b.reason).unwrap_or_default(),
        }))
    }
}

fn node_to_proto(n: crate::store::schema::NodeRecord, online: bool) -> proto::Node {
    proto::Node {
        node_id: n.node_id,
        address: n.address,
        token_label: n.token_label,
        token_serial: n.token_serial,
        algorithms: n.algorithms.into_iter().map(u32::from).collect(),
        online,
        last_seen: n.last_seen,
    }
}

fn role_to_proto(z: &crate::store::schema::ZoneRecord, online: bool) -> proto::RoleInfo {
    proto::RoleInfo {
        zone: z.name.clone(),
        key_master: z.key_master.clone(),
        online,
        epoch: z.epoch,
        since: z.key_master_since,
        needs_rekey: z.needs_rekey,
    }
}

#[tonic::async_trait]
impl KeyMaster for Api {
    async fn list_nodes(
        &self,
        request: Request<proto::ListNodesRequest>,
    ) -> Result<Response<proto::ListNodesResponse>, Status> {
        let caller = self
            .authorize(&request, Right::Read, "ListNodes", "")
            .await?;
        let result = self.service.list_nodes().await;
        let nodes = self.audited(&caller, "ListNodes", "", result).await?;
        Ok(Response::new(proto::ListNodesResponse {
            nodes: nodes
                .into_iter()
                .map(|(n, online)| node_to_proto(n, online))
                .collect(),
        }))
    }

    async fn show_role(
        &self,
        request: Request<proto::RoleRequest>,
    ) -> Result<Response<proto::RoleInfo>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::ReadZone(zone.clone()), "ShowRole", &zone)
            .await?;
        let result = self.service.role_show(&zone).await;
        let role = self.audited(&caller, "ShowRole", &zone, result).await?;
        Ok(Response::new(role_to_proto(&role.zone, role.online)))
    }

    async fn candidates(
        &self,
        request: Request<proto::RoleRequest>,
    ) -> Result<Response<proto::CandidatesResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::ReadZone(zone.clone()), "Candidates", &zone)
            .await?;
        let result = self.service.candidates(&zone).await;
        let candidates = self.audited(&caller, "Candidates", &zone, result).await?;
        Ok(Response::new(proto::CandidatesResponse {
            candidates: candidates
                .into_iter()
                .map(|c| proto::Candidate {
                    node: Some(node_to_proto(c.node, c.online)),
                    reason: c.reason.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn transfer(
        &self,
        request: Request<proto::MoveRoleRequest>,
    ) -> Result<Response<proto::RoleInfo>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Manage, "Transfer", &zone)
            .await?;
        let r = request.into_inner();
        let result = self
            .service
            .transfer(caller.identity(), &r.zone, &r.to)
            .await;
        let moved = self.audited(&caller, "Transfer", &zone, result).await?;
        Ok(Response::new(role_to_proto(&moved, true)))
    }

    async fn rekey(
        &self,
        request: Request<proto::RoleRequest>,
    ) -> Result<Response<proto::RekeyResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Manage, "Rekey", &zone)
            .await?;
        if let Some(channel) = self
            .key_master_channel(&request, &caller, "Rekey", &zone)
            .await?
        {
            return KeyMasterClient::new(channel)
                .rekey(self.forwarder.request(request.into_inner(), &caller))
                .await;
        }
        let result = self.service.rekey(caller.identity(), &zone).await;
        let keys = self.audited(&caller, "Rekey", &zone, result).await?;
        let (ds, _) = self.service.ds(&zone, &[]).await?;
        Ok(Response::new(proto::RekeyResponse {
            keys: keys.iter().map(key_to_proto).collect(),
            ds: ds.into_iter().map(record_to_proto).collect(),
        }))
    }

    async fn missing_keys(
        &self,
        request: Request<proto::MissingKeysRequest>,
    ) -> Result<Response<proto::MissingKeysResponse>, Status> {
        let caller = self
            .authorize(&request, Right::Peer, "MissingKeys", "")
            .await?;
        let result = self
            .service
            .missing_keys(request.into_inner().key_ids)
            .await;
        let missing = self.audited(&caller, "MissingKeys", "", result).await?;
        Ok(Response::new(proto::MissingKeysResponse { missing }))
    }

    async fn release(
        &self,
        request: Request<proto::ReleaseRequest>,
    ) -> Result<Response<proto::ReleaseResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Peer, "Release", &zone)
            .await?;
        let r = request.into_inner();
        let result = self.service.release(&r.zone, r.epoch, &r.to).await;
        self.audited(&caller, "Release", &zone, result).await?;
        Ok(Response::new(proto::ReleaseResponse {}))
    }

    async fn seize(
        &self,
        request: Request<proto::MoveRoleRequest>,
    ) -> Result<Response<proto::RoleInfo>, Status> {
        let zone = request.get_ref().zone.clone();
        let caller = self
            .authorize_zone(&request, Right::Manage, "Seize", &zone)
            .await?;
        let r = request.into_inner();
        let result = self
            .service
            .seize(caller.identity(), &r.zone, &r.to, r.force)
            .await;
        let moved = self.audited(&caller, "Seize", &zone, result).await?;
        Ok(Response::new(role_to_proto(&moved, true)))
    }
}
