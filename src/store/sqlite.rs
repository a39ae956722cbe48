//! The embedded store on SQLite. Several `keymasterd` processes on one host
//! may share the file: writes run in `BEGIN IMMEDIATE` transactions (one
//! writer at a time, others wait up to the busy timeout), and compare the
//! zone's epoch inside the transaction.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{Store, StoreError};
use crate::zone::{KeyRecord, ZoneRecord, SCHEMA_VERSION};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    path: String,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and checks that it can be
    /// written.
    pub async fn open(path: &str) -> Result<SqliteStore, StoreError> {
        let p = path.to_string();
        let conn = tokio::task::spawn_blocking(move || open_blocking(&p))
            .await
            .map_err(|e| unavailable(path, e.to_string()))??;
        Ok(SqliteStore {
            path: path.to_string(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await
        .map_err(|e| unavailable(&path, e.to_string()))?
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

fn decode<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialize")
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
        return Err(StoreError::Fenced {
            zone: zone.to_string(),
            expected,
            actual,
        });
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_zone(&self, zone: &ZoneRecord, keys: &[KeyRecord]) -> Result<(), StoreError> {
        let zone = zone.clone();
        let keys = keys.to_vec();
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
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
            for k in &keys {
                tx.execute(
                    "INSERT INTO keys (zone, id, data) VALUES (?1, ?2, ?3)",
                    params![k.zone, k.id, encode(k)],
                )
                .map_err(db)?;
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn get_zone(&self, name: &str) -> Result<Option<ZoneRecord>, StoreError> {
        let name = name.to_string();
        self.run(move |c| {
            let data: Option<String> = c
                .query_row("SELECT data FROM zones WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?;
            data.map(|d| decode(&d)).transpose()
        })
        .await
    }

    async fn list_zones(&self) -> Result<Vec<ZoneRecord>, StoreError> {
        self.run(|c| {
            let mut stmt = c
                .prepare("SELECT data FROM zones ORDER BY name")
                .map_err(db)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
            rows.map(|r| decode(&r.map_err(db)?)).collect()
        })
        .await
    }

    async fn delete_zone(&self, name: &str, epoch: u64) -> Result<(), StoreError> {
        let name = name.to_string();
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            check_epoch(&tx, &name, epoch)?;
            tx.execute("DELETE FROM keys WHERE zone = ?1", [&name])
                .map_err(db)?;
            tx.execute("DELETE FROM zones WHERE name = ?1", [&name])
                .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn list_keys(&self, zone: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let zone = zone.to_string();
        self.run(move |c| {
            let mut stmt = c
                .prepare("SELECT data FROM keys WHERE zone = ?1 ORDER BY id")
                .map_err(db)?;
            let rows = stmt
                .query_map([&zone], |r| r.get::<_, String>(0))
                .map_err(db)?;
            let mut keys: Vec<KeyRecord> = rows
                .map(|r| decode(&r.map_err(db)?))
                .collect::<Result<_, _>>()?;
            keys.sort_by_key(|k| (k.created, k.id.clone()));
            Ok(keys)
        })
        .await
    }

    async fn put_key(&self, key: &KeyRecord, epoch: u64) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            check_epoch(&tx, &key.zone, epoch)?;
            tx.execute(
                "INSERT OR REPLACE INTO keys (zone, id, data) VALUES (?1, ?2, ?3)",
                params![key.zone, key.id, encode(&key)],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn delete_key(&self, zone: &str, id: &str, epoch: u64) -> Result<(), StoreError> {
        let (zone, id) = (zone.to_string(), id.to_string());
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            check_epoch(&tx, &zone, epoch)?;
            let n = tx
                .execute("DELETE FROM keys WHERE zone = ?1 AND id = ?2", [&zone, &id])
                .map_err(db)?;
            if n == 0 {
                return Err(StoreError::KeyNotFound { zone, key: id });
            }
            tx.commit().map_err(db)
        })
        .await
    }
}
