//! Review before publication (a zone's `review: hook`; Cascade's and
//! Knot's counterparts): a version whose data changed is handed to the
//! Key Master's `--review-command` before it is served. The command is
//! the node's, never the store's (a zone setting that named a program
//! would let whoever may change a zone run it on every Key Master). It
//! runs as `CMD ZONE SERIAL SIGNED SOURCE`, the two files in a directory
//! of its own that only this user can read, and approves by exit 0;
//! anything else rejects the version, and one that does not end within the
//! zone's `review_timeout` is killed and the version refused.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::dnssec::reuse::Previous;

/// Who reviews a version: the node's hook, or an operator (`zone
/// approve|reject`).
#[derive(Debug, Clone)]
pub enum Reviewer {
    Hook(Hook),
    Hand,
}

/// A zone's review by hand: the version that waits, and the decision an
/// operator took on it (applied by the zone signer's next look).
#[derive(Debug, Default)]
pub struct ByHand {
    pub pending: Option<Waiting>,
    pub decision: Option<(u32, bool, String)>,
}

/// A version that waits for review by hand: its serial, the digest of its
/// source's text, since when (Unix seconds), and whether its waiting past
/// the zone's review timeout was said.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub serial: u32,
    pub digest: Vec<u8>,
    pub since: u64,
    pub overdue_said: bool,
}

/// Writes a version that waits for review by hand, and its source, where
/// the operator can read them on the Key Master's host (a directory only
/// keymasterd's user may enter); returns the signed file's path. A zone's
/// earlier files there are replaced.
pub fn hold(zone: &str, serial: u32, version: &Previous, source: &[u8]) -> Result<PathBuf, String> {
    let dir = private(format!("keymaster-review-{}", std::process::id()), true)?;
    let base = zone.trim_end_matches('.');
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{base}."))
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    write_files(&dir, zone, serial, version, source).map(|(signed, _)| signed)
}

/// Writes `version` and its `source` into `dir` as `ZONE.SERIAL.signed`
/// and `ZONE.SERIAL.source`; returns their paths.
fn write_files(
    dir: &Path,
    zone: &str,
    serial: u32,
    version: &Previous,
    source: &[u8],
) -> Result<(PathBuf, PathBuf), String> {
    use std::io::Write;
    let base = zone.trim_end_matches('.');
    let signed = dir.join(format!("{base}.{serial}.signed"));
    let unsigned = dir.join(format!("{base}.{serial}.source"));
    let bad = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::File::create(&signed).map_err(|e| bad(&signed, e))?;
    for c in &version.chunks {
        f.write_all(&c.text).map_err(|e| bad(&signed, e))?;
    }
    std::fs::write(&unsigned, source).map_err(|e| bad(&unsigned, e))?;
    Ok((signed, unsigned))
}

/// The review a version gets.
#[derive(Debug, Clone)]
pub struct Hook {
    pub command: PathBuf,
    pub timeout: Duration,
}

/// What the hook said, when it did not approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotApproved {
    /// It ended with another status; what it wrote.
    Rejected(String),
    /// It did not end in time.
    TimedOut(Duration),
    /// It could not be run (or its files written).
    Failed(String),
}

impl std::fmt::Display for NotApproved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotApproved::Rejected(why) => write!(f, "rejected by the review hook: {why}"),
            NotApproved::TimedOut(t) => write!(
                f,
                "the review hook did not answer within {} s: the version is not served",
                t.as_secs()
            ),
            NotApproved::Failed(why) => write!(f, "the review hook could not run: {why}"),
        }
    }
}

/// How much of the hook's output a rejection quotes.
const QUOTED: usize = 400;

/// Hands `version` (serial `serial` of `zone`) and the unsigned `source`
/// to the hook, and waits for its verdict.
pub fn review(
    hook: &Hook,
    zone: &str,
    serial: u32,
    version: &Previous,
    source: &[u8],
) -> Result<(), NotApproved> {
    let dir = private_dir().map_err(NotApproved::Failed)?;
    let result = run(hook, zone, serial, version, source, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Writes the files, runs the hook and waits for it. Long because each
/// of those steps fails in its own way, each named.
fn run(
    hook: &Hook,
    zone: &str,
    serial: u32,
    version: &Previous,
    source: &[u8],
    dir: &Path,
) -> Result<(), NotApproved> {
    let failed = |what: &str, e: std::io::Error| NotApproved::Failed(format!("{what}: {e}"));
    let (signed, unsigned) =
        write_files(dir, zone, serial, version, source).map_err(NotApproved::Failed)?;
    let out_path = dir.join("output");
    let out = std::fs::File::create(&out_path).map_err(|e| failed("the hook's output", e))?;
    let err = out
        .try_clone()
        .map_err(|e| failed("the hook's output", e))?;
    let mut child = Command::new(&hook.command)
        .arg(zone)
        .arg(serial.to_string())
        .arg(&signed)
        .arg(&unsigned)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| failed(&hook.command.display().to_string(), e))?;
    // Real time, on the system's clock: a process is waited for.
    let clock = crate::clock::SystemClock;
    let began = crate::clock::Clock::instant(&clock);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None)
                if crate::clock::Clock::instant(&clock).duration_since(began) >= hook.timeout =>
            {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NotApproved::TimedOut(hook.timeout));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(failed("waiting for the hook", e)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut said = String::new();
    if let Ok(f) = std::fs::File::open(&out_path) {
        let _ = f.take(QUOTED as u64).read_to_string(&mut said);
    }
    // Its lines on one line, printable characters only.
    let said: String = said
        .trim()
        .lines()
        .collect::<Vec<_>>()
        .join("; ")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    Err(NotApproved::Rejected(match status.code() {
        Some(code) => format!("exit {code}: {said}"),
        None => format!("ended by a signal: {said}"),
    }))
}

/// A new directory only this user may enter, under the system's
/// temporary directory.
fn private_dir() -> Result<PathBuf, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    private(
        format!(
            "keymaster-review-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ),
        false,
    )
}

/// The directory `name` under the system's temporary directory, made for
/// this user alone; with `existing`, one there already is taken as it is.
fn private(name: String, existing: bool) -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(name);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if !(existing && e.kind() == std::io::ErrorKind::AlreadyExists) => {
            Err(format!("{}: {e}", dir.display()))
        }
        _ => Ok(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn hook(script: &str, timeout_ms: u64) -> (tempdir::Dir, Hook) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("hook");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (
            dir,
            Hook {
                command: path,
                timeout: Duration::from_millis(timeout_ms),
            },
        )
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                Dir(super::private_dir().unwrap())
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn the_hook_sees_the_version_and_its_exit_decides() {
        let v = Previous::default();
        let (_d, ok) = hook(
            r#"test "$1" = example. && test "$2" = 7 && test -r "$3" && test -r "$4""#,
            5000,
        );
        assert_eq!(review(&ok, "example.", 7, &v, b"src"), Ok(()));
        let (_d, no) = hook("echo 'bad NSEC at a.example.' >&2; exit 3", 5000);
        assert_eq!(
            review(&no, "example.", 7, &v, b"src"),
            Err(NotApproved::Rejected(
                "exit 3: bad NSEC at a.example.".into()
            ))
        );
        let (_d, slow) = hook("sleep 5", 200);
        assert_eq!(
            review(&slow, "example.", 7, &v, b"src"),
            Err(NotApproved::TimedOut(Duration::from_millis(200)))
        );
    }
}
