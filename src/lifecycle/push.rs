//! DS push (the zone's `ds_push`): when a roll hands the parent a new DS
//! RRset, the Key Master sends it to the parent's primary by DNS UPDATE
//! (RFC 2136, with the zone's TSIG key), as Knot's ds-push does. A push is
//! never taken as done: the roll waits for the parent's servers as it
//! does without one. While a roll waits for the DS, a push that failed is
//! sent again with back-off, and one that succeeded is sent again when the
//! parent's servers still do not serve it a minute later (a parent that
//! lost it, a new Key Master that never sent it). A `ds_push` of `dsync`
//! sends it where the parent's DSYNC record of scheme UPDATE says
//! (`dsync::update_target`), looked up again for each push.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use domain::base::iana::Rtype;
use domain::base::name::Name;

use crate::policy::server_address;
use crate::store::schema::ZoneRecord;
use crate::tsig::TsigKeys;

/// The `ds_push` that sends to the parent's DSYNC UPDATE target.
pub const DSYNC: &str = "dsync";

/// The longest wait between two tries of a failing push, seconds.
const MAX_BACKOFF: u64 = 300;
/// How long after an accepted push the parent's servers may take to serve
/// it before it is sent again, seconds.
const RESEND_AFTER: u64 = 60;

/// The DS pushes of this node's zones.
pub struct DsPush {
    keys: TsigKeys,
    last: Mutex<HashMap<String, Attempt>>,
}

/// The last push of a zone's DS RRset and what came of it.
#[derive(Debug, Clone)]
struct Attempt {
    /// Where it went and with which key: a push is sent again at once
    /// when the operator changes either.
    target: (String, String),
    set: Vec<Vec<u8>>,
    /// Pushes of this set that failed in a row.
    failures: u32,
    /// Why the last one failed.
    error: Option<String>,
    /// When to send it again if it is still wanted (seconds since 1970).
    again_at: u64,
}

/// Why a push is sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// A roll step handed the parent this DS RRset.
    Handed,
    /// A roll waits for the parent's servers to serve it.
    Waiting,
    /// Neither: only a failed push that is due goes again.
    Passing,
}

/// Whether a push of `set` goes now, after `last` (the last push to the
/// same target with the same key).
fn due(last: Option<&Attempt>, set: &[Vec<u8>], occasion: Occasion, now: u64) -> bool {
    match (last, occasion) {
        (_, Occasion::Handed) => true,
        (None, Occasion::Waiting) => true,
        (None, Occasion::Passing) => false,
        (Some(a), Occasion::Waiting) => a.set != set || now >= a.again_at,
        (Some(a), Occasion::Passing) => a.set == set && a.error.is_some() && now >= a.again_at,
    }
}

impl DsPush {
    pub fn new(keys: TsigKeys) -> DsPush {
        DsPush {
            keys,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Sends the zone's DS RRset `set` to its `ds_push` primary if the
    /// occasion calls for it; returns why the last push failed (what the
    /// roll shows as waiting), or None. Without `ds_push`, nothing.
    pub async fn push(
        &self,
        zone: &ZoneRecord,
        apex: &Name<Vec<u8>>,
        set: &[Vec<u8>],
        occasion: Occasion,
        now: u64,
    ) -> Option<String> {
        if zone.policy.ds_push.is_empty() {
            return None;
        }
        let target = (
            zone.policy.ds_push.clone(),
            zone.policy.ds_push_tsig.clone(),
        );
        let last = self
            .attempts()
            .get(&zone.name)
            .filter(|a| a.target == target)
            .cloned();
        if !due(last.as_ref(), set, occasion, now) {
            return last.filter(|a| a.set == set).and_then(|a| a.error);
        }
        let failures = match &last {
            Some(a) if a.set == set && a.error.is_some() => a.failures,
            _ => 0,
        };
        let outcome = self.send(zone, apex, set).await;
        let attempt = match outcome {
            Ok(to) => {
                tracing::info!(zone = %zone.name, to = %to, records = set.len(), "DS RRset pushed to the parent by UPDATE");
                Attempt {
                    target,
                    set: set.to_vec(),
                    failures: 0,
                    error: None,
                    again_at: now + RESEND_AFTER,
                }
            }
            Err((to, why)) => {
                let failures = failures + 1;
                let wait = (1u64 << failures.min(16)).min(MAX_BACKOFF);
                let error = format!("DS push to {to}: {why}");
                tracing::error!(zone = %zone.name, tries = failures, again_in_secs = wait, "{error}");
                Attempt {
                    target,
                    set: set.to_vec(),
                    failures,
                    error: Some(error),
                    again_at: now + wait,
                }
            }
        };
        let error = attempt.error.clone();
        self.attempts().insert(zone.name.clone(), attempt);
        error
    }

    /// When a failed push of the zone is due again, if one is.
    pub fn due_at(&self, zone: &str) -> Option<u64> {
        self.attempts()
            .get(zone)
            .filter(|a| a.error.is_some())
            .map(|a| a.again_at)
    }

    /// One UPDATE to the parent's primary (the zone it is sent for is the
    /// one the primary serves above the child), or to the target of the
    /// parent's DSYNC record of scheme UPDATE; returns where it went.
    async fn send(
        &self,
        zone: &ZoneRecord,
        apex: &Name<Vec<u8>>,
        set: &[Vec<u8>],
    ) -> Result<SocketAddr, (String, String)> {
        let p = &zone.policy;
        let target = match p.ds_push.as_str() {
            DSYNC => "the parent's DSYNC UPDATE target".to_string(),
            address => address.to_string(),
        };
        let to = |e: String| (target.clone(), e);
        let key = match p.ds_push_tsig.as_str() {
            "" => None,
            name => Some(
                self.keys
                    .by_name(&crate::tsig::name_text(name))
                    .ok_or_else(|| {
                        to(format!(
                            "the TSIG key {name} is not in this node's --tsig-keys file"
                        ))
                    })?,
            ),
        };
        let (server, parent) = if p.ds_push == DSYNC {
            let parents = super::runner::servers_of_parent(zone);
            super::dsync::update_target(apex, &parents)
                .await
                .map_err(to)?
        } else {
            let server: SocketAddr = server_address(&p.ds_push).map_err(|e| to(e.0))?;
            (
                server,
                crate::dns::enclosing_zone(server, apex).await.map_err(to)?,
            )
        };
        crate::dns::update_rrset(server, &parent, apex, (Rtype::DS, p.ds_ttl, set), key)
            .await
            .map_err(|e| (server.to_string(), e))?;
        Ok(server)
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Attempt>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(set: &[Vec<u8>], error: bool, again_at: u64) -> Attempt {
        Attempt {
            target: ("192.0.2.1:53".into(), String::new()),
            set: set.to_vec(),
            failures: u32::from(error),
            error: error.then(|| "answered REFUSED".to_string()),
            again_at,
        }
    }

    #[test]
    fn a_push_goes_when_handed_and_again_only_when_due() {
        let (old, new) = (vec![vec![1u8]], vec![vec![2u8]]);
        // A step hands the parent a set: always sent.
        let ok = attempt(&new, false, 160);
        assert!(due(Some(&ok), &new, Occasion::Handed, 100));
        // A roll waiting for the DS: sent if never sent here (a new Key
        // Master), if the set changed, or once the resend time came.
        assert!(due(None, &new, Occasion::Waiting, 100));
        assert!(due(
            Some(&attempt(&old, false, 160)),
            &new,
            Occasion::Waiting,
            100
        ));
        assert!(!due(Some(&ok), &new, Occasion::Waiting, 159));
        assert!(due(Some(&ok), &new, Occasion::Waiting, 160));
        // Otherwise only a failed push, once its back-off ran out.
        let failed = attempt(&new, true, 104);
        assert!(!due(None, &new, Occasion::Passing, 100));
        assert!(!due(Some(&ok), &new, Occasion::Passing, 200));
        assert!(!due(Some(&failed), &new, Occasion::Passing, 103));
        assert!(due(Some(&failed), &new, Occasion::Passing, 104));
        assert!(!due(Some(&failed), &old, Occasion::Passing, 104));
    }

    #[test]
    fn without_ds_push_nothing_is_sent() {
        let push = DsPush::new(TsigKeys::default());
        let zone = crate::store::schema::ZoneRecord::new(
            "example.",
            crate::policy::Policy::default(),
            "node-a",
            0,
        );
        let apex: Name<Vec<u8>> = "example.".parse().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(push.push(&zone, &apex, &[vec![1]], Occasion::Handed, 0));
        assert_eq!(got, None);
        assert_eq!(push.due_at("example."), None);
    }
}
