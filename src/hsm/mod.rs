//! The PKCS#11 port: the only module that imports `cryptoki`.
//!
//! - `port`: the `Hsm` trait the services use (and `KeySigner` for workers);
//! - `pool`: the one signing pool of a token;
//! - `bound`: the bound on every wait for the token, and the calls past it;
//! - `token`: module loading, token choice, the one login, the session pool;
//! - `keys`: key templates, generation, public keys, lookup, signing;
//! - `objects`, `retry`: lookups by CKA_ID, retrying transient failures;
//! - `identity`, `uri`: what names a token; RFC 7512 URIs;
//! - `error`: what can go wrong, naming the PKCS#11 function and return value;
//! - `fake`: an in-memory `Hsm` for unit tests (never proof of signing).
//!
//! Inside: port → token, keys; keys → token, objects; token → objects,
//! uri, identity; objects → retry. No cycles.

pub mod bound;
pub mod error;
pub mod fake;
pub mod identity;
pub mod keys;
mod objects;
pub mod pool;
pub mod port;
mod retry;
pub mod token;
pub mod uri;

pub use error::HsmError;
pub use identity::TokenIdentity;
pub use keys::{KeySpec, SignScheme};
pub use pool::SigningPool;
pub use port::{Hsm, KeySigner};
pub use token::{Token, TokenConfig};
pub use uri::TokenSelector;
