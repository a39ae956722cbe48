//! Key pairs in the token: templates, generation, public key export in
//! DNSKEY form, lookup, signing and destruction.
//!
//! Private keys are created as token objects, private, sensitive and never
//! extractable (ARCHITECTURE.md, Invariants 1); only their public halves are read back.

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::error::{HsmError, Result};
use super::objects::find_one;
use super::retry::retry_transient;
use super::token::{PooledSession, Token};

/// The kind of key pair, independent of DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    EcP256,
    EcP384,
    Ed25519,
    Rsa(u32),
}

impl KeySpec {
    pub fn bits(self) -> u32 {
        match self {
            KeySpec::EcP256 => 256,
            KeySpec::EcP384 => 384,
            KeySpec::Ed25519 => 256,
            KeySpec::Rsa(b) => b,
        }
    }
}

// DER-encoded curve OIDs for CKA_EC_PARAMS.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// A private key in the token, identified by its CKA_ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyObject {
    pub id: Vec<u8>,
    pub label: String,
}

/// Generates a key pair in the token with the given CKA_ID and label and
/// returns the public key in DNSKEY public-key-field form (RFC 3110, RFC 6605,
/// RFC 8080).
pub fn generate(token: &Token, spec: KeySpec, id: &[u8], label: &str) -> Result<Vec<u8>> {
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let mechanism = match spec {
        KeySpec::EcP256 | KeySpec::EcP384 => {
            let oid = if spec == KeySpec::EcP256 {
                OID_P256
            } else {
                OID_P384
            };
            public.push(Attribute::EcParams(oid.to_vec()));
            private.push(Attribute::KeyType(KeyType::EC));
            Mechanism::EccKeyPairGen
        }
        KeySpec::Ed25519 => {
            public.push(Attribute::EcParams(OID_ED25519.to_vec()));
            private.push(Attribute::KeyType(KeyType::EC_EDWARDS));
            Mechanism::EccEdwardsKeyPairGen
        }
        KeySpec::Rsa(bits) => {
            public.push(Attribute::ModulusBits((bits as u64).into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            private.push(Attribute::KeyType(KeyType::RSA));
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    token.with_keeper(|s| {
        let (pub_handle, priv_handle) =
            retry_transient(|| Ok(s.generate_key_pair(&mechanism, &public, &private)?))?;
        let key = public_key(s, pub_handle, spec);
        match key {
            Ok(k) => Ok(k),
            Err(e) => {
                // Do not leave an orphan pair behind when we cannot use it.
                let _ = s.destroy_object(priv_handle);
                let _ = s.destroy_object(pub_handle);
                Err(e)
            }
        }
    })
}

/// Reads the public key of the pair with this CKA_ID, in DNSKEY form.
pub fn public_key_by_id(token: &Token, spec: KeySpec, id: &[u8]) -> Result<Vec<u8>> {
    token.with_keeper(|s| {
        let handle = find_one(s, ObjectClass::PUBLIC_KEY, id)?;
        public_key(s, handle, spec)
    })
}

fn public_key(s: &Session, handle: ObjectHandle, spec: KeySpec) -> Result<Vec<u8>> {
    match spec {
        KeySpec::EcP256 | KeySpec::EcP384 | KeySpec::Ed25519 => {
            let attrs = s.get_attributes(handle, &[AttributeType::EcPoint])?;
            let point = match attrs.into_iter().next() {
                Some(Attribute::EcPoint(p)) => p,
                _ => return Err(HsmError::BadPublicKey("no CKA_EC_POINT".into())),
            };
            let len = match spec {
                KeySpec::EcP256 => 65,
                KeySpec::EcP384 => 97,
                _ => 32,
            };
            let raw = unwrap_der_octet_string(&point, len)?;
            if spec == KeySpec::Ed25519 {
                Ok(raw.to_vec())
            } else if raw.first() == Some(&0x04) {
                // Uncompressed point: DNSSEC wants X || Y (RFC 6605 §4).
                Ok(raw[1..].to_vec())
            } else {
                Err(HsmError::BadPublicKey(
                    "EC point is not uncompressed".into(),
                ))
            }
        }
        KeySpec::Rsa(_) => {
            let attrs = s.get_attributes(
                handle,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )?;
            let (mut n, mut e) = (Vec::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = v,
                    Attribute::PublicExponent(v) => e = v,
                    _ => {}
                }
            }
            strip_leading_zeros(&mut n);
            strip_leading_zeros(&mut e);
            if n.is_empty() || e.is_empty() {
                return Err(HsmError::BadPublicKey("RSA key without modulus".into()));
            }
            // RFC 3110 §2: exponent length, exponent, modulus.
            let mut out = Vec::with_capacity(3 + e.len() + n.len());
            if e.len() <= 255 {
                out.push(e.len() as u8);
            } else {
                out.push(0);
                out.extend_from_slice(&(e.len() as u16).to_be_bytes());
            }
            out.extend_from_slice(&e);
            out.extend_from_slice(&n);
            Ok(out)
        }
    }
}

fn strip_leading_zeros(v: &mut Vec<u8>) {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..zeros);
}

/// CKA_EC_POINT is a DER OCTET STRING; some modules return the bare point.
fn unwrap_der_octet_string(v: &[u8], len: usize) -> Result<&[u8]> {
    if v.len() == len {
        return Ok(v);
    }
    if v.len() == len + 2 && v[0] == 0x04 && v[1] as usize == len {
        return Ok(&v[2..]);
    }
    if v.len() == len + 3 && v[0] == 0x04 && v[1] == 0x81 && v[2] as usize == len {
        return Ok(&v[3..]);
    }
    Err(HsmError::BadPublicKey(format!(
        "EC point of {} bytes, expected {len}",
        v.len()
    )))
}

/// Every private key object in the token (for reconciliation with the store).
pub fn list_private_keys(token: &Token) -> Result<Vec<KeyObject>> {
    token.with_keeper(|s| {
        let handles =
            retry_transient(|| Ok(s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])?))?;
        let mut out = Vec::new();
        for h in handles {
            let attrs = s.get_attributes(h, &[AttributeType::Id, AttributeType::Label])?;
            let mut k = KeyObject {
                id: Vec::new(),
                label: String::new(),
            };
            for a in attrs {
                match a {
                    Attribute::Id(v) => k.id = v,
                    Attribute::Label(v) => k.label = String::from_utf8_lossy(&v).into_owned(),
                    _ => {}
                }
            }
            out.push(k);
        }
        Ok(out)
    })
}

/// Sets the label of both halves of a new pair. Only for keys no other
/// process signs with yet (TOKEN.md, Several processes on one token: never change attributes of a key in
/// use).
pub fn set_label(token: &Token, id: &[u8], label: &str) -> Result<()> {
    token.with_keeper(|s| {
        let handles = retry_transient(|| Ok(s.find_objects(&[Attribute::Id(id.to_vec())])?))?;
        for h in handles {
            s.update_attributes(h, &[Attribute::Label(label.as_bytes().to_vec())])?;
        }
        Ok(())
    })
}

/// A fresh random CKA_ID.
pub fn new_id() -> Result<Vec<u8>> {
    use ring::rand::SecureRandom;
    let mut id = vec![0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| HsmError::Other("no randomness for a key id".into()))?;
    Ok(id)
}

/// Whether the private key with this CKA_ID is in the token (asked again
/// of a re-initialised module before the answer is no).
pub fn has_private_key(token: &Token, id: &[u8]) -> Result<bool> {
    let found = token.again_on_fresh_module(|| {
        token.with_keeper(|s| find_one(s, ObjectClass::PRIVATE_KEY, id).map(|_| ()))
    });
    match found {
        Ok(()) => Ok(true),
        Err(HsmError::KeyNotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Destroys both halves of the pair with this CKA_ID. Returns how many
/// objects were destroyed.
pub fn destroy(token: &Token, id: &[u8]) -> Result<usize> {
    token.forget_handle(id);
    token.with_keeper(|s| {
        let handles = retry_transient(|| Ok(s.find_objects(&[Attribute::Id(id.to_vec())])?))?;
        let n = handles.len();
        for h in handles {
            s.destroy_object(h)?;
        }
        Ok(n)
    })
}

/// How a key signs: which mechanism, and what to hash first in Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignScheme {
    /// CKM_ECDSA over a SHA-256 digest computed here (SoftHSM 2.6 has no
    /// CKM_ECDSA_SHA256).
    EcdsaSha256,
    /// CKM_ECDSA over a SHA-384 digest computed here.
    EcdsaSha384,
    /// CKM_EDDSA over the message itself.
    Ed25519,
    /// CKM_SHA256_RSA_PKCS over the message.
    RsaSha256,
}

impl SignScheme {
    pub fn for_spec(spec: KeySpec) -> Self {
        match spec {
            KeySpec::EcP256 => SignScheme::EcdsaSha256,
            KeySpec::EcP384 => SignScheme::EcdsaSha384,
            KeySpec::Ed25519 => SignScheme::Ed25519,
            KeySpec::Rsa(_) => SignScheme::RsaSha256,
        }
    }
}

/// Signs `data` with the private key of this CKA_ID on a pooled session.
/// The handle is cached and re-found after a transient failure; a key not
/// found is looked for again after re-initialising the module.
pub fn sign(
    session: &mut PooledSession<'_>,
    scheme: SignScheme,
    id: &[u8],
    data: &[u8],
) -> Result<Vec<u8>> {
    let token = session.token();
    let digest;
    let (mechanism, input): (Mechanism, &[u8]) = match scheme {
        SignScheme::EcdsaSha256 => {
            digest = ring::digest::digest(&ring::digest::SHA256, data);
            (Mechanism::Ecdsa, digest.as_ref())
        }
        SignScheme::EcdsaSha384 => {
            digest = ring::digest::digest(&ring::digest::SHA384, data);
            (Mechanism::Ecdsa, digest.as_ref())
        }
        SignScheme::Ed25519 => (
            Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            data,
        ),
        SignScheme::RsaSha256 => (Mechanism::Sha256RsaPkcs, data),
    };
    let attempt = |session: &mut PooledSession<'_>| -> Result<Vec<u8>> {
        let _open = token.gate();
        session.renew_if_stale()?;
        retry_transient(|| {
            let handle = token.signing_handle(session, id)?;
            session.sign(&mechanism, handle, input).map_err(|e| {
                let e = HsmError::from(e);
                if e.is_transient() {
                    token.forget_handle(id);
                }
                e
            })
        })
    };
    token.again_on_fresh_module(|| attempt(session))
}

/// Reads CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_TOKEN and CKA_PRIVATE of a
/// private key, for self-checks.
pub fn private_key_flags(token: &Token, id: &[u8]) -> Result<(bool, bool, bool, bool)> {
    token.with_keeper(|s| {
        let h = find_one(s, ObjectClass::PRIVATE_KEY, id)?;
        let attrs = s.get_attributes(
            h,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Token,
                AttributeType::Private,
            ],
        )?;
        let (mut sens, mut ext, mut tok, mut prv) = (false, true, false, false);
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => sens = v,
                Attribute::Extractable(v) => ext = v,
                Attribute::Token(v) => tok = v,
                Attribute::Private(v) => prv = v,
                _ => {}
            }
        }
        Ok((sens, ext, tok, prv))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_wrapped_and_bare_ec_points_are_both_accepted() {
        let bare = [7u8; 32];
        assert_eq!(unwrap_der_octet_string(&bare, 32).unwrap(), &bare);
        let mut wrapped = vec![0x04, 32];
        wrapped.extend_from_slice(&bare);
        assert_eq!(unwrap_der_octet_string(&wrapped, 32).unwrap(), &bare);
        let mut long = vec![0x04, 0x81, 97];
        long.extend_from_slice(&[4u8; 97]);
        assert_eq!(unwrap_der_octet_string(&long, 97).unwrap().len(), 97);
        assert!(unwrap_der_octet_string(&[1, 2, 3], 32).is_err());
    }
}
