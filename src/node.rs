//! This node as the services see it: who it is, its token, its store, its
//! clock; how zone names are read; how it writes the audit log; and how
//! blocking work leaves the async runtime's threads.

use std::str::FromStr;
use std::sync::Arc;

use domain::base::name::Name;

use crate::audit::{self, AuditDraft, AuditEntry};
use crate::clock::Clock;
use crate::error::{Error, Result, ZoneNameError};
use crate::hsm::Hsm;
use crate::spool::Spool;
use crate::store::schema::ZoneRecord;
use crate::store::{Store, StoreError};
use crate::text::shown;

/// A zone's name, read once where it comes in (a gRPC request, the
/// command line, a configuration) and passed down as it is: its stored
/// form ("example.com.", lower case, with the final dot) and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ZoneName {
    key: String,
    apex: Name<Vec<u8>>,
}

impl ZoneName {
    /// What a caller sent: checked, and made the stored form.
    pub fn parse(s: &str) -> std::result::Result<ZoneName, ZoneNameError> {
        let (key, apex) = parse_zone_name(s)?;
        Ok(ZoneName { key, apex })
    }

    /// A name as the store keeps it (made by `parse` when the zone came
    /// in), or as a record names a child.
    pub fn stored(key: &str) -> std::result::Result<ZoneName, ZoneNameError> {
        Self::parse(key)
    }

    /// The name of a zone record (as the store keeps it).
    pub fn of(zone: &ZoneRecord) -> std::result::Result<ZoneName, ZoneNameError> {
        Self::stored(&zone.name)
    }

    /// The stored form: what records are keyed by.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The zone's apex as a DNS name.
    pub fn apex(&self) -> &Name<Vec<u8>> {
        &self.apex
    }
}

impl std::fmt::Display for ZoneName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key)
    }
}

/// Parses a zone name into its stored form ("example.com.", lower case)
/// and its name (`ZoneName::parse`).
fn parse_zone_name(s: &str) -> std::result::Result<(String, Name<Vec<u8>>), ZoneNameError> {
    let trimmed = s.trim();
    if trimmed.is_empty() || trimmed == "." {
        return Err(ZoneNameError::Missing);
    }
    let with_dot = if trimmed.ends_with('.') {
        trimmed.to_string()
    } else {
        format!("{trimmed}.")
    };
    let name = Name::<Vec<u8>>::from_str(&with_dot.to_ascii_lowercase()).map_err(|e| {
        ZoneNameError::Invalid {
            input: shown(s),
            reason: e.to_string(),
        }
    })?;
    Ok((format!("{name}."), name))
}

/// The zone name to write in an audit entry: the stored form, or what the
/// caller sent, escaped.
pub fn audit_zone_name(zone: &str) -> String {
    match parse_zone_name(zone) {
        Ok((key, _)) => key,
        Err(_) if zone.is_empty() => String::new(),
        Err(_) => shown(zone),
    }
}

/// The nearest managed zone above each managed zone that has one (child
/// → parent), from stored names: a zone below another managed zone below
/// the parent is that one's child, not the parent's.
pub fn managed_parents<'a>(names: &[&'a str]) -> std::collections::HashMap<&'a str, &'a str> {
    let managed: std::collections::HashSet<&str> = names.iter().copied().collect();
    let mut parents = std::collections::HashMap::new();
    for &name in names {
        let mut up = name;
        while let Some(next) = one_label_up(up) {
            if let Some(&parent) = managed.get(next) {
                parents.insert(name, parent);
                break;
            }
            up = next;
        }
    }
    parents
}

/// The managed zones directly below each managed zone that has some.
pub fn children_by_parent(
    zones: &[ZoneRecord],
) -> std::collections::HashMap<&str, Vec<&ZoneRecord>> {
    let names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
    let parents = managed_parents(&names);
    let mut children: std::collections::HashMap<&str, Vec<&ZoneRecord>> = Default::default();
    for z in zones {
        if let Some(parent) = parents.get(z.name.as_str()) {
            children.entry(parent).or_default().push(z);
        }
    }
    children
}

/// A stored name one label up ("a.b." → "b."); None above the top label.
/// A dot written `\.` in a label does not end it.
fn one_label_up(name: &str) -> Option<&str> {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'.' => return Some(&name[i + 1..]).filter(|up| !up.is_empty()),
            _ => i += 1,
        }
    }
    None
}

/// Refused calls not recorded since the audit log last took one (a
/// process is one node).
static UNRECORDED_REFUSALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// This node: its id, token, store and clock.
#[derive(Debug)]
pub struct Node {
    pub id: String,
    pub hsm: Arc<dyn Hsm>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Where records of signing work wait while the store cannot take
    /// them (`--spool`); None: such work is refused then.
    pub spool: Option<Arc<Spool>>,
}

/// A managed zone: its stored name, apex and record.
pub struct ZoneRef {
    pub key: String,
    pub apex: Name<Vec<u8>>,
    pub zone: ZoneRecord,
}

impl Node {
    /// The zone's record, or why there is none.
    pub async fn zone(&self, name: &ZoneName) -> Result<ZoneRef> {
        let zone = self
            .store
            .get_zone(name.key())
            .await?
            .ok_or_else(|| ZoneNameError::NotManaged(name.key().to_string()))?;
        Ok(ZoneRef {
            key: name.key().to_string(),
            apex: name.apex().clone(),
            zone,
        })
    }

    /// An audit entry of this node for a successful action.
    pub fn draft(&self, who: &str, zone: &str, action: &str, detail: String) -> AuditDraft {
        AuditDraft {
            time: self.clock.now(),
            node: self.id.clone(),
            caller: who.to_string(),
            // The stored form, so that `audit --zone` finds every entry.
            zone: audit_zone_name(zone),
            action: action.to_string(),
            outcome: "ok".to_string(),
            detail,
            request_id: crate::audit::request_id(),
        }
    }

    /// Records a refused call; the call is refused either way. While
    /// refusals cannot be recorded (the store away), that is logged once,
    /// and how many went unrecorded once it works again: not one line per
    /// call (in an outage every management call is refused).
    pub async fn audit_refusal(&self, who: &str, zone: &str, action: &str, reason: &str) {
        use std::sync::atomic::Ordering;
        let mut d = self.draft(who, zone, action, String::new());
        d.outcome = format!("refused: {reason}");
        match self.store.append_audit(&d).await {
            Ok(_) => {
                let lost = UNRECORDED_REFUSALS.swap(0, Ordering::SeqCst);
                if lost > 0 {
                    tracing::warn!(
                        unrecorded = lost,
                        "refused calls are recorded in the audit log again; some were not"
                    );
                }
            }
            Err(e) => {
                if UNRECORDED_REFUSALS.fetch_add(1, Ordering::SeqCst) == 0 {
                    tracing::error!(error = %e, action, "refused calls cannot be recorded in the audit log (said once until they can)");
                }
            }
        }
    }

    /// Records signing work, which changes nothing in the store (a signed
    /// zone, a KSK signature). While the store cannot take the entry, it
    /// goes to the spool (durably) and the work goes on; without a spool,
    /// or when the spool cannot be written either, this fails and so does
    /// the work (fail closed). Entries already spooled go first, so that
    /// the log keeps the order the work was done in.
    pub async fn audit_event(
        &self,
        who: &str,
        zone: &str,
        action: &str,
        detail: String,
    ) -> Result<()> {
        let draft = self.draft(who, zone, action, detail);
        let Some(spool) = &self.spool else {
            self.store.append_audit(&draft).await?;
            return Ok(());
        };
        let appended = match self.flush_spool().await {
            Ok(_) => self.store.append_audit(&draft).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match appended {
            Err(e) if e.is_unusable() => {
                let mut draft = draft;
                draft
                    .detail
                    .push_str("; recorded on the node while the store was unreachable");
                let first = spool.is_empty();
                on_spool(spool, move |s| s.append(&draft)).await?;
                if first {
                    tracing::warn!(
                        error = %e,
                        spool = %spool.path().display(),
                        "the store does not take audit entries: signing goes on, and its records wait in the spool until the store is back"
                    );
                }
                Ok(())
            }
            r => Ok(r?),
        }
    }

    /// Appends the spooled records to the audit log, oldest first, until
    /// none is left or the store fails; returns how many went.
    pub async fn flush_spool(&self) -> std::result::Result<usize, StoreError> {
        let Some(spool) = &self.spool else {
            return Ok(0);
        };
        if spool.is_empty() {
            return Ok(0);
        }
        // One flush at a time: two would each append the first record.
        // Records spooled meanwhile come after these, for the next flush.
        let _one = spool.flushing().await;
        let mut sent = 0;
        let mut since = None;
        for draft in on_spool(spool, |s| s.pending()).await? {
            since.get_or_insert(draft.time);
            self.store.append_audit(&draft).await?;
            on_spool(spool, |s| s.remove_first()).await?;
            sent += 1;
        }
        if let Some(since) = since {
            tracing::info!(
                records = sent,
                outage_s = self.clock.now().saturating_sub(since),
                "the store takes audit entries again: the spooled records of signing work are in the audit log"
            );
        }
        Ok(sent)
    }

    /// Flushes the spool every 2 s while it holds records, so that they
    /// reach the log soon after the store is back even with no new work.
    pub async fn keep_flushing_spool(self: Arc<Self>) {
        loop {
            self.clock.sleep(std::time::Duration::from_secs(2)).await;
            if let Err(e) = self.flush_spool().await {
                tracing::debug!(error = %e, "spool: the store does not take entries yet");
            }
        }
    }

    /// The audit log, or one zone's part of it from a time on.
    pub async fn read_audit(&self, zone: Option<&ZoneName>, since: u64) -> Result<Vec<AuditEntry>> {
        Ok(self
            .store
            .read_audit(zone.map(ZoneName::key), since)
            .await?)
    }

    /// Checks the whole chain: (entries, the first break if any).
    pub async fn verify_audit(&self) -> Result<(usize, Option<audit::ChainBreak>)> {
        let entries = self.store.read_audit(None, 0).await?;
        Ok((entries.len(), audit::verify_chain(&entries).err()))
    }
}

/// Runs spool file work on a blocking thread; its failures are the audit
/// log's.
async fn on_spool<T: Send + 'static>(
    spool: &Arc<Spool>,
    work: impl FnOnce(&Spool) -> std::result::Result<T, String> + Send + 'static,
) -> std::result::Result<T, StoreError> {
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || work(&spool))
        .await
        .map_err(|e| StoreError::AuditUnwritable(format!("spool task failed: {e}")))?
        .map_err(StoreError::AuditUnwritable)
}

/// `blocking` for a key generation, which may take longer
/// (`hsm::bound::GENERATION_FACTOR` bounds).
pub async fn generating<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    crate::hsm::bound::call_generating(f)
        .await
        .ok_or(Error::Lost("a blocking task"))?
        .map_err(Error::from)?
}

/// Runs token work on a blocking thread, never on the async runtime's
/// (ARCHITECTURE.md, The signing path), waiting for it at most the token's
/// bound (`hsm::bound`): past it the request fails with `Stalled`.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    crate::hsm::bound::call(f)
        .await
        .ok_or(Error::Lost("a blocking task"))?
        .map_err(Error::from)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names_are_stored_lower_case_with_the_dot() {
        assert_eq!(parse_zone_name("Example.COM").unwrap().0, "example.com.");
        assert_eq!(parse_zone_name(" a.b. ").unwrap().0, "a.b.");
        assert_eq!(parse_zone_name(""), Err(ZoneNameError::Missing));
        assert_eq!(parse_zone_name("."), Err(ZoneNameError::Missing));
        assert!(matches!(
            parse_zone_name("a..b"),
            Err(ZoneNameError::Invalid { .. })
        ));
        assert_eq!(audit_zone_name("a\u{1b}..b"), "\"a\\u{1b}..b\"");
    }

    #[test]
    fn each_managed_zone_has_its_nearest_managed_parent() {
        let names = [
            "example.",
            "a.example.",
            "x.y.a.example.",
            "b.example.",
            "other.",
            "c\\.d.example.",
        ];
        let parents = managed_parents(&names);
        assert_eq!(parents.get("a.example."), Some(&"example."));
        // Below a, which is below example.: a's child, not example.'s.
        assert_eq!(parents.get("x.y.a.example."), Some(&"a.example."));
        assert_eq!(parents.get("b.example."), Some(&"example."));
        // An escaped dot is inside a label.
        assert_eq!(parents.get("c\\.d.example."), Some(&"example."));
        assert_eq!(parents.get("example."), None);
        assert_eq!(parents.get("other."), None);
    }
}
