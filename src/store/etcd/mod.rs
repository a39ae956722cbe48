//! The cluster store on etcd (`--store etcd:http://HOST:PORT[,…]`).
//!
//! Every write is one etcd transaction that compares the revisions of what
//! it read: the zone record (whose epoch it checked) and the head of the
//! audit chain (whose hash the new entry carries). If another writer got
//! there first, the transaction changes nothing; the write reads again and
//! either retries (the audit head moved) or fails with `Fenced` (the epoch
//! moved). A transaction is all or nothing, so an etcd that dies mid-write
//! leaves no half-written role.
//!
//! Liveness: each node's `alive/ID` key is bound to an etcd lease of the
//! node's lease length, kept alive on every renewal; when the node stops,
//! etcd drops the key. Role changes are watched, so nodes learn of them at
//! once.
//!
//! Layout under `/keymaster/v1/`:
//! ```text
//! meta/schema          "1"
//! zones/NAME           ZoneRecord (JSON)
//! keys/NAME/ID         KeyRecord
//! nodes/ID             NodeRecord (last seen, for `node list`)
//! alive/ID             bound to the node's etcd lease
//! audit/SEQ            AuditEntry, SEQ zero-padded to 20 digits
//! audit-head           {"seq":N,"hash":"…"} of the last entry
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Certificate, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    PutOptions, TlsOptions, Txn, TxnOp, WatchOptions,
};
use serde::{Deserialize, Serialize};

mod members;
use members::{Members, Unanswered};

use super::schema::{decode, encode, KeyRecord, NodeRecord, Record, ZoneRecord, SCHEMA_VERSION};
use super::{Store, StoreError, StoreOptions, StoreTls};
use crate::audit::{self, AuditDraft, AuditEntry};

const PREFIX: &str = "/keymaster/v1/";
/// How often a write re-reads and tries again when only the audit head
/// moved under it (other nodes appending entries).
const MAX_ATTEMPTS: u32 = 200;
/// Records per read of a long range.
const PAGE: i64 = 500;

#[derive(Clone)]
pub struct EtcdStore {
    location: String,
    members: Arc<Members>,
    audit_file: Option<PathBuf>,
    /// This process's lease per node id it registered.
    leases: Arc<Mutex<HashMap<String, i64>>>,
    /// Whether the cluster's schema was found to be this build's. A node
    /// that starts while etcd cannot be reached checks it before its
    /// first write instead (it signs meanwhile from its last-known state).
    schema_checked: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("location", &self.location)
            .finish()
    }
}

/// The last entry of the audit chain, kept beside it so that appending is
/// one compare on one key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuditHead {
    seq: u64,
    hash: String,
}

impl Record for AuditHead {
    const KIND: &'static str = "audit head";
    // Two fields that follow the entries' own layout.
    const VERSIONED: bool = false;
}

fn key(path: &str) -> String {
    format!("{PREFIX}{path}")
}

fn zone_key(zone: &str) -> String {
    key(&format!("zones/{zone}"))
}

fn keys_prefix(zone: &str) -> String {
    key(&format!("keys/{zone}/"))
}

/// The first key after every key that starts with `prefix` (the prefixes
/// here end in '/', never in 0xff).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// A value read with the revision a transaction compares against
/// (0: the key does not exist).
struct Read<T> {
    value: Option<T>,
    mod_revision: i64,
}

impl<T> Read<T> {
    fn unchanged(&self, key: String) -> Compare {
        Compare::mod_revision(key, CompareOp::Equal, self.mod_revision)
    }
}

/// What a write puts, deletes and appends, built from what it read.
struct Plan {
    compares: Vec<Compare>,
    ops: Vec<TxnOp>,
}

impl EtcdStore {
    /// Connects to the endpoints (comma-separated URLs) and checks the
    /// schema, writing it into an empty cluster. Long because each wrong
    /// setting (no endpoint, TLS half given) is refused with its own words.
    pub async fn open(endpoints: &str, options: StoreOptions) -> Result<EtcdStore, StoreError> {
        let location = format!("etcd:{endpoints}");
        let refuse = |reason: String| StoreError::Unavailable {
            location: location.clone(),
            reason,
        };
        let urls: Vec<&str> = endpoints.split(',').filter(|s| !s.is_empty()).collect();
        if urls.is_empty() {
            return Err(refuse(
                "no endpoint given; use etcd:http(s)://HOST:PORT[,…]".into(),
            ));
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(3))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
            // A member cut off from the quorum refuses at once ("no
            // leader") instead of holding the call until it times out.
            .with_require_leader(true);
        let https = urls.iter().filter(|u| u.starts_with("https://")).count();
        match (&options.tls, https) {
            (None, 0) => {}
            (None, _) => {
                return Err(refuse(
                    "https:// endpoints need --store-ca (and --store-cert/--store-key if etcd \
                     asks for a client certificate)"
                        .into(),
                ))
            }
            (Some(_), n) if n != urls.len() => {
                return Err(refuse(
                    "with store TLS settings every endpoint must be https://".into(),
                ))
            }
            (Some(t), _) => connect = connect.with_tls(tls_options(t).map_err(refuse)?),
        }
        let audit_file = options.audit_file;
        let start_unreachable = options.start_unreachable;
        let options = connect;
        let members =
            Members::connect(&urls, &options)
                .await
                .map_err(|e| StoreError::Unavailable {
                    location: location.clone(),
                    reason: e.to_string(),
                })?;
        let store = EtcdStore {
            location,
            members: Arc::new(members),
            audit_file,
            leases: Arc::default(),
            schema_checked: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        match store.check_schema().await {
            Err(e) if e.is_unusable() && start_unreachable => {
                tracing::warn!(error = %e, "etcd cannot be reached at start: its schema is checked before the first write");
            }
            checked => checked?,
        }
        Ok(store)
    }

    fn unavailable(&self, e: Unanswered) -> StoreError {
        let failure = StoreError::Unavailable {
            location: self.location.clone(),
            reason: e.reason,
        };
        if e.definite {
            failure.definite()
        } else {
            failure
        }
    }

    async fn check_schema(&self) -> Result<(), StoreError> {
        let schema_key = key("meta/schema");
        self.members
            .txn(
                Txn::new()
                    .when([Compare::version(schema_key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(
                        schema_key.clone(),
                        SCHEMA_VERSION.to_string(),
                        None,
                    )]),
            )
            .await
            .map_err(|e| self.unavailable(e))?;
        let r = self
            .members
            .get(schema_key, None)
            .await
            .map_err(|e| self.unavailable(e))?;
        let schema = r
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).to_string())
            .unwrap_or_default();
        if schema != SCHEMA_VERSION.to_string() {
            return Err(StoreError::Corrupt(format!(
                "cluster schema {schema}, this build knows {SCHEMA_VERSION}"
            )));
        }
        self.schema_checked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn read<T: Record>(&self, k: &str) -> Result<Read<T>, StoreError> {
        let r = self
            .members
            .get(k, None)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(match r.kvs().first() {
            Some(kv) => Read {
                value: Some(decode(kv.value())?),
                mod_revision: kv.mod_revision(),
            },
            None => Read {
                value: None,
                mod_revision: 0,
            },
        })
    }

    /// Every record under the prefix, in key order, read a page at a time
    /// (an answer must stay under the client's message size limit; the
    /// audit log grows without bound).
    async fn read_prefix<T: Record>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        let end = prefix_end(prefix);
        let mut from = prefix.as_bytes().to_vec();
        let mut out = Vec::new();
        loop {
            let r = self
                .members
                .get(
                    from.clone(),
                    Some(GetOptions::new().with_range(end.clone()).with_limit(PAGE)),
                )
                .await
                .map_err(|e| self.unavailable(e))?;
            for kv in r.kvs() {
                out.push(decode(kv.value())?);
            }
            match r.kvs().last() {
                Some(last) if r.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok(out),
            }
        }
    }

    /// Reads the zone and checks its epoch. Returns the record and the
    /// compare that holds while nobody else has written it.
    async fn zone_at(
        &self,
        zone: &str,
        expected: u64,
    ) -> Result<(ZoneRecord, Compare), StoreError> {
        let zk = zone_key(zone);
        let read = self.read::<ZoneRecord>(&zk).await?;
        let unchanged = read.unchanged(zk);
        match read.value {
            None => Err(StoreError::ZoneNotFound(zone.to_string())),
            Some(z) if z.epoch != expected => Err(StoreError::fenced(zone, expected, z.epoch)),
            Some(z) => Ok((z, unchanged)),
        }
    }

    /// Runs a write: `plan` reads what it needs and says what to compare
    /// and change; the audit entry is chained onto the head read here; all
    /// of it commits in one transaction, or the whole is read and planned
    /// again. Returns the plan's result and the sealed entry. Long because
    /// the read, the plan, the chained entry and the retry are one loop.
    async fn write<T, F, Fut>(
        &self,
        draft: &AuditDraft,
        mut plan: F,
    ) -> Result<(T, AuditEntry), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(Plan, T), StoreError>>,
    {
        self.check_audit_file().await?;
        if !self
            .schema_checked
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            self.check_schema().await.map_err(StoreError::definite)?;
        }
        let head_key = key("audit-head");
        for attempt in 0..MAX_ATTEMPTS {
            // A failure before the transaction is sent writes nothing.
            let (mut p, result) = plan().await.map_err(StoreError::definite)?;
            let head = self
                .read::<AuditHead>(&head_key)
                .await
                .map_err(StoreError::definite)?;
            let (seq, prev) = match &head.value {
                Some(h) => (h.seq + 1, h.hash.clone()),
                None => (1, audit::GENESIS.to_string()),
            };
            let entry = audit::seal(draft, seq, &prev);
            p.compares.push(head.unchanged(head_key.clone()));
            p.ops.push(TxnOp::put(
                key(&format!("audit/{seq:020}")),
                encode(&entry),
                None,
            ));
            p.ops.push(TxnOp::put(
                head_key.clone(),
                encode(&AuditHead {
                    seq,
                    hash: entry.hash.clone(),
                }),
                None,
            ));
            let r = self
                .members
                .txn(Txn::new().when(p.compares).and_then(p.ops))
                .await
                .map_err(|e| self.unavailable(e))?;
            if r.succeeded() {
                self.append_audit_file(&entry).await;
                return Ok((result, entry));
            }
            // Someone wrote in between: back off a little, differently per
            // attempt, and read again.
            crate::metrics::get().store_conflicts.inc();
            tokio::time::sleep(Duration::from_millis(1 + u64::from(attempt % 7) * 3)).await;
        }
        Err(StoreError::Unavailable {
            location: self.location.clone(),
            reason: format!("write did not get through after {MAX_ATTEMPTS} attempts"),
        })
    }

    /// The audit file must be writable before a change is made (fail
    /// closed); the line itself is appended once the transaction commits.
    /// (File calls run on a blocking thread, not the runtime's.)
    async fn check_audit_file(&self) -> Result<(), StoreError> {
        let Some(path) = self.audit_file.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || super::open_audit_file(&path).map(|_| ()))
            .await
            .map_err(|e| StoreError::AuditUnwritable(format!("audit file task failed: {e}")))?
    }

    async fn append_audit_file(&self, entry: &AuditEntry) {
        let Some(path) = self.audit_file.clone() else {
            return;
        };
        let (line, seq) = (encode(entry), entry.seq);
        let written = tokio::task::spawn_blocking(move || {
            super::append_to_audit_file(&path, &line).map_err(|e| (path, e))
        })
        .await;
        if let Ok(Err((path, e))) = written {
            // The entry is in the store's chain; only the copy is missing.
            tracing::error!(path = %path.display(), seq, error = %e, "audit entry not copied to the audit file");
        }
    }

    /// Keeps this process's lease for the node alive, or grants a new one
    /// when there is none or it has expired. Returns the lease id.
    async fn node_lease(&self, node: &str, ttl: i64) -> Result<i64, StoreError> {
        let known = self
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .copied();
        if let Some(id) = known {
            if matches!(self.members.keep_alive(id).await, Ok(ttl) if ttl > 0) {
                return Ok(id);
            }
        }
        let granted = self
            .members
            .grant(ttl)
            .await
            .map_err(|e| self.unavailable(e))?;
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string(), granted);
        Ok(granted)
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn create_zone(
        &self,
        zone: &ZoneRecord,
        keys: &[KeyRecord],
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        self.write(audit, || async move {
            let zk = zone_key(&zone.name);
            let read = self.read::<ZoneRecord>(&zk).await?;
            if read.value.is_some() {
                return Err(StoreError::ZoneExists(zone.name.clone()));
            }
            let mut ops = vec![TxnOp::put(zk.clone(), encode(zone), None)];
            ops.extend(keys.iter().map(put_key_op));
            Ok((
                Plan {
                    compares: vec![Compare::version(zk, CompareOp::Equal, 0)],
                    ops,
                },
                (),
            ))
        })
        .await
        .map(|_| ())
    }

    async fn get_zone(&self, name: &str) -> Result<Option<ZoneRecord>, StoreError> {
        Ok(self.read(&zone_key(name)).await?.value)
    }

    async fn list_zones(&self) -> Result<Vec<ZoneRecord>, StoreError> {
        let mut zones: Vec<ZoneRecord> = self.read_prefix(&key("zones/")).await?;
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(zones)
    }

    async fn delete_zone(
        &self,
        name: &str,
        epoch: u64,
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        self.write(audit, || async move {
            let (_, unchanged) = self.zone_at(name, epoch).await?;
            let zk = zone_key(name);
            Ok((
                Plan {
                    compares: vec![unchanged],
                    ops: vec![
                        TxnOp::delete(zk, None),
                        TxnOp::delete(keys_prefix(name), Some(DeleteOptions::new().with_prefix())),
                    ],
                },
                (),
            ))
        })
        .await
        .map(|_| ())
    }

    async fn list_keys(&self, zone: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys: Vec<KeyRecord> = self.read_prefix(&keys_prefix(zone)).await?;
        keys.sort_by_key(|k| (k.created, k.id.clone()));
        Ok(keys)
    }

    async fn put_key(
        &self,
        k: &KeyRecord,
        epoch: u64,
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        self.write(audit, || async move {
            let (_, unchanged) = self.zone_at(&k.zone, epoch).await?;
            Ok((
                Plan {
                    compares: vec![unchanged],
                    ops: vec![put_key_op(k)],
                },
                (),
            ))
        })
        .await
        .map(|_| ())
    }

    async fn delete_key(
        &self,
        zone: &str,
        id: &str,
        epoch: u64,
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        self.write(audit, || async move {
            let (_, unchanged) = self.zone_at(zone, epoch).await?;
            let kk = key(&format!("keys/{zone}/{id}"));
            let key_read = self.read::<KeyRecord>(&kk).await?;
            if key_read.value.is_none() {
                return Err(StoreError::KeyNotFound {
                    zone: zone.to_string(),
                    key: id.to_string(),
                });
            }
            Ok((
                Plan {
                    compares: vec![unchanged, key_read.unchanged(kk.clone())],
                    ops: vec![TxnOp::delete(kk, None)],
                },
                (),
            ))
        })
        .await
        .map(|_| ())
    }

    async fn append_audit(&self, audit: &AuditDraft) -> Result<AuditEntry, StoreError> {
        self.write(audit, || async move {
            Ok((
                Plan {
                    compares: vec![],
                    ops: vec![],
                },
                (),
            ))
        })
        .await
        .map(|(_, entry)| entry)
    }

    async fn put_node(&self, node: &NodeRecord) -> Result<(), StoreError> {
        let ttl = node.lease_secs.max(1) as i64;
        let lease = self.node_lease(&node.node_id, ttl).await?;
        self.members
            .txn(Txn::new().and_then([
                TxnOp::put(key(&format!("nodes/{}", node.node_id)), encode(node), None),
                TxnOp::put(
                    key(&format!("alive/{}", node.node_id)),
                    "",
                    Some(PutOptions::new().with_lease(lease)),
                ),
            ]))
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(())
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let mut nodes: Vec<NodeRecord> = self.read_prefix(&key("nodes/")).await?;
        let alive_prefix = key("alive/");
        let alive = self
            .members
            .get(
                alive_prefix.clone(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            )
            .await
            .map_err(|e| self.unavailable(e))?;
        let alive: Vec<&[u8]> = alive
            .kvs()
            .iter()
            .map(|kv| &kv.key()[alive_prefix.len()..])
            .collect();
        for n in &mut nodes {
            n.store_lease = Some(alive.contains(&n.node_id.as_bytes()));
        }
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Ok(nodes)
    }

    async fn move_key_master(
        &self,
        zone: &str,
        epoch: u64,
        to: &str,
        since: u64,
        needs_rekey: bool,
        audit: &AuditDraft,
    ) -> Result<ZoneRecord, StoreError> {
        self.write(audit, || async move {
            let (mut record, unchanged) = self.zone_at(zone, epoch).await?;
            record.key_master = to.to_string();
            record.epoch = epoch + 1;
            record.key_master_since = since;
            record.needs_rekey = needs_rekey;
            let zk = zone_key(zone);
            Ok((
                Plan {
                    compares: vec![unchanged],
                    ops: vec![TxnOp::put(zk, encode(&record), None)],
                },
                record,
            ))
        })
        .await
        .map(|(record, _)| record)
    }

    async fn update_zone(
        &self,
        zone: &ZoneRecord,
        epoch: u64,
        put: &[KeyRecord],
        delete: &[String],
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        self.write(audit, || async move {
            let (mut record, unchanged) = self.zone_at(&zone.name, epoch).await?;
            record.update_from(zone);
            let mut ops = vec![TxnOp::put(zone_key(&zone.name), encode(&record), None)];
            // etcd refuses a delete and a put of one key in one transaction.
            for id in delete.iter().filter(|id| !put.iter().any(|k| &k.id == *id)) {
                ops.push(TxnOp::delete(
                    key(&format!("keys/{}/{id}", zone.name)),
                    None,
                ));
            }
            ops.extend(put.iter().map(put_key_op));
            Ok((
                Plan {
                    compares: vec![unchanged],
                    ops,
                },
                (),
            ))
        })
        .await
        .map(|_| ())
    }

    async fn replace_keys(
        &self,
        zone: &str,
        epoch: u64,
        keys: &[KeyRecord],
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        self.write(audit, || async move {
            let (mut record, unchanged) = self.zone_at(zone, epoch).await?;
            record.needs_rekey = false;
            let zk = zone_key(zone);
            // etcd refuses a delete and a put of one key in one
            // transaction: delete only the old keys that are not put again.
            let prefix = keys_prefix(zone);
            let old = self
                .members
                .get(
                    prefix.clone(),
                    Some(GetOptions::new().with_prefix().with_keys_only()),
                )
                .await
                .map_err(|e| self.unavailable(e))?;
            let read_at = old.header().map(|h| h.revision()).unwrap_or(0);
            let new_keys: Vec<TxnOp> = keys.iter().map(put_key_op).collect();
            let new_names: Vec<String> = keys
                .iter()
                .map(|k| key(&format!("keys/{}/{}", k.zone, k.id)))
                .collect();
            let mut ops: Vec<TxnOp> = old
                .kvs()
                .iter()
                .filter(|kv| !new_names.iter().any(|n| n.as_bytes() == kv.key()))
                .map(|kv| TxnOp::delete(kv.key().to_vec(), None))
                .collect();
            ops.push(TxnOp::put(zk.clone(), encode(&record), None));
            ops.extend(new_keys);
            Ok((
                Plan {
                    compares: vec![
                        unchanged,
                        // No key of the zone written since it was read.
                        Compare::mod_revision(prefix, CompareOp::Less, read_at + 1).with_prefix(),
                    ],
                    ops,
                },
                (),
            ))
        })
        .await
        .map(|_| ())
    }

    async fn read_audit(
        &self,
        zone: Option<&str>,
        since: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // Keys sort by their zero-padded sequence number.
        let entries: Vec<AuditEntry> = self.read_prefix(&key("audit/")).await?;
        Ok(entries
            .into_iter()
            .filter(|e| zone.is_none_or(|z| e.zone == z) && e.time >= since)
            .collect())
    }

    async fn watch_zones(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        spawn_watch(self.members.clone(), key("zones/"), tx);
        Some(rx)
    }

    async fn watch_key_sets(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        spawn_watch(self.members.clone(), key("zones/"), tx.clone());
        spawn_watch(self.members.clone(), key("keys/"), tx);
        Some(rx)
    }
}

/// Signals `tx` whenever a record under `prefix` changes, and once each
/// time the watch starts (it may have missed changes), until `tx`'s
/// receiver is gone.
fn spawn_watch(members: Arc<Members>, prefix: String, tx: tokio::sync::mpsc::Sender<()>) {
    tokio::spawn(async move {
        while !tx.is_closed() {
            // On the member calls go to now: a watch whose member died
            // starts again on one that answers.
            match members
                .client()
                .watch(prefix.clone(), Some(WatchOptions::new().with_prefix()))
                .await
            {
                Ok(mut stream) => {
                    let _ = tx.try_send(());
                    while let Ok(Some(r)) = stream.message().await {
                        if !r.events().is_empty() && tx.try_send(()).is_err() && tx.is_closed() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cannot watch {prefix}; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// The TLS settings towards etcd, read from their files.
fn tls_options(t: &StoreTls) -> Result<TlsOptions, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&t.ca)?));
    if let Some((cert, key)) = &t.identity {
        let key = zeroize::Zeroizing::new(read(key)?);
        tls = tls.identity(Identity::from_pem(read(cert)?, key.as_slice()));
    }
    Ok(tls)
}

fn put_key_op(k: &KeyRecord) -> TxnOp {
    TxnOp::put(key(&format!("keys/{}/{}", k.zone, k.id)), encode(k), None)
}
