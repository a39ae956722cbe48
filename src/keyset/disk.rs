//! The last-known key sets on the node's own disk (ARCHITECTURE.md,
//! Signing through a store outage): one file per zone under the state
//! directory, holding the zone record and its key records as last read
//! from the store, and when. Only public facts are in them (public keys,
//! CKA_IDs, settings); the files are still mode 0600 in a 0700 directory,
//! as the store's own records would be. A node started while the store
//! is away signs from them.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::schema::{KeyRecord, ZoneRecord};

/// One zone's key set as last read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// When the store answered with it (Unix seconds).
    pub read_at: u64,
    pub zone: ZoneRecord,
    pub keys: Vec<KeyRecord>,
}

/// The directory of the key set files.
#[derive(Debug, Clone)]
pub struct KeySetDir {
    dir: PathBuf,
}

impl KeySetDir {
    /// The directory `keysets` under the state directory, made (mode 0700)
    /// if it is not there.
    pub fn open(state_dir: &Path) -> Result<KeySetDir, String> {
        let dir = state_dir.join("keysets");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("state directory {}: {e}", dir.display()))?;
        Ok(KeySetDir { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file of a zone: its stored name with every byte that is not a
    /// letter, digit, '-', '_' or '.' as %XX, so that no name escapes the
    /// directory or collides with another.
    fn file_of(&self, zone: &str) -> PathBuf {
        let mut name = String::with_capacity(zone.len() + 5);
        for b in zone.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    name.push(b as char)
                }
                _ => name.push_str(&format!("%{b:02X}")),
            }
        }
        if name.starts_with('.') {
            // The root zone's "." is not a file name of its own.
            name.insert_str(0, "%2E");
            name.remove(3);
        }
        name.push_str(".json");
        self.dir.join(name)
    }

    /// Writes a zone's key set: to a temporary file, fsynced, then renamed
    /// over the last one, so that a crash leaves the old file or the new.
    pub fn save(&self, saved: &Saved) -> Result<(), String> {
        let path = self.file_of(&saved.zone.name);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec(saved).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| format!("key set file {}: {e}", path.display()))
    }

    /// Whether any key set is saved here (the node has run before).
    pub fn has_saved(&self) -> bool {
        std::fs::read_dir(&self.dir).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json")))
        })
    }

    /// Removes a zone's file (the zone is no longer managed).
    pub fn remove(&self, zone: &str) {
        let _ = std::fs::remove_file(self.file_of(zone));
    }

    /// Every key set saved; a file that does not read is named in the
    /// log and skipped (the store, when it answers, has the truth).
    pub fn load_all(&self) -> Vec<Saved> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let read = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Saved>(&b).map_err(|e| e.to_string()));
            match read {
                Ok(s) if s.zone.schema <= crate::store::schema::SCHEMA_VERSION => out.push(s),
                Ok(_) => {
                    tracing::warn!(file = %path.display(), "key set file of a newer schema: skipped")
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "key set file does not read: skipped")
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names_become_file_names_that_stay_in_the_directory() {
        let d = KeySetDir {
            dir: PathBuf::from("/s"),
        };
        assert_eq!(d.file_of("example.com."), Path::new("/s/example.com..json"));
        assert_eq!(
            d.file_of("a/b.example."),
            Path::new("/s/a%2Fb.example..json")
        );
        assert_eq!(d.file_of("."), Path::new("/s/%2E.json"));
        assert_eq!(d.file_of("..x."), Path::new("/s/%2E.x..json"));
    }
}
