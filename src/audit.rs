//! The audit log: every key event, every role change and every refused call,
//! with time, node, caller, zone and outcome. Entries form a hash chain:
//! each carries the SHA-256 of the one before, and its own hash over all its
//! fields, so an edited, removed or inserted entry breaks the chain.

use serde::{Deserialize, Serialize};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry before the store gives it its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub time: u64,
    pub node: String,
    pub caller: String,
    pub zone: String,
    pub action: String,
    /// "ok", or "refused: REASON".
    pub outcome: String,
    pub detail: String,
    /// The id of the call that made the entry (`x-request-id`), if any.
    pub request_id: String,
}

tokio::task_local! {
    /// The id of the gRPC call being served (`grpc::request_id`).
    static REQUEST_ID: String;
}

/// Runs `f` as part of the call with this id: audit entries drafted in it
/// carry the id, and calls it sends on to other nodes pass it along.
pub async fn with_request_id<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// The id of the call being served, or "" outside one.
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// An entry of the log, one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub time: u64,
    pub node: String,
    pub caller: String,
    pub zone: String,
    pub action: String,
    pub outcome: String,
    pub detail: String,
    /// Left out when empty, so that entries written before the field
    /// existed hash as they did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// Hash of the previous entry (GENESIS for the first).
    pub prev: String,
    /// SHA-256 over this entry with `hash` empty, hex.
    pub hash: String,
}

fn digest(entry: &AuditEntry) -> String {
    let mut unsealed = entry.clone();
    unsealed.hash = String::new();
    let json = serde_json::to_vec(&unsealed).expect("entries serialize");
    ring::digest::digest(&ring::digest::SHA256, &json)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Puts a draft at position `seq` after the entry whose hash is `prev`.
pub fn seal(draft: &AuditDraft, seq: u64, prev: &str) -> AuditEntry {
    let mut e = AuditEntry {
        seq,
        time: draft.time,
        node: draft.node.clone(),
        caller: draft.caller.clone(),
        zone: draft.zone.clone(),
        action: draft.action.clone(),
        outcome: draft.outcome.clone(),
        detail: draft.detail.clone(),
        request_id: draft.request_id.clone(),
        prev: prev.to_string(),
        hash: String::new(),
    };
    e.hash = digest(&e);
    e
}

/// A break in the chain: the first entry that does not hold, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: u64,
    pub reason: String,
}

/// Checks a whole log, in order from its first entry.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), ChainBreak> {
    let mut prev = GENESIS.to_string();
    if let Some(first) = entries.first() {
        if first.seq != 1 {
            return Err(ChainBreak {
                seq: first.seq,
                reason: "the log does not start at entry 1".into(),
            });
        }
    }
    for (expected, e) in (1u64..).zip(entries) {
        if e.seq != expected {
            return Err(ChainBreak {
                seq: e.seq,
                reason: format!("entry {expected} is missing"),
            });
        }
        if e.prev != prev {
            return Err(ChainBreak {
                seq: e.seq,
                reason: "does not follow the entry before it".into(),
            });
        }
        if digest(e) != e.hash {
            return Err(ChainBreak {
                seq: e.seq,
                reason: "its content does not match its hash (edited)".into(),
            });
        }
        prev = e.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(action: &str) -> AuditDraft {
        AuditDraft {
            time: 1,
            node: "a".into(),
            caller: "ops".into(),
            zone: "example.".into(),
            action: action.into(),
            outcome: "ok".into(),
            detail: String::new(),
            request_id: String::new(),
        }
    }

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 1..=n {
            let prev = out.last().map_or(GENESIS.to_string(), |e| e.hash.clone());
            out.push(seal(&draft(&format!("act{i}")), i, &prev));
        }
        out
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), Ok(()));
        assert_eq!(verify_chain(&[]), Ok(()));
    }

    #[test]
    fn edited_removed_and_reordered_entries_are_detected() {
        let mut c = chain(5);
        c[2].outcome = "refused".into();
        assert_eq!(verify_chain(&c).unwrap_err().seq, 3);

        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify_chain(&c).unwrap_err().seq, 3);

        let mut c = chain(5);
        // Re-sealing an edited entry does not help: the next one points
        // at the old hash.
        c[2].detail = "x".into();
        c[2] = seal(
            &AuditDraft {
                detail: "x".into(),
                ..draft("act3")
            },
            3,
            &c[1].hash.clone(),
        );
        assert_eq!(verify_chain(&c).unwrap_err().seq, 4);
    }
}
