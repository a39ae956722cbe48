//! Records of signing work done while the store could not be written
//! (ARCHITECTURE.md, Signing through a store outage): audit drafts kept
//! on this node, one JSON line each, fsynced before the work is answered,
//! and appended to the audit log in order once the store takes writes
//! again. A draft is taken off the spool only after the store has its
//! entry; a crash between the two appends it twice, never loses it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::audit::AuditDraft;

/// The spool file of one node.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    /// One writer at a time within the process.
    lock: Mutex<()>,
    /// Drafts on the spool, so that the common case (none) reads no file.
    held: AtomicUsize,
    /// Held by the one flush under way.
    flushing: tokio::sync::Mutex<()>,
}

impl Spool {
    /// Opens (creating, mode 0600) the spool at `path` and reads it once,
    /// so that a file that cannot be used is said at start, not during an
    /// outage.
    pub fn open(path: &Path) -> Result<Spool, String> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("spool {}: {e}", path.display()))?;
        let spool = Spool {
            path: path.to_path_buf(),
            lock: Mutex::new(()),
            held: AtomicUsize::new(0),
            flushing: tokio::sync::Mutex::new(()),
        };
        let held = spool.pending()?.len();
        spool.held.store(held, Ordering::SeqCst);
        Ok(spool)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The turn to flush the spool to the store (one flush at a time).
    pub async fn flushing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.flushing.lock().await
    }

    /// Whether no draft waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many drafts wait.
    pub fn len(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Adds a draft at the end, durably (fsync) before returning.
    pub fn append(&self, draft: &AuditDraft) -> Result<(), String> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut line = line_of(draft)?;
        let mut f = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.failed(e))?;
        // After a line cut short by a crash, a new line starts on its own.
        if !ends_a_line(&mut f).map_err(|e| self.failed(e))? {
            line.insert(0, '\n');
        }
        f.write_all(line.as_bytes()).map_err(|e| self.failed(e))?;
        f.sync_all().map_err(|e| self.failed(e))?;
        self.held.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The drafts held, oldest first.
    pub fn pending(&self) -> Result<Vec<AuditDraft>, String> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.read()
    }

    fn read(&self) -> Result<Vec<AuditDraft>, String> {
        let f = File::open(&self.path).map_err(|e| self.failed(e))?;
        let mut drafts = Vec::new();
        for (n, line) in BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| self.failed(e))?;
            if line.trim().is_empty() {
                continue;
            }
            // A line cut short by a crash during its write was never
            // answered as recorded: it is the last, and it is dropped.
            match serde_json::from_str(&line) {
                Ok(d) => drafts.push(d),
                Err(e) => tracing::warn!(
                    spool = %self.path.display(),
                    line = n + 1,
                    error = %e,
                    "spool: an unreadable line is skipped"
                ),
            }
        }
        Ok(drafts)
    }

    /// Takes the oldest draft off the spool, once the store has it: the
    /// rest is written to a new file that replaces the spool.
    pub fn remove_first(&self) -> Result<(), String> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let rest = self.read()?;
        let rest = rest.get(1..).unwrap_or_default();
        let tmp = self.path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.failed(e))?;
        for d in rest {
            f.write_all(line_of(d)?.as_bytes())
                .map_err(|e| self.failed(e))?;
        }
        f.sync_all().map_err(|e| self.failed(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.failed(e))?;
        self.held.store(rest.len(), Ordering::SeqCst);
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn failed(&self, e: std::io::Error) -> String {
        format!("spool {}: {e}", self.path.display())
    }
}

/// A draft as one JSON line.
fn line_of(draft: &AuditDraft) -> Result<String, String> {
    let mut line = serde_json::to_string(draft).map_err(|e| e.to_string())?;
    line.push('\n');
    Ok(line)
}

/// Whether the file is empty or ends with a newline.
fn ends_a_line(f: &mut File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if f.metadata()?.len() == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(n: u64) -> AuditDraft {
        AuditDraft {
            time: n,
            node: "a".into(),
            caller: "c".into(),
            zone: "z.".into(),
            action: "sign-zone".into(),
            outcome: "ok".into(),
            detail: format!("draft {n}"),
            request_id: String::new(),
        }
    }

    #[test]
    fn drafts_come_back_in_order_and_go_one_by_one() {
        let dir = std::env::temp_dir().join(format!("km-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spool.jsonl");
        let _ = std::fs::remove_file(&path);
        let spool = Spool::open(&path).unwrap();
        for n in 1..=3 {
            spool.append(&draft(n)).unwrap();
        }
        // A line cut short at the end (a crash mid-write) is dropped.
        let cut_short = || {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
                .write_all(b"{\"time\":4,\"no")
                .unwrap()
        };
        cut_short();
        let again = Spool::open(&path).unwrap();
        let times: Vec<u64> = again.pending().unwrap().iter().map(|d| d.time).collect();
        assert_eq!(times, [1, 2, 3]);
        again.remove_first().unwrap();
        let times: Vec<u64> = again.pending().unwrap().iter().map(|d| d.time).collect();
        assert_eq!(times, [2, 3]);
        // After a cut line, the next draft is whole on a line of its own.
        cut_short();
        again.append(&draft(5)).unwrap();
        let times: Vec<u64> = again.pending().unwrap().iter().map(|d| d.time).collect();
        assert_eq!(times, [2, 3, 5]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
