//! The Signer service: what DNS servers call.

use tonic::{Request, Response, Status};

use super::context::Api;
use super::convert::{record_to_proto, signing_parameters_to_proto};
use super::serve::Arrived;
use crate::auth::Right;
use crate::dnssec::ds::DsDigest;
use crate::dnssec::rrset::WireRecord;
use crate::error::{Error, RequestError, SigningError};
use crate::proto;
use crate::proto::signer_server::Signer;
use crate::signing::{Cancel, RrsetRequest};

/// Sets a `Cancel` when dropped: a call whose future is dropped (its
/// client went away, or tonic's deadline fired) stops its signing work.
struct StopOnDrop(Cancel);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// When a handler must answer to beat the caller's deadline: a fifth
/// before the `grpc-timeout` it sent (1-8 digits and H, M, S, m, u or n),
/// counted from the request's arrival, so that it answers
/// DEADLINE_EXCEEDED itself before tonic's own timer ends the call with
/// CANCELLED.
fn answer_by<T>(
    request: &Request<T>,
    clock: &dyn crate::clock::Clock,
) -> Option<tokio::time::Instant> {
    use std::time::Duration;
    let arrived = request
        .extensions()
        .get::<Arrived>()
        .map_or_else(|| clock.instant(), |a| a.0);
    let v = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    };
    // A loaded host takes tens of milliseconds to send the answer: the
    // margin leaves it that, up to half a second.
    let margin = (timeout / 5).clamp(Duration::from_millis(20), Duration::from_millis(500));
    Some(tokio::time::Instant::from_std(arrived) + timeout.saturating_sub(margin))
}

fn u16_field(field: &'static str, value: u32) -> Result<u16, RequestError> {
    u16::try_from(value).map_err(|_| RequestError::NotU16 { field, value })
}

/// The RRsets of a request in the service's form.
fn rrsets_of(rrsets: Vec<proto::Rrset>) -> Result<Vec<RrsetRequest>, RequestError> {
    rrsets
        .into_iter()
        .map(|s| {
            let records = s
                .records
                .into_iter()
                .map(|d| {
                    Ok(WireRecord {
                        class: u16_field("rrsets.records.rclass", d.rclass)?,
                        ttl: d.ttl,
                        rdata: d.rdata,
                    })
                })
                .collect::<Result<Vec<_>, RequestError>>()?;
            Ok(RrsetRequest {
                owner: s.owner,
                rtype: u16_field("rrsets.rtype", s.rtype)?,
                records,
            })
        })
        .collect()
}

/// How often a key-set watch reads the store again for changes other
/// nodes made (this node's own changes wake it at once).
const KEY_SET_POLL: std::time::Duration = std::time::Duration::from_secs(1);

type KeySetStream = tokio_stream::wrappers::ReceiverStream<Result<proto::KeySetUpdate, Status>>;

fn key_set_update(v: crate::signing::KeySetView) -> proto::KeySetUpdate {
    proto::KeySetUpdate {
        dnskeys: v.dnskeys.into_iter().map(record_to_proto).collect(),
        zsk_tags: v.zsks.into_iter().map(u32::from).collect(),
        ksk_tags: v.ksks.into_iter().map(u32::from).collect(),
        cds: v.cds.into_iter().map(record_to_proto).collect(),
        cdnskeys: v.cdnskeys.into_iter().map(record_to_proto).collect(),
    }
}

#[tonic::async_trait]
impl Signer for Api {
    type WatchKeySetStream = KeySetStream;

    async fn watch_key_set(
        &self,
        request: Request<proto::WatchKeySetRequest>,
    ) -> Result<Response<KeySetStream>, Status> {
        let zone = request.get_ref().zone.clone();
        let (caller, name) = self
            .authorize_zone(
                &request,
                Right::ReadPublic(zone.clone()),
                "WatchKeySet",
                &zone,
            )
            .await?;
        let first = self.services.signing.key_set_view(&name).await;
        let first = self.audited(&caller, "WatchKeySet", &zone, first).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let services = self.services.clone();
        tokio::spawn(async move {
            let mut last = first.clone();
            if tx.send(Ok(key_set_update(first))).await.is_err() {
                return;
            }
            loop {
                services.signing.key_sets_changed(KEY_SET_POLL).await;
                if tx.is_closed() {
                    return;
                }
                match services.signing.key_set_view(&name).await {
                    Ok(v) if !v.same(&last) => {
                        last = v.clone();
                        if tx.send(Ok(key_set_update(v))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // The zone removed, say: the watch ends with the reason.
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn sign_rrsets(
        &self,
        request: Request<proto::SignRrsetsRequest>,
    ) -> Result<Response<proto::SignRrsetsResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        let (caller, name) = self
            .authorize_zone(&request, Right::Sign(zone.clone()), "SignRrsets", &zone)
            .await?;
        let deadline = answer_by(&request, self.services.node.clock.as_ref());
        let r = request.into_inner();
        let total = r.rrsets.len();
        let taken = self.limiter.take_signatures(caller.identity(), total);
        self.audited(&caller, "SignRrsets", &zone, taken).await?;
        let rrsets = rrsets_of(r.rrsets);
        let rrsets = self.audited(&caller, "SignRrsets", &zone, rrsets).await?;
        // The workers stop at the next RRset when the caller goes away (this
        // future is dropped) or the deadline passes.
        let cancel = Cancel::default();
        let _stop_on_drop = StopOnDrop(cancel.clone());
        let signing = self.services.signing.sign_rrsets(
            &name,
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
                    // Answer now; the refusal is recorded after (a store
                    // write must not push the answer past the deadline).
                    let e = Error::from(SigningError::Deadline { total });
                    let (node, who, reason) =
                        (self.services.node.clone(), caller.identity().to_string(), e.to_string());
                    let id = crate::audit::request_id();
                    tokio::spawn(crate::audit::with_request_id(id, async move {
                        node.audit_refusal(&who, &r.zone, "SignRrsets", &reason).await
                    }));
                    return Err(e.into());
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
        self.answer(
            request,
            Right::ReadPublic(zone.clone()),
            "GetDnskeys",
            &zone,
            async |caller, name, _| {
                let signing = &self.services.signing;
                let (dnskeys, rrsigs) = signing.signed_dnskeys(caller.identity(), name).await?;
                Ok(proto::GetDnskeysResponse {
                    dnskeys: dnskeys.into_iter().map(record_to_proto).collect(),
                    rrsigs: rrsigs.into_iter().map(record_to_proto).collect(),
                    last_known_at: signing.last_known_since(name).unwrap_or(0),
                })
            },
        )
        .await
    }

    async fn get_cds(
        &self,
        request: Request<proto::GetCdsRequest>,
    ) -> Result<Response<proto::GetCdsResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::ReadPublic(zone.clone()),
            "GetCds",
            &zone,
            async |caller, name, _| {
                let signed = self
                    .services
                    .signing
                    .signed_cds(caller.identity(), name)
                    .await?;
                let signing = &self.services.signing;
                Ok(proto::GetCdsResponse {
                    cds: signed.cds.into_iter().map(record_to_proto).collect(),
                    cdnskeys: signed.cdnskeys.into_iter().map(record_to_proto).collect(),
                    rrsigs: signed.rrsigs.into_iter().map(record_to_proto).collect(),
                    last_known_at: signing.last_known_since(name).unwrap_or(0),
                })
            },
        )
        .await
    }

    async fn get_signing_parameters(
        &self,
        request: Request<proto::GetSigningParametersRequest>,
    ) -> Result<Response<proto::SigningParameters>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::ReadPublic(zone.clone()),
            "GetSigningParameters",
            &zone,
            async |_, name, _| {
                let p = self.services.signing.signing_parameters(name).await?;
                Ok(signing_parameters_to_proto(
                    p,
                    self.max_message_bytes,
                    self.sign_rate,
                ))
            },
        )
        .await
    }

    async fn get_ds(
        &self,
        request: Request<proto::GetDsRequest>,
    ) -> Result<Response<proto::GetDsResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::ReadPublic(zone.clone()),
            "GetDs",
            &zone,
            async |_, name, r| {
                let digests = r
                    .digests
                    .iter()
                    .map(|&n| DsDigest::from_number(n).ok_or(RequestError::Digest(n)))
                    .collect::<Result<Vec<_>, RequestError>>()?;
                let signing = &self.services.signing;
                let (ds, dnskeys) = signing.ds(name, &digests).await?;
                Ok::<_, Error>(proto::GetDsResponse {
                    ds: ds.into_iter().map(record_to_proto).collect(),
                    dnskeys: dnskeys.into_iter().map(record_to_proto).collect(),
                    last_known_at: signing.last_known_since(name).unwrap_or(0),
                })
            },
        )
        .await
    }
}
