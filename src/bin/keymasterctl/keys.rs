//! `keymasterctl key …`, and the public material: `ds`, `dnskey`, `cds`.

use clap::Subcommand;
use keymaster::proto;

use crate::output::Output;
use crate::{Answer, Clients};

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// List a zone's keys.
    List {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Add a key (published only, unless --activate).
    Add {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The key's role: ksk or zsk.
        #[arg(long, value_parser = ["ksk", "zsk"])]
        role: String,
        /// Sign with it at once (default: only published, a standby).
        #[arg(long)]
        activate: bool,
    },
    /// Stop signing with a key (by id or key tag); it stays published.
    /// Refused while another key of its role is not yet in every cache
    /// (RFC 7583), with the earliest safe time: `key roll` does it safely.
    Retire {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The key: its id (hex CKA_ID) or its key tag.
        key: String,
        /// Retire it even before it is safe (audited as forced).
        #[arg(long)]
        force: bool,
    },
    /// Remove a key and destroy it in the token. Refused for a key that
    /// still signs, or was retired too recently for caches to have
    /// forgotten it.
    Remove {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The key: its id (hex CKA_ID) or its key tag.
        key: String,
        /// Remove it even before it is safe (audited as forced).
        #[arg(long)]
        force: bool,
    },
    /// Roll a key now, or after the roll under way (by id or key tag).
    Roll {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The key: its id (hex CKA_ID) or its key tag.
        key: String,
    },
    /// Tell a KSK roll that waits for the parent that the new DS is there,
    /// when no check can see it (you must have had the parent update it).
    Step {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The key: its id (hex CKA_ID) or its key tag.
        key: String,
    },
    /// Revoke a KSK for RFC 5011 validators (a standby, or one of two
    /// active KSKs; Windows' RevokeStandby): published with the REVOKE bit
    /// for the remove hold-down, then removed.
    Revoke {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The key: its id (hex CKA_ID) or its key tag.
        key: String,
    },
    /// Private keys in the called node's token that no zone's key record
    /// names; with --destroy, destroy those given (audited; refused for any
    /// key a record names).
    Orphans {
        /// An orphan's id (from the list) to destroy; may be repeated.
        #[arg(long = "destroy", value_name = "ID")]
        destroy: Vec<String>,
    },
}

/// One arm per `key` subcommand (long as the list of subcommands is).
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
        KeyCmd::Retire { zone, key, force } => {
            zones
                .retire_key(proto::KeyRequest { zone, key, force })
                .await
        }
        KeyCmd::Remove { zone, key, force } => {
            zones
                .remove_key(proto::KeyRequest { zone, key, force })
                .await
        }
        KeyCmd::Roll { zone, key } => zones.roll_key(key_request(zone, key)).await,
        KeyCmd::Step { zone, key } => zones.step_key(key_request(zone, key)).await,
        KeyCmd::Revoke { zone, key } => zones.revoke_key(key_request(zone, key)).await,
    };
    Ok(Output::Keys(vec![key.answer()?]))
}

/// A DS digest algorithm by name, as its number.
pub fn digest_number(d: &str) -> Result<u32, String> {
    keymaster::dnssec::ds::DsDigest::parse(d)
        .map(|d| u32::from(d.number()))
        .ok_or_else(|| format!("unknown DS digest {d:?} (use sha256 or sha384)"))
}

fn key_request(zone: String, key: String) -> proto::KeyRequest {
    proto::KeyRequest {
        zone,
        key,
        force: false,
    }
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
        .map(|d| digest_number(d))
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
