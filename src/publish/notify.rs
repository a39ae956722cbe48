//! NOTIFY (RFC 1996) to a zone's secondaries when a new serial is served:
//! over UDP, retried, each secondary on its own.

use std::net::SocketAddr;
use std::time::Duration;

use domain::base::iana::Rtype;
use domain::base::Name;

/// Tries per secondary, and how long each waits for the answer.
const TRIES: usize = 3;
const WAIT: Duration = Duration::from_secs(2);

/// Tells one secondary that the zone has a new serial; Ok once it
/// answered, or why it did not.
pub async fn notify(secondary: SocketAddr, apex: &Name<Vec<u8>>) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..TRIES {
        match notify_once(secondary, apex).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn notify_once(secondary: SocketAddr, apex: &Name<Vec<u8>>) -> Result<(), String> {
    crate::dns::notify(secondary, apex, Rtype::SOA, WAIT).await
}
