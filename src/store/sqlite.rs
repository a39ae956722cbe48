//! The embedded store on SQLite. Several `keymasterd` processes on one host
//! may share the file: writes run in `BEGIN IMMEDIATE` transactions (one
//! writer at a time, others wait up to the busy timeout), and compare the
//! zone's epoch inside the transaction. Reads use a connection of their
//! own: in WAL mode a reader never waits for a writer, so a writer that
//! waits for the lock (another process stalled inside a write) holds up
//! only this process's writes, never its reads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::schema::{decode, encode, KeyRecord, NodeRecord, Record, ZoneRecord, SCHEMA_VERSION};
use super::{Store, StoreError};
use crate::audit::{self, AuditDraft, AuditEntry};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    path: String,
    conn: Arc<Mutex<Connection>>,
    /// For reads only.
    reader: Arc<Mutex<Connection>>,
    audit_file: Option<PathBuf>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and checks that it can be
    /// written.
    pub async fn open(path: &str, audit_file: Option<PathBuf>) -> Result<SqliteStore, StoreError> {
        let p = path.to_string();
        let (conn, reader) = tokio::task::spawn_blocking(move || {
            let conn = open_blocking(&p)?;
            let reader = Connection::open(&p).map_err(|e| unavailable(&p, e.to_string()))?;
            reader
                .busy_timeout(Duration::from_secs(10))
                .map_err(|e| unavailable(&p, e.to_string()))?;
            Ok::<_, StoreError>((conn, reader))
        })
        .await
        .map_err(|e| unavailable(path, e.to_string()))??;
        Ok(SqliteStore {
            path: path.to_string(),
            conn: Arc::new(Mutex::new(conn)),
            reader: Arc::new(Mutex::new(reader)),
            audit_file,
        })
    }

    /// Runs `f` on the connection that writes.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.on(self.conn.clone(), f).await
    }

    /// Runs a read on the connection that only reads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.on(self.reader.clone(), f).await
    }

    async fn on<T: Send + 'static>(
        &self,
        conn: Arc<Mutex<Connection>>,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await
        .map_err(|e| unavailable(&path, e.to_string()))?
    }
}

impl SqliteStore {
    /// Runs a write in one `BEGIN IMMEDIATE` transaction: `change` makes
    /// it, its audit entry is appended, and both commit together or not at
    /// all (fail closed).
    async fn write<T: Send + 'static>(
        &self,
        audit: &AuditDraft,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(T, AuditEntry), StoreError> {
        let (audit, file) = (audit.clone(), self.audit_file.clone());
        let path = self.path.clone();
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let result = change(&tx)?;
            let entry = append_in(&tx, &audit, file.as_ref())?;
            tx.commit().map_err(db)?;
            Ok((result, entry))
        })
        .await
        // A local transaction that failed was rolled back: nothing landed.
        .map_err(|e| match e {
            StoreError::Unavailable { reason, .. } => StoreError::Refused {
                location: format!("sqlite:{path}"),
                reason,
            },
            e => e,
        })
    }
}

fn unavailable(path: &str, reason: String) -> StoreError {
    StoreError::Unavailable {
        location: format!("sqlite:{path}"),
        reason,
    }
}

fn open_blocking(path: &str) -> Result<Connection, StoreError> {
    let err = |e: rusqlite::Error| unavailable(path, e.to_string());
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    // This write also proves the file is writable.
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS zones (
             name TEXT PRIMARY KEY, epoch INTEGER NOT NULL, data TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS keys (
             zone TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
             PRIMARY KEY (zone, id));
         CREATE TABLE IF NOT EXISTS nodes (node_id TEXT PRIMARY KEY, data TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS audit (
             seq INTEGER PRIMARY KEY, zone TEXT NOT NULL, time INTEGER NOT NULL,
             entry TEXT NOT NULL);
         INSERT OR IGNORE INTO meta (k, v) VALUES ('schema', '1');
         COMMIT;",
    )
    .map_err(err)?;
    let schema: String = conn
        .query_row("SELECT v FROM meta WHERE k = 'schema'", [], |r| r.get(0))
        .map_err(err)?;
    if schema != SCHEMA_VERSION.to_string() {
        return Err(StoreError::Corrupt(format!(
            "database schema {schema}, this build knows {SCHEMA_VERSION}"
        )));
    }
    Ok(conn)
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable {
        location: "sqlite".into(),
        reason: e.to_string(),
    }
}

/// The zone's epoch, inside a transaction.
fn epoch_of(tx: &rusqlite::Transaction<'_>, zone: &str) -> Result<u64, StoreError> {
    tx.query_row("SELECT epoch FROM zones WHERE name = ?1", [zone], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map_err(db)?
    .map(|e| e as u64)
    .ok_or_else(|| StoreError::ZoneNotFound(zone.to_string()))
}

fn check_epoch(
    tx: &rusqlite::Transaction<'_>,
    zone: &str,
    expected: u64,
) -> Result<(), StoreError> {
    let actual = epoch_of(tx, zone)?;
    if actual != expected {
        return Err(StoreError::fenced(zone, expected, actual));
    }
    Ok(())
}

/// Appends an audit entry inside the caller's transaction, and to the audit
/// file if there is one. Any failure fails the transaction.
fn append_in(
    tx: &rusqlite::Transaction<'_>,
    draft: &AuditDraft,
    file: Option<&PathBuf>,
) -> Result<AuditEntry, StoreError> {
    let unwritable = |e: String| StoreError::AuditUnwritable(e);
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, entry FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| unwritable(e.to_string()))?;
    let (seq, prev) = match last {
        Some((seq, entry)) => (seq as u64 + 1, decode::<AuditEntry>(entry.as_bytes())?.hash),
        None => (1, audit::GENESIS.to_string()),
    };
    let entry = audit::seal(draft, seq, &prev);
    let line = encode(&entry);
    tx.execute(
        "INSERT INTO audit (seq, zone, time, entry) VALUES (?1, ?2, ?3, ?4)",
        params![seq as i64, entry.zone, entry.time as i64, line],
    )
    .map_err(|e| unwritable(e.to_string()))?;
    if let Some(path) = file {
        super::append_to_audit_file(path, &line)?;
    }
    Ok(entry)
}

/// Every record the query returns in its one JSON column, in order.
fn query_records<T: Record>(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = c.prepare(sql).map_err(db)?;
    let rows = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(db)?;
    rows.map(|r| decode(r.map_err(db)?.as_bytes())).collect()
}

fn insert_keys(tx: &rusqlite::Transaction<'_>, keys: &[KeyRecord]) -> Result<(), StoreError> {
    for k in keys {
        tx.execute(
            "INSERT INTO keys (zone, id, data) VALUES (?1, ?2, ?3)",
            params![k.zone, k.id, encode(k)],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// Reads a zone's record, changes it and writes it back (with its epoch
/// column), inside the caller's transaction.
fn update_zone(
    tx: &rusqlite::Transaction<'_>,
    zone: &str,
    change: impl FnOnce(&mut ZoneRecord),
) -> Result<ZoneRecord, StoreError> {
    let data: String = tx
        .query_row("SELECT data FROM zones WHERE name = ?1", [zone], |r| {
            r.get(0)
        })
        .map_err(db)?;
    let mut record: ZoneRecord = decode(data.as_bytes())?;
    change(&mut record);
    tx.execute(
        "UPDATE zones SET epoch = ?2, data = ?3 WHERE name = ?1",
        params![zone, record.epoch as i64, encode(&record)],
    )
    .map_err(db)?;
    Ok(record)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_zone(
        &self,
        zone: &ZoneRecord,
        keys: &[KeyRecord],
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        let zone = zone.clone();
        let keys = keys.to_vec();
        self.write(audit, move |tx| {
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM zones WHERE name = ?1", [&zone.name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?;
            if exists.is_some() {
                return Err(StoreError::ZoneExists(zone.name.clone()));
            }
            tx.execute(
                "INSERT INTO zones (name, epoch, data) VALUES (?1, ?2, ?3)",
                params![zone.name, zone.epoch as i64, encode(&zone)],
            )
            .map_err(db)?;
            insert_keys(tx, &keys)
        })
        .await
        .map(|_| ())
    }

    async fn get_zone(&self, name: &str) -> Result<Option<ZoneRecord>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            let data: Option<String> = c
                .query_row("SELECT data FROM zones WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?;
            data.map(|d| decode(d.as_bytes())).transpose()
        })
        .await
    }

    async fn list_zones(&self) -> Result<Vec<ZoneRecord>, StoreError> {
        self.read(|c| query_records(c, "SELECT data FROM zones ORDER BY name", []))
            .await
    }

    async fn delete_zone(
        &self,
        name: &str,
        epoch: u64,
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(audit, move |tx| {
            check_epoch(tx, &name, epoch)?;
            tx.execute("DELETE FROM keys WHERE zone = ?1", [&name])
                .map_err(db)?;
            tx.execute("DELETE FROM zones WHERE name = ?1", [&name])
                .map_err(db)?;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn list_keys(&self, zone: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let zone = zone.to_string();
        self.read(move |c| {
            let mut keys: Vec<KeyRecord> =
                query_records(c, "SELECT data FROM keys WHERE zone = ?1", [&zone])?;
            keys.sort_by_key(|k| (k.created, k.id.clone()));
            Ok(keys)
        })
        .await
    }

    async fn put_key(
        &self,
        key: &KeyRecord,
        epoch: u64,
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(audit, move |tx| {
            check_epoch(tx, &key.zone, epoch)?;
            tx.execute(
                "INSERT OR REPLACE INTO keys (zone, id, data) VALUES (?1, ?2, ?3)",
                params![key.zone, key.id, encode(&key)],
            )
            .map_err(db)?;
            Ok(())
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
        let (zone, id) = (zone.to_string(), id.to_string());
        self.write(audit, move |tx| {
            check_epoch(tx, &zone, epoch)?;
            let n = tx
                .execute("DELETE FROM keys WHERE zone = ?1 AND id = ?2", [&zone, &id])
                .map_err(db)?;
            if n == 0 {
                return Err(StoreError::KeyNotFound { zone, key: id });
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn put_node(&self, node: &NodeRecord) -> Result<(), StoreError> {
        let node = node.clone();
        self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO nodes (node_id, data) VALUES (?1, ?2)",
                params![node.node_id, encode(&node)],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.read(|c| query_records(c, "SELECT data FROM nodes ORDER BY node_id", []))
            .await
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
        let (zone, to) = (zone.to_string(), to.to_string());
        self.write(audit, move |tx| {
            check_epoch(tx, &zone, epoch)?;
            update_zone(tx, &zone, |r| {
                r.key_master = to;
                r.epoch = epoch + 1;
                r.key_master_since = since;
                r.needs_rekey = needs_rekey;
            })
        })
        .await
        .map(|(record, _)| record)
    }

    async fn replace_keys(
        &self,
        zone: &str,
        epoch: u64,
        keys: &[KeyRecord],
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        let zone = zone.to_string();
        let keys = keys.to_vec();
        self.write(audit, move |tx| {
            check_epoch(tx, &zone, epoch)?;
            tx.execute("DELETE FROM keys WHERE zone = ?1", [&zone])
                .map_err(db)?;
            insert_keys(tx, &keys)?;
            update_zone(tx, &zone, |r| r.needs_rekey = false)
        })
        .await
        .map(|_| ())
    }

    async fn update_zone(
        &self,
        zone: &ZoneRecord,
        epoch: u64,
        put: &[KeyRecord],
        delete: &[String],
        audit: &AuditDraft,
    ) -> Result<(), StoreError> {
        let (zone, put, delete) = (zone.clone(), put.to_vec(), delete.to_vec());
        self.write(audit, move |tx| {
            check_epoch(tx, &zone.name, epoch)?;
            update_zone(tx, &zone.name, |r| r.update_from(&zone))?;
            for id in &delete {
                tx.execute(
                    "DELETE FROM keys WHERE zone = ?1 AND id = ?2",
                    params![zone.name, id],
                )
                .map_err(db)?;
            }
            for k in &put {
                tx.execute(
                    "INSERT OR REPLACE INTO keys (zone, id, data) VALUES (?1, ?2, ?3)",
                    params![k.zone, k.id, encode(k)],
                )
                .map_err(db)?;
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn append_audit(&self, audit: &AuditDraft) -> Result<AuditEntry, StoreError> {
        // An entry that goes with no change. A database that cannot take
        // it is said as unusable (so that signing work may be spooled); an
        // audit file that cannot, as an unwritable log.
        self.write(audit, |_| Ok(())).await.map(|(_, entry)| entry)
    }

    async fn read_audit(
        &self,
        zone: Option<&str>,
        since: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let zone = zone.map(str::to_string);
        self.read(move |c| {
            query_records(
                c,
                "SELECT entry FROM audit WHERE (?1 IS NULL OR zone = ?1) AND time >= ?2 ORDER BY seq",
                params![zone, since as i64],
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn draft() -> AuditDraft {
        AuditDraft {
            time: 1,
            node: "n".into(),
            caller: "c".into(),
            zone: "z.".into(),
            action: "seize".into(),
            outcome: "ok".into(),
            detail: String::new(),
            request_id: String::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_two_racing_role_moves_exactly_one_wins() {
        let dir = std::env::temp_dir().join(format!("km-store-race-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db");
        let _ = std::fs::remove_file(&path);
        // Two stores on one file: two processes' worth of connections.
        let a = SqliteStore::open(path.to_str().unwrap(), None)
            .await
            .unwrap();
        let b = SqliteStore::open(path.to_str().unwrap(), None)
            .await
            .unwrap();
        let zone = ZoneRecord::new("z.", Policy::default(), "n1", 0);
        a.create_zone(&zone, &[], &draft()).await.unwrap();
        for round in 0..20u64 {
            let epoch = 1 + round;
            let audit = draft();
            let (ra, rb) = tokio::join!(
                a.move_key_master("z.", epoch, "n2", 0, false, &audit),
                b.move_key_master("z.", epoch, "n3", 0, false, &audit),
            );
            assert!(ra.is_ok() != rb.is_ok(), "round {round}: {ra:?} {rb:?}");
            let loser = ra.err().or(rb.err()).unwrap();
            assert!(
                matches!(loser, StoreError::Fenced { expected, actual, .. } if expected == epoch && actual == epoch + 1)
            );
        }
        let z = a.get_zone("z.").await.unwrap().unwrap();
        assert_eq!(z.epoch, 21, "the epoch grew by exactly one per round");
        // A stale writer writes nothing.
        let e = b.delete_zone("z.", 1, &draft()).await.unwrap_err();
        assert!(matches!(e, StoreError::Fenced { .. }));
        assert!(a.get_zone("z.").await.unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
