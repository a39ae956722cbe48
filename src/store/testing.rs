//! A store in a temporary directory, for unit tests of the services.

use std::sync::Arc;

use super::sqlite::SqliteStore;
use super::Store;

/// An SQLite store in a directory removed when this is dropped.
pub struct TempStore {
    pub store: Arc<dyn Store>,
    dir: std::path::PathBuf,
}

impl TempStore {
    pub async fn new() -> TempStore {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("km-unit-store-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make a temporary directory");
        let path = dir.join("keymaster.db");
        let store = SqliteStore::open(path.to_str().expect("a UTF-8 path"), None)
            .await
            .expect("open a temporary store");
        TempStore {
            store: Arc::new(store),
            dir,
        }
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
