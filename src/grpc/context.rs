//! What every handler does around the service call, written once: who the
//! caller is, whether it may, the audit entry of a refusal, and whether a
//! management call runs here or on the zone's Key Master.

use std::sync::Arc;

use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::forward::{self, Forwarder};
use super::limits::Limiter;
use crate::auth::{certificate_names, AccessControl, Caller, Right};
use crate::error::{AccessError, Error};
use crate::node::ZoneName;
use crate::services::Services;
use crate::store::schema::NodeRecord;

/// The state the handlers share.
#[derive(Clone)]
pub struct Api {
    pub services: Arc<Services>,
    pub access: Arc<AccessControl>,
    pub plaintext: bool,
    pub limiter: Arc<Limiter>,
    pub forwarder: Arc<Forwarder>,
    /// For GetSigningParameters: the request size limit and the signing
    /// rate per caller.
    pub max_message_bytes: usize,
    pub sign_rate: u32,
}

impl Api {
    /// Who is calling: the names in its client certificate.
    pub fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Error> {
        if self.plaintext {
            return Ok(Caller {
                names: Vec::new(),
                plaintext: true,
            });
        }
        let certs = request.peer_certs().ok_or(AccessError::NoCertificate)?;
        let names = certs
            .first()
            .map(|c| certificate_names(c.as_ref()))
            .unwrap_or_default();
        if names.is_empty() {
            return Err(AccessError::Nameless.into());
        }
        Ok(Caller {
            names,
            plaintext: false,
        })
    }

    /// The caller a call speaks for: itself, or, for a call another node
    /// forwarded, the original caller (only a node may speak for someone
    /// else; the original caller's rights are then checked here).
    fn speaker<T>(&self, request: &Request<T>, direct: &Caller) -> Result<Caller, Error> {
        match forward::forwarded(request.metadata())? {
            None => Ok(direct.clone()),
            Some((names, by)) => {
                self.access.check(direct, &Right::Peer)?;
                let mut all = vec![format!("{} via {by}", names[0])];
                all.extend(names);
                Ok(Caller {
                    names: all,
                    plaintext: direct.plaintext,
                })
            }
        }
    }

    /// Identifies the caller and checks its right; refusals are audited.
    pub async fn authorize<T>(
        &self,
        request: &Request<T>,
        right: Right,
        action: &str,
        zone: &str,
    ) -> Result<Caller, Status> {
        let direct = match self.caller(request) {
            Ok(c) => c,
            Err(e) => return Err(self.refused("unauthenticated", action, zone, e).await),
        };
        let caller = match self.speaker(request, &direct) {
            Ok(c) => c,
            Err(e) => return Err(self.refused(direct.identity(), action, zone, e).await),
        };
        if let Err(e) = self.access.check(&caller, &right) {
            tracing::info!(
                caller = caller.identity(),
                action,
                zone,
                "call refused: {e}"
            );
            return Err(self
                .refused(caller.identity(), action, zone, e.into())
                .await);
        }
        Ok(caller)
    }

    /// `authorize` for a call about one zone: the zone's name is checked
    /// first, so that an empty or malformed name is InvalidArgument (and
    /// audited, escaped) rather than a permission refusal.
    pub async fn authorize_zone<T>(
        &self,
        request: &Request<T>,
        right: Right,
        action: &str,
        zone: &str,
    ) -> Result<(Caller, ZoneName), Status> {
        let name = match ZoneName::parse(zone) {
            Ok(name) => name,
            Err(e) => {
                let who = self.caller(request).map(|c| c.identity().to_string());
                let who = who.as_deref().unwrap_or("unauthenticated");
                return Err(self.refused(who, action, zone, e.into()).await);
            }
        };
        let caller = self.authorize(request, right, action, zone).await?;
        Ok((caller, name))
    }

    /// Records a refusal in the audit log and makes it a status.
    async fn refused(&self, who: &str, action: &str, zone: &str, e: Error) -> Status {
        self.services
            .node
            .audit_refusal(who, zone, action, &e.to_string())
            .await;
        e.into()
    }

    /// Passes a result on, recording a refusal in the audit log.
    pub async fn audited<T, E: Into<Error>>(
        &self,
        caller: &Caller,
        action: &str,
        zone: &str,
        result: Result<T, E>,
    ) -> Result<T, Status> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(self
                .refused(caller.identity(), action, zone, e.into())
                .await),
        }
    }

    /// The usual read: authorize for the zone, run, audit a refusal.
    pub async fn answer<T, R>(
        &self,
        request: Request<T>,
        right: Right,
        action: &str,
        zone: &str,
        run: impl AsyncFnOnce(&Caller, &ZoneName, T) -> Result<R, Error>,
    ) -> Result<Response<R>, Status> {
        let (caller, name) = self.authorize_zone(&request, right, action, zone).await?;
        let result = run(&caller, &name, request.into_inner()).await;
        self.audited(&caller, action, zone, result)
            .await
            .map(Response::new)
    }

    /// A management call of a zone (ARCHITECTURE.md, The Key Master role):
    /// run here on the zone's Key Master, or sent on to it for the caller
    /// with `forward`. A call that was forwarded once runs here whatever
    /// happens (and is refused if this node is not the Key Master).
    pub async fn manage<T, R>(
        &self,
        request: Request<T>,
        action: &str,
        zone: &str,
        forward: impl AsyncFnOnce(Channel, Request<T>) -> Result<Response<R>, Status>,
        run: impl AsyncFnOnce(&Caller, &ZoneName, T) -> Result<R, Error>,
    ) -> Result<Response<R>, Status> {
        let (caller, name) = self
            .authorize_zone(&request, Right::Manage, action, zone)
            .await?;
        if !request.metadata().contains_key(forward::ON_BEHALF_OF) {
            let target = self.services.mastership.management_target(&name).await;
            if let Some(node) = self.audited(&caller, action, zone, target).await? {
                let channel = self.channel_to(&node, &caller, action, zone).await?;
                return forward(
                    channel,
                    self.forwarder.request(request.into_inner(), &caller),
                )
                .await;
            }
        }
        let result = run(&caller, &name, request.into_inner()).await;
        self.audited(&caller, action, zone, result)
            .await
            .map(Response::new)
    }

    /// A channel to another node, to send a caller's call on.
    pub async fn channel_to(
        &self,
        node: &NodeRecord,
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
}
