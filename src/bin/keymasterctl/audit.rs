//! `keymasterctl audit [verify]`: the audit log, and its hash chain.

use clap::Args;
use keymaster::policy::parse_duration;
use keymaster::proto;
use serde_json::json;

use crate::output::Output;
use crate::{Answer, Clients};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// verify: check the chain instead of listing.
    action: Option<String>,
    /// Only this zone's entries.
    #[arg(long)]
    zone: Option<String>,
    /// Only entries at or after this time (seconds since the epoch, or a
    /// duration back from now such as 1h or 7d).
    #[arg(long)]
    since: Option<String>,
}

pub async fn run(c: &mut Clients, a: AuditArgs, json: bool) -> Result<(), String> {
    match a.action.as_deref() {
        Some("verify") => verify(c, json).await,
        Some(other) => Err(format!("unknown audit action {other:?} (use verify)")),
        None => {
            let r = c
                .audit
                .list_audit(proto::ListAuditRequest {
                    zone: a.zone.unwrap_or_default(),
                    since: since(a.since)?,
                })
                .await
                .answer()?;
            Output::Audit(r.entries).print(json);
            Ok(())
        }
    }
}

/// Checks the chain; a broken one is an error (and a failing exit status).
async fn verify(c: &mut Clients, json: bool) -> Result<(), String> {
    let r = c
        .audit
        .verify_audit(proto::VerifyAuditRequest {})
        .await
        .answer()?;
    let text = if r.intact {
        format!(
            "audit log intact: {} entries, hash chain verified",
            r.entries
        )
    } else {
        format!(
            "audit log TAMPERED: entry {} {} ({} entries checked)",
            r.first_bad_seq, r.reason, r.entries
        )
    };
    let v = json!({"intact": r.intact, "entries": r.entries,
        "first_bad_seq": r.first_bad_seq, "reason": r.reason});
    Output::Value(v, text).print(json);
    if !r.intact {
        return Err("the audit log's hash chain is broken".into());
    }
    Ok(())
}

/// `--since`: seconds since the epoch, or a duration back from now.
fn since(s: Option<String>) -> Result<u64, String> {
    Ok(match s {
        None => 0,
        Some(s) if s.chars().all(|c| c.is_ascii_digit()) && s.len() > 8 => {
            s.parse().map_err(|_| format!("bad time {s:?}"))?
        }
        Some(s) => {
            use keymaster::clock::Clock;
            let back = parse_duration(&s)?;
            keymaster::clock::SystemClock
                .now()
                .saturating_sub(u64::from(back))
        }
    })
}
