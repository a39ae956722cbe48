//! `keymasterctl zone …`: add, show, list, remove, sign, rekey.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use keymaster::policy::parse_duration;
use keymaster::proto;
use serde_json::json;

use crate::output::Output;
use crate::{status_line, Clients};

#[derive(Debug, Subcommand)]
pub enum ZoneCmd {
    /// Add a zone: generate its KSK and ZSK in the token.
    Add(ZoneAdd),
    /// Show a zone's DNSSEC settings.
    Show { zone: String },
    /// List the zones.
    List,
    /// Remove a zone (its keys are destroyed: needs --force).
    Remove {
        zone: String,
        #[arg(long)]
        force: bool,
    },
    /// After a forced seize, on the new Key Master: generate new keys in
    /// its token and print the new DS (every trust anchor must change).
    Rekey { zone: String },
    /// Sign a zone file.
    Sign {
        zone: String,
        /// Unsigned master file ("-" for standard input).
        #[arg(long = "in")]
        input: PathBuf,
        /// Signed master file ("-" for standard output).
        #[arg(long = "out")]
        output: PathBuf,
        /// Signature inception, seconds since the epoch (default: now - offset).
        #[arg(long, default_value_t = 0)]
        inception: u32,
        /// Signature expiration, seconds since the epoch (default: now + validity).
        #[arg(long, default_value_t = 0)]
        expiration: u32,
    },
}

#[derive(Debug, Args)]
pub struct ZoneAdd {
    zone: String,
    /// rsasha256, ecdsap256sha256, ecdsap384sha384, ed25519, or a number.
    #[arg(long)]
    algorithm: Option<String>,
    /// RSA key size: 2048, 3072 or 4096.
    #[arg(long)]
    bits: Option<u32>,
    /// nsec or nsec3.
    #[arg(long)]
    denial: Option<String>,
    /// NSEC3 extra iterations (RFC 9276: 0).
    #[arg(long)]
    nsec3_iterations: Option<u32>,
    /// NSEC3 salt in hex ("-" or empty for none).
    #[arg(long)]
    nsec3_salt: Option<String>,
    /// NSEC3 opt-out.
    #[arg(long)]
    nsec3_opt_out: bool,
    /// Validity of DNSKEY/CDS/CDNSKEY signatures (e.g. 168h).
    #[arg(long, value_parser = parse_duration)]
    dnskey_signature_validity: Option<u32>,
    /// Validity of other signatures (e.g. 240h).
    #[arg(long, value_parser = parse_duration)]
    signature_validity: Option<u32>,
    /// Signature inception offset into the past (e.g. 1h).
    #[arg(long, value_parser = parse_duration)]
    inception_offset: Option<u32>,
    /// DNSKEY RRset TTL.
    #[arg(long, value_parser = parse_duration)]
    dnskey_ttl: Option<u32>,
    /// DS TTL.
    #[arg(long, value_parser = parse_duration)]
    ds_ttl: Option<u32>,
    /// DS digest algorithms: sha256, sha384 (comma-separated).
    #[arg(long, value_delimiter = ',')]
    ds_digest: Vec<String>,
    /// Publish CDS and CDNSKEY (RFC 7344).
    #[arg(long)]
    cds: bool,
    /// Node to make the zone's Key Master (default: the node called); it
    /// generates the keys in its token.
    #[arg(long)]
    key_master: Option<String>,
    /// Propagation time (e.g. 2d).
    #[arg(long, value_parser = parse_duration)]
    propagation_time: Option<u32>,
    /// Automatic failover: a candidate seizes the role this long after the
    /// Key Master's lease is gone (e.g. 60s); off by default.
    #[arg(long, value_parser = parse_duration)]
    auto_failover: Option<u32>,
}

async fn add(c: &mut Clients, a: ZoneAdd) -> Result<Output, String> {
    let policy = policy_from_args(&a)?;
    let z = c
        .zones
        .add_zone(proto::AddZoneRequest {
            zone: a.zone,
            policy: Some(policy),
            key_master: a.key_master.unwrap_or_default(),
        })
        .await
        .map_err(status_line)?
        .into_inner();
    Ok(Output::Zone(z))
}

async fn remove(c: &mut Clients, zone: String, force: bool) -> Result<Output, String> {
    let r = c
        .zones
        .remove_zone(proto::RemoveZoneRequest {
            zone: zone.clone(),
            force,
        })
        .await
        .map_err(status_line)?
        .into_inner();
    Ok(Output::Value(
        json!({"zone": zone, "removed": true, "keys_destroyed": r.keys_destroyed}),
        format!(
            "zone {zone} removed; {} keys destroyed in the token",
            r.keys_destroyed
        ),
    ))
}

pub async fn run(c: &mut Clients, cmd: ZoneCmd) -> Result<Output, String> {
    Ok(match cmd {
        ZoneCmd::Add(a) => add(c, a).await?,
        ZoneCmd::Show { zone } => Output::Zone(
            c.zones
                .get_zone(proto::GetZoneRequest { zone })
                .await
                .map_err(status_line)?
                .into_inner(),
        ),
        ZoneCmd::List => Output::Zones(
            c.zones
                .list_zones(proto::ListZonesRequest {})
                .await
                .map_err(status_line)?
                .into_inner()
                .zones,
        ),
        ZoneCmd::Remove { zone, force } => remove(c, zone, force).await?,
        ZoneCmd::Sign {
            zone,
            input,
            output,
            inception,
            expiration,
        } => {
            crate::sign::sign_zone(&mut c.zones, zone, input, output, inception, expiration).await?
        }
        ZoneCmd::Rekey { zone } => {
            let r = c
                .roles
                .rekey(proto::RoleRequest { zone: zone.clone() })
                .await
                .map_err(status_line)?
                .into_inner();
            eprintln!(
                "{zone} has new keys: every trust anchor must be replaced (the DS at the parent \
                 below, and any configured anchor); re-sign the zone now"
            );
            Output::Records(vec![("ds", r.ds)])
        }
    })
}

/// A DS digest algorithm by name, as its number.
pub fn digest_number(d: &str) -> Result<u32, String> {
    keymaster::dnssec::ds::DsDigest::parse(d)
        .map(|d| u32::from(d.number()))
        .ok_or_else(|| format!("unknown DS digest {d:?} (use sha256 or sha384)"))
}

fn policy_from_args(a: &ZoneAdd) -> Result<proto::ZonePolicy, String> {
    let mut p = proto::ZonePolicy::default();
    if let Some(alg) = &a.algorithm {
        let alg: keymaster::dnssec::Algorithm = alg.parse().map_err(|e| format!("{e}"))?;
        p.algorithm = u32::from(alg.number());
        if let keymaster::dnssec::Algorithm::RsaSha256 { bits } = alg {
            p.rsa_bits = bits;
        }
    }
    if let Some(bits) = a.bits {
        if p.algorithm != 8 {
            return Err("--bits applies to --algorithm rsasha256 only".into());
        }
        p.rsa_bits = bits;
    }
    p.denial = a.denial.clone().unwrap_or_default();
    p.nsec3_iterations = a.nsec3_iterations.unwrap_or(0);
    p.nsec3_salt = match a.nsec3_salt.as_deref() {
        None | Some("-") => String::new(),
        Some(s) => s.to_string(),
    };
    p.nsec3_opt_out = a.nsec3_opt_out;
    p.dnskey_signature_validity = a.dnskey_signature_validity.unwrap_or(0);
    p.signature_validity = a.signature_validity.unwrap_or(0);
    p.signature_inception_offset = a.inception_offset.unwrap_or(0);
    p.dnskey_ttl = a.dnskey_ttl.unwrap_or(0);
    p.ds_ttl = a.ds_ttl.unwrap_or(0);
    p.ds_digests = a
        .ds_digest
        .iter()
        .map(|d| digest_number(d))
        .collect::<Result<_, _>>()?;
    p.publish_cds = a.cds;
    p.propagation_time = a.propagation_time.unwrap_or(0);
    p.auto_failover = a.auto_failover.unwrap_or(0);
    Ok(p)
}
