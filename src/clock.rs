//! The one place that reads the time (a clippy rule in `clippy.toml` forbids
//! it anywhere else). Services hold an `Arc<dyn Clock>`: the system's
//! clock in keymasterd, a `ManualClock` in tests, whose `advance` wakes
//! every sleeper whose time has come, so that months of timers run in
//! milliseconds (ARCHITECTURE.md, Time).

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Wall-clock time, a monotonic instant, and sleeping until a time.
#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;

    /// A monotonic instant, for measuring how long something took and for
    /// deadlines within this process.
    fn instant(&self) -> Instant;

    /// Returns once the wall clock reads `at` (seconds since the epoch) or
    /// later.
    async fn sleep_until(&self, at: u64);

    /// Returns once `d` has passed on this clock.
    async fn sleep(&self, d: Duration);
}

/// The UTC calendar date (year, month, day) of a Unix time (the civil
/// calendar algorithm of H. Hinnant's "chrono-compatible low-level date
/// algorithms", days from 1970-01-01).
pub fn civil_date(unix: u64) -> (u32, u32, u32) {
    let z = (unix / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as u32, m as u32, d as u32)
}

/// A Unix time as RFC 3339 in UTC ("2026-12-01T11:48:16Z").
pub fn rfc3339(unix: u64) -> String {
    let (y, m, d) = civil_date(unix);
    let s = unix % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[allow(clippy::disallowed_methods)] // the one place that reads the system's clocks
fn system_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> u64 {
        system_millis() / 1000
    }

    #[allow(clippy::disallowed_methods)] // the one place that reads the system's clocks
    fn instant(&self) -> Instant {
        Instant::now()
    }

    async fn sleep_until(&self, at: u64) {
        let wait = at.saturating_mul(1000).saturating_sub(system_millis());
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// A clock that moves only when told to, in milliseconds. Sleepers wake
/// when `advance` (or `set`) brings it to their time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<tokio::sync::watch::Sender<u64>>,
    /// The instant that stands for the start, so that `instant` moves with
    /// the clock.
    origin: (Instant, u64),
}

impl ManualClock {
    /// A clock that reads `start` seconds since the epoch.
    pub fn new(start: u64) -> Self {
        let (tx, _) = tokio::sync::watch::channel(start * 1000);
        ManualClock {
            millis: Arc::new(tx),
            origin: (SystemClock.instant(), start * 1000),
        }
    }

    /// Moves the clock on by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        self.advance_by(Duration::from_secs(secs));
    }

    /// Moves the clock on by `d`.
    pub fn advance_by(&self, d: Duration) {
        self.millis.send_modify(|m| *m += d.as_millis() as u64);
    }

    fn millis(&self) -> u64 {
        *self.millis.borrow()
    }

    async fn until_millis(&self, at: u64) {
        let mut rx = self.millis.subscribe();
        // The sender lives as long as `self`: `changed` fails only if it
        // is dropped, and then no time will ever come.
        while *rx.borrow_and_update() < at {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.millis() / 1000
    }

    fn instant(&self) -> Instant {
        self.origin.0 + Duration::from_millis(self.millis().saturating_sub(self.origin.1))
    }

    async fn sleep_until(&self, at: u64) {
        self.until_millis(at.saturating_mul(1000)).await;
    }

    async fn sleep(&self, d: Duration) {
        let at = self.millis() + d.as_millis() as u64;
        self.until_millis(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_of_known_times() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_796_125_696), (2026, 12, 1));
        assert_eq!(civil_date(4_107_542_399), (2100, 2, 28));
        assert_eq!(rfc3339(1_796_125_696), "2026-12-01T11:48:16Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::new(100);
        let i = c.instant();
        assert_eq!(c.now(), 100);
        c.advance(5);
        assert_eq!(c.now(), 105);
        assert_eq!(c.instant() - i, Duration::from_secs(5));
    }

    #[tokio::test]
    async fn sleepers_wake_when_the_manual_clock_reaches_their_time() {
        let c = ManualClock::new(1_000);
        let (early, late) = (c.clone(), c.clone());
        let a = tokio::spawn(async move { early.sleep_until(1_010).await });
        let b = tokio::spawn(async move { late.sleep(Duration::from_secs(90 * 86400)).await });
        tokio::task::yield_now().await;
        c.advance(9);
        tokio::task::yield_now().await;
        assert!(!a.is_finished(), "woke a second early");
        c.advance(1);
        a.await.unwrap();
        assert!(!b.is_finished());
        c.advance(90 * 86400);
        b.await.unwrap();
    }

    #[tokio::test]
    async fn sleeping_until_the_end_of_time_does_not_overflow() {
        let c = ManualClock::new(1);
        let never = tokio::time::timeout(Duration::from_millis(20), c.sleep_until(u64::MAX));
        assert!(never.await.is_err());
        let never =
            tokio::time::timeout(Duration::from_millis(20), SystemClock.sleep_until(u64::MAX));
        assert!(never.await.is_err());
    }

    #[tokio::test]
    async fn system_clock_sleeps_until_a_time_past_returns_at_once() {
        SystemClock.sleep_until(SystemClock.now() - 10).await;
    }
}
