//! The Audit service: the hash-chained log, read and verified.

use tonic::{Request, Response, Status};

use super::context::Api;
use crate::auth::Right;
use crate::proto;
use crate::proto::audit_server::Audit;

#[tonic::async_trait]
impl Audit for Api {
    async fn list_audit(
        &self,
        request: Request<proto::ListAuditRequest>,
    ) -> Result<Response<proto::ListAuditResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        // One zone's entries need the right to read that zone; the whole
        // log shows a reader with zones only the entries of its zones.
        let (caller, readable, name) = if zone.is_empty() {
            let caller = self
                .authorize(&request, Right::ReadSome, "ListAudit", "")
                .await?;
            let readable = self.access.readable_zones(&caller);
            let readable = self.audited(&caller, "ListAudit", "", readable).await?;
            (caller, readable, None)
        } else {
            let (caller, name) = self
                .authorize_zone(&request, Right::ReadZone(zone.clone()), "ListAudit", &zone)
                .await?;
            (caller, None, Some(name))
        };
        let r = request.into_inner();
        let result = self.services.node.read_audit(name.as_ref(), r.since).await;
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
        let result = self.services.node.verify_audit().await;
        let (n, broken) = self.audited(&caller, "VerifyAudit", "", result).await?;
        Ok(Response::new(proto::VerifyAuditResponse {
            intact: broken.is_none(),
            entries: n as u64,
            first_bad_seq: broken.as_ref().map_or(0, |b| b.seq),
            reason: broken.map(|b| b.reason).unwrap_or_default(),
        }))
    }
}
