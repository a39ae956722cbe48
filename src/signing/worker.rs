//! Plugs a signing worker into the DNSSEC code, and lets a caller that has
//! gone stop the work it asked for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::dnssec::sign::{SignError, SignWorker, SigningKey};
use crate::hsm::KeySigner;

/// A signing worker's signer, as the DNSSEC code sees it.
pub struct KeyWorker<'a>(pub &'a mut dyn KeySigner);

impl SignWorker for KeyWorker<'_> {
    fn sign(&mut self, key: &SigningKey, data: &[u8]) -> Result<Vec<u8>, SignError> {
        self.0
            .sign(key.algorithm.sign_scheme(), &key.token_id, data)
            .map_err(|e| SignError {
                key_tag: key.key_tag,
                reason: e.to_string(),
            })
    }
}

/// Set when the caller of a signing call has gone or its deadline has
/// passed: the signing workers stop at the next RRset (or batch).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
