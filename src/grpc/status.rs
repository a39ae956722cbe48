//! The one table from service errors to gRPC status codes. Every variant
//! of every module's error is named here, so that a new one cannot slip
//! through with a code nobody chose.

use tonic::{Code, Status};

use crate::dnssec::zone::ZoneError as ZoneFileError;
use crate::error::{
    AccessError, Error, KeyError, LimitError, RequestError, RoleError, SigningError, ZoneNameError,
    ZonesError,
};
use crate::hsm::HsmError;
use crate::store::StoreError;

/// The status code of an error.
pub fn code(e: &Error) -> Code {
    match e {
        Error::ZoneName(e) => match e {
            ZoneNameError::Missing | ZoneNameError::Invalid { .. } => Code::InvalidArgument,
            ZoneNameError::NotManaged(_) => Code::NotFound,
        },
        Error::Access(e) => match e {
            AccessError::NoCertificate | AccessError::Nameless => Code::Unauthenticated,
            AccessError::Denied { .. } => Code::PermissionDenied,
        },
        Error::Request(e) => match e {
            RequestError::NotU16 { .. }
            | RequestError::Digest(_)
            | RequestError::NoStart
            | RequestError::NotChunk
            | RequestError::Header(_)
            | RequestError::Role(_) => Code::InvalidArgument,
        },
        Error::Limit(e) => match e {
            LimitError::Streams { .. }
            | LimitError::Rate { .. }
            | LimitError::Batch { .. }
            | LimitError::ZoneBytes { .. } => Code::ResourceExhausted,
        },
        Error::Zones(e) => match e {
            ZonesError::Exists(_) => Code::AlreadyExists,
            ZonesError::ApexTooLongForNsec3 { .. }
            | ZonesError::Source { .. }
            | ZonesError::Secondary { .. }
            | ZonesError::TsigKey { .. }
            | ZonesError::TwoSources { .. }
            | ZonesError::Primary { .. }
            | ZonesError::SerialPolicy(_) => Code::InvalidArgument,
            ZonesError::HasKeys { .. } | ZonesError::NoDnsListener { .. } => {
                Code::FailedPrecondition
            }
        },
        Error::Keys(e) => key_code(e),
        Error::Signing(e) => signing_code(e),
        Error::ZoneFile(e) => zone_file_code(e),
        Error::Role(e) => role_code(e),
        Error::Policy(_) => Code::InvalidArgument,
        Error::Store(e) => store_code(e),
        Error::Hsm(e) => match e {
            HsmError::KeyNotFound { .. } => Code::FailedPrecondition,
            HsmError::Unsupported { .. } => Code::InvalidArgument,
            HsmError::ModuleNotFound { .. }
            | HsmError::TokenNotFound { .. }
            | HsmError::WrongPin { .. }
            | HsmError::PinLocked { .. }
            | HsmError::BadPublicKey(_)
            | HsmError::Pkcs11 { .. }
            | HsmError::Other(_) => Code::Unavailable,
        },
        Error::Lost(_) => Code::Internal,
    }
}

fn key_code(e: &KeyError) -> Code {
    match e {
        KeyError::NoSuchKey { .. } | KeyError::NoSuchObject { .. } => Code::NotFound,
        KeyError::AmbiguousTag { .. } | KeyError::UnknownSetting { .. } => Code::InvalidArgument,
        KeyError::LastActive { .. }
        | KeyError::AlreadyRetired { .. }
        | KeyError::NoRekeyNeeded { .. }
        | KeyError::NotRollable { .. }
        | KeyError::InRoll { .. }
        | KeyError::NothingToStep { .. }
        | KeyError::AlgorithmRoll { .. }
        | KeyError::NotOrphan { .. } => Code::FailedPrecondition,
        KeyError::BadRecord { .. } => Code::Internal,
    }
}

fn signing_code(e: &SigningError) -> Code {
    match e {
        SigningError::EmptyBatch
        | SigningError::Rrset { .. }
        | SigningError::KskOnly { .. }
        | SigningError::Validity(_) => Code::InvalidArgument,
        SigningError::NoActiveKey { .. } => Code::FailedPrecondition,
        SigningError::Sign { .. } | SigningError::Worker(_) => Code::Unavailable,
        SigningError::Deadline { .. } | SigningError::Stopped => Code::DeadlineExceeded,
    }
}

fn zone_file_code(e: &ZoneFileError) -> Code {
    match e {
        ZoneFileError::Parse { .. }
        | ZoneFileError::Include
        | ZoneFileError::OutsideZone { .. }
        | ZoneFileError::Class { .. }
        | ZoneFileError::NoSoa { .. }
        | ZoneFileError::ManySoa { .. }
        | ZoneFileError::TtlMismatch { .. } => Code::InvalidArgument,
        ZoneFileError::TooLarge { .. } => Code::ResourceExhausted,
        ZoneFileError::NoKey { .. } | ZoneFileError::Serial(_) => Code::FailedPrecondition,
        ZoneFileError::Sign(_) | ZoneFileError::Worker(_) => Code::Unavailable,
        ZoneFileError::Aborted(_) => Code::Cancelled,
    }
}

fn role_code(e: &RoleError) -> Code {
    match e {
        RoleError::NotRegistered { .. } => Code::NotFound,
        RoleError::BadKeyId(_) => Code::InvalidArgument,
        RoleError::NotKeyMaster { .. }
        | RoleError::HandingOver { .. }
        | RoleError::AlreadyHolder { .. }
        | RoleError::NotCandidate { .. }
        | RoleError::HolderUnreachable { .. }
        | RoleError::HolderOnline { .. }
        | RoleError::Offline { .. }
        | RoleError::TargetOffline { .. }
        | RoleError::CannotAsk { .. }
        | RoleError::KeysOutOfReach { .. }
        | RoleError::MovedMeanwhile { .. }
        | RoleError::NotHeldAt { .. }
        | RoleError::WrongNode { .. }
        | RoleError::PeerRefused { .. } => Code::FailedPrecondition,
        RoleError::Unreachable { .. } | RoleError::Peer { .. } | RoleError::NoPeers => {
            Code::Unavailable
        }
    }
}

fn store_code(e: &StoreError) -> Code {
    match e {
        StoreError::ZoneNotFound(_) | StoreError::KeyNotFound { .. } => Code::NotFound,
        StoreError::ZoneExists(_) => Code::AlreadyExists,
        StoreError::Fenced { .. } => Code::FailedPrecondition,
        StoreError::Unavailable { .. }
        | StoreError::Refused { .. }
        | StoreError::AuditUnwritable(_) => Code::Unavailable,
        StoreError::Corrupt(_) => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let message = match &e {
            // Said as before the split: what the caller can act on.
            Error::Hsm(HsmError::KeyNotFound { .. }) => {
                format!("{e}: this node's token does not hold the key")
            }
            _ => e.to_string(),
        };
        Status::new(code(&e), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_refusal_has_its_code() {
        let cases: Vec<(Error, Code)> = vec![
            (ZoneNameError::Missing.into(), Code::InvalidArgument),
            (
                ZoneNameError::NotManaged("a.".into()).into(),
                Code::NotFound,
            ),
            (AccessError::NoCertificate.into(), Code::Unauthenticated),
            (
                RoleError::MovedMeanwhile {
                    zone: "a.".into(),
                    expected: 1,
                    actual: 2,
                }
                .into(),
                Code::FailedPrecondition,
            ),
            (SigningError::Stopped.into(), Code::DeadlineExceeded),
            (
                LimitError::Batch { count: 2, max: 1 }.into(),
                Code::ResourceExhausted,
            ),
            (
                StoreError::AuditUnwritable("x".into()).into(),
                Code::Unavailable,
            ),
        ];
        for (e, c) in cases {
            assert_eq!(Status::from(e).code(), c);
        }
    }
}
