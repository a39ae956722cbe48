//! The errors the services return, by the kind of answer the caller gets.
//! The gRPC layer maps each kind to one status code (grpc/status.rs).

use crate::dnssec::rrset::RrsetError;
use crate::dnssec::zone::ZoneError;
use crate::hsm::HsmError;
use crate::policy::PolicyError;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is malformed or names something impossible.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well-formed but the state does not allow it (not the
    /// Key Master, last active key, keys would be destroyed without force).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    ResourceExhausted(String),
    /// The caller lacks a right (the message names it).
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller did not prove who it is.
    #[error("{0}")]
    Unauthenticated(String),
    /// The call's deadline passed (or its caller went away) before it was done.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The token or the store is not reachable right now.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

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

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ZoneNotFound(_) | StoreError::KeyNotFound { .. } => {
                Error::NotFound(e.to_string())
            }
            StoreError::ZoneExists(_) => Error::AlreadyExists(e.to_string()),
            StoreError::Fenced { .. } => Error::FailedPrecondition(e.to_string()),
            StoreError::Unavailable { .. } => Error::Unavailable(e.to_string()),
            StoreError::Corrupt(_) => Error::Internal(e.to_string()),
            StoreError::AuditUnwritable(_) => Error::Unavailable(e.to_string()),
        }
    }
}

impl From<HsmError> for Error {
    fn from(e: HsmError) -> Self {
        match e {
            HsmError::KeyNotFound { .. } => {
                Error::FailedPrecondition(format!("{e}: this node's token does not hold the key"))
            }
            HsmError::Unsupported { .. } => Error::InvalidArgument(e.to_string()),
            _ => Error::Unavailable(format!("token: {e}")),
        }
    }
}

impl From<ZoneError> for Error {
    fn from(e: ZoneError) -> Self {
        match e {
            ZoneError::Sign(_) | ZoneError::Worker(_) => Error::Unavailable(e.to_string()),
            ZoneError::Aborted(_) => Error::Internal(e.to_string()),
            ZoneError::TooLarge { .. } => Error::ResourceExhausted(e.to_string()),
            ZoneError::NoKey { .. } => Error::FailedPrecondition(e.to_string()),
            _ => Error::InvalidArgument(e.to_string()),
        }
    }
}

impl From<RrsetError> for Error {
    fn from(e: RrsetError) -> Self {
        Error::InvalidArgument(e.to_string())
    }
}

impl From<PolicyError> for Error {
    fn from(e: PolicyError) -> Self {
        Error::InvalidArgument(e.to_string())
    }
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
