//! keymasterctl: the operator's command line for keymasterd.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use keymaster::policy::parse_duration;
use keymaster::proto::audit_client::AuditClient;
use keymaster::proto::key_master_client::KeyMasterClient;
use keymaster::proto::sign_zone_request;
use keymaster::proto::sign_zone_response;
use keymaster::proto::signer_client::SignerClient;
use keymaster::proto::zones_client::ZonesClient;
use keymaster::proto::{self};
use serde_json::{json, Value};
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(
    name = "keymasterctl",
    version,
    about = "Manage DNSSEC zones and keys held by keymasterd"
)]
struct Cli {
    #[command(flatten)]
    client: keymaster::grpc::client::ClientArgs,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Zones: add, show, list, remove, sign.
    #[command(subcommand)]
    Zone(ZoneCmd),
    /// Keys of a zone: list, add, retire, remove.
    #[command(subcommand)]
    Key(KeyCmd),
    /// DS records and the DNSKEY RRset, for the parent or a registrar.
    Ds {
        zone: String,
        /// Digest algorithms: sha256, sha384 (comma-separated).
        #[arg(long, value_delimiter = ',')]
        digest: Vec<String>,
    },
    /// The signed DNSKEY RRset.
    Dnskey { zone: String },
    /// Compare signing through gRPC with signing directly through PKCS#11.
    Bench(keymaster::bench::BenchArgs),
    /// Registered nodes.
    #[command(subcommand)]
    Node(NodeCmd),
    /// The Key Master role of a zone: show, candidates, transfer, seize.
    #[command(subcommand)]
    Role(RoleCmd),
    /// The audit log; `audit verify` checks its hash chain.
    Audit {
        /// verify: check the chain instead of listing.
        action: Option<String>,
        /// Only this zone's entries.
        #[arg(long)]
        zone: Option<String>,
        /// Only entries at or after this time (seconds since the epoch, or
        /// a duration back from now such as 1h or 7d).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum NodeCmd {
    /// Nodes with their token, online/offline and last-seen time.
    List,
}

#[derive(Debug, Subcommand)]
enum RoleCmd {
    /// The zone's Key Master, its status, epoch and since when.
    Show { zone: String },
    /// Nodes that could become Key Master, and why the others cannot.
    Candidates { zone: String },
    /// Move the role while the Key Master is online.
    Transfer {
        zone: String,
        #[arg(long)]
        to: String,
    },
    /// Take the role when the Key Master is gone for good.
    Seize {
        zone: String,
        #[arg(long)]
        to: String,
        /// Take it even if the new holder cannot reach the keys (the zone
        /// must then be re-keyed and its trust anchors replaced).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ZoneCmd {
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
struct ZoneAdd {
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

#[derive(Debug, Subcommand)]
enum KeyCmd {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keymasterctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keymasterctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One line for a failed call: the status code and its message.
fn status_line(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Command::Bench(args) = cli.command {
        return keymaster::bench::run(&cli.client, args).await;
    }
    let channel = keymaster::grpc::client::connect(&cli.client).await?;
    let mut audit = AuditClient::new(channel.clone()).max_decoding_message_size(usize::MAX);
    let mut roles = KeyMasterClient::new(channel.clone());
    let mut zones = ZonesClient::new(channel.clone())
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let mut signer = SignerClient::new(channel);
    let out = match cli.command {
        Command::Zone(ZoneCmd::Add(a)) => {
            let policy = policy_from_args(&a)?;
            let z = zones
                .add_zone(proto::AddZoneRequest {
                    zone: a.zone,
                    policy: Some(policy),
                    key_master: a.key_master.unwrap_or_default(),
                })
                .await
                .map_err(status_line)?
                .into_inner();
            Output::Zone(z)
        }
        Command::Zone(ZoneCmd::Show { zone }) => Output::Zone(
            zones
                .get_zone(proto::GetZoneRequest { zone })
                .await
                .map_err(status_line)?
                .into_inner(),
        ),
        Command::Zone(ZoneCmd::List) => Output::Zones(
            zones
                .list_zones(proto::ListZonesRequest {})
                .await
                .map_err(status_line)?
                .into_inner()
                .zones,
        ),
        Command::Zone(ZoneCmd::Remove { zone, force }) => {
            let r = zones
                .remove_zone(proto::RemoveZoneRequest {
                    zone: zone.clone(),
                    force,
                })
                .await
                .map_err(status_line)?
                .into_inner();
            Output::Value(
                json!({"zone": zone, "removed": true, "keys_destroyed": r.keys_destroyed}),
                format!(
                    "zone {zone} removed; {} keys destroyed in the token",
                    r.keys_destroyed
                ),
            )
        }
        Command::Zone(ZoneCmd::Sign {
            zone,
            input,
            output,
            inception,
            expiration,
        }) => sign_zone(&mut zones, zone, input, output, inception, expiration).await?,
        Command::Key(KeyCmd::List { zone }) => Output::Keys(
            zones
                .list_keys(proto::ListKeysRequest { zone })
                .await
                .map_err(status_line)?
                .into_inner()
                .keys,
        ),
        Command::Key(KeyCmd::Add {
            zone,
            role,
            activate,
        }) => Output::Keys(vec![zones
            .add_key(proto::AddKeyRequest {
                zone,
                role,
                activate,
            })
            .await
            .map_err(status_line)?
            .into_inner()]),
        Command::Key(KeyCmd::Retire { zone, key }) => Output::Keys(vec![zones
            .retire_key(proto::KeyRequest { zone, key })
            .await
            .map_err(status_line)?
            .into_inner()]),
        Command::Key(KeyCmd::Remove { zone, key }) => Output::Keys(vec![zones
            .remove_key(proto::KeyRequest { zone, key })
            .await
            .map_err(status_line)?
            .into_inner()]),
        Command::Ds { zone, digest } => {
            let digests = digest
                .iter()
                .map(|d| {
                    keymaster::dnssec::ds::DsDigest::parse(d)
                        .map(|d| u32::from(d.number()))
                        .ok_or_else(|| format!("unknown digest {d:?} (use sha256 or sha384)"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let r = signer
                .get_ds(proto::GetDsRequest { zone, digests })
                .await
                .map_err(status_line)?
                .into_inner();
            Output::Records(vec![("ds", r.ds), ("dnskey", r.dnskeys)])
        }
        Command::Dnskey { zone } => {
            let r = signer
                .get_dnskeys(proto::GetDnskeysRequest { zone })
                .await
                .map_err(status_line)?
                .into_inner();
            Output::Records(vec![("dnskey", r.dnskeys), ("rrsig", r.rrsigs)])
        }
        Command::Audit {
            action,
            zone,
            since,
        } => match action.as_deref() {
            Some("verify") => {
                let r = audit
                    .verify_audit(proto::VerifyAuditRequest {})
                    .await
                    .map_err(status_line)?
                    .into_inner();
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
                Output::Value(v, text).print(cli.json);
                if !r.intact {
                    return Err("the audit log's hash chain is broken".into());
                }
                return Ok(());
            }
            Some(other) => return Err(format!("unknown audit action {other:?} (use verify)")),
            None => {
                let since = match since {
                    None => 0,
                    Some(s) if s.chars().all(|c| c.is_ascii_digit()) && s.len() > 8 => {
                        s.parse().map_err(|_| format!("bad time {s:?}"))?
                    }
                    Some(s) => {
                        let back = parse_duration(&s)?;
                        use keymaster::clock::Clock;
                        keymaster::clock::SystemClock
                            .now()
                            .saturating_sub(u64::from(back))
                    }
                };
                let r = audit
                    .list_audit(proto::ListAuditRequest {
                        zone: zone.unwrap_or_default(),
                        since,
                    })
                    .await
                    .map_err(status_line)?
                    .into_inner();
                Output::Audit(r.entries)
            }
        },
        Command::Zone(ZoneCmd::Rekey { zone }) => {
            let r = roles
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
        Command::Node(NodeCmd::List) => Output::Nodes(
            roles
                .list_nodes(proto::ListNodesRequest {})
                .await
                .map_err(status_line)?
                .into_inner()
                .nodes,
        ),
        Command::Role(RoleCmd::Show { zone }) => Output::Role(
            roles
                .show_role(proto::RoleRequest { zone })
                .await
                .map_err(status_line)?
                .into_inner(),
        ),
        Command::Role(RoleCmd::Candidates { zone }) => Output::Candidates(
            roles
                .candidates(proto::RoleRequest { zone })
                .await
                .map_err(status_line)?
                .into_inner()
                .candidates,
        ),
        Command::Role(RoleCmd::Transfer { zone, to }) => Output::Role(
            roles
                .transfer(proto::MoveRoleRequest {
                    zone,
                    to,
                    force: false,
                })
                .await
                .map_err(status_line)?
                .into_inner(),
        ),
        Command::Role(RoleCmd::Seize { zone, to, force }) => {
            let r = roles
                .seize(proto::MoveRoleRequest { zone, to, force })
                .await
                .map_err(status_line)?
                .into_inner();
            if r.needs_rekey {
                eprintln!(
                    "warning: {} cannot reach the old keys; the zone needs new keys, and every \
                     trust anchor (the DS at the parent, configured anchors) must be replaced",
                    r.key_master
                );
            }
            Output::Role(r)
        }
        Command::Bench(_) => unreachable!("handled above"),
    };
    out.print(cli.json);
    Ok(())
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
        .map(|d| {
            keymaster::dnssec::ds::DsDigest::parse(d)
                .map(|d| u32::from(d.number()))
                .ok_or_else(|| format!("unknown DS digest {d:?} (use sha256 or sha384)"))
        })
        .collect::<Result<_, _>>()?;
    p.publish_cds = a.cds;
    p.propagation_time = a.propagation_time.unwrap_or(0);
    p.auto_failover = a.auto_failover.unwrap_or(0);
    Ok(p)
}

/// Reads the input in chunks and streams it; writes the signed zone as it
/// comes back. Neither side holds the whole file.
async fn sign_zone(
    zones: &mut ZonesClient<Channel>,
    zone: String,
    input: PathBuf,
    output: PathBuf,
    inception: u32,
    expiration: u32,
) -> Result<Output, String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<proto::SignZoneRequest>(8);
    let start = proto::SignZoneRequest {
        msg: Some(sign_zone_request::Msg::Start(proto::SignZoneStart {
            zone: zone.clone(),
            inception,
            expiration,
        })),
    };
    let mut reader: Box<dyn Read + Send> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&input)
                .map_err(|e| format!("cannot read {}: {e}", input.display()))?,
        )
    };
    let reading = tokio::task::spawn_blocking(move || -> Result<(), String> {
        if tx.blocking_send(start).is_err() {
            return Ok(());
        }
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("read error: {e}"))?;
            if n == 0 {
                return Ok(());
            }
            let chunk = proto::SignZoneRequest {
                msg: Some(sign_zone_request::Msg::Chunk(buf[..n].to_vec())),
            };
            if tx.blocking_send(chunk).is_err() {
                return Ok(()); // the call ended; its status says why
            }
        }
    });
    let mut stream = zones
        .sign_zone(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(status_line)?
        .into_inner();
    reading.await.map_err(|e| e.to_string())??;

    let to_stdout = output.as_os_str() == "-";
    // Write next to the target and rename at the end, so a failed run never
    // leaves a half-signed zone under the final name.
    let tmp = output.with_extension("partial");
    let mut writer: Box<dyn Write> = if to_stdout {
        Box::new(std::io::BufWriter::new(std::io::stdout()))
    } else {
        Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&tmp)
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?,
        ))
    };
    let show_progress = !to_stdout && std::io::stdout().is_terminal();
    let mut summary = None;
    loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(s) => {
                drop(writer);
                let _ = std::fs::remove_file(&tmp);
                if show_progress {
                    println!();
                }
                return Err(status_line(s));
            }
        };
        match msg.msg {
            Some(sign_zone_response::Msg::Chunk(c)) => writer
                .write_all(&c)
                .map_err(|e| format!("write error: {e}"))?,
            Some(sign_zone_response::Msg::Progress(p)) if show_progress => {
                draw_progress(p.signed_rrsets, p.total_rrsets)
            }
            Some(sign_zone_response::Msg::Summary(s)) => summary = Some(s),
            _ => {}
        }
    }
    writer.flush().map_err(|e| format!("write error: {e}"))?;
    drop(writer);
    if show_progress {
        println!();
    }
    let s = summary.ok_or("the service ended the stream without a summary")?;
    if !to_stdout {
        std::fs::rename(&tmp, &output).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}",
                tmp.display(),
                output.display()
            )
        })?;
    }
    let text = format!(
        "signed {zone}: {} records in, {} out, {} RRSIGs in {:.2} s ({:.0} RRSIGs/s)",
        s.records_in,
        s.records_out,
        s.rrsigs,
        s.seconds,
        s.rrsigs as f64 / s.seconds.max(1e-9)
    );
    let v = json!({
        "zone": zone, "records_in": s.records_in, "records_out": s.records_out,
        "rrsigs": s.rrsigs, "seconds": s.seconds,
    });
    if to_stdout {
        // Standard output carries the zone; the summary goes to stderr.
        eprintln!("{text}");
        return Ok(Output::Nothing);
    }
    Ok(Output::Value(v, text))
}

fn draw_progress(done: u64, total: u64) {
    let width = 40u64;
    let filled = (done * width).checked_div(total).unwrap_or(0);
    print!(
        "\r[{}{}] {done}/{total} RRsets",
        "#".repeat(filled as usize),
        " ".repeat((width - filled) as usize)
    );
    let _ = std::io::stdout().flush();
}

enum Output {
    Zone(proto::ZoneSettings),
    Zones(Vec<proto::ZoneSettings>),
    Keys(Vec<proto::Key>),
    Records(Vec<(&'static str, Vec<proto::WireRecord>)>),
    Value(Value, String),
    Audit(Vec<proto::AuditEntry>),
    Nodes(Vec<proto::Node>),
    Role(proto::RoleInfo),
    Candidates(Vec<proto::Candidate>),
    Nothing,
}

fn node_json(n: &proto::Node) -> Value {
    json!({"node_id": n.node_id, "address": n.address, "token_label": n.token_label,
        "token_serial": n.token_serial, "algorithms": n.algorithms, "online": n.online,
        "last_seen": n.last_seen})
}

fn zone_json(z: &proto::ZoneSettings) -> Value {
    let p = z.policy.clone().unwrap_or_default();
    json!({
        "ZoneName": z.zone_name,
        "KeyMasterServer": z.key_master_server,
        "IsKeyMasterServer": z.is_key_master_server,
        "KeyMasterStatus": z.key_master_status,
        "Epoch": z.epoch,
        "KeyMasterSince": z.key_master_since,
        "Algorithm": p.algorithm,
        "RsaBits": p.rsa_bits,
        "DenialOfExistence": if p.denial == "nsec" { "NSec" } else { "NSec3" },
        "NSec3HashAlgorithm": if p.denial == "nsec" { Value::Null } else { json!("RsaSha1") },
        "NSec3Iterations": p.nsec3_iterations,
        "NSec3Salt": if p.nsec3_salt.is_empty() { "-".to_string() } else { p.nsec3_salt.clone() },
        "NSec3OptOut": p.nsec3_opt_out,
        "DnsKeyRecordSetTtl": p.dnskey_ttl,
        "DSRecordSetTtl": p.ds_ttl,
        "DSRecordGenerationAlgorithm": p.ds_digests.iter().map(|d| match d { 2 => "Sha256", 4 => "Sha384", _ => "?" }).collect::<Vec<_>>(),
        "DnsKeySignatureValidityPeriod": p.dnskey_signature_validity,
        "DSSignatureValidityPeriod": p.dnskey_signature_validity,
        "ZoneSignatureValidityPeriod": p.signature_validity,
        "SignatureInceptionOffset": p.signature_inception_offset,
        "PropagationTime": p.propagation_time,
        "PublishCds": p.publish_cds,
        "AutoFailover": p.auto_failover,
        "IsSigned": z.is_signed,
    })
}

fn key_json(k: &proto::Key) -> Value {
    json!({
        "id": k.id, "role": k.role, "algorithm": k.algorithm, "bits": k.bits,
        "key_tag": k.key_tag, "state": k.state, "pkcs11_uri": k.pkcs11_uri,
        "created": k.created, "published": k.published, "activated": k.activated,
        "retired": k.retired, "dnskey": k.dnskey,
    })
}

fn seconds_text(s: u64) -> String {
    match s {
        0 => "-".to_string(),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{s}s"),
    }
}

impl Output {
    fn print(self, as_json: bool) {
        match self {
            Output::Nothing => {}
            Output::Nodes(nodes) => {
                if as_json {
                    println!("{:#}", Value::Array(nodes.iter().map(node_json).collect()));
                } else {
                    println!(
                        "{:<16} {:<22} {:<8} {:<12} {:<20} TOKEN",
                        "NODE", "ADDRESS", "STATUS", "LAST SEEN", "SERIAL"
                    );
                    for n in nodes {
                        println!(
                            "{:<16} {:<22} {:<8} {:<12} {:<20} {}",
                            n.node_id,
                            n.address,
                            if n.online { "online" } else { "offline" },
                            n.last_seen,
                            n.token_serial,
                            n.token_label
                        );
                    }
                }
            }
            Output::Role(r) => {
                let v = json!({"ZoneName": r.zone, "KeyMasterServer": r.key_master,
                    "KeyMasterStatus": if r.online { "online" } else { "offline" },
                    "Epoch": r.epoch, "KeyMasterSince": r.since, "NeedsRekey": r.needs_rekey});
                if as_json {
                    println!("{v:#}");
                } else {
                    print_fields(&v);
                }
            }
            Output::Candidates(cs) => {
                if as_json {
                    let a = cs
                        .iter()
                        .map(|c| {
                            let mut v = c.node.as_ref().map(node_json).unwrap_or(Value::Null);
                            v["candidate"] = json!(c.reason.is_empty());
                            v["reason"] = json!(c.reason);
                            v
                        })
                        .collect();
                    println!("{:#}", Value::Array(a));
                } else {
                    for c in cs {
                        let id = c.node.as_ref().map_or("?", |n| n.node_id.as_str());
                        if c.reason.is_empty() {
                            println!("{id:<16} candidate");
                        } else {
                            println!("{id:<16} not a candidate: {}", c.reason);
                        }
                    }
                }
            }
            Output::Audit(entries) => {
                // JSON lines either way: one entry per line, as stored.
                for e in entries {
                    if as_json {
                        println!("{}", e.json);
                    } else {
                        println!(
                            "{:>6} {} {:<10} {:<24} {:<20} {:<18} {} {}",
                            e.seq, e.time, e.node, e.caller, e.zone, e.action, e.outcome, e.detail
                        );
                    }
                }
            }
            Output::Zone(z) => {
                let v = zone_json(&z);
                if as_json {
                    println!("{v:#}");
                } else {
                    print_fields(&v);
                }
            }
            Output::Zones(zs) => {
                if as_json {
                    println!("{:#}", Value::Array(zs.iter().map(zone_json).collect()));
                } else {
                    println!(
                        "{:<32} {:<16} {:<8} {:<6} {:<6}",
                        "ZONE", "KEY MASTER", "STATUS", "EPOCH", "SIGNED"
                    );
                    for z in zs {
                        println!(
                            "{:<32} {:<16} {:<8} {:<6} {:<6}",
                            z.zone_name,
                            z.key_master_server,
                            z.key_master_status,
                            z.epoch,
                            z.is_signed
                        );
                    }
                }
            }
            Output::Keys(ks) => {
                if as_json {
                    println!("{:#}", Value::Array(ks.iter().map(key_json).collect()));
                } else {
                    println!(
                        "{:<32} {:<4} {:>3} {:>5} {:>6} {:<10} {:<10} PKCS#11 URI",
                        "ID", "ROLE", "ALG", "BITS", "TAG", "STATE", "CREATED"
                    );
                    for k in ks {
                        println!(
                            "{:<32} {:<4} {:>3} {:>5} {:>6} {:<10} {:<10} {}",
                            k.id,
                            k.role,
                            k.algorithm,
                            k.bits,
                            k.key_tag,
                            k.state,
                            k.created,
                            k.pkcs11_uri
                        );
                    }
                }
            }
            Output::Records(groups) => {
                if as_json {
                    let mut m = serde_json::Map::new();
                    for (name, recs) in groups {
                        m.insert(
                            name.to_string(),
                            Value::Array(
                                recs.iter().map(|r| Value::String(r.text.clone())).collect(),
                            ),
                        );
                    }
                    println!("{:#}", Value::Object(m));
                } else {
                    for (_, recs) in groups {
                        for r in recs {
                            println!("{}", r.text);
                        }
                    }
                }
            }
            Output::Value(v, text) => {
                if as_json {
                    println!("{v:#}");
                } else {
                    println!("{text}");
                }
            }
        }
    }
}

/// Windows-style "Name : Value" lines.
fn print_fields(v: &Value) {
    let Some(map) = v.as_object() else { return };
    let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
    for (k, val) in map {
        let shown = match val {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
            Value::Number(n)
                if k.ends_with("Period")
                    || k.ends_with("Offset")
                    || k.ends_with("Time")
                    || k.ends_with("Ttl") =>
            {
                seconds_text(n.as_u64().unwrap_or(0))
            }
            other => other.to_string(),
        };
        println!("{k:<width$} : {shown}");
    }
}
