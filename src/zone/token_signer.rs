//! Plugs a token's signer into the DNSSEC code: a `SignWorker` over a
//! worker's `KeySigner` (ARCHITECTURE.md, The signing path).

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
