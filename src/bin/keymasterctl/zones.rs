//! `keymasterctl zone …`: add, show, list, remove, sign, rekey, and the
//! zone signer's source, reload and status.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use keymaster::policy::parse_duration;
use keymaster::proto;
use serde_json::json;

use crate::output::Output;
use crate::{Answer, Clients};

#[derive(Debug, Subcommand)]
pub enum DelegationCmd {
    /// Add (or replace) a child: the parent publishes these DS records
    /// for it, then follows the child's CDS/CDNSKEY (RFC 7344), polled at
    /// every address of every server given.
    Add {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The child zone's name, below the zone.
        child: String,
        /// An authoritative server of the child, HOST[:PORT] (repeat).
        #[arg(long = "ns", required = true)]
        servers: Vec<String>,
        /// A DS record the parent publishes now, "TAG ALG DIGEST-TYPE HEX"
        /// (repeat; none: an insecure delegation, which polling leaves alone).
        #[arg(long = "ds")]
        ds: Vec<String>,
        /// The DS TTL (default: the parent's).
        #[arg(long)]
        ds_ttl: Option<String>,
        /// Let a CDS/CDNSKEY delete (RFC 8078) remove the DS: the child
        /// goes insecure.
        #[arg(long)]
        allow_delete: bool,
        /// Time between polls (SecureDelegationPollingPeriod).
        #[arg(long, default_value = "12h")]
        poll_period: String,
        /// Without --ds, drop the DS of a delegation that has one: the
        /// child becomes insecure (refused without this flag).
        #[arg(long, conflicts_with = "ds")]
        insecure: bool,
        /// Take the --ds records even if none matches a key the child's
        /// servers serve (checked first; a typo makes the child bogus).
        #[arg(long)]
        force: bool,
        /// Without --ds: make the delegation secure once the child's DNS
        /// operator signals its CDS/CDNSKEY under every name server
        /// (RFC 9615; the Key Master needs --bootstrap-resolver and
        /// --bootstrap-anchors).
        #[arg(long, conflicts_with = "ds")]
        bootstrap: bool,
    },
    /// Change a kept child's servers or poll period; its DS stays as it is.
    Set {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The child zone's name, below the zone.
        child: String,
        /// The child's authoritative servers, HOST[:PORT] (repeat; they
        /// replace the ones kept; default: as they are).
        #[arg(long = "ns")]
        servers: Vec<String>,
        /// Time between polls (e.g. 12h; default: as it is).
        #[arg(long)]
        poll_period: Option<String>,
        /// Whether an insecure delegation may be made secure by RFC 9615
        /// signals (true or false; default: as it is).
        #[arg(long)]
        bootstrap: Option<bool>,
    },
    /// Stop keeping a child's DS (the parent's source decides it again).
    Remove {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The child zone's name, below the zone.
        child: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ZoneCmd {
    /// Add a zone: generate its KSK and ZSK in the token.
    Add(ZoneAdd),
    /// Change settings of a zone's policy (only those given).
    Set(ZoneSet),
    /// Show a zone's DNSSEC settings.
    Show {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Stop the rollover engine for a zone.
    Pause {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Restart the rollover engine for a zone (clears a stopped roll's error).
    Resume {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// List the zones.
    List,
    /// Remove a zone (its keys are destroyed: needs --force).
    Remove {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// Needed when the zone has keys: they are destroyed in the token.
        #[arg(long)]
        force: bool,
    },
    /// After a forced seize, on the new Key Master: generate new keys in
    /// its token and print the new DS (every trust anchor must change).
    Rekey {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Keep a zone signed from a source file and publish it: a signed file
    /// and/or zone transfer to secondaries (from --dns-listen of the Key
    /// Master), with NOTIFY on every new serial.
    Source(ZoneSource),
    /// Have the Key Master read the zone's source again now.
    Reload {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Approve the version that waits for review by hand (`--review
    /// manual`): its data is served.
    Approve {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The serial `zone status` shows as PendingReview.
        serial: u32,
    },
    /// Reject the version that waits for review by hand: its data is
    /// dropped, the last approved version stays served.
    Reject {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// The serial `zone status` shows as PendingReview.
        serial: u32,
    },
    /// Where the zone's publication stands: serials, when signed and why,
    /// next refresh, earliest expiry, each secondary, the last error.
    Status {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// The zone's children with the DS RRset it publishes for each: those
    /// keymaster manages (made from the child's keys), and those it keeps
    /// by polling their CDS (where it came from, when last polled, what
    /// blocked a change).
    Delegations {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Keep the DS of a child zone keymaster does not manage, from its CDS.
    #[command(subcommand)]
    Delegation(DelegationCmd),
    /// Take the zone back to insecure without a validation gap: CDS and
    /// CDNSKEY delete published, then, once the parent serves no DS and
    /// its TTL has passed, the zone published unsigned.
    Unsign {
        /// The zone's name, e.g. example.com.
        zone: String,
        /// Remove the keys (and destroy them in the token) once unsigned.
        #[arg(long)]
        remove_keys: bool,
        /// Tell it the parent serves no DS, when no check can see it.
        #[arg(long, conflicts_with_all = ["remove_keys", "cancel"])]
        ds_gone: bool,
        /// Stay signed after all (before the zone is unsigned).
        #[arg(long, conflicts_with = "remove_keys")]
        cancel: bool,
    },
    /// Poll the zone's external children for CDS/CDNSKEY now.
    PollChildren {
        /// The zone's name, e.g. example.com.
        zone: String,
    },
    /// Sign a zone file.
    Sign {
        /// The zone's name, e.g. example.com.
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

/// `zone source`: where the Key Master reads the zone it keeps signed, and
/// where it publishes it.
#[derive(Debug, Args)]
pub struct ZoneSource {
    /// The zone's name, e.g. example.com.
    pub zone: String,
    /// The unsigned master file, on the Key Master's host (absolute);
    /// re-read when it changes and on `zone reload`.
    #[arg(long, conflicts_with = "primary")]
    pub file: Option<String>,
    /// Or a primary, ADDR:PORT, serving the unsigned zone: transferred by
    /// AXFR on its NOTIFY (to --dns-listen) and at its SOA refresh.
    #[arg(long)]
    pub primary: Option<String>,
    /// Also write the signed zone to this file on every new serial.
    #[arg(long)]
    pub out: Option<String>,
    /// A secondary, ADDR:PORT: may transfer the zone, gets a NOTIFY.
    #[arg(long = "secondary")]
    pub secondaries: Vec<String>,
    /// SOA serial: keep, increment (default), unixtime or dateserial.
    #[arg(long, default_value = "increment")]
    pub serial: String,
    /// Transfers must be signed with this TSIG key (from the Key
    /// Master's --tsig-keys file).
    #[arg(long)]
    pub tsig: Option<String>,
    /// Sign transfers from the primary with this TSIG key (from the Key
    /// Master's --tsig-keys file); its answers must be signed with it.
    #[arg(long, requires = "primary")]
    pub primary_tsig: Option<String>,
    /// Stop keeping the zone signed.
    #[arg(long, conflicts_with_all = ["file", "primary", "out", "secondaries", "tsig"])]
    pub none: bool,
}

#[derive(Debug, Args)]
pub struct ZoneAdd {
    /// The zone's name, e.g. example.com.
    zone: String,
    /// Node to make the zone's Key Master (default: the node called); it
    /// generates the keys in its token.
    #[arg(long)]
    key_master: Option<String>,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct ZoneSet {
    /// The zone's name, e.g. example.com.
    zone: String,
    #[command(flatten)]
    policy: PolicyArgs,
}

/// The settings of a zone's policy, for `zone add` (unset: the default)
/// and `zone set` (unset: unchanged).
#[derive(Debug, Args)]
pub struct PolicyArgs {
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
    /// NSEC3 opt-out (`--nsec3-opt-out false` to turn it off).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    nsec3_opt_out: Option<bool>,
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
    /// Publish CDS and CDNSKEY (RFC 7344): always (`--cds` alone), only
    /// while a KSK roll waits for the parent's DS (rollover), or none.
    #[arg(long, num_args = 0..=1, default_missing_value = "always", value_parser = parse_cds)]
    cds: Option<CdsMode>,
    /// Propagation time to every secondary (e.g. 2d).
    #[arg(long, value_parser = parse_duration)]
    propagation_time: Option<u32>,
    /// Automatic failover: a candidate seizes the role this long after the
    /// Key Master's lease is gone (e.g. 60s); off by default.
    #[arg(long, value_parser = parse_duration)]
    auto_failover: Option<u32>,
    /// ZSK lifetime: the Key Master rolls it then (e.g. 90d, or off).
    #[arg(long, value_parser = parse_lifetime)]
    zsk_lifetime: Option<u32>,
    /// How a ZSK rolls: pre-publication (the default) or double-signature.
    #[arg(long, value_parser = parse_zsk_method)]
    zsk_method: Option<bool>,
    /// How a KSK rolls: double-ksk (the default) or double-ds.
    #[arg(long, value_parser = parse_ksk_method)]
    ksk_method: Option<bool>,
    /// KSK rolls for validators that follow the zone by RFC 5011
    /// (Windows' EnableRfc5011KeyRollover; `--rfc5011 false` to stop).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    rfc5011: Option<bool>,
    /// The validators' RFC 5011 add hold-down (default 30d).
    #[arg(long, value_parser = parse_duration)]
    add_hold_down: Option<u32>,
    /// The validators' RFC 5011 remove hold-down (default 30d).
    #[arg(long, value_parser = parse_duration)]
    remove_hold_down: Option<u32>,
    /// Before each step of a roll, also ask every address (port 53) of
    /// every name in the zone's NS RRsets (`--find-servers false` to stop).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    find_servers: Option<bool>,
    /// One combined signing key (CSK) instead of a KSK and a ZSK (zone
    /// add only); it rolls at the KSK lifetime.
    #[arg(long)]
    csk: bool,
    /// KSK lifetime (e.g. 755d, or off).
    #[arg(long, value_parser = parse_lifetime)]
    ksk_lifetime: Option<u32>,
    /// Delay of the first roll of the zone's first keys (e.g. 3d).
    #[arg(long, value_parser = parse_duration)]
    initial_rollover_offset: Option<u32>,
    /// The parent's DS TTL, until it is measured (e.g. 1d).
    #[arg(long, value_parser = parse_duration)]
    parent_ds_ttl: Option<u32>,
    /// The parent's propagation delay (e.g. 1h).
    #[arg(long, value_parser = parse_duration)]
    parent_propagation: Option<u32>,
    /// The zone's largest TTL (0: as measured when it was last signed).
    #[arg(long, value_parser = parse_duration)]
    max_zone_ttl: Option<u32>,
    /// Added to every interval a roll waits (e.g. 1h).
    #[arg(long, value_parser = parse_duration)]
    safety_margin: Option<u32>,
    /// A server of the zone, IP:PORT, that must serve each change before a
    /// roll goes on (repeat for each; `--publication-server -` for none).
    #[arg(long = "publication-server")]
    publication_servers: Vec<String>,
    /// A server of the parent (or a validating resolver), IP:PORT, asked
    /// for the zone's DS (repeat for each; `-` for none).
    #[arg(long = "parent-server")]
    parent_servers: Vec<String>,
    /// The parent's primary, IP:PORT, sent the DS RRset by DNS UPDATE
    /// when a KSK roll needs it at the parent, or `dsync`: the target the
    /// parent's DSYNC record of scheme UPDATE names (`-` for none); the
    /// roll still waits until the parent servers serve it.
    #[arg(long, value_name = "IP:PORT|dsync")]
    ds_push: Option<String>,
    /// The TSIG key, by name in the Key Master's --tsig-keys file, that
    /// signs those UPDATEs (`-` for none).
    #[arg(long, value_name = "KEY-NAME")]
    ds_push_tsig: Option<String>,
    /// Send NOTIFY(CDS) to the endpoint the parent's DSYNC RRset names
    /// when a roll hands the parent a new DS (RFC 9859; default true).
    #[arg(long, value_name = "true|false")]
    cds_notify: Option<bool>,
    /// As a parent: announce HOST:PORT (a name of this node's DNS
    /// listener) for the children's NOTIFY(CDS) by a DSYNC RRset at
    /// _dsync.ZONE (RFC 9859; `-` for none).
    #[arg(long, value_name = "HOST:PORT")]
    dsync: Option<String>,
    /// RFC 9615: a name server (host name) under whose `_signal` zone,
    /// kept signed by keymaster, the zone's CDS/CDNSKEY are published for
    /// a parent to bootstrap the DS (repeat for each; `-` for none).
    #[arg(long = "signal-ns", value_name = "HOST")]
    signal_ns: Vec<String>,
    /// Review each version whose data changed before it is served: `hook`
    /// (the Key Master's --review-command approves it by exit 0) or
    /// `none`.
    #[arg(long, value_name = "none|hook")]
    review: Option<String>,
    /// How long the review hook may take (default 60s); a hook that does
    /// not answer in time refuses the version, loudly.
    #[arg(long)]
    review_timeout: Option<String>,
}

/// A key lifetime: a duration, or "off" (0: no automatic rolls).
fn parse_lifetime(s: &str) -> Result<u32, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    match parse_duration(s)? {
        0 => Err("a lifetime of 0 is written \"off\"".into()),
        d => Ok(d),
    }
}

async fn add(c: &mut Clients, a: ZoneAdd) -> Result<Output, String> {
    let (policy, fields) = policy_from_args(&a.policy)?;
    let z = c
        .zones
        .add_zone(proto::AddZoneRequest {
            zone: a.zone,
            policy: Some(policy),
            key_master: a.key_master.unwrap_or_default(),
            fields,
        })
        .await
        .answer()?;
    Ok(Output::Zone(Box::new(z)))
}

/// A path as the daemon must see it: absolute (relative to here if given so).
fn absolute(path: &str) -> Result<String, String> {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        return Ok(path.to_string());
    }
    let here = std::env::current_dir().map_err(|e| format!("cannot resolve {path}: {e}"))?;
    Ok(here.join(p).display().to_string())
}

async fn pause(c: &mut Clients, zone: String, paused: bool) -> Result<Output, String> {
    Ok(Output::Zone(Box::new(
        c.zones
            .pause_zone(proto::PauseZoneRequest { zone, paused })
            .await
            .answer()?,
    )))
}

async fn remove(c: &mut Clients, zone: String, force: bool) -> Result<Output, String> {
    let r = c
        .zones
        .remove_zone(proto::RemoveZoneRequest {
            zone: zone.clone(),
            force,
        })
        .await
        .answer()?;
    Ok(Output::Value(
        json!({"zone": zone, "removed": true, "keys_destroyed": r.keys_destroyed}),
        format!(
            "zone {zone} removed; {} keys destroyed in the token",
            r.keys_destroyed
        ),
    ))
}

/// `zone approve|reject ZONE SERIAL`: the operator's review decision.
async fn review(
    c: &mut Clients,
    zone: String,
    serial: u32,
    approve: bool,
) -> Result<Output, String> {
    let status = c
        .zones
        .review_version(proto::ReviewVersionRequest {
            zone,
            serial,
            approve,
        })
        .await
        .answer()?;
    Ok(Output::Status(Box::new(status)))
}

/// One arm per `zone` subcommand; the ones with more than a call to
/// make are functions of their own (long as the list of subcommands is).
pub async fn run(c: &mut Clients, cmd: ZoneCmd) -> Result<Output, String> {
    Ok(match cmd {
        ZoneCmd::Add(a) => add(c, a).await?,
        ZoneCmd::Set(a) => set(c, a).await?,
        ZoneCmd::Source(a) => source(c, a).await?,
        ZoneCmd::Approve { zone, serial } => review(c, zone, serial, true).await?,
        ZoneCmd::Reject { zone, serial } => review(c, zone, serial, false).await?,
        ZoneCmd::Reload { zone } => Output::Status(Box::new(
            c.zones
                .reload_zone(proto::ZoneStatusRequest { zone })
                .await
                .answer()?,
        )),
        ZoneCmd::Status { zone } => Output::Status(Box::new(
            c.zones
                .get_zone_status(proto::ZoneStatusRequest { zone })
                .await
                .answer()?,
        )),
        ZoneCmd::Delegations { zone } => delegations(c, zone).await?,
        ZoneCmd::Delegation(d) => delegation(c, d).await?,
        ZoneCmd::Unsign {
            zone,
            remove_keys,
            ds_gone,
            cancel,
        } => Output::Zone(Box::new(
            c.zones
                .unsign_zone(proto::UnsignZoneRequest {
                    zone,
                    remove_keys,
                    ds_gone,
                    cancel,
                })
                .await
                .answer()?,
        )),
        ZoneCmd::PollChildren { zone } => poll_children(c, zone).await?,
        ZoneCmd::Pause { zone } => pause(c, zone, true).await?,
        ZoneCmd::Resume { zone } => pause(c, zone, false).await?,
        ZoneCmd::Show { zone } => {
            let z = c
                .zones
                .get_zone(proto::GetZoneRequest { zone })
                .await
                .answer()?;
            crate::output::say_if_last_known(z.last_known_at);
            Output::Zone(Box::new(z))
        }
        ZoneCmd::List => Output::Zones(
            c.zones
                .list_zones(proto::ListZonesRequest {})
                .await
                .answer()?
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
        ZoneCmd::Rekey { zone } => rekey(c, zone).await?,
    })
}

/// `zone set`: the settings given, and nothing else, changed.
async fn set(c: &mut Clients, a: ZoneSet) -> Result<Output, String> {
    let (policy, fields) = policy_from_args(&a.policy)?;
    if fields.is_empty() {
        return Err("nothing to change: give the settings to set".into());
    }
    let z = c
        .zones
        .set_zone(proto::SetZoneRequest {
            zone: a.zone,
            policy: Some(policy),
            fields,
        })
        .await
        .answer()?;
    Ok(Output::Zone(Box::new(z)))
}

/// `zone source`: the Key Master keeps the zone signed from a file or a
/// primary (or, with --none, stops).
async fn source(c: &mut Clients, a: ZoneSource) -> Result<Output, String> {
    let request = if a.none {
        proto::SetZoneSourceRequest {
            zone: a.zone,
            serial_policy: a.serial,
            ..Default::default()
        }
    } else {
        if a.file.is_none() && a.primary.is_none() {
            return Err(
                "give --file PATH or --primary ADDR:PORT, or --none to stop keeping \
                        the zone signed"
                    .into(),
            );
        }
        let file = a.file.map(|f| absolute(&f)).transpose()?;
        let out = a.out.map(|o| absolute(&o)).transpose()?;
        proto::SetZoneSourceRequest {
            zone: a.zone,
            source_file: file.unwrap_or_default(),
            source_primary: a.primary.unwrap_or_default(),
            out_file: out.unwrap_or_default(),
            secondaries: a.secondaries,
            serial_policy: a.serial,
            tsig_key: a.tsig.unwrap_or_default(),
            source_tsig_key: a.primary_tsig.unwrap_or_default(),
        }
    };
    let status = c.zones.set_zone_source(request).await.answer()?;
    Ok(Output::Status(Box::new(status)))
}

/// `zone delegation add|remove`: a child whose DS is kept from its CDS.
/// Long because each of `add`'s flags is a line of the request.
async fn delegation(c: &mut Clients, cmd: DelegationCmd) -> Result<Output, String> {
    Ok(match cmd {
        DelegationCmd::Add {
            zone,
            child,
            servers,
            ds,
            ds_ttl,
            allow_delete,
            poll_period,
            insecure,
            force,
            bootstrap,
        } => {
            let ds_ttl = ds_ttl.as_deref().map(parse_duration).transpose()?;
            let d = c
                .zones
                .add_delegation(proto::AddDelegationRequest {
                    zone,
                    child,
                    servers,
                    ds,
                    ds_ttl: ds_ttl.unwrap_or(0),
                    allow_delete,
                    poll_period: parse_duration(&poll_period)?.into(),
                    insecure,
                    force,
                    keep_ds: false,
                    bootstrap: Some(bootstrap),
                })
                .await
                .answer()?;
            delegation_output(&[d])
        }
        DelegationCmd::Set {
            zone,
            child,
            servers,
            poll_period,
            bootstrap,
        } => {
            let poll_period = poll_period.as_deref().map(parse_duration).transpose()?;
            let d = c
                .zones
                .add_delegation(proto::AddDelegationRequest {
                    zone,
                    child,
                    servers,
                    poll_period: poll_period.map_or(0, u64::from),
                    keep_ds: true,
                    bootstrap,
                    ..Default::default()
                })
                .await
                .answer()?;
            delegation_output(&[d])
        }
        DelegationCmd::Remove { zone, child } => {
            let d = c
                .zones
                .remove_delegation(proto::DelegationRequest { zone, child })
                .await
                .answer()?;
            Output::Value(
                json!({"child": d.child, "removed": true}),
                format!("{}: the DS is no longer kept from its CDS", d.child),
            )
        }
    })
}

/// `zone poll-children`: the children kept by CDS polling, polled now.
async fn poll_children(c: &mut Clients, zone: String) -> Result<Output, String> {
    let polled = c
        .zones
        .poll_children(proto::ListDelegationsRequest { zone: zone.clone() })
        .await
        .answer()?
        .delegations;
    Ok(if polled.is_empty() {
        Output::Value(
            json!([]),
            format!("{zone} has no child kept by CDS polling (zone delegation add)"),
        )
    } else {
        delegation_output(&polled)
    })
}

/// `zone rekey`: new keys after a seize to a node whose token cannot reach
/// the old ones.
async fn rekey(c: &mut Clients, zone: String) -> Result<Output, String> {
    let r = c
        .roles
        .rekey(proto::RoleRequest { zone: zone.clone() })
        .await
        .answer()?;
    eprintln!(
        "{zone} has new keys: every trust anchor must be replaced (the DS at the parent \
         below, and any configured anchor); re-sign the zone now"
    );
    Ok(Output::Records(vec![("ds", r.ds)]))
}

/// The durations (and TTLs) the flags give, each into its policy field.
///
/// Long because it is a table: one row per duration flag.
fn durations_from_args(a: &PolicyArgs, p: &mut proto::ZonePolicy, set: &mut impl FnMut(&str)) {
    let durations = [
        (
            a.dnskey_signature_validity,
            &mut p.dnskey_signature_validity,
            "dnskey_signature_validity",
        ),
        (
            a.signature_validity,
            &mut p.signature_validity,
            "signature_validity",
        ),
        (
            a.inception_offset,
            &mut p.signature_inception_offset,
            "signature_inception_offset",
        ),
        (a.dnskey_ttl, &mut p.dnskey_ttl, "dnskey_ttl"),
        (a.ds_ttl, &mut p.ds_ttl, "ds_ttl"),
        (
            a.propagation_time,
            &mut p.propagation_time,
            "propagation_time",
        ),
        (a.auto_failover, &mut p.auto_failover, "auto_failover"),
        (
            a.zsk_lifetime,
            &mut p.zsk_rollover_period,
            "zsk_rollover_period",
        ),
        (
            a.ksk_lifetime,
            &mut p.ksk_rollover_period,
            "ksk_rollover_period",
        ),
        (
            a.initial_rollover_offset,
            &mut p.initial_rollover_offset,
            "initial_rollover_offset",
        ),
        (a.parent_ds_ttl, &mut p.parent_ds_ttl, "parent_ds_ttl"),
        (
            a.parent_propagation,
            &mut p.parent_propagation,
            "parent_propagation",
        ),
        (a.max_zone_ttl, &mut p.max_zone_ttl, "max_zone_ttl"),
        (a.safety_margin, &mut p.safety_margin, "safety_margin"),
        (
            a.add_hold_down,
            &mut p.rfc5011_add_hold_down,
            "rfc5011_add_hold_down",
        ),
        (
            a.remove_hold_down,
            &mut p.rfc5011_remove_hold_down,
            "rfc5011_remove_hold_down",
        ),
    ];
    for (value, field, name) in durations {
        if let Some(v) = value {
            *field = v;
            set(name);
        }
    }
}

/// The policy the flags give, and the names of the fields they set.
///
/// Long because the flags are many: one block per flag, the durations
/// in their own table.
fn policy_from_args(a: &PolicyArgs) -> Result<(proto::ZonePolicy, Vec<String>), String> {
    let mut p = proto::ZonePolicy::default();
    let mut fields = Vec::new();
    let mut set = |name: &str| fields.push(name.to_string());
    if let Some(alg) = &a.algorithm {
        let alg: keymaster::dnssec::Algorithm = alg.parse().map_err(|e| format!("{e}"))?;
        p.algorithm = u32::from(alg.number());
        if let keymaster::dnssec::Algorithm::RsaSha256 { bits } = alg {
            p.rsa_bits = bits;
        }
        set("algorithm");
    }
    if let Some(bits) = a.bits {
        if p.algorithm != 8 {
            return Err("--bits applies to --algorithm rsasha256 only".into());
        }
        p.rsa_bits = bits;
    }
    if let Some(d) = &a.denial {
        p.denial = d.clone();
        set("denial");
    }
    if let Some(i) = a.nsec3_iterations {
        p.nsec3_iterations = i;
        set("nsec3_iterations");
    }
    if let Some(salt) = a.nsec3_salt.as_deref() {
        p.nsec3_salt = if salt == "-" {
            String::new()
        } else {
            salt.to_string()
        };
        set("nsec3_salt");
    }
    if let Some(o) = a.nsec3_opt_out {
        p.nsec3_opt_out = o;
        set("nsec3_opt_out");
    }
    durations_from_args(a, &mut p, &mut set);
    if let Some(double) = a.zsk_method {
        p.zsk_double_signature = double;
        set("zsk_double_signature");
    }
    if a.csk {
        p.csk = true;
        set("csk");
    }
    if let Some(on) = a.find_servers {
        p.find_servers = on;
        set("find_servers");
    }
    if let Some(on) = a.rfc5011 {
        p.rfc5011 = on;
        set("rfc5011");
    }
    if let Some(double_ds) = a.ksk_method {
        p.ksk_double_ds = double_ds;
        set("ksk_double_ds");
    }
    p.no_zsk_rollover = a.zsk_lifetime == Some(0);
    p.no_ksk_rollover = a.ksk_lifetime == Some(0);
    if !a.ds_digest.is_empty() {
        p.ds_digests = a
            .ds_digest
            .iter()
            .map(|d| crate::keys::digest_number(d))
            .collect::<Result<_, _>>()?;
        set("ds_digests");
    }
    if let Some(c) = a.cds {
        p.publish_cds = c == CdsMode::Always;
        p.cds_during_rollover = c == CdsMode::Rollover;
        set("publish_cds");
        set("cds_during_rollover");
    }
    let servers = |list: &[String]| -> Vec<String> {
        list.iter().filter(|s| s.as_str() != "-").cloned().collect()
    };
    if !a.publication_servers.is_empty() {
        p.publication_servers = servers(&a.publication_servers);
        set("publication_servers");
    }
    if !a.parent_servers.is_empty() {
        p.parent_servers = servers(&a.parent_servers);
        set("parent_servers");
    }
    let unless_none = |v: &str| {
        if v == "-" {
            String::new()
        } else {
            v.to_string()
        }
    };
    if let Some(to) = &a.ds_push {
        p.ds_push = unless_none(to);
        set("ds_push");
    }
    if let Some(key) = &a.ds_push_tsig {
        p.ds_push_tsig = unless_none(key);
        set("ds_push_tsig");
    }
    if let Some(on) = a.cds_notify {
        p.no_cds_notify = !on;
        set("cds_notify");
    }
    if let Some(to) = &a.dsync {
        p.dsync = unless_none(to);
        set("dsync");
    }
    if !a.signal_ns.is_empty() {
        p.signal_ns = servers(&a.signal_ns);
        set("signal_ns");
    }
    if let Some(r) = &a.review {
        p.review = r.clone();
        set("review");
    }
    if let Some(t) = &a.review_timeout {
        p.review_timeout = parse_duration(t)?;
        set("review_timeout");
    }
    Ok((p, fields))
}

/// When the zone carries CDS and CDNSKEY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdsMode {
    None,
    Rollover,
    Always,
}

fn parse_cds(s: &str) -> Result<CdsMode, String> {
    match s.to_ascii_lowercase().as_str() {
        "always" | "true" => Ok(CdsMode::Always),
        "rollover" => Ok(CdsMode::Rollover),
        "none" | "false" => Ok(CdsMode::None),
        _ => Err(format!("{s:?}: expected none, rollover or always")),
    }
}

/// `zone delegations PARENT`: the zones keymaster manages directly below
/// PARENT (not below a nearer managed zone), each with the DS RRset the
/// parent's signed output carries for it where its source delegates it;
/// the children kept by CDS polling; and the other zone cuts of the
/// served parent, which nothing keeps.
///
/// Long because the three kinds of children (managed, kept by CDS,
/// the zone's own cuts) are listed in one table.
async fn delegations(c: &mut Clients, zone: String) -> Result<Output, String> {
    let parent = c
        .zones
        .get_zone(proto::GetZoneRequest { zone })
        .await
        .answer()?
        .zone_name;
    let zones: Vec<String> = c
        .zones
        .list_zones(proto::ListZonesRequest {})
        .await
        .answer()?
        .zones
        .into_iter()
        .map(|z| z.zone_name)
        .collect();
    let names: Vec<&str> = zones.iter().map(String::as_str).collect();
    let parents = keymaster::node::managed_parents(&names);
    let mut rows = Vec::new();
    let mut text = String::new();
    for child in names
        .iter()
        .filter(|c| parents.get(*c) == Some(&parent.as_str()))
    {
        let ds: Vec<String> = crate::keys::get_ds(c, child.to_string(), &[])
            .await?
            .ds
            .into_iter()
            .map(|r| r.text)
            .collect();
        text.push_str(&format!(
            "Child  : {child}\nSource : managed by keymaster (the child's key set)\nDS     : {}\n\n",
            ds_list(&ds, "none (the child is unsigned: an insecure delegation)", 9)
        ));
        rows.push(serde_json::json!({"child": child, "source": "managed", "ds": ds}));
    }
    let listed = c
        .zones
        .list_delegations(proto::ListDelegationsRequest {
            zone: parent.clone(),
        })
        .await
        .answer()?;
    let (more, more_text) = delegation_rows(&listed.delegations);
    rows.extend(more);
    text.push_str(&more_text);
    // The other zone cuts of the served zone: their DS is the source's.
    let kept: Vec<String> = rows
        .iter()
        .filter_map(|r| r["child"].as_str().map(str::to_string))
        .collect();
    for cut in listed.in_zone.iter().filter(|c| !kept.contains(&c.child)) {
        text.push_str(&format!(
            "Child      : {}\nSource     : the parent's zone as it comes (not kept: zone delegation add polls its CDS)\nNS         : {}\nDS         : {}\n\n",
            cut.child,
            cut.ns.join(", "),
            ds_list(&cut.ds, "none (an insecure delegation)", 13)
        ));
        rows.push(json!({"child": cut.child, "source": "zone", "ns": cut.ns, "ds": cut.ds}));
    }
    if rows.is_empty() {
        text = format!(
            "no child of {parent} is kept by keymaster (managed, or by zone delegation add)"
        );
    }
    Ok(Output::Value(
        serde_json::Value::Array(rows),
        text.trim_end().to_string(),
    ))
}

/// DS records for text output, one a line under the label (`indent`
/// columns in), or `none` when there are none.
fn ds_list(ds: &[String], none: &str, indent: usize) -> String {
    if ds.is_empty() {
        none.to_string()
    } else {
        ds.join(&format!("\n{}", " ".repeat(indent)))
    }
}

/// External children as JSON rows and text: DS, source, polling.
fn delegation_rows(ds: &[proto::Delegation]) -> (Vec<serde_json::Value>, String) {
    let when = |t: u64| match t {
        0 => "never".to_string(),
        t => keymaster::clock::rfc3339(t),
    };
    let mut text = String::new();
    let mut rows = Vec::new();
    for d in ds {
        text.push_str(&format!(
            "Child      : {}\nSource     : {} (servers {}; polled every {})\nDS         : {}\nLastPolled : {}\nLastChange : {}\nLastResult : {}\n",
            d.child,
            if d.source == "cds" { "the child's CDS/CDNSKEY" } else { "given by the operator" },
            d.servers.join(", "),
            keymaster::policy::format_duration(d.poll_period),
            ds_list(
                &d.ds,
                if d.bootstrap {
                    "none (an insecure delegation; RFC 9615 bootstrapping allowed)"
                } else {
                    "none (an insecure delegation)"
                },
                13
            ),
            when(d.last_polled),
            when(d.last_changed),
            d.last_result,
        ));
        if !d.blocked.is_empty() {
            text.push_str(&format!("Blocked    : {}\n", d.blocked));
        }
        text.push('\n');
        rows.push(json!({
            "child": d.child,
            "source": d.source,
            "servers": d.servers,
            "ds": d.ds,
            "ds_ttl": d.ds_ttl,
            "allow_delete": d.allow_delete,
            "bootstrap": d.bootstrap,
            "poll_period": d.poll_period,
            "last_polled": d.last_polled,
            "last_changed": d.last_changed,
            "last_result": d.last_result,
            "blocked": if d.blocked.is_empty() { None } else { Some(&d.blocked) },
        }));
    }
    (rows, text)
}

/// External children as `zone delegation add` and `poll-children` show
/// them.
fn delegation_output(ds: &[proto::Delegation]) -> Output {
    let (rows, text) = delegation_rows(ds);
    Output::Value(serde_json::Value::Array(rows), text)
}

/// `--zsk-method`: whether ZSKs roll by double signature.
fn parse_zsk_method(s: &str) -> Result<bool, String> {
    match s {
        "pre-publication" => Ok(false),
        "double-signature" => Ok(true),
        other => Err(format!(
            "ZSK method {other:?} is not pre-publication or double-signature"
        )),
    }
}

/// `--ksk-method`: whether KSKs roll by double DS.
fn parse_ksk_method(s: &str) -> Result<bool, String> {
    match s {
        "double-ksk" => Ok(false),
        "double-ds" => Ok(true),
        other => Err(format!(
            "KSK method {other:?} is not double-ksk or double-ds"
        )),
    }
}
