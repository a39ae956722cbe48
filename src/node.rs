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
use crate::store::schema::ZoneRecord;
use crate::store::Store;
use crate::text::shown;

/// Parses a zone name into its stored form ("example.com.", lower case)
/// and its name.
pub fn parse_zone_name(s: &str) -> std::result::Result<(String, Name<Vec<u8>>), ZoneNameError> {
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

/// This node: its id, token, store and clock.
#[derive(Debug)]
pub struct Node {
    pub id: String,
    pub hsm: Arc<dyn Hsm>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

/// A managed zone: its stored name, apex and record.
pub struct ZoneRef {
    pub key: String,
    pub apex: Name<Vec<u8>>,
    pub zone: ZoneRecord,
}

impl Node {
    /// The zone's record, or why there is none.
    pub async fn zone(&self, name: &str) -> Result<ZoneRef> {
        let (key, apex) = parse_zone_name(name)?;
        let zone = self
            .store
            .get_zone(&key)
            .await?
            .ok_or_else(|| ZoneNameError::NotManaged(key.clone()))?;
        Ok(ZoneRef { key, apex, zone })
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

    /// Records a refused call. A refusal that cannot be recorded is logged;
    /// the call is refused either way.
    pub async fn audit_refusal(&self, who: &str, zone: &str, action: &str, reason: &str) {
        let mut d = self.draft(who, zone, action, String::new());
        d.outcome = format!("refused: {reason}");
        if let Err(e) = self.store.append_audit(&d).await {
            tracing::error!(error = %e, action, "cannot record a refused call in the audit log");
        }
    }

    /// Records an event that changes nothing in the store (a signed zone, a
    /// KSK signature); fails when the log cannot be written.
    pub async fn audit_event(
        &self,
        who: &str,
        zone: &str,
        action: &str,
        detail: String,
    ) -> Result<()> {
        self.store
            .append_audit(&self.draft(who, zone, action, detail))
            .await?;
        Ok(())
    }

    /// The audit log, or one zone's part of it from a time on.
    pub async fn read_audit(&self, zone: Option<&str>, since: u64) -> Result<Vec<AuditEntry>> {
        let zone = match zone {
            Some(z) => Some(parse_zone_name(z)?.0),
            None => None,
        };
        Ok(self.store.read_audit(zone.as_deref(), since).await?)
    }

    /// Checks the whole chain: (entries, the first break if any).
    pub async fn verify_audit(&self) -> Result<(usize, Option<audit::ChainBreak>)> {
        let entries = self.store.read_audit(None, 0).await?;
        Ok((entries.len(), audit::verify_chain(&entries).err()))
    }
}

/// Runs token or file work on a blocking thread, never on the async
/// runtime's (ARCHITECTURE.md, The signing path).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Lost("a blocking task"))?
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
}
