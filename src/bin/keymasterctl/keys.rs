//! `keymasterctl key …`, and the public material: `ds`, `dnskey`, `cds`.

use clap::Subcommand;
use keymaster::proto;

use crate::output::Output;
use crate::{status_line, Clients};

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
}

pub async fn run(c: &mut Clients, cmd: KeyCmd) -> Result<Output, String> {
    let zones = &mut c.zones;
    let key = match cmd {
        KeyCmd::List { zone } => {
            return Ok(Output::Keys(
                zones
                    .list_keys(proto::ListKeysRequest { zone })
                    .await
                    .map_err(status_line)?
                    .into_inner()
                    .keys,
            ))
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
    };
    Ok(Output::Keys(vec![key.map_err(status_line)?.into_inner()]))
}

pub async fn ds(c: &mut Clients, zone: String, digest: Vec<String>) -> Result<Output, String> {
    let digests = digest
        .iter()
        .map(|d| crate::zones::digest_number(d))
        .collect::<Result<Vec<_>, _>>()?;
    let r = c
        .signer
        .get_ds(proto::GetDsRequest { zone, digests })
        .await
        .map_err(status_line)?
        .into_inner();
    Ok(Output::Records(vec![("ds", r.ds), ("dnskey", r.dnskeys)]))
}

pub async fn dnskey(c: &mut Clients, zone: String) -> Result<Output, String> {
    let r = c
        .signer
        .get_dnskeys(proto::GetDnskeysRequest { zone })
        .await
        .map_err(status_line)?
        .into_inner();
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
        .map_err(status_line)?
        .into_inner();
    Ok(Output::Records(vec![
        ("cds", r.cds),
        ("cdnskey", r.cdnskeys),
        ("rrsig", r.rrsigs),
    ]))
}
