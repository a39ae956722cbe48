//! NOTIFY(CDS) to the parent (RFC 9859): when a roll hands the parent a
//! new DS set, and while it waits for the parent's servers to serve it,
//! the Key Master looks up the DSYNC RRset the parent publishes (asked of
//! the zone's parent servers) and sends the endpoint it names a NOTIFY for
//! the zone's CDS, so that a parent that scans for CDS looks now rather
//! than at its next scan. Only a hint: the roll moves on evidence alone.
//! The same lookup finds where a zone whose DS push says `dsync` sends
//! its UPDATE (`update_target`: the DSYNC record of scheme UPDATE).

use std::net::SocketAddr;

use domain::base::iana::Rtype;
use domain::base::name::Name;

use crate::dnssec::dsync::{parse, Endpoint, SCHEME_NOTIFY, SCHEME_UPDATE};

/// Why no NOTIFY(CDS) reached the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotNotified {
    /// The parent announces no endpoint (most parents): nothing to do.
    NoEndpoint(String),
    /// It announces one, and the NOTIFY did not get through: worth a
    /// warning (a DSYNC record pointing nowhere, a refusal).
    Failed(String),
}

/// Sends NOTIFY(CDS) for `apex` to the endpoint its parent's DSYNC RRset
/// names, asking the first of `parent_servers` for the parent zone, the
/// DSYNC RRset and the target's address. Returns where it went.
pub async fn notify_parent(
    apex: &Name<Vec<u8>>,
    parent_servers: &[SocketAddr],
) -> Result<SocketAddr, NotNotified> {
    let server = *parent_servers.first().ok_or_else(|| {
        NotNotified::NoEndpoint("no parent server to ask for the parent's DSYNC RRset".into())
    })?;
    let parent = crate::dns::enclosing_zone(server, apex)
        .await
        .map_err(NotNotified::NoEndpoint)?;
    let endpoint = endpoint(server, apex, &parent, SCHEME_NOTIFY)
        .await
        .map_err(NotNotified::NoEndpoint)?;
    let to = address(server, &endpoint)
        .await
        .map_err(NotNotified::Failed)?;
    crate::dns::notify(to, apex, Rtype::CDS, crate::dns::TIMEOUT)
        .await
        .map_err(|e| NotNotified::Failed(format!("NOTIFY(CDS) to {to}: {e}")))?;
    Ok(to)
}

/// Where the DS RRset of `apex` goes by UPDATE when its DS push says
/// `dsync`: the target of the parent's DSYNC record of scheme UPDATE
/// (found as for NOTIFY, asking the first of `parent_servers`), and the
/// parent zone the UPDATE is for.
pub async fn update_target(
    apex: &Name<Vec<u8>>,
    parent_servers: &[SocketAddr],
) -> Result<(SocketAddr, Name<Vec<u8>>), String> {
    let server = *parent_servers
        .first()
        .ok_or("no parent server (--parent-server) to ask for the parent's DSYNC RRset")?;
    let parent = crate::dns::enclosing_zone(server, apex).await?;
    let endpoint = endpoint(server, apex, &parent, SCHEME_UPDATE).await?;
    Ok((address(server, &endpoint).await?, parent))
}

/// The parent's endpoint for the child by `scheme`: the DSYNC RRset at
/// the child's labels under `_dsync.PARENT` (one the parent keeps for that
/// child, or its wildcard), else at `_dsync.PARENT`; for CDS (or, for
/// UPDATE, any type).
async fn endpoint(
    server: SocketAddr,
    apex: &Name<Vec<u8>>,
    parent: &Name<Vec<u8>>,
    scheme: u8,
) -> Result<Endpoint, String> {
    let (child, above) = (apex.to_string(), parent.to_string());
    let (child, above) = (child.trim_end_matches('.'), above.trim_end_matches('.'));
    let relative = child
        .strip_suffix(above)
        .unwrap_or("")
        .trim_end_matches('.');
    let mut names = Vec::new();
    if !relative.is_empty() {
        names.push(format!("{relative}._dsync.{above}."));
    }
    names.push(format!("_dsync.{above}."));
    for name in names {
        let Ok(qname) = name.parse::<Name<Vec<u8>>>() else {
            continue;
        };
        let Ok(answer) = crate::dns::query(server, &qname, Rtype::DSYNC).await else {
            continue;
        };
        let found = crate::dns::answer_rdata(&answer, &qname, Rtype::DSYNC)
            .iter()
            .filter_map(|(rdata, _)| parse(rdata))
            .find(|e| {
                e.scheme == scheme
                    && (e.rrtype == Rtype::CDS
                        || (scheme == SCHEME_UPDATE && e.rrtype == Rtype::ANY))
            });
        if let Some(e) = found {
            return Ok(e);
        }
    }
    Err(format!(
        "the parent {parent} publishes no DSYNC endpoint for CDS by {}",
        match scheme {
            SCHEME_NOTIFY => "NOTIFY",
            _ => "UPDATE",
        }
    ))
}

/// The target's address: asked of the parent's server (a target in the
/// parent's zone), else of the system's resolver.
async fn address(server: SocketAddr, e: &Endpoint) -> Result<SocketAddr, String> {
    if let Ok(answer) = crate::dns::query(server, &e.target, Rtype::A).await {
        let found = crate::dns::answer_rdata(&answer, &e.target, Rtype::A);
        if let Some((rdata, _)) = found.first() {
            if let Ok(octets) = <[u8; 4]>::try_from(rdata.as_slice()) {
                return Ok(SocketAddr::from((octets, e.port)));
            }
        }
    }
    let host = e.target.to_string();
    let found = tokio::net::lookup_host((host.trim_end_matches('.'), e.port))
        .await
        .map_err(|err| format!("the DSYNC target {host} has no address ({err})"))?
        .next();
    found.ok_or_else(|| format!("the DSYNC target {host} has no address"))
}
