//! The store port: zone settings, key records and (later) role records and
//! the audit log. Every key write is a compare-and-set on the zone's epoch
//! (ARCHITECTURE.md, Invariants 2), so a node with a stale epoch writes nothing.
//!
//! Backends: `sqlite` (embedded, the default; several processes on one
//! host) and `etcd` (a cluster). `tests/e2e/store_conformance.rs` runs one
//! suite against both.

pub mod etcd;
pub mod schema;
pub mod sqlite;
#[cfg(test)]
pub mod testing;

use async_trait::async_trait;

use crate::audit::{AuditDraft, AuditEntry};
use schema::{KeyRecord, NodeRecord, ZoneRecord};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("zone {0} not found")]
    ZoneNotFound(String),
    #[error("zone {0} already exists")]
    ZoneExists(String),
    #[error("key {key} of zone {zone} not found")]
    KeyNotFound { zone: String, key: String },
    #[error("zone {zone}: epoch is {actual}, the write expected {expected}; this node is no longer its Key Master")]
    Fenced {
        zone: String,
        expected: u64,
        actual: u64,
    },
    /// The store could not be used, and a write may or may not have
    /// landed (an answer that never came).
    #[error("store {location} is not usable: {reason}")]
    Unavailable { location: String, reason: String },
    /// The store refused a write, which certainly did not land (SQLite
    /// rolled the transaction back; no etcd member took it).
    #[error("store {location} refused the change, nothing was written: {reason}")]
    Refused { location: String, reason: String },
    #[error("store record is corrupt or of an unknown schema: {0}")]
    Corrupt(String),
    #[error("the audit log cannot be written ({0}); the change is refused")]
    AuditUnwritable(String),
}

impl StoreError {
    /// A write refused because the zone's epoch moved on (counted: a
    /// stale holder's attempts show in the metrics).
    pub fn fenced(zone: &str, expected: u64, actual: u64) -> StoreError {
        crate::metrics::get().store_fenced.inc();
        StoreError::Fenced {
            zone: zone.to_string(),
            expected,
            actual,
        }
    }

    /// Whether the store could not be used (no answer, or a write it
    /// could not take), as opposed to an answer it gave (not found,
    /// fenced): what signing goes on through (ARCHITECTURE.md, Signing
    /// through a store outage).
    pub fn is_unusable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Refused { .. }
        )
    }

    /// The same failure, known to have written nothing.
    pub fn definite(self) -> StoreError {
        match self {
            StoreError::Unavailable { location, reason } => {
                StoreError::Refused { location, reason }
            }
            e => e,
        }
    }
}

/// Where zones, keys and the audit log are kept. Every write that changes
/// a zone or a key carries its audit entry, written in the same
/// transaction: if the entry cannot be written, the change is not made
/// (fail closed).
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Creates a zone with its first keys in one transaction.
    async fn create_zone(
        &self,
        zone: &ZoneRecord,
        keys: &[KeyRecord],
        audit: &AuditDraft,
    ) -> Result<(), StoreError>;
    async fn get_zone(&self, name: &str) -> Result<Option<ZoneRecord>, StoreError>;
    async fn list_zones(&self) -> Result<Vec<ZoneRecord>, StoreError>;
    /// Deletes a zone and its key records if its epoch is still `epoch`.
    async fn delete_zone(
        &self,
        name: &str,
        epoch: u64,
        audit: &AuditDraft,
    ) -> Result<(), StoreError>;
    async fn list_keys(&self, zone: &str) -> Result<Vec<KeyRecord>, StoreError>;
    /// Inserts or replaces a key record if the zone's epoch is still `epoch`.
    async fn put_key(
        &self,
        key: &KeyRecord,
        epoch: u64,
        audit: &AuditDraft,
    ) -> Result<(), StoreError>;
    /// Deletes a key record if the zone's epoch is still `epoch`.
    async fn delete_key(
        &self,
        zone: &str,
        id: &str,
        epoch: u64,
        audit: &AuditDraft,
    ) -> Result<(), StoreError>;
    /// Appends an entry that goes with no other change (a refused call, a
    /// signed zone).
    async fn append_audit(&self, audit: &AuditDraft) -> Result<AuditEntry, StoreError>;
    /// Registers a node or renews its lease.
    async fn put_node(&self, node: &NodeRecord) -> Result<(), StoreError>;
    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;
    /// Moves the Key Master role: only if the zone's epoch is still
    /// `epoch`; the new record has epoch + 1. The fencing write (ARCHITECTURE.md, Invariants 2).
    async fn move_key_master(
        &self,
        zone: &str,
        epoch: u64,
        to: &str,
        since: u64,
        needs_rekey: bool,
        audit: &AuditDraft,
    ) -> Result<ZoneRecord, StoreError>;
    /// Replaces the zone record's policy, lifecycle and publishing with
    /// `zone`'s (`ZoneRecord::update_from`: its epoch, Key Master and the
    /// rest stay as stored), writes the `put`
    /// key records and deletes the `delete` ones, in one transaction, if
    /// the zone's epoch is still `epoch`: a step of the key lifecycle, or a
    /// policy change.
    async fn update_zone(
        &self,
        zone: &ZoneRecord,
        epoch: u64,
        put: &[KeyRecord],
        delete: &[String],
        audit: &AuditDraft,
    ) -> Result<(), StoreError>;
    /// Replaces all of a zone's keys (a re-key) and clears its needs-rekey
    /// mark, if its epoch is still `epoch`.
    async fn replace_keys(
        &self,
        zone: &str,
        epoch: u64,
        keys: &[KeyRecord],
        audit: &AuditDraft,
    ) -> Result<(), StoreError>;
    /// The log from entry 1 on, optionally only one zone's entries at or
    /// after a time (for reading; verification needs the whole log).
    async fn read_audit(
        &self,
        zone: Option<&str>,
        since: u64,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// A signal each time zone records change, for backends that can watch
    /// (etcd); None where the caller must look from time to time.
    async fn watch_zones(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }
    /// A signal each time zone or key records change (etcd); None where
    /// the caller must look from time to time.
    async fn watch_key_sets(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }
}

/// TLS towards the store (etcd): the CA of its servers' certificates,
/// and the client certificate and key to present if it asks for one.
#[derive(Debug, Clone, Default)]
pub struct StoreTls {
    pub ca: std::path::PathBuf,
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// How to open a store, beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Also append every audit entry to this file as a JSON line.
    pub audit_file: Option<std::path::PathBuf>,
    /// TLS for an etcd store (`etcd:https://…`).
    pub tls: Option<StoreTls>,
    /// Open even when no member can be reached (the node has last-known
    /// state to sign from; its first write checks the store's schema).
    /// Otherwise a store that cannot be reached at start is an error, so
    /// that a misconfigured node does not start.
    pub start_unreachable: bool,
}

/// Opens the audit file for appending, creating it. A store that writes
/// the file after its transaction calls this first, so that an
/// unwritable file refuses the change (fail closed).
fn open_audit_file(path: &std::path::Path) -> Result<std::fs::File, StoreError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| StoreError::AuditUnwritable(format!("{}: {e}", path.display())))
}

/// Appends one audit entry's JSON line to the audit file and syncs it.
fn append_to_audit_file(path: &std::path::Path, line: &str) -> Result<(), StoreError> {
    use std::io::Write;
    let mut f = open_audit_file(path)?;
    writeln!(f, "{line}")
        .and_then(|_| f.sync_data())
        .map_err(|e| StoreError::AuditUnwritable(format!("{}: {e}", path.display())))
}

/// Opens a store from its URL: `sqlite:PATH` or
/// `etcd:http(s)://HOST:PORT[,…]`.
pub async fn open(
    url: &str,
    options: StoreOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        if options.tls.is_some() {
            return Err(StoreError::Unavailable {
                location: url.to_string(),
                reason: "--store-ca, --store-cert and --store-key apply to an etcd store only"
                    .into(),
            });
        }
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::open(path, options.audit_file).await?,
        ))
    } else if let Some(endpoints) = url.strip_prefix("etcd:") {
        Ok(std::sync::Arc::new(
            etcd::EtcdStore::open(endpoints, options).await?,
        ))
    } else {
        Err(StoreError::Unavailable {
            location: url.to_string(),
            reason: "unknown store kind; use sqlite:PATH or etcd:http://HOST:PORT[,…]".to_string(),
        })
    }
}
