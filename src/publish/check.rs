//! Every version is checked before it is served (`dnssec::check`): a
//! version made whole is read whole; a patched one over the chunks made
//! for it, each run of them with a chunk on either side. Chunks are read
//! on all cores. A version that fails is not served: the last good one
//! stays, and the failure names the owner and the check.
//!
//! Debug builds (the tests') also take a fault to put in a version before
//! it is checked, from the file `KEYMASTER_TEST_FAULT_FILE` names: so that
//! an end-to-end test can show a bogus version refused. Release builds
//! have no such hook.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use domain::base::name::Name;

use crate::dnssec::check::{chain, read_chunk, Bounds, ChunkFacts, Failure, Keys};
use crate::dnssec::denial::Denial;
use crate::dnssec::reuse::{Chunk, Previous};

/// What a check read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checked {
    pub chunks: usize,
    pub rrsigs: u64,
}

/// Checks `version`; `made`: the ids of the chunks made for it (None:
/// all, a version made whole).
pub fn check_version(
    apex: &Name<Vec<u8>>,
    version: &Previous,
    made: Option<&HashSet<u32>>,
    denial: &Denial,
    bounds: Bounds,
) -> Result<Checked, Failure> {
    let chunks = &version.chunks;
    let Some(first) = chunks.first() else {
        return Ok(Checked::default());
    };
    let keys = Keys::from_apex(apex, &first.text, bounds)?;
    let is_made = |c: &Chunk| made.is_none_or(|m| m.contains(&c.id));
    // Which chunks to read, in order: every one, or the runs made with a
    // neighbour on each side.
    let read: Vec<usize> = match made {
        None => (0..chunks.len()).collect(),
        Some(_) => {
            let mut want = vec![false; chunks.len()];
            for (i, c) in chunks.iter().enumerate() {
                if is_made(c) {
                    want[i.saturating_sub(1)..(i + 2).min(chunks.len())]
                        .iter_mut()
                        .for_each(|w| *w = true);
                }
            }
            (0..chunks.len()).filter(|i| want[*i]).collect()
        }
    };
    let facts = read_all(apex, chunks, &read, &keys, &is_made, denial, bounds)?;
    let checked = Checked {
        chunks: read.len(),
        rrsigs: facts.iter().map(|f| f.rrsigs).sum(),
    };
    // The chain over each run of chunks read (runs are contiguous).
    let mut run: Vec<&ChunkFacts> = Vec::new();
    for (k, f) in facts.iter().enumerate() {
        if k > 0 && read[k] != read[k - 1] + 1 {
            chain(apex, &run, denial, false)?;
            run.clear();
        }
        run.push(f);
    }
    chain(apex, &run, denial, made.is_none())?;
    // A patched NSEC3 version: the chain's links were checked where they
    // changed; each owner the change touched must also be in it.
    if let (Some(_), Denial::Nsec3(p)) = (made, denial) {
        for (k, f) in facts.iter().enumerate() {
            if is_made(&chunks[read[k]]) {
                crate::dnssec::check::nsec3_in_version(apex, f, p, &version.groups)?;
            }
        }
    }
    Ok(checked)
}

/// Reads the chunks `which` (indices into `chunks`) on every core, in
/// order; the first failure, in zone order, if any.
fn read_all(
    apex: &Name<Vec<u8>>,
    chunks: &[Arc<Chunk>],
    which: &[usize],
    keys: &Keys,
    is_made: &(dyn Fn(&Chunk) -> bool + Sync),
    denial: &Denial,
    bounds: Bounds,
) -> Result<Vec<ChunkFacts>, Failure> {
    let results: Vec<Mutex<Option<Result<ChunkFacts, Failure>>>> =
        which.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(which.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = which.get(k) else {
                    break;
                };
                let chunk = &chunks[i];
                let r = read_chunk(apex, &chunk.text, keys, is_made(chunk), denial, bounds);
                *results[k].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| {
                    Err(Failure {
                        owner: ".".into(),
                        check: "a chunk was not read".into(),
                    })
                })
        })
        .collect()
}

/// A fault for a test to put in a version (debug builds only): `bad-rrsig`
/// makes an RRSIG name a key the zone does not publish, `nsec-hole` takes
/// an NSEC or NSEC3 record and its signature out; either followed by
/// ` unchecked` also skips the check (the control: what a validator makes
/// of it). Put in the first chunk made for the version that has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub unchecked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    BadRrsig,
    NsecHole,
}

/// The fault the test asks for now, if any.
pub fn fault() -> Option<Fault> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let path = std::env::var_os("KEYMASTER_TEST_FAULT_FILE")?;
    let text = std::fs::read_to_string(path).ok()?;
    let mut words = text.split_whitespace();
    let kind = match words.next()? {
        "bad-rrsig" => FaultKind::BadRrsig,
        "nsec-hole" => FaultKind::NsecHole,
        _ => return None,
    };
    Some(Fault {
        kind,
        unchecked: words.next() == Some("unchecked"),
    })
}

/// Puts `fault` in the first chunk of `version` made for it (`made`)
/// where it fits; returns the owner it broke.
pub fn inject(
    version: &mut Arc<Previous>,
    made: Option<&HashSet<u32>>,
    fault: Fault,
) -> Option<String> {
    let v = Arc::make_mut(version);
    for i in 0..v.chunks.len() {
        let c = &v.chunks[i];
        if made.is_some_and(|m| !m.contains(&c.id)) {
            continue;
        }
        let text = String::from_utf8_lossy(&c.text).into_owned();
        let Some((changed, owner)) = broken(&text, fault.kind) else {
            continue;
        };
        let c = Arc::new(Chunk {
            id: c.id,
            text: changed.into_bytes(),
            first: c.first.clone(),
            records: c.records,
            rrsigs: c.rrsigs,
            expires: c.expires,
            chain: c.chain,
        });
        v.chunks[i] = c;
        return Some(owner);
    }
    None
}

/// `text` with the fault in it, and the owner broken.
fn broken(text: &str, kind: FaultKind) -> Option<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let fields = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    match kind {
        FaultKind::BadRrsig => {
            let at = lines.iter().position(|l| {
                let f = fields(l);
                f.get(3).map(String::as_str) == Some("RRSIG")
                    && matches!(
                        f.get(4).map(String::as_str),
                        Some("A" | "AAAA" | "TXT" | "MX")
                    )
            })?;
            let mut f = fields(lines[at]);
            let tag: u16 = f[10].parse().ok()?;
            f[10] = tag.wrapping_add(1).to_string();
            let owner = f[0].clone();
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out[at] = f.join(" ");
            Some((out.join("\n") + "\n", owner))
        }
        FaultKind::NsecHole => {
            let is = |l: &str, t: &str| fields(l).get(3).map(String::as_str) == Some(t);
            let covers = |l: &str, t: &str| {
                is(l, "RRSIG") && fields(l).get(4).map(String::as_str) == Some(t)
            };
            // Not the apex's (the first owner): a hole in the middle.
            let first_owner = fields(lines.first()?).first()?.clone();
            let at = lines.iter().position(|l| {
                (is(l, "NSEC") || is(l, "NSEC3")) && fields(l).first() != Some(&first_owner)
            })?;
            let owner = fields(lines[at]).first()?.clone();
            let t = fields(lines[at])[3].clone();
            let out: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| !(fields(l).first() == Some(&owner) && (is(l, &t) || covers(l, &t))))
                .collect();
            Some((out.join("\n") + "\n", owner))
        }
    }
}
