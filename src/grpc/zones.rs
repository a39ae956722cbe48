//! The Zones service: what operators call to manage zones and keys, and
//! whole-zone signing.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::context::Api;
use super::convert::{
    apply_fields, delegation_to_proto, key_to_proto, keys_to_proto, policy_from_proto,
    zone_status_to_proto, zone_to_proto,
};
use super::forward;
use super::limits::StreamSlot;
use crate::auth::{Caller, Right};
use crate::dnssec::zone::ZoneStats;
use crate::dnssec::KeyRole;
use crate::error::{Error, LimitError, RequestError, RoleError};
use crate::node::ZoneName;
use crate::proto::zones_client::ZonesClient;
use crate::proto::zones_server::Zones;
use crate::proto::{self, sign_zone_request, sign_zone_response};
use crate::signing::ZoneSigning;

type SignZoneStream = ReceiverStream<Result<proto::SignZoneResponse, Status>>;

#[tonic::async_trait]
impl Zones for Api {
    async fn add_zone(
        &self,
        request: Request<proto::AddZoneRequest>,
    ) -> Result<Response<proto::ZoneSettings>, Status> {
        let zone = request.get_ref().zone.clone();
        let key_master = request.get_ref().key_master.clone();
        if key_master.is_empty() || key_master == self.services.node.id {
            return self
                .answer(
                    request,
                    Right::Manage,
                    "AddZone",
                    &zone,
                    async |caller, name, r| {
                        // The fields named are taken as given (0 is a
                        // value), as `zone set` takes them.
                        let policy = match r.fields.is_empty() {
                            true => policy_from_proto(r.policy)?,
                            false => apply_fields(
                                &crate::policy::Policy::default(),
                                &r.policy.unwrap_or_default(),
                                &r.fields,
                            )?,
                        };
                        let zones = &self.services.zones;
                        let view = zones.add_zone(caller.identity(), name, policy).await?;
                        self.services.lifecycle.wake(&view.zone.name);
                        Ok::<_, Error>(zone_to_proto(&view))
                    },
                )
                .await;
        }
        // The Key Master generates the keys, in its own token: the call goes
        // to the node named. A call passed on once is not passed on again.
        let (caller, _) = self
            .authorize_zone(&request, Right::Manage, "AddZone", &zone)
            .await?;
        let target = if request.metadata().contains_key(forward::ON_BEHALF_OF) {
            Err(RoleError::WrongNode {
                zone: zone.clone(),
                asked: key_master,
                node: self.services.node.id.clone(),
            }
            .into())
        } else {
            self.services
                .mastership
                .live_node(&key_master, "the Key Master asked for")
                .await
        };
        let node = self.audited(&caller, "AddZone", &zone, target).await?;
        let channel = self.channel_to(&node, &caller, "AddZone", &zone).await?;
        ZonesClient::new(channel)
            .add_zone(self.forwarder.request(request.into_inner(), &caller))
            .await
    }

    async fn get_zone(
        &self,
        request: Request<proto::GetZoneRequest>,
    ) -> Result<Response<proto::ZoneSettings>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::ReadZone(zone.clone()),
            "GetZone",
            &zone,
            async |_, name, _| Ok(zone_to_proto(&self.services.zones.get_zone(name).await?)),
        )
        .await
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
        let result = self.services.zones.list_zones().await;
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
        self.manage(
            request,
            "RemoveZone",
            &zone,
            async |ch, req| ZonesClient::new(ch).remove_zone(req).await,
            async |caller, name, r| {
                let zones = &self.services.zones;
                let n = zones.remove_zone(caller.identity(), name, r.force).await?;
                Ok(proto::RemoveZoneResponse {
                    keys_destroyed: n as u32,
                })
            },
        )
        .await
    }

    async fn list_keys(
        &self,
        request: Request<proto::ListKeysRequest>,
    ) -> Result<Response<proto::ListKeysResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::ReadZone(zone.clone()),
            "ListKeys",
            &zone,
            async |_, name, _| {
                let (zone, keys, last_known_at) = self.services.inventory.zone_keys(name).await?;
                let now = self.services.node.clock.now();
                Ok(proto::ListKeysResponse {
                    keys: keys_to_proto(&zone, &keys, now),
                    last_known_at: last_known_at.unwrap_or(0),
                })
            },
        )
        .await
    }

    async fn add_key(
        &self,
        request: Request<proto::AddKeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "AddKey",
            &zone,
            async |ch, req| ZonesClient::new(ch).add_key(req).await,
            async |caller, name, r| {
                let role =
                    KeyRole::parse(&r.role).ok_or(RequestError::Role(format!("{:?}", r.role)))?;
                let inventory = &self.services.inventory;
                let k = inventory
                    .add_key(caller.identity(), name, role, r.activate)
                    .await?;
                Ok::<_, Error>(key_to_proto(&k))
            },
        )
        .await
    }

    async fn retire_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "RetireKey",
            &zone,
            async |ch, req| ZonesClient::new(ch).retire_key(req).await,
            async |caller, name, r| {
                let inventory = &self.services.inventory;
                let k = inventory
                    .retire_key(caller.identity(), name, &r.key, r.force)
                    .await?;
                Ok(key_to_proto(&k))
            },
        )
        .await
    }

    async fn remove_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "RemoveKey",
            &zone,
            async |ch, req| ZonesClient::new(ch).remove_key(req).await,
            async |caller, name, r| {
                let inventory = &self.services.inventory;
                let k = inventory
                    .remove_key(caller.identity(), name, &r.key, r.force)
                    .await?;
                Ok(key_to_proto(&k))
            },
        )
        .await
    }

    async fn set_zone(
        &self,
        request: Request<proto::SetZoneRequest>,
    ) -> Result<Response<proto::ZoneSettings>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "SetZone",
            &zone,
            async |ch, req| ZonesClient::new(ch).set_zone(req).await,
            async |caller, name, r| {
                let current = self.services.node.zone(name).await?.zone;
                let asked = r.policy.unwrap_or_default();
                let policy = apply_fields(&current.policy, &asked, &r.fields)?;
                let zones = &self.services.zones;
                let view = zones.set_policy(caller.identity(), name, policy).await?;
                self.services.lifecycle.wake(&view.zone.name);
                Ok::<_, Error>(zone_to_proto(&view))
            },
        )
        .await
    }

    async fn roll_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "RollKey",
            &zone,
            async |ch, req| ZonesClient::new(ch).roll_key(req).await,
            async |caller, name, r| {
                let lifecycle = &self.services.lifecycle;
                let k = lifecycle.roll_key(caller.identity(), name, &r.key).await?;
                // The answer says the roll: the key with its rollover
                // status (RollStarted, Queued, …) as the zone has it now.
                let (zone, keys, _) = self.services.inventory.zone_keys(name).await?;
                let now = self.services.node.clock.now();
                Ok(keys_to_proto(&zone, &keys, now)
                    .into_iter()
                    .find(|p| p.id == k.id)
                    .unwrap_or_else(|| key_to_proto(&k)))
            },
        )
        .await
    }

    async fn step_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "StepKey",
            &zone,
            async |ch, req| ZonesClient::new(ch).step_key(req).await,
            async |caller, name, r| {
                let lifecycle = &self.services.lifecycle;
                let k = lifecycle.step_key(caller.identity(), name, &r.key).await?;
                Ok(key_to_proto(&k))
            },
        )
        .await
    }

    async fn revoke_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Key>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "RevokeKey",
            &zone,
            async |ch, req| ZonesClient::new(ch).revoke_key(req).await,
            async |caller, name, r| {
                let lifecycle = &self.services.lifecycle;
                let k = lifecycle
                    .revoke_key(caller.identity(), name, &r.key)
                    .await?;
                Ok(key_to_proto(&k))
            },
        )
        .await
    }

    async fn pause_zone(
        &self,
        request: Request<proto::PauseZoneRequest>,
    ) -> Result<Response<proto::ZoneSettings>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "PauseZone",
            &zone,
            async |ch, req| ZonesClient::new(ch).pause_zone(req).await,
            async |caller, name, r| {
                let lifecycle = &self.services.lifecycle;
                lifecycle
                    .set_paused(caller.identity(), name, r.paused)
                    .await?;
                Ok(zone_to_proto(&self.services.zones.get_zone(name).await?))
            },
        )
        .await
    }

    async fn set_zone_source(
        &self,
        request: Request<proto::SetZoneSourceRequest>,
    ) -> Result<Response<proto::ZoneStatus>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "SetZoneSource",
            &zone,
            async |ch, req| ZonesClient::new(ch).set_zone_source(req).await,
            async |caller, name, r| {
                let publisher = &self.services.publisher;
                let asked = crate::publish::SourceSettings {
                    source_file: r.source_file,
                    source_primary: r.source_primary,
                    out_file: r.out_file,
                    secondaries: r.secondaries,
                    serial_policy: r.serial_policy,
                    tsig_key: r.tsig_key,
                    source_tsig_key: r.source_tsig_key,
                };
                let since = self.services.node.clock.now();
                publisher
                    .set_source(caller.identity(), name, &asked)
                    .await?;
                // A small zone is signed and published within a moment:
                // the answer shows it (a large one shows "not yet").
                publisher
                    .settled(name, since, std::time::Duration::from_secs(5))
                    .await;
                Ok::<_, Error>(zone_status_to_proto(&publisher.status(name).await?))
            },
        )
        .await
    }

    async fn reload_zone(
        &self,
        request: Request<proto::ZoneStatusRequest>,
    ) -> Result<Response<proto::ZoneStatus>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "ReloadZone",
            &zone,
            async |ch, req| ZonesClient::new(ch).reload_zone(req).await,
            async |_, name, _| {
                let publisher = &self.services.publisher;
                publisher.reload(name);
                Ok::<_, Error>(zone_status_to_proto(&publisher.status(name).await?))
            },
        )
        .await
    }

    async fn review_version(
        &self,
        request: Request<proto::ReviewVersionRequest>,
    ) -> Result<Response<proto::ZoneStatus>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "ReviewVersion",
            &zone,
            async |ch, req| ZonesClient::new(ch).review_version(req).await,
            async |caller, name, r| {
                let publisher = &self.services.publisher;
                publisher.review_version(name, r.serial, r.approve, caller.identity())?;
                publisher
                    .settled(name, 0, std::time::Duration::from_secs(2))
                    .await;
                Ok::<_, Error>(zone_status_to_proto(&publisher.status(name).await?))
            },
        )
        .await
    }

    async fn get_zone_status(
        &self,
        request: Request<proto::ZoneStatusRequest>,
    ) -> Result<Response<proto::ZoneStatus>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::ReadZone(zone.clone()),
            "GetZoneStatus",
            &zone,
            async |_, name, _| {
                let status = self.services.publisher.status(name).await?;
                Ok(zone_status_to_proto(&status))
            },
        )
        .await
    }

    async fn unsign_zone(
        &self,
        request: Request<proto::UnsignZoneRequest>,
    ) -> Result<Response<proto::ZoneSettings>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "UnsignZone",
            &zone,
            async |ch, req| ZonesClient::new(ch).unsign_zone(req).await,
            async |caller, name, r| {
                use crate::lifecycle::unsign::UnsignAsk;
                let ask = match (r.ds_gone, r.cancel) {
                    (true, _) => UnsignAsk::DsGone,
                    (_, true) => UnsignAsk::Cancel,
                    _ => UnsignAsk::Start {
                        remove_keys: r.remove_keys,
                    },
                };
                let lifecycle = &self.services.lifecycle;
                lifecycle.unsign(caller.identity(), name, ask).await?;
                Ok(zone_to_proto(&self.services.zones.get_zone(name).await?))
            },
        )
        .await
    }

    async fn add_delegation(
        &self,
        request: Request<proto::AddDelegationRequest>,
    ) -> Result<Response<proto::Delegation>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "AddDelegation",
            &zone,
            async |ch, req| ZonesClient::new(ch).add_delegation(req).await,
            async |caller, name, r| {
                let asked = crate::children::DelegationSettings {
                    child: ZoneName::parse(&r.child)?,
                    servers: r.servers,
                    ds: r.ds,
                    ds_ttl: r.ds_ttl,
                    allow_delete: r.allow_delete,
                    poll_period: r.poll_period,
                    insecure: r.insecure,
                    force: r.force,
                    keep_ds: r.keep_ds,
                    bootstrap: r.bootstrap,
                };
                let d = self
                    .services
                    .children
                    .add(caller.identity(), name, &asked)
                    .await?;
                Ok::<_, Error>(delegation_to_proto(&d))
            },
        )
        .await
    }

    async fn remove_delegation(
        &self,
        request: Request<proto::DelegationRequest>,
    ) -> Result<Response<proto::Delegation>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "RemoveDelegation",
            &zone,
            async |ch, req| ZonesClient::new(ch).remove_delegation(req).await,
            async |caller, name, r| {
                let children = &self.services.children;
                let d = children
                    .remove(caller.identity(), name, &ZoneName::parse(&r.child)?)
                    .await?;
                Ok::<_, Error>(delegation_to_proto(&d))
            },
        )
        .await
    }

    async fn list_delegations(
        &self,
        request: Request<proto::ListDelegationsRequest>,
    ) -> Result<Response<proto::ListDelegationsResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::ReadZone(zone.clone()),
            "ListDelegations",
            &zone,
            async |_, name, _| {
                let view = self.services.zones.get_zone(name).await?;
                let in_zone = self.services.publisher.delegations(name);
                Ok(proto::ListDelegationsResponse {
                    delegations: view
                        .zone
                        .delegations
                        .iter()
                        .map(delegation_to_proto)
                        .collect(),
                    in_zone: in_zone
                        .into_iter()
                        .map(|d| proto::ZoneCut {
                            child: d.child,
                            ns: d.ns,
                            ds: d.ds,
                        })
                        .collect(),
                })
            },
        )
        .await
    }

    async fn poll_children(
        &self,
        request: Request<proto::ListDelegationsRequest>,
    ) -> Result<Response<proto::ListDelegationsResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "PollChildren",
            &zone,
            async |ch, req| ZonesClient::new(ch).poll_children(req).await,
            async |caller, name, _| {
                let children = &self.services.children;
                let polled = children.poll_now(caller.identity(), name).await?;
                Ok::<_, Error>(proto::ListDelegationsResponse {
                    delegations: polled.iter().map(delegation_to_proto).collect(),
                    in_zone: Vec::new(),
                })
            },
        )
        .await
    }

    async fn list_orphans(
        &self,
        request: Request<proto::ListOrphansRequest>,
    ) -> Result<Response<proto::ListOrphansResponse>, Status> {
        // The token's objects, not a zone's: admin, on the node called.
        let caller = self
            .authorize(&request, Right::Manage, "ListOrphans", "")
            .await?;
        let found = self.services.inventory.orphans().await;
        let orphans = self.audited(&caller, "ListOrphans", "", found).await?;
        Ok(Response::new(proto::ListOrphansResponse {
            orphans: orphans
                .into_iter()
                .map(|(id, label)| proto::Orphan { id, label })
                .collect(),
            token_serial: self.services.node.hsm.identity().serial.clone(),
        }))
    }

    async fn destroy_orphans(
        &self,
        request: Request<proto::DestroyOrphansRequest>,
    ) -> Result<Response<proto::DestroyOrphansResponse>, Status> {
        let caller = self
            .authorize(&request, Right::Manage, "DestroyOrphans", "")
            .await?;
        let ids = request.into_inner().ids;
        let inventory = &self.services.inventory;
        let done = inventory.destroy_orphans(caller.identity(), &ids).await;
        let n = self.audited(&caller, "DestroyOrphans", "", done).await?;
        Ok(Response::new(proto::DestroyOrphansResponse {
            destroyed_objects: n as u32,
        }))
    }

    type SignZoneStream = SignZoneStream;

    /// Reads `start`, checks the caller and prepares the zone's key set,
    /// takes the master file, then signs it on a blocking thread that
    /// streams the result back.
    async fn sign_zone(
        &self,
        request: Request<Streaming<proto::SignZoneRequest>>,
    ) -> Result<Response<SignZoneStream>, Status> {
        let caller = match self.caller(&request) {
            Ok(c) => c,
            Err(e) => {
                return self
                    .audited(&Caller::unknown(), "SignZone", "", Err(e))
                    .await
            }
        };
        let mut input = request.into_inner();
        let start = match input.message().await? {
            Some(proto::SignZoneRequest {
                msg: Some(sign_zone_request::Msg::Start(s)),
            }) => s,
            _ => return Err(Error::from(RequestError::NoStart).into()),
        };
        let zone = start.zone.clone();
        let checked = ZoneName::parse(&zone)
            .map_err(Error::from)
            .and_then(|name| {
                self.access.check(&caller, &Right::Sign(zone.clone()))?;
                let slot = self.limiter.open_stream(caller.identity())?;
                Ok((name, slot))
            });
        let (name, slot) = self.audited(&caller, "SignZone", &zone, checked).await?;
        let prepared = self
            .services
            .signing
            .zone_signing(&name, start.inception, start.expiration)
            .await;
        let prepared = self.audited(&caller, "SignZone", &zone, prepared).await?;
        let max = self.services.signing.limits().max_zone_bytes;
        let text = read_master_file(&mut input, max).await?;
        let text = self.audited(&caller, "SignZone", &zone, text).await?;
        let (tx, rx) = mpsc::channel(8);
        let job = ZoneJob {
            call: (crate::audit::request_id(), tracing::Span::current()),
            api: self.clone(),
            who: caller.identity().to_string(),
            zone: name,
            prepared,
            text,
            _slot: slot,
        };
        tokio::task::spawn_blocking(move || job.run(tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The master file's chunks, up to `max` bytes.
async fn read_master_file(
    input: &mut Streaming<proto::SignZoneRequest>,
    max: usize,
) -> Result<Result<Vec<u8>, Error>, Status> {
    let mut text: Vec<u8> = Vec::new();
    while let Some(m) = input.message().await? {
        match m.msg {
            Some(sign_zone_request::Msg::Chunk(c)) => {
                if text.len() + c.len() > max {
                    return Ok(Err(LimitError::ZoneBytes { max }.into()));
                }
                text.extend_from_slice(&c);
            }
            _ => return Err(Error::from(RequestError::NotChunk).into()),
        }
    }
    Ok(Ok(text))
}

/// A whole-zone signing under way on a blocking thread.
struct ZoneJob {
    /// The call's request id and log span: the blocking thread is outside
    /// the call's task, so both are carried over by hand.
    call: (String, tracing::Span),
    api: Api,
    who: String,
    zone: ZoneName,
    prepared: ZoneSigning,
    text: Vec<u8>,
    /// The caller's stream slot, held until signing ends.
    _slot: StreamSlot,
}

type Answers = mpsc::Sender<Result<proto::SignZoneResponse, Status>>;

impl ZoneJob {
    fn run(self, tx: Answers) {
        let _in_call = self.call.1.clone().entered();
        let services = &self.api.services;
        let clock = services.node.clock.clone();
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
        let runtime = tokio::runtime::Handle::current();
        let result = services
            .signing
            .sign_zone_blocking(&self.prepared, &self.text, &mut emit, &mut progress)
            // A signed zone is a key event (ARCHITECTURE.md, Invariants 4):
            // if it cannot be recorded, the caller gets an error instead of
            // the summary.
            .and_then(|stats| {
                let detail = format!(
                    "{} records in, {} RRSIGs; {}",
                    stats.records_in, stats.rrsigs, self.prepared.ksk_use
                );
                let id = self.call.0.clone();
                runtime.block_on(crate::audit::with_request_id(id, async {
                    services
                        .node
                        .audit_event(&self.who, self.zone.key(), "sign-zone", detail)
                        .await?;
                    services
                        .lifecycle
                        .zone_signed(&self.zone, stats.max_ttl)
                        .await;
                    Ok(stats)
                }))
            });
        let seconds = clock.instant().duration_since(began).as_secs_f64();
        self.finish(&tx, result, seconds);
    }

    /// The last message: the summary, or the error (also in the log and the
    /// audit log).
    fn finish(&self, tx: &Answers, result: crate::error::Result<ZoneStats>, seconds: f64) {
        match result {
            Ok(stats) => {
                tracing::info!(zone = %self.zone, records_in = stats.records_in, rrsigs = stats.rrsigs, seconds, "zone signed");
                for note in stats.notes() {
                    tracing::info!(zone = %self.zone, "{note}");
                }
                let summary = proto::SignZoneSummary {
                    records_in: stats.records_in,
                    records_out: stats.records_out,
                    rrsigs: stats.rrsigs,
                    seconds,
                    notes: stats.notes(),
                };
                let _ = tx.blocking_send(Ok(proto::SignZoneResponse {
                    msg: Some(sign_zone_response::Msg::Summary(summary)),
                }));
            }
            Err(e) => {
                tracing::warn!(zone = %self.zone, error = %e, "zone not signed");
                let reason = e.to_string();
                let node = &self.api.services.node;
                let refusal = node.audit_refusal(&self.who, self.zone.key(), "SignZone", &reason);
                tokio::runtime::Handle::current()
                    .block_on(crate::audit::with_request_id(self.call.0.clone(), refusal));
                let _ = tx.blocking_send(Err(e.into()));
            }
        }
    }
}
