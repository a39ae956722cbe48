//! Conversions between protobuf messages and the service's types.

use crate::dnssec::denial::Denial;
use crate::dnssec::ds::DsDigest;
use crate::dnssec::Algorithm;
use crate::hsm::uri::key_uri;
use crate::hsm::TokenIdentity;
use crate::policy::PolicyError;
use crate::policy::{DenialPolicy, Policy};
use crate::proto;
use crate::signing::{OutRecord, SigningParameters};
use crate::store::schema::{KeyRecord, NodeRecord, ZoneRecord};
use crate::zones::ZoneView;

/// DS digest algorithms by number.
fn digests_from_proto(numbers: &[u32]) -> Result<Vec<u8>, PolicyError> {
    numbers
        .iter()
        .map(|&n| {
            DsDigest::from_number(n).map(|d| d.number()).ok_or_else(|| {
                PolicyError(format!(
                    "DS digest algorithm {n} is not supported (2 = SHA-256, 4 = SHA-384)"
                ))
            })
        })
        .collect()
}

/// The denial of existence a request asks for (default NSEC3).
fn denial_from_proto(p: &proto::ZonePolicy) -> Result<DenialPolicy, PolicyError> {
    match p.denial.to_ascii_lowercase().as_str() {
        "" | "nsec3" => Ok(DenialPolicy::Nsec3 {
            iterations: u16::try_from(p.nsec3_iterations).map_err(|_| {
                PolicyError(format!(
                    "NSEC3 iterations {} is too large",
                    p.nsec3_iterations
                ))
            })?,
            salt: p.nsec3_salt.to_ascii_lowercase(),
            opt_out: p.nsec3_opt_out,
        }),
        "nsec" if p.nsec3_iterations != 0 || !p.nsec3_salt.is_empty() || p.nsec3_opt_out => Err(
            PolicyError("NSEC3 parameters given with denial nsec".into()),
        ),
        "nsec" => Ok(DenialPolicy::Nsec),
        other => Err(PolicyError(format!(
            "denial {other:?} is not nsec or nsec3"
        ))),
    }
}

/// A policy from a request: unset (zero) fields take the defaults. Long
/// as the policy has fields: one line each.
pub fn policy_from_proto(p: Option<proto::ZonePolicy>) -> Result<Policy, PolicyError> {
    let d = Policy::default();
    let Some(p) = p else { return Ok(d) };
    let algorithm = if p.algorithm == 0 {
        if p.rsa_bits != 0 {
            return Err(PolicyError(
                "rsa_bits given without algorithm 8 (RSASHA256)".into(),
            ));
        }
        d.algorithm
    } else {
        Algorithm::from_number(p.algorithm, p.rsa_bits).map_err(|e| PolicyError(e.to_string()))?
    };
    let denial = denial_from_proto(&p)?;
    let or = |v: u32, default: u32| if v == 0 { default } else { v };
    let ds_digests = if p.ds_digests.is_empty() {
        d.ds_digests.clone()
    } else {
        digests_from_proto(&p.ds_digests)?
    };
    Ok(Policy {
        algorithm,
        denial,
        dnskey_signature_validity: or(p.dnskey_signature_validity, d.dnskey_signature_validity),
        signature_validity: or(p.signature_validity, d.signature_validity),
        signature_inception_offset: or(p.signature_inception_offset, d.signature_inception_offset),
        dnskey_ttl: or(p.dnskey_ttl, d.dnskey_ttl),
        ds_ttl: or(p.ds_ttl, d.ds_ttl),
        ds_digests,
        publish_cds: p.publish_cds,
        cds_during_rollover: p.cds_during_rollover,
        zsk_double_signature: p.zsk_double_signature,
        ksk_double_ds: p.ksk_double_ds,
        propagation_time: or(p.propagation_time, d.propagation_time),
        zsk_rollover_period: if p.no_zsk_rollover {
            0
        } else {
            or(p.zsk_rollover_period, d.zsk_rollover_period)
        },
        ksk_rollover_period: if p.no_ksk_rollover {
            0
        } else {
            or(p.ksk_rollover_period, d.ksk_rollover_period)
        },
        auto_failover: p.auto_failover,
        initial_rollover_offset: p.initial_rollover_offset,
        parent_ds_ttl: or(p.parent_ds_ttl, d.parent_ds_ttl),
        parent_propagation: or(p.parent_propagation, d.parent_propagation),
        max_zone_ttl: p.max_zone_ttl,
        safety_margin: or(p.safety_margin, d.safety_margin),
        publication_servers: p.publication_servers,
        parent_servers: p.parent_servers,
        rfc5011: p.rfc5011,
        csk: p.csk,
        find_servers: p.find_servers,
        rfc5011_add_hold_down: or(p.rfc5011_add_hold_down, d.rfc5011_add_hold_down),
        rfc5011_remove_hold_down: or(p.rfc5011_remove_hold_down, d.rfc5011_remove_hold_down),
        ds_push: p.ds_push,
        ds_push_tsig: p.ds_push_tsig,
        cds_notify: !p.no_cds_notify,
        dsync: p.dsync,
        signal_ns: p.signal_ns,
        review: crate::policy::Review::parse(&p.review)?,
        review_timeout: or(p.review_timeout, d.review_timeout),
    })
}

pub fn policy_to_proto(p: &Policy) -> proto::ZonePolicy {
    let (denial, iterations, salt, opt_out) = match &p.denial {
        DenialPolicy::Nsec => ("nsec", 0, String::new(), false),
        DenialPolicy::Nsec3 {
            iterations,
            salt,
            opt_out,
        } => ("nsec3", u32::from(*iterations), salt.clone(), *opt_out),
    };
    proto::ZonePolicy {
        algorithm: u32::from(p.algorithm.number()),
        rsa_bits: match p.algorithm {
            Algorithm::RsaSha256 { bits } => bits,
            _ => 0,
        },
        denial: denial.to_string(),
        nsec3_iterations: iterations,
        nsec3_salt: salt,
        nsec3_opt_out: opt_out,
        dnskey_signature_validity: p.dnskey_signature_validity,
        signature_validity: p.signature_validity,
        signature_inception_offset: p.signature_inception_offset,
        dnskey_ttl: p.dnskey_ttl,
        ds_ttl: p.ds_ttl,
        ds_digests: p.ds_digests.iter().map(|&d| u32::from(d)).collect(),
        publish_cds: p.publish_cds,
        cds_during_rollover: p.cds_during_rollover,
        ksk_double_ds: p.ksk_double_ds,
        zsk_double_signature: p.zsk_double_signature,
        propagation_time: p.propagation_time,
        zsk_rollover_period: p.zsk_rollover_period,
        ksk_rollover_period: p.ksk_rollover_period,
        auto_failover: p.auto_failover,
        initial_rollover_offset: p.initial_rollover_offset,
        parent_ds_ttl: p.parent_ds_ttl,
        parent_propagation: p.parent_propagation,
        max_zone_ttl: p.max_zone_ttl,
        safety_margin: p.safety_margin,
        publication_servers: p.publication_servers.clone(),
        parent_servers: p.parent_servers.clone(),
        no_zsk_rollover: p.zsk_rollover_period == 0,
        no_ksk_rollover: p.ksk_rollover_period == 0,
        rfc5011: p.rfc5011,
        csk: p.csk,
        find_servers: p.find_servers,
        rfc5011_add_hold_down: p.rfc5011_add_hold_down,
        rfc5011_remove_hold_down: p.rfc5011_remove_hold_down,
        ds_push: p.ds_push.clone(),
        ds_push_tsig: p.ds_push_tsig.clone(),
        no_cds_notify: !p.cds_notify,
        dsync: p.dsync.clone(),
        signal_ns: p.signal_ns.clone(),
        review: p.review.name().to_string(),
        review_timeout: p.review_timeout,
    }
}

pub fn zone_to_proto(v: &ZoneView) -> proto::ZoneSettings {
    proto::ZoneSettings {
        zone_name: v.zone.name.clone(),
        last_known_at: v.last_known_at.unwrap_or(0),
        key_master_server: v.zone.key_master.clone(),
        is_key_master_server: v.is_key_master,
        key_master_status: if v.key_master_online {
            "online"
        } else {
            "offline"
        }
        .to_string(),
        epoch: v.zone.epoch,
        policy: Some(policy_to_proto(&v.zone.policy)),
        is_signed: v.is_signed,
        created: v.zone.created,
        key_master_since: v.zone.key_master_since,
        rollover_paused: v.zone.lifecycle.paused,
        rolling_key: v
            .zone
            .lifecycle
            .roll
            .as_ref()
            .map(|r| r.old.clone())
            .unwrap_or_default(),
        rollover_status: crate::lifecycle::engine::roll_status(&v.zone, v.now)
            .as_str()
            .to_string(),
        rollover_error: v.zone.lifecycle.error.clone().unwrap_or_default(),
        last_zsk_rollover: v.zone.lifecycle.last_zsk_rollover,
        last_ksk_rollover: v.zone.lifecycle.last_ksk_rollover,
    }
}

/// A zone's keys with where each stands in the lifecycle.
pub fn keys_to_proto(zone: &ZoneRecord, keys: &[KeyRecord], now: u64) -> Vec<proto::Key> {
    let statuses = crate::lifecycle::control::statuses(zone, keys, now);
    keys.iter()
        .zip(statuses)
        .map(|(k, s)| proto::Key {
            rollover_status: s.status.as_str().to_string(),
            next_rollover: s.next_rollover,
            waiting_on: s.waiting_on,
            last_rollover: s.last_rollover,
            ..key_to_proto(k)
        })
        .collect()
}

pub fn key_to_proto(k: &KeyRecord) -> proto::Key {
    let token = TokenIdentity {
        label: k.token_label.clone(),
        serial: k.token_serial.clone(),
        manufacturer: String::new(),
        model: String::new(),
    };
    let id = crate::hex::unhex(&k.id).unwrap_or_default();
    let public = crate::hex::unhex(&k.public_key).unwrap_or_default();
    // As published: a revoked key with its REVOKE flag.
    let dnskey = crate::keyset::dnskey_of(k)
        .unwrap_or_else(|_| crate::dnssec::ds::dnskey(k.role.dnskey_flags(), k.algorithm, &public));
    proto::Key {
        id: k.id.clone(),
        role: if k.csk { "csk" } else { k.role.as_str() }.to_string(),
        algorithm: u32::from(k.algorithm.number()),
        bits: k.algorithm.bits(),
        key_tag: u32::from(k.key_tag),
        state: k.state.as_str().to_string(),
        pkcs11_uri: key_uri(&token, &id, &k.label),
        created: k.created,
        published: k.published,
        activated: k.activated,
        retired: k.retired,
        dnskey: format!("{}\tDNSKEY\t{dnskey}", k.zone),
        rollover_status: String::new(),
        next_rollover: 0,
        waiting_on: Vec::new(),
        last_rollover: 0,
    }
}

pub fn record_to_proto(r: OutRecord) -> proto::WireRecord {
    proto::WireRecord {
        owner: r.owner,
        rtype: u32::from(r.rtype),
        rclass: 1,
        ttl: r.ttl,
        rdata: r.rdata,
        text: r.text,
    }
}

/// What an online signer must match, with the transport's own limits.
pub fn signing_parameters_to_proto(
    p: SigningParameters,
    max_message_bytes: usize,
    sign_rate: u32,
) -> proto::SigningParameters {
    let keys = |k: &[(u16, Algorithm)]| {
        k.iter()
            .map(|(tag, alg)| proto::SigningKeyInfo {
                key_tag: u32::from(*tag),
                algorithm: u32::from(alg.number()),
            })
            .collect()
    };
    let mut out = proto::SigningParameters {
        zone: p.zone,
        zsks: keys(&p.zsks),
        ksks: keys(&p.ksks),
        signature_validity: p.signature_validity,
        dnskey_signature_validity: p.dnskey_signature_validity,
        signature_inception_offset: p.signature_inception_offset,
        dnskey_ttl: p.dnskey_ttl,
        max_batch_rrsets: u32::try_from(p.max_batch_rrsets).unwrap_or(u32::MAX),
        max_message_bytes: max_message_bytes as u64,
        sign_rate_per_caller: sign_rate,
        ..Default::default()
    };
    match p.denial {
        Denial::Nsec => out.denial = "nsec".into(),
        Denial::Nsec3(n) => {
            out.denial = "nsec3".into();
            out.nsec3_hash_algorithm = 1;
            out.nsec3_iterations = u32::from(n.iterations);
            out.nsec3_salt = crate::hex::hex(&n.salt);
            out.nsec3_opt_out = n.opt_out;
        }
    }
    out
}

pub fn node_to_proto(n: NodeRecord, online: bool) -> proto::Node {
    proto::Node {
        node_id: n.node_id,
        address: n.address,
        token_label: n.token_label,
        token_serial: n.token_serial,
        algorithms: n.algorithms.into_iter().map(u32::from).collect(),
        online,
        last_seen: n.last_seen,
    }
}

pub fn role_to_proto(z: &ZoneRecord, online: bool) -> proto::RoleInfo {
    proto::RoleInfo {
        zone: z.name.clone(),
        key_master: z.key_master.clone(),
        online,
        epoch: z.epoch,
        since: z.key_master_since,
        needs_rekey: z.needs_rekey,
    }
}

/// The policy `current` with the named fields of `p` taken over (`zone
/// set`). Here a value of 0 means 0 (a lifetime of 0: no rolls); another
/// algorithm is taken as asked, and the rollover engine rolls to it.
///
/// Long because it is a table: one arm per policy field a caller may set.
pub fn apply_fields(
    current: &Policy,
    p: &proto::ZonePolicy,
    fields: &[String],
) -> Result<Policy, crate::error::Error> {
    use crate::error::KeyError;
    let mut n = current.clone();
    for f in fields {
        match f.as_str() {
            "algorithm" | "rsa_bits" => {
                // Another algorithm starts an algorithm roll (the engine
                // compares the policy with the keys); another RSA size
                // applies to the keys generated from now on.
                n.algorithm = Algorithm::from_number(p.algorithm, p.rsa_bits)
                    .map_err(|e| PolicyError(e.to_string()))?;
            }
            "denial" | "nsec3_iterations" | "nsec3_salt" | "nsec3_opt_out" => {
                n.denial = denial_from_proto(p)?
            }
            "dnskey_signature_validity" => {
                n.dnskey_signature_validity = p.dnskey_signature_validity
            }
            "signature_validity" => n.signature_validity = p.signature_validity,
            "signature_inception_offset" => {
                n.signature_inception_offset = p.signature_inception_offset
            }
            "dnskey_ttl" => n.dnskey_ttl = p.dnskey_ttl,
            "ds_ttl" => n.ds_ttl = p.ds_ttl,
            "ds_digests" => n.ds_digests = digests_from_proto(&p.ds_digests)?,
            "publish_cds" => n.publish_cds = p.publish_cds,
            "cds_during_rollover" => n.cds_during_rollover = p.cds_during_rollover,
            "zsk_double_signature" => n.zsk_double_signature = p.zsk_double_signature,
            "ksk_double_ds" => n.ksk_double_ds = p.ksk_double_ds,
            "rfc5011" => n.rfc5011 = p.rfc5011,
            "csk" => n.csk = p.csk,
            "find_servers" => n.find_servers = p.find_servers,
            "rfc5011_add_hold_down" => n.rfc5011_add_hold_down = p.rfc5011_add_hold_down,
            "rfc5011_remove_hold_down" => n.rfc5011_remove_hold_down = p.rfc5011_remove_hold_down,
            "propagation_time" => n.propagation_time = p.propagation_time,
            "zsk_rollover_period" => n.zsk_rollover_period = p.zsk_rollover_period,
            "ksk_rollover_period" => n.ksk_rollover_period = p.ksk_rollover_period,
            "no_zsk_rollover" if p.no_zsk_rollover => n.zsk_rollover_period = 0,
            "no_ksk_rollover" if p.no_ksk_rollover => n.ksk_rollover_period = 0,
            "auto_failover" => n.auto_failover = p.auto_failover,
            "initial_rollover_offset" => n.initial_rollover_offset = p.initial_rollover_offset,
            "parent_ds_ttl" => n.parent_ds_ttl = p.parent_ds_ttl,
            "parent_propagation" => n.parent_propagation = p.parent_propagation,
            "max_zone_ttl" => n.max_zone_ttl = p.max_zone_ttl,
            "safety_margin" => n.safety_margin = p.safety_margin,
            "publication_servers" => n.publication_servers = p.publication_servers.clone(),
            "parent_servers" => n.parent_servers = p.parent_servers.clone(),
            "ds_push" => n.ds_push = p.ds_push.clone(),
            "ds_push_tsig" => n.ds_push_tsig = p.ds_push_tsig.clone(),
            "cds_notify" => n.cds_notify = !p.no_cds_notify,
            "dsync" => n.dsync = p.dsync.clone(),
            "signal_ns" => n.signal_ns = p.signal_ns.clone(),
            "review" => n.review = crate::policy::Review::parse(&p.review)?,
            "review_timeout" => {
                n.review_timeout = match p.review_timeout {
                    0 => 60,
                    t => t,
                }
            }
            other => {
                return Err(KeyError::UnknownSetting {
                    field: crate::text::shown(other),
                }
                .into())
            }
        }
    }
    Ok(n)
}

/// A zone's publication, for `zone status`.
pub fn zone_status_to_proto(s: &crate::publish::ZoneStatus) -> proto::ZoneStatus {
    use crate::store::schema::SerialPolicy;
    let p = &s.publishing;
    let published = p.serial;
    proto::ZoneStatus {
        zone: s.zone.clone(),
        key_master: s.key_master.clone(),
        source_file: p.source_file.clone().unwrap_or_default(),
        source_primary: p.source_primary.clone().unwrap_or_default(),
        out_file: p.out_file.clone().unwrap_or_default(),
        serial_policy: match p.serial_policy {
            SerialPolicy::Keep => "keep",
            SerialPolicy::Increment => "increment",
            SerialPolicy::UnixTime => "unixtime",
            SerialPolicy::DateSerial => "dateserial",
        }
        .to_string(),
        published: published.is_some(),
        serial: published.unwrap_or(0),
        source_serial: p.source_serial,
        signed_at: p.signed_at,
        reason: p.reason.clone(),
        refresh_at: p.refresh_at,
        expires: p.expires,
        error: p.error.clone().unwrap_or_default(),
        tsig_key: p.tsig_key.clone().unwrap_or_default(),
        source_tsig_key: p.source_tsig_key.clone().unwrap_or_default(),
        pending_review: s.pending_review.unwrap_or(0),
        secondaries: s
            .secondaries
            .iter()
            .map(|(address, answer)| {
                let serial = match answer {
                    crate::dns::SoaAnswer::Serial(s) => Some(*s),
                    _ => None,
                };
                let behind = serial.is_some_and(|s| {
                    published.is_some_and(|ours| crate::dnssec::serial::after(ours, s))
                });
                proto::SecondaryStatus {
                    address: address.clone(),
                    answered: serial.is_some(),
                    serial: serial.unwrap_or(0),
                    behind,
                    error: match serial {
                        Some(_) => String::new(),
                        None => answer.to_string(),
                    },
                    state: match (serial, published) {
                        (Some(s), Some(ours)) if behind => {
                            format!("serial {s}, behind the published {ours}")
                        }
                        (Some(s), _) => format!("serial {s} (current)"),
                        (None, _) => answer.to_string(),
                    },
                }
            })
            .collect(),
    }
}

pub fn delegation_to_proto(d: &crate::store::schema::Delegation) -> proto::Delegation {
    proto::Delegation {
        child: d.child.clone(),
        servers: d.servers.clone(),
        ds: d.ds.clone(),
        ds_ttl: d.ds_ttl,
        allow_delete: d.allow_delete,
        poll_period: d.poll_period,
        source: d.source.clone(),
        last_polled: d.last_polled,
        last_changed: d.last_changed,
        last_result: d.last_result.clone(),
        blocked: d.blocked.clone().unwrap_or_default(),
        bootstrap: d.bootstrap,
    }
}
