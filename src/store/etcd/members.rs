//! The members of the etcd cluster, one client each (ARCHITECTURE.md,
//! Stores). `etcd-client` spreads calls over every endpoint it is given and
//! does not move on when one is down, so a cluster that keeps its quorum
//! with one member dead still failed calls. Here a call goes to the member
//! that answered last; when a member cannot be reached the call moves on to
//! the next, and a member that failed is asked only after those that did
//! not, until it answers again.
//!
//! What may move on: a read, after any error that says the member did not
//! serve it (unreachable, no leader, leader changed, timed out); a write,
//! only when the request cannot have been proposed (the connection was
//! refused, or the member refused it for want of a leader), since a write
//! that may have landed must not be sent twice. While members answer that
//! they are electing a leader, a call waits for the election (up to 3 s);
//! once a call has waited that long in vain the quorum is taken to be lost
//! (logged once) and calls fail at once, naming each member's reason, until
//! one succeeds again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use etcd_client::{Client, ConnectOptions, GetOptions, GetResponse, Txn, TxnResponse};

/// How long a call waits for the cluster to elect a leader: etcd's
/// election takes about a second at its default timings.
const ELECTION_ROUNDS: u32 = 12;
const ELECTION_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

pub(super) struct Members {
    members: Vec<Member>,
    /// The member that answered last: calls start there.
    current: AtomicUsize,
    /// A call waited a whole election and no leader came: the quorum is
    /// gone. Until a call succeeds again, calls fail without waiting.
    no_quorum: AtomicBool,
}

struct Member {
    url: String,
    client: Client,
    /// Failed the last time it was asked.
    failed: AtomicBool,
}

/// Why a call got no answer, in words, and whether a write certainly did
/// not land (no member can have proposed it).
#[derive(Debug)]
pub(super) struct Unanswered {
    pub reason: String,
    pub definite: bool,
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Whether a call may be sent again to another member.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Any error that says the member did not serve the call.
    Read,
    /// Only an error that says the call never reached the member.
    Write,
}

impl Members {
    /// A client per endpoint. Clients connect when first used, so a member
    /// that is down at start costs nothing until it is asked.
    pub async fn connect(
        urls: &[&str],
        options: &ConnectOptions,
    ) -> Result<Members, etcd_client::Error> {
        let mut members = Vec::with_capacity(urls.len());
        for url in urls {
            members.push(Member {
                url: url.to_string(),
                client: Client::connect([url], Some(options.clone())).await?,
                failed: AtomicBool::new(false),
            });
        }
        Ok(Members {
            members,
            current: AtomicUsize::new(0),
            no_quorum: AtomicBool::new(false),
        })
    }

    /// The client of the member calls go to now (for watches, which start
    /// again on another member when their stream ends).
    pub fn client(&self) -> Client {
        self.members[self.current.load(Ordering::Relaxed) % self.members.len()]
            .client
            .clone()
    }

    /// The order to ask the members in: the current one, then the others
    /// that did not fail, then those that did.
    fn order(&self) -> Vec<usize> {
        let n = self.members.len();
        let start = self.current.load(Ordering::Relaxed) % n;
        let ring: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
        let (ok, failed): (Vec<usize>, Vec<usize>) = ring
            .into_iter()
            .partition(|&i| i == start || !self.members[i].failed.load(Ordering::Relaxed));
        ok.into_iter().chain(failed).collect()
    }

    async fn call<T, F, Fut>(&self, retry: Retry, f: F) -> Result<T, Unanswered>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut why = Vec::new();
        for round in 0..ELECTION_ROUNDS {
            let mut electing = false;
            why.clear();
            for i in self.order() {
                let m = &self.members[i];
                match f(m.client.clone()).await {
                    Ok(v) => {
                        if m.failed.swap(false, Ordering::Relaxed) {
                            tracing::info!(member = %m.url, "etcd member answers again");
                        }
                        self.current.store(i, Ordering::Relaxed);
                        if self.no_quorum.swap(false, Ordering::Relaxed) {
                            tracing::info!("etcd has a leader again");
                        }
                        return Ok(v);
                    }
                    Err(e) if may_move_on(&e, retry) => {
                        electing |= electing_leader(&e);
                        crate::metrics::store_retry("member_unavailable");
                        if !m.failed.swap(true, Ordering::Relaxed) {
                            tracing::warn!(member = %m.url, error = %in_words(&e), "etcd member does not answer; asking the others");
                        }
                        why.push(format!("{}: {}", m.url, in_words(&e)));
                    }
                    Err(e) => {
                        return Err(Unanswered {
                            reason: in_words(&e),
                            definite: !outcome_unknown(&e),
                        })
                    }
                }
            }
            // Members that answer but have no leader are electing one
            // (a second or so after the leader died): wait for it. With
            // every member unreachable, or the quorum gone for longer,
            // the call fails at once.
            if !electing || self.no_quorum.load(Ordering::Relaxed) {
                break;
            }
            if round + 1 == ELECTION_ROUNDS {
                tracing::error!(why = %why.join("; "), "etcd has had no leader for 3 s: its quorum is lost; store calls fail until it is back");
                self.no_quorum.store(true, Ordering::Relaxed);
                break;
            }
            crate::metrics::store_retry("leader_election");
            tokio::time::sleep(ELECTION_WAIT).await;
        }
        // Every member refused in a way that moves a write on: none
        // proposed it.
        Err(Unanswered {
            reason: format!("no member answers ({})", why.join("; ")),
            definite: retry == Retry::Write,
        })
    }

    pub async fn get(
        &self,
        key: impl Into<Vec<u8>>,
        options: Option<GetOptions>,
    ) -> Result<GetResponse, Unanswered> {
        let key = key.into();
        self.call(Retry::Read, |c| {
            let (key, options) = (key.clone(), options.clone());
            async move { c.kv_client().get(key, options).await }
        })
        .await
    }

    /// A transaction that writes: sent to another member only if it cannot
    /// have reached this one.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, Unanswered> {
        self.call(Retry::Write, |c| {
            let txn = txn.clone();
            async move { c.kv_client().txn(txn).await }
        })
        .await
    }

    /// A new lease of `ttl` seconds (its id is the cluster's, whichever
    /// member granted it).
    pub async fn grant(&self, ttl: i64) -> Result<i64, Unanswered> {
        self.call(Retry::Write, |c| async move {
            Ok(c.lease_client().grant(ttl, None).await?.id())
        })
        .await
    }

    /// Renews a lease once; the TTL left (0: the lease is gone). Renewing
    /// twice is harmless, so any member may be asked.
    pub async fn keep_alive(&self, id: i64) -> Result<i64, Unanswered> {
        self.call(Retry::Read, |c| async move {
            let (mut keeper, mut stream) = c.lease_client().keep_alive(id).await?;
            keeper.keep_alive().await?;
            Ok(stream.message().await?.map_or(0, |r| r.ttl()))
        })
        .await
    }
}

/// Whether the member did not serve the call (and, for a write, whether
/// the call cannot have reached it).
fn may_move_on(e: &etcd_client::Error, retry: Retry) -> bool {
    use etcd_client::Error;
    use tonic::Code;
    let unreachable = match e {
        Error::TransportError(_) => true,
        // tonic reports a refused or failed connection as Unavailable,
        // "tcp connect error" / "error trying to connect".
        Error::GRpcStatus(s) => s.code() == Code::Unavailable && s.message().contains("connect"),
        _ => false,
    };
    // With require-leader set, a member without a leader refuses a call
    // before proposing anything: a write refused so is safe to send again.
    let refused_unproposed = matches!(e, Error::GRpcStatus(s) if s.message().contains("no leader"));
    unreachable
        || refused_unproposed
        || (retry == Retry::Read
            && matches!(e, Error::GRpcStatus(s)
                if matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Unknown)))
}

/// Whether a call that failed so may nonetheless have been applied (its
/// answer lost, or the leader changed under it).
fn outcome_unknown(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Unknown
                | Code::Cancelled
                | Code::Internal
        ),
        etcd_client::Error::TransportError(_) => false,
        _ => true,
    }
}

/// Whether the member answered that the cluster is between leaders.
fn electing_leader(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s)
        if s.message().contains("no leader") || s.message().contains("leader changed"))
}

/// An etcd client error in words: what etcd said, or why it could not be
/// reached (the innermost cause, not a dump of the error's structure).
pub(super) fn in_words(e: &etcd_client::Error) -> String {
    use etcd_client::Error;
    let innermost = |e: &dyn std::error::Error| {
        let mut cause = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            cause = s.to_string();
            next = s.source();
        }
        cause
    };
    match e {
        Error::GRpcStatus(s) if s.message().contains("connect") => {
            let cause = std::error::Error::source(s).map(innermost);
            format!(
                "cannot connect ({})",
                cause.unwrap_or_else(|| s.message().to_string())
            )
        }
        Error::GRpcStatus(s) => match std::error::Error::source(s).map(innermost) {
            Some(cause) if cause != s.message() => format!("{} ({cause})", s.message()),
            _ => s.message().to_string(),
        },
        Error::TransportError(t) => format!("cannot connect ({})", innermost(t)),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_moves_on_even_for_a_write_a_lost_answer_does_not() {
        let refused =
            etcd_client::Error::GRpcStatus(tonic::Status::unavailable("tcp connect error"));
        let no_leader =
            etcd_client::Error::GRpcStatus(tonic::Status::unavailable("etcdserver: no leader"));
        let changed = etcd_client::Error::GRpcStatus(tonic::Status::unavailable(
            "etcdserver: leader changed",
        ));
        let fenced = etcd_client::Error::GRpcStatus(tonic::Status::failed_precondition("x"));
        assert!(may_move_on(&refused, Retry::Write));
        assert!(may_move_on(&refused, Retry::Read));
        assert!(
            may_move_on(&no_leader, Retry::Write),
            "refused before it was proposed"
        );
        assert!(
            !may_move_on(&changed, Retry::Write),
            "the write may have been applied"
        );
        assert!(may_move_on(&changed, Retry::Read));
        assert!(electing_leader(&changed) && electing_leader(&no_leader));
        assert!(!may_move_on(&fenced, Retry::Read));
        assert_eq!(in_words(&no_leader), "etcdserver: no leader");
        assert_eq!(in_words(&refused), "cannot connect (tcp connect error)");
    }
}
