//! The port the services use to reach a token: `Hsm`, with `KeySigner`
//! for the signing workers. `Token` is the PKCS#11 implementation;
//! `fake::FakeHsm` an in-memory one for unit tests of the layers above
//! (never as proof that signing with a token works).
//!
//! Every method blocks: call them on a blocking thread or a signing
//! worker, never on the async runtime's threads.

use super::error::Result;
use super::identity::TokenIdentity;
use super::keys::{self, KeyObject, KeySpec, SignScheme};
use super::token::{PooledSession, Token};

/// What the services need of a token.
pub trait Hsm: Send + Sync + std::fmt::Debug {
    fn identity(&self) -> &TokenIdentity;

    /// How many signing workers are worth running, each with a session.
    fn worker_count(&self) -> usize;

    /// Generates a key pair as token objects, private, sensitive and never
    /// extractable, with this CKA_ID and label; returns the public key in
    /// DNSKEY form.
    fn generate(&self, spec: KeySpec, id: &[u8], label: &str) -> Result<Vec<u8>>;

    /// Sets the label of both halves of a pair no other process uses yet.
    fn set_label(&self, id: &[u8], label: &str) -> Result<()>;

    /// Destroys both halves of a pair; returns how many objects went.
    fn destroy(&self, id: &[u8]) -> Result<usize>;

    /// Whether the private key is in the token, asked of a fresh view of
    /// the token before the answer is no.
    fn has_private_key(&self, id: &[u8]) -> Result<bool>;

    /// Every private key object in the token.
    fn list_private_keys(&self) -> Result<Vec<KeyObject>>;

    /// Forgets what is cached for a key that stops signing.
    fn forget_handle(&self, id: &[u8]);

    /// A signer with a session of its own, for one worker.
    fn signer(&self) -> Result<Box<dyn KeySigner + '_>>;

    /// Whether the token answers now (for the health service); a token
    /// whose sessions are gone is looked for again by a fresh module.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Closes the token for good before the process exits: sessions closed
    /// and the module finalised on the calling thread, so that no library
    /// clean-up runs on another thread during exit. Later calls fail.
    fn shut_down(&self) {}
}

/// Signs with the token's keys on one session.
pub trait KeySigner {
    fn sign(&mut self, scheme: SignScheme, id: &[u8], data: &[u8]) -> Result<Vec<u8>>;
}

impl Hsm for Token {
    fn identity(&self) -> &TokenIdentity {
        Token::identity(self)
    }

    fn worker_count(&self) -> usize {
        Token::worker_count(self)
    }

    fn generate(&self, spec: KeySpec, id: &[u8], label: &str) -> Result<Vec<u8>> {
        keys::generate(self, spec, id, label)
    }

    fn set_label(&self, id: &[u8], label: &str) -> Result<()> {
        keys::set_label(self, id, label)
    }

    fn destroy(&self, id: &[u8]) -> Result<usize> {
        keys::destroy(self, id)
    }

    fn has_private_key(&self, id: &[u8]) -> Result<bool> {
        keys::has_private_key(self, id)
    }

    fn list_private_keys(&self) -> Result<Vec<KeyObject>> {
        keys::list_private_keys(self)
    }

    fn forget_handle(&self, id: &[u8]) {
        Token::forget_handle(self, id)
    }

    fn signer(&self) -> Result<Box<dyn KeySigner + '_>> {
        Ok(Box::new(self.session()?))
    }

    fn check(&self) -> Result<()> {
        Token::check(self)
    }

    fn shut_down(&self) {
        Token::shut_down(self)
    }
}

impl KeySigner for PooledSession<'_> {
    fn sign(&mut self, scheme: SignScheme, id: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        keys::sign(self, scheme, id, data)
    }
}
