//! Errors of the token layer. Each names the PKCS#11 function and return
//! value where one failed.

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};

#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("PKCS#11 module {path} could not be loaded: {reason}")]
    ModuleNotFound { path: String, reason: String },
    #[error("no token matches {selector} (tokens present: {present})")]
    TokenNotFound { selector: String, present: String },
    #[error("the PIN for token {token} is wrong (CKR_PIN_INCORRECT)")]
    WrongPin { token: String },
    #[error("the PIN for token {token} is locked (CKR_PIN_LOCKED)")]
    PinLocked { token: String },
    #[error("token key {id} not found")]
    KeyNotFound { id: String },
    #[error("token does not support {what}")]
    Unsupported { what: String },
    #[error("unexpected public key data from the token: {0}")]
    BadPublicKey(String),
    #[error("PKCS#11 C_{function:?} failed: {}{}", ckr_name(rv), hint(*rv))]
    Pkcs11 { function: Function, rv: RvError },
    #[error("PKCS#11: {0}")]
    Other(String),
    /// A call into the token did not return within the bound (`bound.rs`).
    #[error(
        "token {token} did not answer within {} s (a call into it has not returned); the request was not done",
        bound.as_secs_f64()
    )]
    Stalled {
        token: String,
        bound: std::time::Duration,
    },
}

impl HsmError {
    /// Whether a retry with a re-found handle may succeed: SoftHSM reports
    /// these while another process writes the token (TOKEN.md, Several processes on one token).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HsmError::Pkcs11 {
                rv: RvError::ObjectHandleInvalid
                    | RvError::KeyHandleInvalid
                    | RvError::GeneralError
                    | RvError::DeviceError,
                ..
            }
        )
    }
}

impl HsmError {
    /// Whether the module's state for the token is gone: its sessions or
    /// slot no longer exist (the token went, or the module lost track),
    /// so only a re-initialised module may reach it.
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            HsmError::Pkcs11 {
                rv: RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::SlotIdInvalid
                    | RvError::TokenNotPresent
                    | RvError::TokenNotRecognized
                    | RvError::DeviceRemoved
                    | RvError::CryptokiNotInitialized
                    | RvError::UserNotLoggedIn,
                ..
            }
        )
    }
}

impl From<CkError> for HsmError {
    fn from(e: CkError) -> Self {
        match e {
            CkError::Pkcs11(rv, function) => {
                crate::metrics::token_error(format!("C_{function:?}"), ckr_name(&rv));
                HsmError::Pkcs11 { function, rv }
            }
            other => HsmError::Other(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, HsmError>;

/// The CKR_ name of a return value, as PKCS#11 writes it, from cryptoki's
/// variant name (`GeneralError` → `CKR_GENERAL_ERROR`).
pub fn ckr_name(rv: &RvError) -> String {
    let mut out = String::from("CKR");
    for c in format!("{rv:?}").chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What to check, for the return values that say little by themselves.
fn hint(rv: RvError) -> &'static str {
    match rv {
        RvError::GeneralError | RvError::DeviceError | RvError::FunctionFailed => {
            " (the token failed without saying why: check that it is present and that its storage \
             is readable and writable by keymasterd, for SoftHSM2 the token directory of its \
             configuration file)"
        }
        RvError::DeviceMemory | RvError::HostMemory => {
            " (the token or the host is out of memory or storage)"
        }
        RvError::TokenNotPresent | RvError::DeviceRemoved | RvError::SlotIdInvalid => {
            " (the token is not there: check its connection or, for SoftHSM2, its token directory)"
        }
        RvError::UserNotLoggedIn | RvError::SessionHandleInvalid | RvError::SessionClosed => {
            " (the session or login was lost; keymasterd logs in again on the next call)"
        }
        RvError::MechanismInvalid
        | RvError::KeyTypeInconsistent
        | RvError::TemplateInconsistent => {
            " (the token does not support this algorithm or key size)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_are_named_as_in_pkcs11_with_what_to_check() {
        assert_eq!(ckr_name(&RvError::GeneralError), "CKR_GENERAL_ERROR");
        assert_eq!(ckr_name(&RvError::SlotIdInvalid), "CKR_SLOT_ID_INVALID");
        let e = HsmError::Pkcs11 {
            function: Function::GenerateKeyPair,
            rv: RvError::GeneralError,
        };
        let said = e.to_string();
        assert!(
            said.starts_with("PKCS#11 C_GenerateKeyPair failed: CKR_GENERAL_ERROR (the token"),
            "{said}"
        );
        assert!(said.contains("readable and writable"), "{said}");
    }
}
