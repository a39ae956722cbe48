//! Printing answers: Windows-style "Name : Value" lines and tables as
//! text, or JSON.

use keymaster::proto;
use serde_json::{json, Value};

pub enum Output {
    Zone(Box<proto::ZoneSettings>),
    Zones(Vec<proto::ZoneSettings>),
    Keys(Vec<proto::Key>),
    Records(Vec<(&'static str, Vec<proto::WireRecord>)>),
    Value(Value, String),
    Audit(Vec<proto::AuditEntry>),
    Nodes(Vec<proto::Node>),
    Role(proto::RoleInfo),
    Candidates(Vec<proto::Candidate>),
    Status(Box<proto::ZoneStatus>),
    Nothing,
}

fn node_json(n: &proto::Node) -> Value {
    json!({"node_id": n.node_id, "address": n.address, "token_label": n.token_label,
        "token_serial": n.token_serial, "algorithms": n.algorithms, "online": n.online,
        "last_seen": n.last_seen})
}

/// A zone's settings under Windows' names where it has them. Long as the
/// settings are many: one line each.
fn zone_json(z: &proto::ZoneSettings) -> Value {
    let p = z.policy.clone().unwrap_or_default();
    let mut v = json!({
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
        "PublishCds": if p.publish_cds { "Always" } else if p.cds_during_rollover { "Rollover" } else { "None" },
        "AutoFailover": p.auto_failover,
        "IsSigned": z.is_signed,
        "ZskRolloverPeriod": p.zsk_rollover_period,
        "ZskRolloverMethod": if p.zsk_double_signature { "DoubleSignature" } else { "PrePublication" },
        "KskRolloverMethod": if p.ksk_double_ds { "DoubleDs" } else { "DoubleKsk" },
        "KskRolloverPeriod": p.ksk_rollover_period,
        "InitialRolloverOffset": p.initial_rollover_offset,
        "ParentDsTtl": p.parent_ds_ttl,
        "ParentPropagationTime": p.parent_propagation,
        "MaxZoneTtl": p.max_zone_ttl,
        "SafetyMarginTime": p.safety_margin,
        "PublicationServers": p.publication_servers,
        "ParentServers": p.parent_servers,
        "RolloverPaused": z.rollover_paused,
        "RollingKey": z.rolling_key,
        "CurrentRolloverStatus": z.rollover_status,
        "RolloverError": z.rollover_error,
        "LastZskRolloverTime": z.last_zsk_rollover,
        "LastKskRolloverTime": z.last_ksk_rollover,
    });
    v["KeyScheme"] = json!(if p.csk { "Csk" } else { "KskZsk" });
    v["FindServersByNs"] = json!(p.find_servers);
    v["EnableRfc5011KeyRollover"] = json!(p.rfc5011);
    v["Rfc5011AddHoldDown"] = json!(p.rfc5011_add_hold_down);
    v["Rfc5011RemoveHoldDown"] = json!(p.rfc5011_remove_hold_down);
    v["DsPush"] = json!(p.ds_push);
    v["DsPushTsigKey"] = json!(p.ds_push_tsig);
    v["CdsNotify"] = json!(!p.no_cds_notify);
    v["Dsync"] = json!(p.dsync);
    v["SignalNameServers"] = json!(p.signal_ns);
    v["Review"] = json!(if p.review.is_empty() {
        "none"
    } else {
        p.review.as_str()
    });
    v["ReviewTimeout"] = json!(p.review_timeout);
    // Only while the store is unreachable: when the state shown was read.
    if z.last_known_at != 0 {
        v["LastKnownAt"] = json!(z.last_known_at);
    }
    v
}

fn key_json(k: &proto::Key) -> Value {
    json!({
        "id": k.id, "role": k.role, "algorithm": k.algorithm, "bits": k.bits,
        "key_tag": k.key_tag, "state": k.state, "pkcs11_uri": k.pkcs11_uri,
        "created": k.created, "published": k.published, "activated": k.activated,
        "retired": k.retired, "dnskey": k.dnskey,
        "CurrentRolloverStatus": k.rollover_status, "NextRolloverTime": k.next_rollover,
        "LastRolloverTime": k.last_rollover,
        "WaitingOn": k.waiting_on,
    })
}

/// Fields that hold a point in time (Unix seconds in JSON), shown as
/// RFC 3339 in UTC in text; the other `…Time`, `…Period`, `…Offset` and
/// `…Ttl` fields are durations.
const TIMESTAMPS: &[&str] = &[
    "KeyMasterSince",
    "LastZskRolloverTime",
    "LastKskRolloverTime",
    "LastKnownAt",
];

/// Says on standard error that an answer is the last-known state, kept
/// while the store is unreachable (`at`: when it was read; 0: it is not).
pub fn say_if_last_known(at: u64) {
    if at != 0 {
        use keymaster::clock::Clock;
        let age = keymaster::clock::SystemClock.now().saturating_sub(at);
        eprintln!(
            "warning: the store cannot be reached: this is the state as last read, at {} ({age} s ago)",
            keymaster::clock::rfc3339(at),
        );
    }
}

/// A point in time for text output: RFC 3339 in UTC, "-" for none.
fn time_text(t: u64) -> String {
    match t {
        0 => "-".to_string(),
        t => keymaster::clock::rfc3339(t),
    }
}

fn seconds_text(s: u64) -> String {
    match s {
        0 => "-".to_string(),
        s => keymaster::policy::format_duration(s),
    }
}

impl Output {
    pub fn print(self, as_json: bool) {
        match self {
            Output::Nothing => {}
            Output::Nodes(nodes) => print_nodes(&nodes, as_json),
            Output::Role(r) => {
                let v = json!({"ZoneName": r.zone, "KeyMasterServer": r.key_master,
                    "KeyMasterStatus": if r.online { "online" } else { "offline" },
                    "Epoch": r.epoch, "KeyMasterSince": r.since, "NeedsRekey": r.needs_rekey});
                print_value(&v, as_json);
            }
            Output::Candidates(cs) => print_candidates(&cs, as_json),
            Output::Audit(entries) => print_audit(&entries, as_json),
            Output::Zone(z) => print_value(&zone_json(&z), as_json),
            Output::Status(s) => print_status(&s, as_json),
            Output::Zones(zs) => print_zones(&zs, as_json),
            Output::Keys(ks) => print_keys(&ks, as_json),
            Output::Records(groups) => print_records(&groups, as_json),
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

/// A zone's publication: JSON with Unix times, or fields with RFC 3339 times.
///
/// Long because it is the status's table: one line per field.
fn print_status(s: &proto::ZoneStatus, as_json: bool) {
    let secondaries: Vec<Value> = s
        .secondaries
        .iter()
        .map(|x| {
            json!({"Address": x.address, "Answered": x.answered, "Loaded": x.answered,
                "Serial": x.serial, "Behind": x.behind, "Error": x.error, "State": x.state})
        })
        .collect();
    if as_json {
        let v = json!({"ZoneName": s.zone, "KeyMasterServer": s.key_master,
            "SourceFile": s.source_file, "SourcePrimary": s.source_primary, "SignedFile": s.out_file, "SerialPolicy": s.serial_policy,
            "TsigKey": s.tsig_key, "PrimaryTsigKey": s.source_tsig_key,
            "Published": s.published, "Serial": s.serial, "SourceSerial": s.source_serial,
            "SignedAt": s.signed_at, "Reason": s.reason, "NextRefresh": s.refresh_at,
            "EarliestExpiry": s.expires, "LastError": s.error, "Secondaries": secondaries,
            "PendingReview": s.pending_review});
        println!("{v:#}");
        return;
    }
    let time = time_text;
    let or_dash = |t: &str| {
        if t.is_empty() {
            "-".to_string()
        } else {
            t.to_string()
        }
    };
    let mut lines = vec![
        ("ZoneName", s.zone.clone()),
        ("KeyMasterServer", s.key_master.clone()),
        ("SourceFile", or_dash(&s.source_file)),
        ("SourcePrimary", or_dash(&s.source_primary)),
        ("SignedFile", or_dash(&s.out_file)),
        ("SerialPolicy", s.serial_policy.clone()),
        ("TsigKey", or_dash(&s.tsig_key)),
        ("PrimaryTsigKey", or_dash(&s.source_tsig_key)),
    ];
    if s.published {
        lines.push((
            "Serial",
            format!("{} (source serial {})", s.serial, s.source_serial),
        ));
        lines.push(("SignedAt", format!("{} ({})", time(s.signed_at), s.reason)));
        lines.push(("NextRefresh", time(s.refresh_at)));
        lines.push(("EarliestExpiry", time(s.expires)));
    } else {
        lines.push(("Serial", "- (not published yet)".to_string()));
    }
    lines.push(("LastError", or_dash(&s.error)));
    if s.pending_review != 0 {
        lines.push((
            "PendingReview",
            format!(
                "serial {} (zone approve|reject {} {})",
                s.pending_review, s.zone, s.pending_review
            ),
        ));
    }
    for x in &s.secondaries {
        lines.push(("Secondary", format!("{} {}", x.address, x.state)));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in lines {
        println!("{k:<width$} : {v}");
    }
}

/// One object: pretty JSON, or Windows-style fields.
fn print_value(v: &Value, as_json: bool) {
    if as_json {
        println!("{v:#}");
    } else {
        print_fields(v);
    }
}

fn print_nodes(nodes: &[proto::Node], as_json: bool) {
    if as_json {
        println!("{:#}", Value::Array(nodes.iter().map(node_json).collect()));
        return;
    }
    println!(
        "{:<16} {:<22} {:<8} {:<20} {:<20} TOKEN",
        "NODE", "ADDRESS", "STATUS", "LAST SEEN", "SERIAL"
    );
    for n in nodes {
        println!(
            "{:<16} {:<22} {:<8} {:<20} {:<20} {}",
            n.node_id,
            n.address,
            if n.online { "online" } else { "offline" },
            time_text(n.last_seen),
            n.token_serial,
            n.token_label
        );
    }
}

fn print_candidates(cs: &[proto::Candidate], as_json: bool) {
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
        return;
    }
    for c in cs {
        let id = c.node.as_ref().map_or("?", |n| n.node_id.as_str());
        if c.reason.is_empty() {
            println!("{id:<16} candidate");
        } else {
            println!("{id:<16} not a candidate: {}", c.reason);
        }
    }
}

/// JSON lines either way with --json: one entry per line, as stored.
fn print_audit(entries: &[proto::AuditEntry], as_json: bool) {
    for e in entries {
        if as_json {
            println!("{}", e.json);
        } else {
            println!(
                "{:>6} {} {:<10} {:<24} {:<20} {:<18} {} {}",
                e.seq,
                time_text(e.time),
                e.node,
                e.caller,
                e.zone,
                e.action,
                e.outcome,
                e.detail
            );
        }
    }
}

fn print_zones(zs: &[proto::ZoneSettings], as_json: bool) {
    if as_json {
        println!("{:#}", Value::Array(zs.iter().map(zone_json).collect()));
        return;
    }
    println!(
        "{:<32} {:<16} {:<8} {:<6} {:<6}",
        "ZONE", "KEY MASTER", "STATUS", "EPOCH", "SIGNED"
    );
    for z in zs {
        println!(
            "{:<32} {:<16} {:<8} {:<6} {:<6}",
            z.zone_name, z.key_master_server, z.key_master_status, z.epoch, z.is_signed
        );
    }
}

fn print_keys(ks: &[proto::Key], as_json: bool) {
    if as_json {
        println!("{:#}", Value::Array(ks.iter().map(key_json).collect()));
        return;
    }
    println!(
        "{:<32} {:<4} {:>3} {:>5} {:>6} {:<10} {:<20} {:<24} {:<20} {:<20} PKCS#11 URI",
        "ID",
        "ROLE",
        "ALG",
        "BITS",
        "TAG",
        "STATE",
        "CREATED",
        "ROLLOVER",
        "LAST ROLL",
        "NEXT ROLL"
    );
    let time = time_text;
    for k in ks {
        println!(
            "{:<32} {:<4} {:>3} {:>5} {:>6} {:<10} {:<20} {:<24} {:<20} {:<20} {}",
            k.id,
            k.role,
            k.algorithm,
            k.bits,
            k.key_tag,
            k.state,
            time(k.created),
            k.rollover_status,
            time(k.last_rollover),
            time(k.next_rollover),
            k.pkcs11_uri
        );
        for w in &k.waiting_on {
            println!("    waiting for {w}");
        }
    }
}

fn print_records(groups: &[(&'static str, Vec<proto::WireRecord>)], as_json: bool) {
    if as_json {
        let mut m = serde_json::Map::new();
        for (name, recs) in groups {
            m.insert(
                name.to_string(),
                Value::Array(recs.iter().map(|r| Value::String(r.text.clone())).collect()),
            );
        }
        println!("{:#}", Value::Object(m));
        return;
    }
    for (_, recs) in groups {
        for r in recs {
            println!("{}", r.text);
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
            Value::Number(n) if TIMESTAMPS.contains(&k.as_str()) => {
                time_text(n.as_u64().unwrap_or(0))
            }
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
