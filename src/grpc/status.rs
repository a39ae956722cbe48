//! The one table from service errors to gRPC status codes. Every variant
//! of every module's error is named here, so that a new one cannot slip
//! through with a code nobody chose. Beside the message, each status
//! carries structured details (google.rpc): an `ErrorInfo` whose reason
//! names the kind of error for programs (`ZONE_NAME_NOT_MANAGED`), and for
//! a refused request field a `BadRequest` with the field's path.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::dnssec::zone::ZoneError as ZoneFileError;
use crate::error::{
    AccessError, DelegationError, Error, KeyError, LimitError, RequestError, RoleError,
    SigningError, ZoneNameError, ZonesError,
};
use crate::hsm::HsmError;
use crate::store::StoreError;

/// The status code of an error.
///
/// Long because it is the one table of error to gRPC code.
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
            ZonesError::HasKeys { .. }
            | ZonesError::NoDnsListener { .. }
            | ZonesError::RollUnderWay { .. }
            | ZonesError::CskChange { .. }
            | ZonesError::CskAlgorithm { .. }
            | ZonesError::Unsigning { .. }
            | ZonesError::NotUnsigning { .. }
            | ZonesError::NoPendingReview { .. } => Code::FailedPrecondition,
        },
        Error::Delegation(e) => match e {
            DelegationError::NotBelow { .. }
            | DelegationError::NoServers { .. }
            | DelegationError::Server { .. }
            | DelegationError::Ds { .. } => Code::InvalidArgument,
            DelegationError::Managed { .. }
            | DelegationError::WouldDropDs { .. }
            | DelegationError::DsMatchesNoKey { .. }
            | DelegationError::CannotCheckDs { .. } => Code::FailedPrecondition,
            DelegationError::NoSuch { .. } => Code::NotFound,
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
            | HsmError::Other(_)
            | HsmError::Stalled { .. } => Code::Unavailable,
        },
        Error::Lost(_) => Code::Internal,
    }
}

fn key_code(e: &KeyError) -> Code {
    match e {
        KeyError::NoSuchKey { .. } | KeyError::NoSuchObject { .. } => Code::NotFound,
        KeyError::AmbiguousTag { .. } | KeyError::UnknownSetting { .. } => Code::InvalidArgument,
        KeyError::LastActive { .. }
        | KeyError::TooEarly { .. }
        | KeyError::AlreadyRetired { .. }
        | KeyError::NoRekeyNeeded { .. }
        | KeyError::NotRollable { .. }
        | KeyError::InRoll { .. }
        | KeyError::NothingToStep { .. }
        | KeyError::NotRevocable { .. }
        | KeyError::RollUnderWay { .. }
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
        | ZoneFileError::TtlMismatch { .. }
        | ZoneFileError::Structure { .. } => Code::InvalidArgument,
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

/// The `ErrorInfo` domain of keymaster's reasons.
pub const DOMAIN: &str = "keymaster";

/// The reason an error is given for: its kind and its variant, in upper
/// snake case (`ZONE_NAME_NOT_MANAGED`, `ROLE_NOT_KEY_MASTER`,
/// `HSM_WRONG_PIN`). Taken from the names of the error enums' variants,
/// never from what they hold: renaming a variant changes a reason, which
/// the API's users may match on.
pub fn reason(e: &Error) -> String {
    let debug = format!("{e:?}");
    let mut names = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .take_while(|w| w.starts_with(|c: char| c.is_ascii_uppercase()));
    let kind = names.next().unwrap_or("Error");
    let variant = names.next().unwrap_or("");
    let mut out = String::new();
    for c in kind.chars().chain(variant.chars()) {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The request field a refusal is about, as a path in the request message.
fn field(e: &Error) -> Option<String> {
    let path = match e {
        Error::ZoneName(ZoneNameError::Missing | ZoneNameError::Invalid { .. }) => "zone",
        Error::Request(RequestError::NotU16 { field, .. }) => field,
        Error::Request(RequestError::Digest(_)) => "digests",
        Error::Request(RequestError::Role(_)) => "role",
        Error::Signing(SigningError::EmptyBatch) => "rrsets",
        Error::Signing(SigningError::Rrset { index, .. }) => {
            return Some(format!("rrsets[{index}]"))
        }
        Error::Signing(SigningError::KskOnly { index, .. }) => {
            return Some(format!("rrsets[{index}].rtype"))
        }
        Error::Zones(e) => match e {
            ZonesError::Source { .. } => "source_file",
            ZonesError::Primary { .. } | ZonesError::TwoSources { .. } => "source_primary",
            ZonesError::Secondary { .. } => "secondaries",
            ZonesError::TsigKey { .. } => "tsig_key",
            ZonesError::SerialPolicy(_) => "serial_policy",
            _ => return None,
        },
        Error::Delegation(e) => match e {
            DelegationError::NotBelow { .. } | DelegationError::Managed { .. } => "child",
            DelegationError::NoServers { .. } | DelegationError::Server { .. } => "servers",
            DelegationError::Ds { .. }
            | DelegationError::WouldDropDs { .. }
            | DelegationError::DsMatchesNoKey { .. }
            | DelegationError::CannotCheckDs { .. } => "ds",
            DelegationError::NoSuch { .. } => return None,
        },
        _ => return None,
    };
    Some(path.to_string())
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
        let mut details = ErrorDetails::new();
        details.set_error_info(reason(&e), DOMAIN, std::collections::HashMap::new());
        if let Some(path) = field(&e) {
            details.add_bad_request_violation(path, message.clone());
        }
        Status::with_error_details(code(&e), message, details)
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

    #[test]
    fn each_status_names_its_reason_and_the_field_refused() {
        let cases: Vec<(Error, &str, Option<&str>)> = vec![
            (
                ZoneNameError::NotManaged("a.".into()).into(),
                "ZONE_NAME_NOT_MANAGED",
                None,
            ),
            (
                ZoneNameError::Missing.into(),
                "ZONE_NAME_MISSING",
                Some("zone"),
            ),
            (
                RequestError::NotU16 {
                    field: "rrsets.rtype",
                    value: 70_000,
                }
                .into(),
                "REQUEST_NOT_U16",
                Some("rrsets.rtype"),
            ),
            (
                HsmError::WrongPin { token: "t".into() }.into(),
                "HSM_WRONG_PIN",
                None,
            ),
            (Error::Lost("a worker"), "LOST", None),
            (
                StoreError::AuditUnwritable("x".into()).into(),
                "STORE_AUDIT_UNWRITABLE",
                None,
            ),
        ];
        for (e, want, path) in cases {
            let status = Status::from(e);
            let info = status.get_details_error_info().expect("an ErrorInfo");
            assert_eq!(info.reason, want);
            assert_eq!(info.domain, DOMAIN);
            let fields: Vec<String> = status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                .unwrap_or_default();
            assert_eq!(
                fields,
                path.into_iter().map(String::from).collect::<Vec<_>>()
            );
        }
    }
}
