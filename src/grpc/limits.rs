//! Per-caller limits: concurrent zone-signing streams and a signing rate.
//! Each refusal is ResourceExhausted naming the setting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::clock::Clock;

use crate::error::LimitError;

/// Limits per caller identity; 0 means no limit.
#[derive(Debug, Clone, Default)]
pub struct CallerLimits {
    /// Concurrent SignZone streams (max_streams_per_caller).
    pub max_streams: usize,
    /// RRsets signed per second through SignRrsets (sign_rate_per_caller).
    pub sign_rate: u32,
}

#[derive(Debug, Default)]
struct State {
    streams: usize,
    tokens: f64,
    refilled: Option<Instant>,
}

/// Book-keeping of what each caller uses.
#[derive(Debug)]
pub struct Limiter {
    limits: CallerLimits,
    clock: Arc<dyn Clock>,
    callers: Mutex<HashMap<String, State>>,
}

/// Holds one of a caller's stream slots until dropped.
pub struct StreamSlot {
    limiter: Arc<Limiter>,
    caller: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut callers = self
            .limiter
            .callers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(s) = callers.get_mut(&self.caller) {
            s.streams = s.streams.saturating_sub(1);
        }
    }
}

impl Limiter {
    pub fn new(limits: CallerLimits, clock: Arc<dyn Clock>) -> Arc<Limiter> {
        Arc::new(Limiter {
            limits,
            clock,
            callers: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a stream slot for the caller.
    pub fn open_stream(self: &Arc<Self>, caller: &str) -> Result<StreamSlot, LimitError> {
        let mut callers = self.callers.lock().unwrap_or_else(|p| p.into_inner());
        let s = callers.entry(caller.to_string()).or_default();
        if self.limits.max_streams > 0 && s.streams >= self.limits.max_streams {
            return Err(LimitError::Streams {
                caller: caller.to_string(),
                open: s.streams,
                max: self.limits.max_streams,
            });
        }
        s.streams += 1;
        Ok(StreamSlot {
            limiter: self.clone(),
            caller: caller.to_string(),
        })
    }

    /// Takes `n` RRsets from the caller's signing budget (a token bucket
    /// that holds one second's worth).
    pub fn take_signatures(&self, caller: &str, n: usize) -> Result<(), LimitError> {
        let rate = self.limits.sign_rate;
        if rate == 0 {
            return Ok(());
        }
        let mut callers = self.callers.lock().unwrap_or_else(|p| p.into_inner());
        let s = callers.entry(caller.to_string()).or_default();
        let now = self.clock.instant();
        let elapsed = s
            .refilled
            .map_or(1.0, |t| now.duration_since(t).as_secs_f64());
        s.tokens = (s.tokens + elapsed * f64::from(rate)).min(f64::from(rate));
        s.refilled = Some(now);
        if (n as f64) > s.tokens {
            return Err(LimitError::Rate {
                caller: caller.to_string(),
                rate,
            });
        }
        s.tokens -= n as f64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_slots_are_counted_and_given_back() {
        let l = Limiter::new(
            CallerLimits {
                max_streams: 1,
                sign_rate: 0,
            },
            Arc::new(crate::clock::ManualClock::new(0)),
        );
        let a = l.open_stream("x").unwrap();
        let e = l.open_stream("x").err().unwrap();
        assert!(e.to_string().contains("max_streams_per_caller"));
        assert!(l.open_stream("y").is_ok(), "limits are per caller");
        drop(a);
        assert!(l.open_stream("x").is_ok());
    }

    #[test]
    fn signing_rate_is_enforced_per_caller() {
        let clock = crate::clock::ManualClock::new(0);
        let l = Limiter::new(
            CallerLimits {
                max_streams: 0,
                sign_rate: 100,
            },
            Arc::new(clock.clone()),
        );
        assert!(l.take_signatures("x", 100).is_ok());
        let e = l.take_signatures("x", 50).unwrap_err();
        assert!(e.to_string().contains("sign_rate_per_caller"));
        assert!(l.take_signatures("y", 50).is_ok());
        // Half a second refills half the budget.
        clock.advance_by(std::time::Duration::from_millis(500));
        assert!(l.take_signatures("x", 50).is_ok());
        assert!(l.take_signatures("x", 10).is_err());
    }
}
