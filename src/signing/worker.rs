//! Plugs a signing worker into the DNSSEC code, and lets a caller that has
//! gone stop the work it asked for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::dnssec::sign::{KeyRole, SignError, SignWorker, SigningKey};
use crate::hsm::KeySigner;

/// A signing worker's signer, as the DNSSEC code sees it, for one zone.
/// The signatures it made are counted in the metrics when it is dropped
/// (once per batch, not per signature: a label lookup per RRSIG would cost
/// the signing rate).
pub struct KeyWorker<'a> {
    signer: &'a mut dyn KeySigner,
    zone: &'a str,
    /// RRSIGs made by KSKs and by ZSKs.
    made: [u64; 2],
}

impl<'a> KeyWorker<'a> {
    pub fn new(signer: &'a mut dyn KeySigner, zone: &'a str) -> KeyWorker<'a> {
        KeyWorker {
            signer,
            zone,
            made: [0, 0],
        }
    }
}

impl SignWorker for KeyWorker<'_> {
    fn sign(&mut self, key: &SigningKey, data: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature = self
            .signer
            .sign(key.algorithm.sign_scheme(), &key.token_id, data)
            .map_err(|e| SignError {
                key_tag: key.key_tag,
                reason: e.to_string(),
            })?;
        self.made[usize::from(key.role == KeyRole::Zsk)] += 1;
        Ok(signature)
    }
}

impl Drop for KeyWorker<'_> {
    fn drop(&mut self) {
        crate::metrics::rrsigs_made(self.zone, "ksk", self.made[0]);
        crate::metrics::rrsigs_made(self.zone, "zsk", self.made[1]);
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
