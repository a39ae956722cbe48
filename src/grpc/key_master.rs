//! The KeyMaster service: nodes, the role of each zone, and the calls
//! nodes make of each other.

use tonic::{Request, Response, Status};

use super::context::Api;
use super::convert::{key_to_proto, node_to_proto, record_to_proto, role_to_proto};
use crate::auth::Right;
use crate::error::Error;
use crate::proto;
use crate::proto::key_master_client::KeyMasterClient;
use crate::proto::key_master_server::KeyMaster;

#[tonic::async_trait]
impl KeyMaster for Api {
    async fn list_nodes(
        &self,
        request: Request<proto::ListNodesRequest>,
    ) -> Result<Response<proto::ListNodesResponse>, Status> {
        let caller = self
            .authorize(&request, Right::Read, "ListNodes", "")
            .await?;
        let result = self.services.mastership.list_nodes().await;
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
        self.answer(
            request,
            Right::ReadZone(zone.clone()),
            "ShowRole",
            &zone,
            async |_, name, _| {
                let z = self.services.node.zone(name).await?.zone;
                let online = self.services.mastership.is_online(&z.key_master).await?;
                Ok::<_, Error>(role_to_proto(&z, online))
            },
        )
        .await
    }

    async fn candidates(
        &self,
        request: Request<proto::RoleRequest>,
    ) -> Result<Response<proto::CandidatesResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::ReadZone(zone.clone()),
            "Candidates",
            &zone,
            async |_, name, _| {
                let candidates = self.services.mastership.candidates(name).await?;
                Ok(proto::CandidatesResponse {
                    candidates: candidates
                        .into_iter()
                        .map(|c| proto::Candidate {
                            node: Some(node_to_proto(c.node, c.online)),
                            reason: c.reason.unwrap_or_default(),
                        })
                        .collect(),
                })
            },
        )
        .await
    }

    async fn transfer(
        &self,
        request: Request<proto::MoveRoleRequest>,
    ) -> Result<Response<proto::RoleInfo>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::Manage,
            "Transfer",
            &zone,
            async |caller, name, r| {
                let mastership = &self.services.mastership;
                let moved = mastership.transfer(caller.identity(), name, &r.to).await?;
                Ok(role_to_proto(&moved, true))
            },
        )
        .await
    }

    async fn seize(
        &self,
        request: Request<proto::MoveRoleRequest>,
    ) -> Result<Response<proto::RoleInfo>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::Manage,
            "Seize",
            &zone,
            async |caller, name, r| {
                let mastership = &self.services.mastership;
                let moved = mastership
                    .seize(caller.identity(), name, &r.to, r.force)
                    .await?;
                Ok(role_to_proto(&moved, true))
            },
        )
        .await
    }

    async fn rekey(
        &self,
        request: Request<proto::RoleRequest>,
    ) -> Result<Response<proto::RekeyResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        self.manage(
            request,
            "Rekey",
            &zone,
            async |ch, req| KeyMasterClient::new(ch).rekey(req).await,
            async |caller, name, _| {
                let keys = self
                    .services
                    .inventory
                    .rekey(caller.identity(), name)
                    .await?;
                let (ds, _) = self.services.signing.ds(name, &[]).await?;
                Ok(proto::RekeyResponse {
                    keys: keys.iter().map(key_to_proto).collect(),
                    ds: ds.into_iter().map(record_to_proto).collect(),
                })
            },
        )
        .await
    }

    async fn missing_keys(
        &self,
        request: Request<proto::MissingKeysRequest>,
    ) -> Result<Response<proto::MissingKeysResponse>, Status> {
        let caller = self
            .authorize(&request, Right::Peer, "MissingKeys", "")
            .await?;
        let ids = request.into_inner().key_ids;
        let result = self.services.mastership.missing_keys(ids).await;
        let missing = self.audited(&caller, "MissingKeys", "", result).await?;
        Ok(Response::new(proto::MissingKeysResponse { missing }))
    }

    async fn release(
        &self,
        request: Request<proto::ReleaseRequest>,
    ) -> Result<Response<proto::ReleaseResponse>, Status> {
        let zone = request.get_ref().zone.clone();
        self.answer(
            request,
            Right::Peer,
            "Release",
            &zone,
            async |_, name, r| {
                self.services
                    .mastership
                    .release(name, r.epoch, &r.to)
                    .await?;
                Ok(proto::ReleaseResponse {})
            },
        )
        .await
    }
}
