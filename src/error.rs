//! The errors the services return. Each module has its own enum whose
//! variants name the zone, key, epoch or node at fault and carry the source
//! error; `Error` gathers them. Only `grpc/status.rs` decides which gRPC
//! status each one is.

use crate::auth::AccessError;
use crate::dnssec::zone::ZoneError as ZoneFileError;
use crate::hsm::HsmError;
use crate::keyset::KeyError;
use crate::mastership::RoleError;
use crate::node::ZoneNameError;
use crate::policy::PolicyError;
use crate::signing::SigningError;
use crate::store::StoreError;
use crate::zones::ZonesError;

/// Whatever a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed or unknown zone name.
    #[error(transparent)]
    ZoneName(#[from] ZoneNameError),
    /// The caller is not known, or lacks a right.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A request field the transport could not take as it came.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A per-caller or per-request limit.
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(transparent)]
    Zones(#[from] ZonesError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    ZoneFile(#[from] ZoneFileError),
    #[error(transparent)]
    Role(#[from] RoleError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("token: {0}")]
    Hsm(#[from] HsmError),
    /// A blocking task or worker ended without an answer.
    #[error("{0} ended without an answer")]
    Lost(&'static str),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A request field the transport could not take as it came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{field} {value} is not a 16-bit number")]
    NotU16 { field: &'static str, value: u32 },
    #[error("DS digest algorithm {0} is not supported (2 = SHA-256, 4 = SHA-384)")]
    Digest(u32),
    #[error("the first SignZone message must be `start` naming the zone")]
    NoStart,
    #[error("after `start`, SignZone messages must be `chunk`")]
    NotChunk,
    #[error("{0} is not text")]
    Header(&'static str),
    #[error("role {0} is not ksk or zsk")]
    Role(String),
}

/// A limit on what one request or one caller may use; each names the
/// setting that sets it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "{caller} already has {open} zone-signing streams open (max_streams_per_caller = {max})"
    )]
    Streams {
        caller: String,
        open: usize,
        max: usize,
    },
    #[error("{caller} is over its signing rate of {rate} RRsets/s (sign_rate_per_caller)")]
    Rate { caller: String, rate: u32 },
    #[error("batch of {count} RRsets is over the limit of {max} (max_batch_rrsets)")]
    Batch { count: usize, max: usize },
    #[error("zone file is over the limit of {max} bytes (max_zone_bytes)")]
    ZoneBytes { max: usize },
}

/// Text a caller sent, made safe to echo in a message, a log line or an
/// audit entry: quoted, control and non-ASCII characters escaped, and cut
/// after 100 characters.
pub fn shown(input: &str) -> String {
    const MAX: usize = 100;
    let mut out = String::from("\"");
    for (i, c) in input.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_text_is_escaped_and_cut() {
        assert_eq!(shown("example.com"), "\"example.com\"");
        assert_eq!(
            shown("a\nb\u{1b}[31m\"é"),
            "\"a\\nb\\u{1b}[31m\\\"\\u{e9}\""
        );
        let long = "x".repeat(500);
        assert_eq!(shown(&long).chars().count(), 100 + 3);
    }
}
