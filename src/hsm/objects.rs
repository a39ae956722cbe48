//! Finding objects by CKA_ID on a session: what both the token (its
//! handle cache) and the key operations need.

use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::error::{HsmError, Result};
use super::retry::retry_transient;

/// The private key object with this CKA_ID.
pub(crate) fn find_private(s: &Session, id: &[u8]) -> Result<ObjectHandle> {
    find_one(s, ObjectClass::PRIVATE_KEY, id)
}

/// The one object of this class with this CKA_ID.
pub(crate) fn find_one(s: &Session, class: ObjectClass, id: &[u8]) -> Result<ObjectHandle> {
    let found = retry_transient(|| {
        Ok(s.find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])?)
    })?;
    found
        .into_iter()
        .next()
        .ok_or_else(|| HsmError::KeyNotFound {
            id: crate::hex::hex(id),
        })
}
