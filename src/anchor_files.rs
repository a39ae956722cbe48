//! `--trust-anchor-dir DIR`: the Key Master keeps `keyset-ZONE` (the
//! KSKs' DNSKEY records) and `dsset-ZONE` (their DS records) current in
//! DIR for every zone it holds, as Windows keeps its trust-anchor and DS
//! files: written again whenever this node changes a key set (every key
//! change and rollover step runs on the Key Master), when it gains a zone,
//! and at least once a minute. Each file is replaced atomically, and only
//! when its content changes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::dnssec::anchors::{render, Format};
use crate::node::ZoneName;
use crate::services::Services;

/// How often the files are looked at without a key-set change.
const EVERY: Duration = Duration::from_secs(60);

/// Runs until the process ends.
pub async fn keep(services: Arc<Services>, dir: PathBuf) {
    let mut held = services.mastership.held_zones();
    loop {
        let zones: Option<Arc<HashSet<String>>> = held.borrow_and_update().clone();
        for zone in zones.iter().flat_map(|z| z.iter()) {
            if let Err(e) = write_zone(&services, &dir, zone).await {
                tracing::warn!(zone, dir = %dir.display(), error = %e, "trust-anchor files not written");
            }
        }
        tokio::select! {
            _ = services.signing.key_sets_changed(EVERY) => {}
            _ = held.changed() => {}
        }
    }
}

async fn write_zone(services: &Services, dir: &Path, zone: &str) -> Result<(), String> {
    let name = ZoneName::stored(zone).map_err(|e| e.to_string())?;
    let (ds, dnskeys) = services
        .signing
        .ds(&name, &[])
        .await
        .map_err(|e| e.to_string())?;
    let ds: Vec<String> = ds.into_iter().map(|r| r.text).collect();
    let dnskeys: Vec<String> = dnskeys.into_iter().map(|r| r.text).collect();
    // The stored name ends with the dot; the files are named as
    // dnssec-signzone names them (keyset-example.com.).
    for (prefix, format) in [("keyset", Format::Keyset), ("dsset", Format::Ds)] {
        let path = dir.join(format!("{prefix}-{zone}"));
        let text = render(format, &ds, &dnskeys);
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || replace_if_changed(&dir, &path, &text))
            .await
            .map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn replace_if_changed(dir: &Path, path: &Path, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    let said = |e: std::io::Error| format!("{}: {e}", path.display());
    std::fs::write(&tmp, text).map_err(said)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(said)?;
    std::fs::rename(&tmp, path).map_err(said)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    tracing::info!(file = %path.display(), "trust-anchor file written");
    Ok(())
}
