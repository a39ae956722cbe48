//! A bound on every wait for the token (ARCHITECTURE.md, A token that
//! stops answering). A PKCS#11 call cannot be cancelled: one that does not
//! return (SoftHSM2 waits on a file lock that a stopped process holds; a
//! network HSM whose link hangs) keeps its thread. What the bound changes
//! is the request: it fails with `HsmError::Stalled` naming the token and
//! the bound, so that callers get an answer, their slots are freed, and
//! the call finishes (or not) on its own. While any call is past the bound
//! and has not returned, `stalled()` says how many: health is NOT_SERVING.
//!
//! One token per process, so the bound and the count are the process's.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::error::HsmError;

/// The default bound on a token call: key generation (RSA-3072 takes about
/// a third of a second on SoftHSM2) and a batch of signatures fit well
/// within it.
pub const DEFAULT_BOUND: Duration = Duration::from_secs(5);

static BOUND_MS: AtomicU64 = AtomicU64::new(DEFAULT_BOUND.as_millis() as u64);
static STALLED: AtomicUsize = AtomicUsize::new(0);
static TOKEN: Mutex<String> = Mutex::new(String::new());

/// Sets the bound and the token's name for this process (at start).
pub fn configure(bound: Duration, token: &str) {
    BOUND_MS.store(bound.as_millis().max(1) as u64, Ordering::SeqCst);
    *TOKEN.lock().unwrap_or_else(|p| p.into_inner()) = token.to_string();
}

pub fn bound() -> Duration {
    Duration::from_millis(BOUND_MS.load(Ordering::SeqCst))
}

/// Token calls past the bound that have not returned yet.
pub fn stalled() -> usize {
    STALLED.load(Ordering::SeqCst)
}

/// The error of a wait that passed the bound.
pub fn stalled_error() -> HsmError {
    HsmError::Stalled {
        token: TOKEN.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        bound: bound(),
    }
}

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// Milliseconds since the first time asked in this process (monotonic).
fn now_ms() -> u64 {
    use crate::clock::{Clock, SystemClock};
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| SystemClock.instant());
    SystemClock.instant().duration_since(epoch).as_millis() as u64 + 1
}

/// When a token call last returned (`now_ms`): while calls return, one
/// that waits in the queue behind them is not stalled.
static LAST_RETURN_MS: AtomicU64 = AtomicU64::new(0);

/// One token call and whoever waits for it: the call says when it starts
/// and returns, the waiter when it stops waiting; a call that returns
/// after its waiter gave up takes itself off the stalled count.
#[derive(Clone, Default)]
pub struct Watch(Arc<(AtomicU8, AtomicU64)>);

impl Watch {
    pub fn new() -> Watch {
        Watch::default()
    }

    /// The call starts (it may have waited in a queue).
    pub fn started(&self) {
        self.0 .1.store(now_ms(), Ordering::SeqCst);
    }

    /// The call returned.
    pub fn returned(&self) {
        LAST_RETURN_MS.store(now_ms(), Ordering::SeqCst);
        if self.0 .0.swap(DONE, Ordering::SeqCst) == ABANDONED {
            STALLED.fetch_sub(1, Ordering::SeqCst);
            tracing::info!("a token call past its bound has returned");
        }
    }

    /// Whether the waiter, waiting since `since`, should give up: the call
    /// has run longer than the bound, or has not started while no token
    /// call at all returned for the bound (every worker is stuck).
    fn is_stalled(&self, since: u64, bound: u64) -> bool {
        let now = now_ms();
        match self.0 .1.load(Ordering::SeqCst) {
            0 => {
                let progress = LAST_RETURN_MS.load(Ordering::SeqCst).max(since);
                now.saturating_sub(since) >= bound && now.saturating_sub(progress) >= bound
            }
            started => now.saturating_sub(started) >= bound,
        }
    }

    /// The waiter gave up at the bound: the call counts as stalled until
    /// it returns.
    pub fn abandon(&self, bound: Duration) -> HsmError {
        if self
            .0
             .0
            .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            STALLED.fetch_add(1, Ordering::SeqCst);
        }
        let e = HsmError::Stalled {
            token: TOKEN.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            bound,
        };
        tracing::error!(error = %e, "a token call did not return in time; the request fails");
        e
    }
}

/// Waits for a token call's answer (`rx`, which `watch`'s call sends on):
/// until it comes, or until the call is stalled (`Watch::is_stalled`).
pub async fn wait<T>(
    rx: tokio::sync::oneshot::Receiver<T>,
    watch: &Watch,
) -> Option<Result<T, HsmError>> {
    wait_within(rx, watch, bound()).await
}

/// `wait` with a bound of its own (key generation's, `GENERATION_FACTOR`).
async fn wait_within<T>(
    mut rx: tokio::sync::oneshot::Receiver<T>,
    watch: &Watch,
    bound: Duration,
) -> Option<Result<T, HsmError>> {
    let tick = (bound / 4).min(Duration::from_millis(250));
    let since = now_ms();
    loop {
        match tokio::time::timeout(tick, &mut rx).await {
            Ok(Ok(v)) => return Some(Ok(v)),
            Ok(Err(_)) => return None,
            Err(_) if watch.is_stalled(since, bound.as_millis() as u64) => {
                return Some(Err(watch.abandon(bound)))
            }
            Err(_) => {}
        }
    }
}

/// `wait` from a blocking thread of the runtime (zone signing). Outside a
/// runtime (a tool signing on its own thread) the wait is not bounded.
pub fn wait_blocking<T>(
    rx: tokio::sync::oneshot::Receiver<T>,
    watch: &Watch,
) -> Option<Result<T, HsmError>> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(wait(rx, watch)),
        Err(_) => rx.blocking_recv().ok().map(Ok),
    }
}

/// Runs a token call on a blocking thread and waits for it at most the
/// bound; `None` if the call panicked.
pub async fn call<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<Result<T, HsmError>> {
    call_within(f, bound()).await
}

/// How many bounds a key generation may take: an RSA key's prime search
/// is long and varies (SoftHSM2 made RSA-4096 keys in 2 to 10 s on a busy
/// 2-core host), and a generation that fails at the bound leaves an
/// orphan in the token.
pub const GENERATION_FACTOR: u32 = 12;

/// `call` for a key generation: `GENERATION_FACTOR` bounds.
pub async fn call_generating<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<Result<T, HsmError>> {
    call_within(f, bound() * GENERATION_FACTOR).await
}

async fn call_within<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    bound: Duration,
) -> Option<Result<T, HsmError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let watch = Watch::new();
    let done = watch.clone();
    tokio::task::spawn_blocking(move || {
        done.started();
        let v = f();
        done.returned();
        let _ = tx.send(v);
    });
    wait_within(rx, &watch, bound).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_past_the_bound_fails_and_counts_as_stalled_until_it_returns() {
        configure(Duration::from_millis(100), "t-bound");
        let (release, held) = std::sync::mpsc::channel::<()>();
        let answer = call(move || held.recv().is_ok()).await.unwrap();
        let e = answer.unwrap_err();
        assert_eq!(
            e.to_string(),
            "token t-bound did not answer within 0.1 s (a call into it has not returned); \
             the request was not done"
        );
        assert_eq!(stalled(), 1);
        release.send(()).unwrap();
        for _ in 0..500 {
            if stalled() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(stalled(), 0, "the call returned, and is no longer stalled");
        assert!(call(|| 7).await.unwrap().is_ok_and(|v| v == 7));
        configure(DEFAULT_BOUND, "");
    }
}
