//! Child zones keymaster does not manage, seen from their parent's Key
//! Master: the DS RRset the parent publishes for each, kept current by
//! polling the child's servers for CDS and CDNSKEY (Windows' secure
//! delegation polling; RFC 7344, RFC 8078; ARCHITECTURE.md, Delegations).
//! `cds` decides; this module asks the servers, stores the outcome on the
//! parent's zone record (one epoch-fenced write with its audit entry) and
//! polls each child when its period is up.

pub mod bootstrap;
pub mod cds;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::Rtype;
use domain::base::name::Name;
use domain::base::Message;
use tokio::sync::Notify;

use crate::dnssec::ds::{ds_from_text, ds_text};
use crate::error::{DelegationError, Result};
use crate::mastership::gate::Gate;
use crate::node::{Node, ZoneName};
use crate::store::schema::Delegation;
use cds::{Current, Decision, Served};

/// Windows' default SecureDelegationPollingPeriod.
pub const DEFAULT_POLL_PERIOD: u64 = 12 * 3600;

/// How often the poller looks for children whose period is up.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What `zone delegation add` asks for.
#[derive(Debug, Clone)]
pub struct DelegationSettings {
    pub child: ZoneName,
    pub servers: Vec<String>,
    pub ds: Vec<String>,
    /// 0: the parent's DS TTL.
    pub ds_ttl: u32,
    pub allow_delete: bool,
    /// 0: the default (12 h).
    pub poll_period: u64,
    /// Drop the DS of a secure delegation.
    pub insecure: bool,
    /// Take a DS that matches none of the child's served keys.
    pub force: bool,
    /// Change only the servers, the poll period and bootstrapping
    /// (`delegation set`).
    pub keep_ds: bool,
    /// Let an insecure delegation be made secure by RFC 9615 signals
    /// (None: as it is; off for a new delegation).
    pub bootstrap: Option<bool>,
}

/// The NS names a parent's zone delegates a child to, as the version of
/// the parent this node serves has them (the zone signer's); None when it
/// serves none, or that version has no NS RRset at the child.
pub trait ServedNs: Send + Sync {
    fn ns(&self, parent: &ZoneName, child: &str) -> Option<Vec<String>>;
}

/// The shortest time between two polls of a child on its NOTIFY(CDS),
/// seconds: a flood of NOTIFYs makes one poll per gap.
const NOTICE_GAP: u64 = 5;

/// The most names whose unknown NOTIFY(CDS) is logged (once each).
const UNKNOWN_LOGGED: usize = 1000;

/// The parents' side of their external children.
pub struct Children {
    node: Arc<Node>,
    gate: Arc<Gate>,
    wake: Notify,
    notices: std::sync::Mutex<Notices>,
    /// None: this node bootstraps no child (no resolver, no anchors).
    bootstrapping: Option<bootstrap::Bootstrapping>,
    served_ns: Arc<dyn ServedNs>,
}

/// NOTIFY(CDS) as the child poller keeps it: the children it may take
/// one for (read with every look), when each was last polled on one, the
/// children to poll at once, and the unknown names already logged.
#[derive(Default)]
struct Notices {
    known: std::collections::HashSet<String>,
    last: std::collections::HashMap<String, u64>,
    asked: std::collections::HashMap<String, SocketAddr>,
    unknown_logged: std::collections::HashSet<String>,
}

/// What a NOTIFY(CDS) for a child comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Polled at once.
    Polled,
    /// Polled on a NOTIFY less than `NOTICE_GAP` ago: not again yet.
    TooSoon,
    /// No delegation of that name on a zone this node is Key Master of.
    Unknown,
}

impl Children {
    pub fn new(
        node: Arc<Node>,
        gate: Arc<Gate>,
        bootstrapping: Option<bootstrap::Bootstrapping>,
        served_ns: Arc<dyn ServedNs>,
    ) -> Children {
        Children {
            node,
            gate,
            wake: Notify::new(),
            notices: Default::default(),
            bootstrapping,
            served_ns,
        }
    }

    /// A NOTIFY(CDS) or NOTIFY(CDNSKEY) for `child` (RFC 9859 §4.2): a
    /// child this node keeps is polled at once, under the same rules as
    /// every poll (a NOTIFY only says when to look, never what to take),
    /// at most once per `NOTICE_GAP`; an unknown name is logged once.
    pub fn notice(&self, child: &str, from: SocketAddr) -> Notice {
        let now = self.node.clock.now();
        let mut n = self.notices.lock().unwrap_or_else(|p| p.into_inner());
        if !n.known.contains(child) {
            if n.unknown_logged.len() < UNKNOWN_LOGGED && n.unknown_logged.insert(child.to_string())
            {
                tracing::warn!(child = %crate::text::shown(child), %from, "NOTIFY(CDS) refused: no delegation of this name on a zone this node is Key Master of (said once per name)");
            }
            return Notice::Unknown;
        }
        if n.last.get(child).is_some_and(|&at| now < at + NOTICE_GAP) {
            tracing::debug!(%child, %from, "NOTIFY(CDS) within {NOTICE_GAP} s of the last one: not polled again yet");
            return Notice::TooSoon;
        }
        n.last.insert(child.to_string(), now);
        n.asked.insert(child.to_string(), from);
        drop(n);
        tracing::info!(%child, %from, "NOTIFY(CDS): the child is polled now");
        self.wake.notify_one();
        Notice::Polled
    }

    /// Adds (or replaces) an external child of `parent`, with the DS RRset
    /// the parent publishes for it until the child's CDS changes it.
    ///
    /// Long because the child's name, servers, DS records and options are
    /// each checked with an error naming the one at fault, before one write.
    pub async fn add(
        &self,
        who: &str,
        parent: &ZoneName,
        asked: &DelegationSettings,
    ) -> Result<Delegation> {
        let m = self.gate.managed(parent).await?;
        let child = asked.child.key().to_string();
        if !child.ends_with(&format!(".{}", m.key)) && m.key != "." {
            return Err(DelegationError::NotBelow {
                child,
                parent: m.key.clone(),
            }
            .into());
        }
        if self.node.store.get_zone(&child).await?.is_some() {
            return Err(DelegationError::Managed { child }.into());
        }
        if asked.servers.is_empty() && !asked.keep_ds {
            return Err(DelegationError::NoServers { child }.into());
        }
        for s in &asked.servers {
            parse_server(s).map_err(|reason| DelegationError::Server {
                child: child.clone(),
                given: crate::text::shown(s),
                reason,
            })?;
        }
        let existing = m.zone.delegations.iter().find(|d| d.child == child);
        if asked.keep_ds {
            let Some(old) = existing else {
                return Err(DelegationError::NoSuch {
                    parent: m.key.clone(),
                    child,
                }
                .into());
            };
            let bootstrap = asked.bootstrap.unwrap_or(old.bootstrap);
            let d = Delegation {
                servers: match asked.servers.is_empty() {
                    true => old.servers.clone(),
                    false => asked.servers.clone(),
                },
                poll_period: match asked.poll_period {
                    0 => old.poll_period,
                    p => p,
                },
                bootstrap,
                // Bootstrapping newly allowed: looked at now, not at the
                // next period.
                last_polled: match bootstrap && !old.bootstrap {
                    true => 0,
                    false => old.last_polled,
                },
                ..old.clone()
            };
            let detail = format!(
                "delegation to {child}: servers {}; polled every {}{}",
                d.servers.join(", "),
                crate::policy::format_duration(d.poll_period),
                bootstrap_said(&d)
            );
            return self.write(who, &m, d, "delegation-set", detail).await;
        }
        let mut ds = Vec::new();
        let mut wires = Vec::new();
        for text in &asked.ds {
            let wire = ds_from_text(text).map_err(|reason| DelegationError::Ds {
                child: child.clone(),
                given: crate::text::shown(text),
                reason,
            })?;
            ds.push(ds_text(&wire));
            wires.push(wire);
        }
        if let Some(old) = existing.filter(|o| !o.ds.is_empty() && ds.is_empty() && !asked.insecure)
        {
            return Err(DelegationError::WouldDropDs {
                child,
                ds: old.ds.join(", "),
            }
            .into());
        }
        if !wires.is_empty() && !asked.force {
            check_ds_against_child(&child, &asked.servers, &wires).await?;
        }
        let d = Delegation {
            child: child.clone(),
            servers: asked.servers.clone(),
            ds,
            ds_ttl: match asked.ds_ttl {
                0 => m.zone.policy.ds_ttl,
                t => t,
            },
            allow_delete: asked.allow_delete,
            poll_period: match asked.poll_period {
                0 => DEFAULT_POLL_PERIOD,
                p => p,
            },
            source: "operator".into(),
            last_changed: self.node.clock.now(),
            bootstrap: asked.bootstrap.unwrap_or(false),
            ..Delegation::default()
        };
        let detail = format!(
            "delegation to {child} (not managed here): DS {}{}; servers {}; polled every {}{}",
            if d.ds.is_empty() {
                "none (insecure)".to_string()
            } else {
                d.ds.join(", ")
            },
            if asked.force && !d.ds.is_empty() {
                " (forced: not checked against the child's keys)"
            } else {
                ""
            },
            d.servers.join(", "),
            crate::policy::format_duration(d.poll_period),
            if d.allow_delete {
                "; a CDS delete may remove the DS"
            } else {
                ""
            }
        ) + &bootstrap_said(&d);
        self.write(who, &m, d, "delegation-add", detail).await
    }

    /// Records a child's delegation on its parent's record (one fenced
    /// write with its audit entry), and polls it at once.
    async fn write(
        &self,
        who: &str,
        m: &crate::mastership::gate::Managed,
        d: Delegation,
        action: &str,
        detail: String,
    ) -> Result<Delegation> {
        let mut z = m.zone.clone();
        z.delegations.retain(|x| x.child != d.child);
        z.delegations.push(d.clone());
        z.delegations.sort_by(|a, b| a.child.cmp(&b.child));
        let audit = self.node.draft(who, &m.key, action, detail);
        self.node
            .store
            .update_zone(&z, m.zone.epoch, &[], &[], &audit)
            .await?;
        self.wake.notify_one();
        Ok(d)
    }

    /// Removes an external child: the parent's source decides its DS again.
    pub async fn remove(
        &self,
        who: &str,
        parent: &ZoneName,
        child: &ZoneName,
    ) -> Result<Delegation> {
        let m = self.gate.managed(parent).await?;
        let child = child.key().to_string();
        let mut z = m.zone.clone();
        let Some(i) = z.delegations.iter().position(|d| d.child == child) else {
            return Err(DelegationError::NoSuch {
                parent: m.key.clone(),
                child,
            }
            .into());
        };
        let d = z.delegations.remove(i);
        let audit = self.node.draft(
            who,
            &m.key,
            "delegation-remove",
            format!("delegation to {child}: no longer kept by CDS polling"),
        );
        self.node
            .store
            .update_zone(&z, m.zone.epoch, &[], &[], &audit)
            .await?;
        Ok(d)
    }

    /// Polls every external child of `parent` now (`zone poll-children`),
    /// and returns them as stored afterwards.
    pub async fn poll_now(&self, who: &str, parent: &ZoneName) -> Result<Vec<Delegation>> {
        let m = self.gate.managed(parent).await?;
        let children = m.zone.delegations.clone();
        drop(m);
        for d in &children {
            self.poll(who, parent, d).await?;
        }
        Ok(self.node.zone(parent).await?.zone.delegations)
    }

    /// Asks the child's servers, decides, and stores the outcome (a changed
    /// DS RRset with the evidence in the audit entry).
    ///
    /// Long because asking, deciding and storing share the delegation's
    /// state and the evidence written in its audit entry.
    async fn poll(&self, who: &str, parent: &ZoneName, d: &Delegation) -> Result<()> {
        let apex = ZoneName::stored(&d.child)?.apex().clone();
        let answers = ask_servers(&apex, &d.servers).await;
        let ds: Vec<Vec<u8>> = d.ds.iter().filter_map(|t| ds_from_text(t).ok()).collect();
        let now = self.node.clock.now();
        let decision = match ds.is_empty() {
            true => self.bootstrap(parent, d, &apex, &answers, now).await,
            false => cds::decide(
                &apex,
                &Current {
                    ds: &ds,
                    accepted_inception: d.accepted_inception,
                    allow_delete: d.allow_delete,
                },
                &answers,
                now,
            ),
        };
        let m = self.gate.managed(parent).await?;
        let mut z = m.zone.clone();
        let Some(stored) = z.delegations.iter_mut().find(|x| x.child == d.child) else {
            return Ok(()); // removed meanwhile
        };
        if stored.ds != d.ds {
            return Ok(()); // changed meanwhile: the next poll sees it
        }
        stored.last_polled = now;
        let mut change = None;
        match decision {
            Decision::Unchanged { why, inception } => {
                stored.last_result = why;
                stored.blocked = None;
                stored.accepted_inception = inception;
            }
            Decision::Refused(why) => {
                if stored.blocked.as_deref() != Some(why.as_str()) {
                    tracing::warn!(%parent, child = %d.child, reason = %why, "a child's CDS/CDNSKEY is not taken");
                }
                stored.last_result = "refused".into();
                stored.blocked = Some(why);
            }
            Decision::Replace { ds, inception, why } => {
                stored.ds = ds.iter().map(|r| ds_text(r)).collect();
                stored.source = "cds".into();
                stored.last_changed = now;
                stored.accepted_inception = inception;
                stored.blocked = None;
                stored.last_result = format!("DS replaced: the child {why}");
                change = Some(format!(
                    "DS of {} now {} (was {}), from the child's CDS/CDNSKEY; servers: {}",
                    d.child,
                    if stored.ds.is_empty() {
                        "none: the delegation is insecure".to_string()
                    } else {
                        stored.ds.join(", ")
                    },
                    if d.ds.is_empty() {
                        "none".to_string()
                    } else {
                        d.ds.join(", ")
                    },
                    answers
                        .iter()
                        .map(|(s, a)| match a {
                            Ok(_) => format!("{s} {why}"),
                            Err(e) => format!("{s} {e}"),
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
        // Every poll is audited: which servers said what is the evidence
        // a changed DS rests on, and an unchanged one too.
        let (action, detail) = match change {
            Some(detail) => {
                tracing::info!(%parent, child = %d.child, "{detail}");
                ("delegation-ds", detail)
            }
            None => (
                "delegation-poll",
                format!(
                    "{}: {}",
                    d.child,
                    stored.blocked.as_ref().unwrap_or(&stored.last_result)
                ),
            ),
        };
        let audit = self.node.draft(who, &m.key, action, detail);
        self.node
            .store
            .update_zone(&z, m.zone.epoch, &[], &[], &audit)
            .await?;
        Ok(())
    }

    /// What becomes of an insecure delegation (RFC 9615 §4.2): nothing
    /// unless it allows bootstrapping and this node can look for signals;
    /// then the signals under each name server the parent's served zone
    /// delegates the child to (or, when this node serves no version of
    /// the parent, the host names among the child's servers), and
    /// `cds::bootstrap`'s decision.
    async fn bootstrap(
        &self,
        parent: &ZoneName,
        d: &Delegation,
        apex: &Name<Vec<u8>>,
        answers: &[(String, std::result::Result<Served, String>)],
        now: u64,
    ) -> Decision {
        if !d.bootstrap {
            return Decision::Unchanged {
                why: "an insecure delegation: its first DS is given (zone delegation add \
                      --ds) or bootstrapped from RFC 9615 signals, which this delegation \
                      does not allow (zone delegation set --bootstrap true)"
                    .into(),
                inception: 0,
            };
        }
        let Some(b) = &self.bootstrapping else {
            return Decision::Refused(
                "bootstrapping needs the parent's Key Master to run with \
                 --bootstrap-resolver and --bootstrap-anchors"
                    .into(),
            );
        };
        let ns = self.served_ns.ns(parent, &d.child).unwrap_or_else(|| {
            d.servers
                .iter()
                .filter_map(|s| parse_server(s).ok().map(|(host, _)| host))
                .filter(|h| h.parse::<std::net::IpAddr>().is_err())
                .collect()
        });
        if ns.is_empty() {
            return Decision::Refused(format!(
                "no name server names to look for signals under: this node serves no \
                 NS RRset for {} in {parent}, and the child's servers are addresses",
                d.child
            ));
        }
        let ns = match bootstrap::signalling_ns(&d.child, &ns) {
            Ok(ns) => ns,
            Err(e) => return Decision::Refused(e),
        };
        let signals = bootstrap::signals(b, &d.child, &ns, now).await;
        cds::bootstrap(apex, answers, &signals, now)
    }

    /// Polls each child of the zones this node is Key Master of when its
    /// period is up, until the process ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.poll_due().await {
                tracing::debug!(error = %e, "child polling: cannot read the zones");
            }
            tokio::select! {
                _ = self.node.clock.sleep(LOOK_EVERY) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    async fn poll_due(&self) -> Result<()> {
        let now = self.node.clock.now();
        let zones: Vec<_> = self
            .node
            .store
            .list_zones()
            .await?
            .into_iter()
            .filter(|z| z.key_master == self.node.id)
            .collect();
        let asked = {
            let mut n = self.notices.lock().unwrap_or_else(|p| p.into_inner());
            n.known = zones
                .iter()
                .flat_map(|z| z.delegations.iter().map(|d| d.child.clone()))
                .collect();
            std::mem::take(&mut n.asked)
        };
        for zone in &zones {
            let Ok(name) = ZoneName::of(zone) else {
                continue;
            };
            for d in &zone.delegations {
                let who = if asked.contains_key(&d.child) {
                    "cds-notify"
                } else if d.last_polled == 0 || now >= d.last_polled + d.poll_period {
                    "child-poll"
                } else {
                    continue;
                };
                if let Err(e) = self.poll(who, &name, d).await {
                    tracing::debug!(zone = %zone.name, child = %d.child, error = %e, "child not polled");
                }
            }
        }
        Ok(())
    }
}

/// How an audit entry says whether a delegation may be bootstrapped.
fn bootstrap_said(d: &Delegation) -> String {
    match (d.bootstrap, d.ds.is_empty()) {
        (true, true) => "; may be made secure by RFC 9615 signals".into(),
        (true, false) => "; bootstrapping allowed (it is secure already)".into(),
        (false, _) => String::new(),
    }
}

/// `HOST[:PORT]`, port 53 unless given; an IPv6 address with a port in
/// brackets.
fn parse_server(s: &str) -> std::result::Result<(String, u16), String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok((a.ip().to_string(), a.port()));
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok((ip.to_string(), 53));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("port {p:?} is not a number"))?,
        ),
        None => (s, 53),
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err("expected HOST[:PORT]".into());
    }
    Ok((host.to_string(), port))
}

/// Every address of every server; a name that does not resolve is a
/// server that did not answer.
async fn addresses(servers: &[String]) -> Vec<(String, std::result::Result<SocketAddr, String>)> {
    let mut out = Vec::new();
    for s in servers {
        match parse_server(s) {
            Err(e) => out.push((s.clone(), Err(e))),
            Ok((host, port)) => match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    if addrs.is_empty() {
                        out.push((s.clone(), Err("has no address".into())));
                    }
                    for a in addrs {
                        out.push((a.to_string(), Ok(a)));
                    }
                }
                Err(e) => out.push((s.clone(), Err(format!("does not resolve: {e}")))),
            },
        }
    }
    out
}

/// Refuses DS records an operator gives unless one matches a key of the
/// DNSKEY RRset every answering server of the child serves (a typo in a
/// DS makes the child bogus at once).
async fn check_ds_against_child(child: &str, servers: &[String], ds: &[Vec<u8>]) -> Result<()> {
    let apex: Name<Vec<u8>> = child.parse().map_err(|_| DelegationError::CannotCheckDs {
        child: child.to_string(),
        why: "the child's name does not parse".into(),
    })?;
    let mut served = Vec::new();
    let mut failures = Vec::new();
    for (name, addr) in addresses(servers).await {
        let answer = match addr {
            Err(e) => Err(e),
            Ok(a) => crate::dns::query(a, &apex, Rtype::DNSKEY).await,
        };
        match answer {
            Ok(a) => served.extend(
                crate::dns::answer_rdata(&a, &apex, Rtype::DNSKEY)
                    .into_iter()
                    .map(|(r, _)| r),
            ),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    if served.is_empty() {
        return Err(DelegationError::CannotCheckDs {
            child: child.to_string(),
            why: match failures.is_empty() {
                true => "its servers serve no DNSKEY RRset".into(),
                false => failures.join("; "),
            },
        }
        .into());
    }
    if served.iter().any(|k| cds::ds_matches_key(&apex, ds, k)) {
        return Ok(());
    }
    let tags: Vec<String> = served
        .iter()
        .filter_map(|k| crate::dnssec::verify::parse_dnskey(k))
        .map(|k| format!("key {} flags {}", k.key_tag(), k.flags()))
        .collect();
    Err(DelegationError::DsMatchesNoKey {
        child: child.to_string(),
        served: tags.join(", "),
    }
    .into())
}

/// What each server serves at the child's apex: DNSKEY, CDS and CDNSKEY
/// with their RRSIGs, asked directly (RD off, no cache; RFC 9615 §4.2).
async fn ask_servers(
    apex: &Name<Vec<u8>>,
    servers: &[String],
) -> Vec<(String, std::result::Result<Served, String>)> {
    let mut out = Vec::new();
    for (name, addr) in addresses(servers).await {
        let served = match addr {
            Err(e) => Err(e),
            Ok(addr) => ask(addr, apex).await,
        };
        out.push((name, served));
    }
    out
}

async fn ask(server: SocketAddr, apex: &Name<Vec<u8>>) -> std::result::Result<Served, String> {
    use crate::dns::query;
    let mut s = Served::default();
    for rtype in [Rtype::DNSKEY, Rtype::CDS, Rtype::CDNSKEY] {
        let answer = query(server, apex, rtype)
            .await
            .map_err(|e| format!("{rtype} query: {e}"))?;
        let (rdatas, sigs) = rrset_with_sigs(&answer, apex, rtype);
        match rtype {
            Rtype::DNSKEY => (s.dnskey, s.dnskey_sigs) = (rdatas, sigs),
            Rtype::CDS => (s.cds, s.cds_sigs) = (rdatas, sigs),
            _ => (s.cdnskey, s.cdnskey_sigs) = (rdatas, sigs),
        }
    }
    Ok(s)
}

/// The answer's RRset of `rtype` at `apex` (record data, canonical wire
/// form) and the RRSIGs covering it.
fn rrset_with_sigs(
    answer: &Message<Bytes>,
    apex: &Name<Vec<u8>>,
    rtype: Rtype,
) -> (Vec<Vec<u8>>, Vec<crate::dnssec::verify::ReceivedRrsig>) {
    let rdatas = crate::dns::answer_rdata(answer, apex, rtype)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    (rdatas, validate::rrsigs(answer, apex, rtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_host_and_port() {
        assert_eq!(
            parse_server("127.0.0.1:5300").unwrap(),
            ("127.0.0.1".into(), 5300)
        );
        assert_eq!(
            parse_server("ns1.example.net").unwrap(),
            ("ns1.example.net".into(), 53)
        );
        assert_eq!(parse_server("[::1]:53").unwrap(), ("::1".into(), 53));
        assert_eq!(parse_server("::1").unwrap(), ("::1".into(), 53));
        assert!(parse_server("ns1 example").is_err());
        assert!(parse_server("ns1:x").is_err());
    }
}
