//! Plugs the token into the DNSSEC signer: each worker owns one pooled
//! session for its life (ARCHITECTURE.md, The signing path).

use crate::dnssec::sign::{SignError, SignWorker, SignerPool, SigningKey};
use crate::hsm::token::PooledSession;
use crate::hsm::{keys, Token};

impl SignerPool for Token {
    type Worker<'a> = TokenWorker<'a>;

    fn worker(&self) -> Result<TokenWorker<'_>, String> {
        self.session()
            .map(|session| TokenWorker { session })
            .map_err(|e| e.to_string())
    }

    fn worker_count(&self) -> usize {
        Token::worker_count(self)
    }
}

/// A signing worker with its own session.
pub struct TokenWorker<'a> {
    session: PooledSession<'a>,
}

impl SignWorker for TokenWorker<'_> {
    fn sign(&mut self, key: &SigningKey, data: &[u8]) -> Result<Vec<u8>, SignError> {
        keys::sign(
            &mut self.session,
            key.algorithm.sign_scheme(),
            &key.token_id,
            data,
        )
        .map_err(|e| SignError {
            key_tag: key.key_tag,
            reason: e.to_string(),
        })
    }
}
