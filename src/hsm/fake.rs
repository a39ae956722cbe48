//! An in-memory `Hsm` for unit tests of the layers above the token: keys
//! made and used with `ring` in this process. It is no proof that signing
//! with a token works (the integration tests use SoftHSM2 for that).
//! ECDSA P-256, P-384 and Ed25519; RSA is refused as unsupported.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use super::error::{HsmError, Result};
use super::identity::TokenIdentity;
use super::keys::{KeyObject, KeySpec, SignScheme};
use super::port::{Hsm, KeySigner};

struct FakeKey {
    spec: KeySpec,
    label: String,
    pkcs8: Zeroizing<Vec<u8>>,
}

/// Keys in memory, by CKA_ID.
pub struct FakeHsm {
    identity: TokenIdentity,
    keys: Mutex<BTreeMap<Vec<u8>, FakeKey>>,
}

impl std::fmt::Debug for FakeHsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHsm")
            .field("identity", &self.identity)
            .finish()
    }
}

impl FakeHsm {
    pub fn new(label: &str) -> FakeHsm {
        FakeHsm {
            identity: TokenIdentity {
                label: label.to_string(),
                serial: format!("fake-{label}"),
                manufacturer: "keymaster tests".into(),
                model: "FakeHsm".into(),
            },
            keys: Mutex::new(BTreeMap::new()),
        }
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, FakeKey>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn unsupported(what: &str) -> HsmError {
    HsmError::Unsupported {
        what: format!("{what} (the fake token)"),
    }
}

fn ecdsa(spec: KeySpec) -> Option<&'static signature::EcdsaSigningAlgorithm> {
    match spec {
        KeySpec::EcP256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        KeySpec::EcP384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

impl Hsm for FakeHsm {
    fn identity(&self) -> &TokenIdentity {
        &self.identity
    }

    fn worker_count(&self) -> usize {
        2
    }

    fn generate(&self, spec: KeySpec, id: &[u8], label: &str) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        let failed = |_| HsmError::Other("fake key generation failed".into());
        let (pkcs8, public) = match spec {
            KeySpec::Ed25519 => {
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?;
                let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
                    .map_err(|e| HsmError::Other(e.to_string()))?;
                (doc.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
            }
            spec => {
                let alg = ecdsa(spec).ok_or_else(|| unsupported("RSA"))?;
                let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(failed)?;
                let pair = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng)
                    .map_err(|e| HsmError::Other(e.to_string()))?;
                // Uncompressed point without its 0x04: X || Y (RFC 6605 §4).
                (
                    doc.as_ref().to_vec(),
                    pair.public_key().as_ref()[1..].to_vec(),
                )
            }
        };
        self.keys().insert(
            id.to_vec(),
            FakeKey {
                spec,
                label: label.to_string(),
                pkcs8: Zeroizing::new(pkcs8),
            },
        );
        Ok(public)
    }

    fn set_label(&self, id: &[u8], label: &str) -> Result<()> {
        match self.keys().get_mut(id) {
            Some(k) => {
                k.label = label.to_string();
                Ok(())
            }
            None => Err(HsmError::KeyNotFound {
                id: crate::hex::hex(id),
            }),
        }
    }

    fn destroy(&self, id: &[u8]) -> Result<usize> {
        Ok(self.keys().remove(id).map_or(0, |_| 2))
    }

    fn has_private_key(&self, id: &[u8]) -> Result<bool> {
        Ok(self.keys().contains_key(id))
    }

    fn list_private_keys(&self) -> Result<Vec<KeyObject>> {
        Ok(self
            .keys()
            .iter()
            .map(|(id, k)| KeyObject {
                id: id.clone(),
                label: k.label.clone(),
            })
            .collect())
    }

    fn forget_handle(&self, _id: &[u8]) {}

    fn signer(&self) -> Result<Box<dyn KeySigner + '_>> {
        Ok(Box::new(FakeSigner { hsm: self }))
    }
}

struct FakeSigner<'a> {
    hsm: &'a FakeHsm,
}

impl KeySigner for FakeSigner<'_> {
    fn sign(&mut self, scheme: SignScheme, id: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        let keys = self.hsm.keys();
        let k = keys.get(id).ok_or_else(|| HsmError::KeyNotFound {
            id: crate::hex::hex(id),
        })?;
        if SignScheme::for_spec(k.spec) != scheme {
            return Err(unsupported("that mechanism for this key"));
        }
        let bad = |e: ring::error::KeyRejected| HsmError::Other(e.to_string());
        match k.spec {
            KeySpec::Ed25519 => Ok(Ed25519KeyPair::from_pkcs8(&k.pkcs8)
                .map_err(bad)?
                .sign(data)
                .as_ref()
                .to_vec()),
            spec => {
                let rng = SystemRandom::new();
                let alg = ecdsa(spec).ok_or_else(|| unsupported("RSA"))?;
                let pair = EcdsaKeyPair::from_pkcs8(alg, &k.pkcs8, &rng).map_err(bad)?;
                pair.sign(&rng, data)
                    .map(|s| s.as_ref().to_vec())
                    .map_err(|_| HsmError::Other("fake signing failed".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_keys_sign_and_verify_and_can_be_destroyed() {
        let hsm = FakeHsm::new("t");
        let public = hsm.generate(KeySpec::EcP256, b"id", "label").unwrap();
        assert_eq!(public.len(), 64);
        let sig = hsm
            .signer()
            .unwrap()
            .sign(SignScheme::EcdsaSha256, b"id", b"data")
            .unwrap();
        let mut point = vec![4];
        point.extend_from_slice(&public);
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
            .verify(b"data", &sig)
            .unwrap();
        assert!(hsm.has_private_key(b"id").unwrap());
        assert_eq!(hsm.destroy(b"id").unwrap(), 2);
        assert!(!hsm.has_private_key(b"id").unwrap());
        assert!(hsm.generate(KeySpec::Rsa(2048), b"r", "r").is_err());
    }
}
