//! Retrying what fails for a moment while another process writes the
//! token (TOKEN.md, Several processes on one token).

use std::time::Duration;

use super::error::Result;

/// Attempts for an operation that fails transiently.
const TRANSIENT_ATTEMPTS: u32 = 6;

/// Runs `op` again after a short back-off (4, 8, … 64 ms) while it fails
/// transiently. Blocking: call it on a token thread, never on the async
/// runtime's.
pub(crate) fn retry_transient<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        match op() {
            Err(e) if e.is_transient() && attempt + 1 < TRANSIENT_ATTEMPTS => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "transient token error; retrying");
                std::thread::sleep(Duration::from_millis(2 << attempt));
            }
            r => return r,
        }
    }
}
