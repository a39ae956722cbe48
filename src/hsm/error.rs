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
    #[error("PKCS#11 C_{function:?} failed: CKR {rv:?}")]
    Pkcs11 { function: Function, rv: RvError },
    #[error("PKCS#11: {0}")]
    Other(String),
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
                crate::metrics::token_error(&function, &rv);
                HsmError::Pkcs11 { function, rv }
            }
            other => HsmError::Other(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, HsmError>;
