//! The Signer and Zones services: thin handlers over the zone service.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{key_to_proto, policy_from_proto, record_to_proto, zone_to_proto};
use crate::dnssec::ds::DsDigest;
use crate::dnssec::rrset::WireRecord;
use crate::dnssec::KeyRole;
use crate::proto::signer_server::{Signer, SignerServer};
use crate::proto::zones_server::{Zones, ZonesServer};
use crate::proto::{self, sign_zone_request, sign_zone_response};
use crate::zone::service::{RrsetRequest, ZoneService};

/// Transport settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Largest request message, bytes.
    pub max_message_bytes: usize,
}

/// Serves both services on `listener` until `shutdown` completes.
pub async fn serve(
    service: Arc<ZoneService>,
    listener: tokio::net::TcpListener,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let api = Api { service };
    let max = options.max_message_bytes;
    tonic::transport::Server::builder()
        .add_service(
            SignerServer::new(api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            ZonesServer::new(api)
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        // Request/response traffic: without TCP_NODELAY, Nagle and delayed ACKs
        // add tens of milliseconds to every answer.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

#[derive(Clone)]
struct Api {
    service: Arc<ZoneService>,
}

#[tonic::async_trait]
impl Signer for Api {
    async fn sign_rrsets(
        &self,
        request: Request<proto::SignRrsetsRequest>,
    ) -> Result<Response<proto::SignRrsetsResponse>, Status> {
        let r = request.into_inner();
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
        let signed = self
            .service
            .sign_rrsets(&r.zone, rrsets, r.inception, r.expiration, r.include_text)
            .await?;
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
        let (dnskeys, rrsigs) = self
            .service
            .signed_dnskeys(&request.into_inner().zone)
            .await?;
        Ok(Response::new(proto::GetDnskeysResponse {
            dnskeys: dnskeys.into_iter().map(record_to_proto).collect(),
            rrsigs: rrsigs.into_iter().map(record_to_proto).collect(),
        }))
    }

    async fn get_ds(
        &self,
        request: Request<proto::GetDsRequest>,
    ) -> Result<Response<proto::GetDsResponse>, Status> {
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
        let (ds, dnskeys) = self.service.ds(&r.zone, &digests).await?;
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
        let r = request.into_inner();
        let policy = policy_from_proto(r.policy)?;
        let view = self.service.add_zone(&r.zone, policy).await?;
        Ok(Response::new(zone_to_proto(&view)))
    }

    async fn get_zone(
        &self,
        request: Request<proto::GetZoneRequest>,
    ) -> Result<Response<proto::ZoneSettings>, Status> {
        let view = self.service.get_zone(&request.into_inner().zone).await?;
        Ok(Response::new(zone_to_proto(&view)))
    }

    async fn list_zones(
        &self,
        _request: Request<proto::ListZonesRequest>,
    ) -> Result<Response<proto::ListZonesResponse>, Status> {
        let zones = self.service.list_zones().await?;
        Ok(Response::new(proto::ListZonesResponse {
            zones: zones.iter().map(zone_to_proto).collect(),
        }))
    }

    async fn remove_zone(
        &self,
        request: Request<proto::RemoveZoneRequest>,
    ) -> Result<Response<proto::RemoveZoneResponse>, Status> {
        let r = request.into_inner();
        let n = self.service.remove_zone(&r.zone, r.force).await?;
        Ok(Response::new(proto::RemoveZoneResponse {
            keys_destroyed: n as u32,
        }))
    }

    async fn list_keys(
        &self,
        request: Request<proto::ListKeysRequest>,
    ) -> Result<Response<proto::ListKeysResponse>, Status> {
        let keys = self.service.list_keys(&request.into_inner().zone).await?;
        Ok(Response::new(proto::ListKeysResponse {
            keys: keys.iter().map(key_to_proto).collect(),
        }))
    }

    async fn add_key(
        &self,
        request: Request<proto::AddKeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let r = request.into_inner();
        let role = KeyRole::parse(&r.role).ok_or_else(|| {
            Status::invalid_argument(format!("role {:?} is not ksk or zsk", r.role))
        })?;
        let k = self.service.add_key(&r.zone, role, r.activate).await?;
        Ok(Response::new(key_to_proto(&k)))
    }

    async fn retire_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let r = request.into_inner();
        let k = self.service.retire_key(&r.zone, &r.key).await?;
        Ok(Response::new(key_to_proto(&k)))
    }

    async fn remove_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let r = request.into_inner();
        let k = self.service.remove_key(&r.zone, &r.key).await?;
        Ok(Response::new(key_to_proto(&k)))
    }

    type SignZoneStream = SignZoneStream;

    async fn sign_zone(
        &self,
        request: Request<Streaming<proto::SignZoneRequest>>,
    ) -> Result<Response<SignZoneStream>, Status> {
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
        let prepared = self
            .service
            .zone_signing(&start.zone, start.inception, start.expiration)
            .await?;
        let limit = self.service.limits().max_zone_bytes;
        let mut text: Vec<u8> = Vec::new();
        let mut size = 0usize;
        while let Some(m) = input.message().await? {
            match m.msg {
                Some(sign_zone_request::Msg::Chunk(c)) => {
                    size += c.len();
                    if size > limit {
                        return Err(Status::resource_exhausted(format!(
                            "zone file is over the limit of {limit} bytes (max_zone_bytes)"
                        )));
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
        tokio::task::spawn_blocking(move || {
            let began = Instant::now();
            let send = |m: sign_zone_response::Msg| {
                tx.blocking_send(Ok(proto::SignZoneResponse { msg: Some(m) }))
                    .map_err(|_| "the client went away".to_string())
            };
            let mut emit = |chunk: Vec<u8>| send(sign_zone_response::Msg::Chunk(chunk));
            let mut last = Instant::now();
            let mut progress = |done: u64, total: u64| {
                // A few updates a second are enough for a progress bar.
                if last.elapsed().as_millis() >= 200 || done == total {
                    last = Instant::now();
                    let _ = tx.try_send(Ok(proto::SignZoneResponse {
                        msg: Some(sign_zone_response::Msg::Progress(proto::SignZoneProgress {
                            signed_rrsets: done,
                            total_rrsets: total,
                        })),
                    }));
                }
            };
            match service.sign_zone_blocking(&prepared, &text, &mut emit, &mut progress) {
                Ok(stats) => {
                    tracing::info!(
                        zone = %start.zone,
                        records_in = stats.records_in,
                        rrsigs = stats.rrsigs,
                        seconds = began.elapsed().as_secs_f64(),
                        "zone signed"
                    );
                    let _ = send(sign_zone_response::Msg::Summary(proto::SignZoneSummary {
                        records_in: stats.records_in,
                        records_out: stats.records_out,
                        rrsigs: stats.rrsigs,
                        seconds: began.elapsed().as_secs_f64(),
                    }));
                }
                Err(e) => {
                    tracing::warn!(zone = %start.zone, error = %e, "zone not signed");
                    let _ = tx.blocking_send(Err(e.into()));
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
