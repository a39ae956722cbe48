//! What identifies a token to people and to other nodes.

/// A token's label, serial, maker and model, as it reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
}
