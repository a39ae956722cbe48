//! The PKCS#11 port: the only module that imports `cryptoki`.
//!
//! - `token`: module loading, token choice, the one login, the session pool;
//! - `keys`: key templates, generation, public keys, lookup, signing;
//! - `uri`: RFC 7512 URIs;
//! - `error`: what can go wrong, naming the PKCS#11 function and return value.

pub mod error;
pub mod keys;
pub mod token;
pub mod uri;

pub use error::HsmError;
pub use keys::{KeySpec, SignScheme};
pub use token::{Token, TokenConfig, TokenIdentity};
pub use uri::TokenSelector;
