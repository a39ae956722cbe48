//! Management calls go through the Key Master (ARCHITECTURE.md, The Key Master role): a node that is
//! not the zone's Key Master sends the call on to it, over mTLS with its
//! own node certificate, saying for whom. The Key Master accepts that only
//! from a caller with the `node` role, then checks the original caller's
//! rights under its own access rules and records both names in the audit
//! log ("admin.example via node-a"). A forwarded call is never forwarded
//! again: if the role moved meanwhile, it is refused.

use std::time::Duration;

use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Request;
use zeroize::Zeroizing;

use crate::auth::Caller;
use crate::error::{Error, RequestError, RoleError};
use crate::mastership::Peers;
use crate::proto::key_master_client::KeyMasterClient;
use crate::store::schema::NodeRecord;

/// The original caller's certificate names, one value each.
pub const ON_BEHALF_OF: &str = "x-keymaster-on-behalf-of";
/// The node id of the node that forwarded the call.
pub const FORWARDED_BY: &str = "x-keymaster-forwarded-by";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How this node reaches its peers.
pub struct Forwarder {
    node_id: String,
    /// CA for the peers' certificates, and this node's certificate and key
    /// as its client identity; None on a plaintext development server.
    tls: Option<PeerTls>,
}

struct PeerTls {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

impl Forwarder {
    /// Reads the node's certificate, key and the CA its peers' certificates
    /// come from (the one it checks clients against).
    pub fn new(
        node_id: &str,
        tls: Option<&(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)>,
    ) -> Result<Forwarder, String> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let tls = match tls {
            Some((cert, key, ca)) => Some(PeerTls {
                ca: read(ca)?,
                cert: read(cert)?,
                key: Zeroizing::new(read(key)?),
            }),
            None => None,
        };
        Ok(Forwarder {
            node_id: node_id.to_string(),
            tls,
        })
    }

    /// A channel to the node at its advertised address.
    pub async fn connect(&self, node: &NodeRecord) -> Result<Channel, Error> {
        let unreachable = |why: String| -> Error {
            RoleError::Unreachable {
                node: node.node_id.clone(),
                address: node.address.clone(),
                why,
            }
            .into()
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", node.address))
            .map_err(|e| unreachable(e.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true);
        if let Some(t) = &self.tls {
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&t.ca))
                .identity(Identity::from_pem(&t.cert, t.key.as_slice()));
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| unreachable(e.to_string()))?;
        }
        endpoint
            .connect()
            .await
            .map_err(|e| unreachable(e.to_string()))
    }

    /// The request to send on: the same message, saying for whom.
    pub fn request<T>(&self, message: T, caller: &Caller) -> Request<T> {
        let mut r = Request::new(message);
        let md = r.metadata_mut();
        for name in &caller.names {
            if let Ok(v) = AsciiMetadataValue::try_from(name.as_str()) {
                md.append(ON_BEHALF_OF, v);
            }
        }
        if let Ok(v) = AsciiMetadataValue::try_from(self.node_id.as_str()) {
            md.insert(FORWARDED_BY, v);
        }
        // The same call on the Key Master: the same request id.
        if let Ok(v) = AsciiMetadataValue::try_from(crate::audit::request_id()) {
            if !v.is_empty() {
                md.insert(super::request_id::HEADER, v);
            }
        }
        r
    }
}

/// Whom a forwarded call speaks for, and which node sent it; None for a
/// call made directly.
pub fn forwarded(md: &MetadataMap) -> Result<Option<(Vec<String>, String)>, Error> {
    let names: Vec<String> = md
        .get_all(ON_BEHALF_OF)
        .iter()
        .map(|v| v.to_str().map(str::to_string))
        .collect::<Result<_, _>>()
        .map_err(|_| RequestError::Header(ON_BEHALF_OF))?;
    if names.is_empty() {
        return Ok(None);
    }
    let by = md
        .get(FORWARDED_BY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string();
    Ok(Some((names, by)))
}

#[async_trait::async_trait]
impl Peers for Forwarder {
    async fn missing_keys(&self, node: &NodeRecord, ids: &[String]) -> Result<Vec<String>, Error> {
        let channel = self.connect(node).await?;
        let answer = KeyMasterClient::new(channel)
            .missing_keys(crate::proto::MissingKeysRequest {
                key_ids: ids.to_vec(),
            })
            .await
            .map_err(|status| RoleError::Peer {
                node: node.node_id.clone(),
                message: status.message().to_string(),
            })?;
        Ok(answer.into_inner().missing)
    }

    async fn release(
        &self,
        node: &NodeRecord,
        zone: &str,
        epoch: u64,
        to: &str,
    ) -> Result<(), Error> {
        let channel = self.connect(node).await?;
        KeyMasterClient::new(channel)
            .release(crate::proto::ReleaseRequest {
                zone: zone.to_string(),
                epoch,
                to: to.to_string(),
            })
            .await
            .map_err(|status| {
                let (node, message) = (node.node_id.clone(), status.message().to_string());
                match status.code() {
                    tonic::Code::FailedPrecondition => RoleError::PeerRefused { node, message },
                    _ => RoleError::Peer { node, message },
                }
            })?;
        Ok(())
    }
}
