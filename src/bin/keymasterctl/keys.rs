//! `keymasterctl key …`, and the public material: `ds`, `dnskey`, `cds`.

use clap::Subcommand;
use keymaster::proto;

use crate::output::Output;
use crate::{Answer, Clients};

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// List a zone's keys.
    List { zone: String },
    /// Add a key (published only, unless --activate).
    Add {
        zone: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        activate: bool,
    },
    /// Stop signing with a key (by id or key tag); it stays published.
    Retire { zone: String, key: String },
    /// Remove a key and destroy it in the token.
    Remove { zone: String, key: String },
    /// Roll a key now, or after the roll under way (by id or key tag).
    Roll { zone: String, key: String },
    /// Tell a KSK roll that waits for the parent that the new DS is there,
    /// when no check can see it (you must have had the parent update it).
    Step { zone: String, key: String },
    /// Revoke a KSK for RFC 5011 validators (a standby, or one of two
    /// active KSKs; Windows' RevokeStandby): published with the REVOKE bit
    /// for the remove hold-down, then removed.
    Revoke { zone: String, key: String },
    /// Private keys in the called node's token that no zone's key record
    /// names; with --destroy, destroy those given (audited; refused for any
    /// key a record names).
    Orphans {
        /// An orphan's id (from the list) to destroy; may be repeated.
        #[arg(long = "destroy", value_name = "ID")]
        destroy: Vec<String>,
    },
}

/// One arm per `key` subcommand.
pub async fn run(c: &mut Clients, cmd: KeyCmd) -> Result<Output, String> {
    let zones = &mut c.zones;
    let key = match cmd {
        KeyCmd::Orphans { destroy } if destroy.is_empty() => {
            let r = zones
                .list_orphans(proto::ListOrphansRequest {})
                .await
                .answer()?;
            let json = serde_json::json!({"token_serial": r.token_serial,
                "orphans": r.orphans.iter().map(|o| serde_json::json!({"id": o.id, "label": o.label})).collect::<Vec<_>>()});
            let text = if r.orphans.is_empty() {
                format!("no orphaned keys in token {}", r.token_serial)
            } else {
                r.orphans
                    .iter()
                    .map(|o| format!("{:<32} {}", o.id, o.label))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            return Ok(Output::Value(json, text));
        }
        KeyCmd::Orphans { destroy } => {
            let n = zones
                .destroy_orphans(proto::DestroyOrphansRequest {
                    ids: destroy.clone(),
                })
                .await
                .answer()?
                .destroyed_objects;
            return Ok(Output::Value(
                serde_json::json!({"destroyed": destroy, "objects": n}),
                format!(
                    "{} key pair(s) destroyed ({n} token objects)",
                    destroy.len()
                ),
            ));
        }
        KeyCmd::List { zone } => {
            let r = zones
                .list_keys(proto::ListKeysRequest { zone })
                .await
                .answer()?;
            crate::output::say_if_last_known(r.last_known_at);
            return Ok(Output::Keys(r.keys));
        }
        KeyCmd::Add {
            zone,
            role,
            activate,
        } => {
            zones
                .add_key(proto::AddKeyRequest {
                    zone,
                    role,
                    activate,
                })
                .await
        }
        KeyCmd::Retire { zone, key } => zones.retire_key(proto::KeyRequest { zone, key }).await,
        KeyCmd::Remove { zone, key } => zones.remove_key(proto::KeyRequest { zone, key }).await,
        KeyCmd::Roll { zone, key } => zones.roll_key(proto::KeyRequest { zone, key }).await,
        KeyCmd::Step { zone, key } => zones.step_key(proto::KeyRequest { zone, key }).await,
        KeyCmd::Revoke { zone, key } => zones.revoke_key(proto::KeyRequest { zone, key }).await,
    };
    Ok(Output::Keys(vec![key.answer()?]))
}

/// The zone's DS records (for these digests; none named: the zone's own)
/// and DNSKEY RRset, saying so when they are the last-known ones.
pub async fn get_ds(
    c: &mut Clients,
    zone: String,
    digest: &[String],
) -> Result<proto::GetDsResponse, String> {
    let digests = digest
        .iter()
        .map(|d| crate::zones::digest_number(d))
        .collect::<Result<Vec<_>, _>>()?;
    let r = c
        .signer
        .get_ds(proto::GetDsRequest { zone, digests })
        .await
        .answer()?;
    crate::output::say_if_last_known(r.last_known_at);
    Ok(r)
}

pub async fn ds(c: &mut Clients, zone: String, digest: Vec<String>) -> Result<Output, String> {
    let r = get_ds(c, zone, &digest).await?;
    Ok(Output::Records(vec![("ds", r.ds), ("dnskey", r.dnskeys)]))
}

pub async fn trust_anchor(
    c: &mut Clients,
    zone: String,
    format: &str,
    digest: Vec<String>,
) -> Result<Output, String> {
    use keymaster::dnssec::anchors::{render, Format};
    let f = Format::parse(format).ok_or_else(|| {
        format!("trust anchor format {format:?} is not unbound, bind, ds or keyset")
    })?;
    let r = get_ds(c, zone.clone(), &digest).await?;
    let texts = |rs: &[proto::WireRecord]| rs.iter().map(|r| r.text.clone()).collect::<Vec<_>>();
    let text = render(f, &texts(&r.ds), &texts(&r.dnskeys));
    let json = serde_json::json!({"zone": zone, "format": format, "anchors": text});
    Ok(Output::Value(json, text.trim_end().to_string()))
}

pub async fn dnskey(c: &mut Clients, zone: String) -> Result<Output, String> {
    let r = c
        .signer
        .get_dnskeys(proto::GetDnskeysRequest { zone })
        .await
        .answer()?;
    crate::output::say_if_last_known(r.last_known_at);
    Ok(Output::Records(vec![
        ("dnskey", r.dnskeys),
        ("rrsig", r.rrsigs),
    ]))
}

pub async fn cds(c: &mut Clients, zone: String) -> Result<Output, String> {
    let r = c
        .signer
        .get_cds(proto::GetCdsRequest { zone })
        .await
        .answer()?;
    crate::output::say_if_last_known(r.last_known_at);
    Ok(Output::Records(vec![
        ("cds", r.cds),
        ("cdnskey", r.cdnskeys),
        ("rrsig", r.rrsigs),
    ]))
}
