//! Publishing a version made: its serial recorded in the store (fenced on
//! the epoch, with its audit entry) before it is served; then served,
//! written to the signed file, and told to the secondaries.

use std::net::SocketAddr;
use std::sync::Arc;

use domain::base::name::Name;

use super::served::SignedZone;
use super::{notify, Publisher, WHO};
use crate::dnssec::reuse::Previous;
use crate::dnssec::zone::ZoneStats;
use crate::error::PublishError;
use crate::node::ZoneName;
use crate::store::schema::ZoneRecord;
use crate::store::StoreError;

impl Publisher {
    /// Records the new version's serial in the store (fenced on the epoch,
    /// with its audit entry), then serves it.
    ///
    /// Long because recording the serial (fenced, audited), serving and
    /// updating the status must happen in this order, and each failure says
    /// which part failed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_and_serve(
        &self,
        zone: &ZoneRecord,
        reason: &str,
        prepared: &crate::signing::zone::ZoneSigning,
        stats: &ZoneStats,
        signed: &Previous,
        zone_signed: SignedZone,
        window: (u64, u64),
    ) -> std::result::Result<(), PublishError> {
        let key = &prepared.zone;
        let now = self.node.clock.now();
        let last = zone.publishing.serial;
        let expires = u64::from(signed.earliest_expiration().unwrap_or(0));
        // An unsigned version (`zone unsign`) has nothing to refresh.
        let refresh_at = match expires {
            0 => 0,
            e => e.saturating_sub(window.0).max(now + window.1),
        };
        // Durable before anyone sees it: the serial never goes backwards,
        // and a node that lost the role writes nothing and serves nothing.
        let m = self
            .gate
            .managed(&ZoneName::of(zone).map_err(|e| PublishError::Source(e.to_string()))?)
            .await
            .map_err(|e| PublishError::Store(e.to_string()))?;
        if m.zone.epoch != zone.epoch || m.zone.publishing.serial != last {
            return Err(PublishError::Moved);
        }
        let mut record = m.zone.clone();
        let p = &mut record.publishing;
        p.serial = Some(stats.serial_out);
        p.source_serial = stats.serial_in;
        p.signed_at = now;
        p.reason = reason.to_string();
        p.expires = expires;
        p.refresh_at = refresh_at;
        p.error = None;
        let audit = self.node.draft(
            WHO,
            key,
            "sign-zone",
            format!(
                "published serial {} (source serial {}): {reason}; {} records, {} RRSIGs of \
                 which {} made now; {}; {}",
                stats.serial_out,
                stats.serial_in,
                stats.records_out,
                stats.rrsigs,
                stats.rrsigs_made,
                made_how(stats),
                prepared.ksk_use
            ),
        );
        match self
            .node
            .store
            .update_zone(&record, m.zone.epoch, &[], &[], &audit)
            .await
        {
            Ok(()) => {}
            Err(e @ StoreError::Fenced { .. }) => {
                self.served.remove(key);
                return Err(PublishError::Store(format!("{e}; stops serving the zone")));
            }
            Err(e) => return Err(PublishError::Store(e.to_string())),
        }
        drop(m);
        let serial = stats.serial_out;
        let journal_records = zone_signed.last_change_records().unwrap_or(0);
        self.served.put(key, Arc::new(zone_signed));
        tracing::info!(
            zone = %key,
            serial,
            reason,
            records = stats.records_out,
            rrsigs_made = stats.rrsigs_made,
            rrsigs_kept = stats.rrsigs - stats.rrsigs_made,
            journal_records,
            how = %made_how(stats),
            "zone published"
        );
        Ok(())
    }
}

/// How a version was made, for its audit entry and log line.
fn made_how(stats: &ZoneStats) -> String {
    match stats.patched {
        true => format!(
            "patched from the last version: {} of {} chunks made again",
            stats.chunks_made, stats.chunks
        ),
        false => format!("made whole ({} chunks)", stats.chunks),
    }
}

/// Tells each secondary of the new serial, without waiting for answers.
pub(super) fn notify_secondaries(
    zone: &str,
    apex: &Name<Vec<u8>>,
    serial: u32,
    secondaries: Vec<SocketAddr>,
) {
    for secondary in secondaries {
        let (apex, zone) = (apex.clone(), zone.to_string());
        tokio::spawn(async move {
            if let Err(e) = notify::notify(secondary, &apex).await {
                tracing::warn!(%zone, %secondary, serial, error = %e, "NOTIFY not answered");
            }
        });
    }
}

/// Writes the signed zone beside its final name and renames it there, so
/// that a reader sees the old file or the new, never half of one.
pub(super) async fn write_atomically(
    path: &str,
    chunks: Vec<Arc<crate::dnssec::reuse::Chunk>>,
) -> std::result::Result<(), String> {
    use std::io::Write as _;
    let path = std::path::PathBuf::from(path);
    tokio::task::spawn_blocking(move || {
        let tmp = path.with_extension("keymaster-tmp");
        std::fs::File::create(&tmp)
            .and_then(|f| {
                let mut w = std::io::BufWriter::new(f);
                for c in &chunks {
                    w.write_all(&c.text)?;
                }
                w.into_inner().map_err(|e| e.into_error())?.sync_all()
            })
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write the signed zone to {}: {e}", path.display()))
    })
    .await
    .map_err(|e| e.to_string())?
}
