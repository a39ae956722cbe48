//! The stored records (zone, key, node) and their versioned codec.
//!
//! Every record carries `schema`, the version of its layout. `decode`
//! reads a record of this build's version or an older one (migrating it),
//! and refuses a newer one by name rather than misread it. Version 1 is
//! the only one so far.

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::dnssec::{Algorithm, KeyRole};
use crate::policy::Policy;

/// Version of the stored records' layout.
pub const SCHEMA_VERSION: u32 = 1;

/// A zone as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneRecord {
    pub schema: u32,
    /// The apex in lower-case presentation form with the trailing dot.
    pub name: String,
    pub policy: Policy,
    /// Node id of the Key Master.
    pub key_master: String,
    /// Fencing epoch of the Key Master role; grows by one on every change.
    pub epoch: u64,
    pub key_master_since: u64,
    pub created: u64,
    /// Set by a forced seize to a node that cannot reach the keys: the zone
    /// must be re-keyed and its trust anchors replaced.
    #[serde(default)]
    pub needs_rekey: bool,
    /// Where the zone's key lifecycle stands (the rollover engine's state).
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// Where the zone's unsigned data comes from and where its signed
    /// form goes, and what was last published (the zone signer's state).
    #[serde(default)]
    pub publishing: Publishing,
    /// The zone's children keymaster does not manage, with the DS RRset
    /// published for each and what polling their CDS found.
    #[serde(default)]
    pub delegations: Vec<Delegation>,
}

impl ZoneRecord {
    /// A zone just added (`zone add`): its Key Master, epoch 1, nothing
    /// rolled, published or delegated yet.
    pub fn new(name: &str, policy: Policy, key_master: &str, now: u64) -> ZoneRecord {
        ZoneRecord {
            schema: SCHEMA_VERSION,
            name: name.to_string(),
            policy,
            key_master: key_master.to_string(),
            epoch: 1,
            key_master_since: now,
            created: now,
            needs_rekey: false,
            lifecycle: Default::default(),
            publishing: Default::default(),
            delegations: Vec::new(),
        }
    }

    /// Takes what `Store::update_zone` replaces (policy, lifecycle,
    /// publishing) from `zone`; the role (Key Master, epoch) stays.
    pub fn update_from(&mut self, zone: &ZoneRecord) {
        self.policy = zone.policy.clone();
        self.lifecycle = zone.lifecycle.clone();
        self.publishing = zone.publishing.clone();
        self.delegations = zone.delegations.clone();
    }
}

/// A child zone keymaster does not manage, delegated from this one: the DS
/// RRset this zone publishes for it, kept current from the child's CDS and
/// CDNSKEY (RFC 7344, RFC 8078; ARCHITECTURE.md, Delegations).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// The child's apex, lower-case presentation form with the trailing dot.
    pub child: String,
    /// The child's authoritative servers, `HOST[:PORT]` (port 53 unless
    /// given; a host name stands for all its addresses): every one is asked.
    pub servers: Vec<String>,
    /// The DS RRset published, each record `TAG ALG DIGEST-TYPE HEX`;
    /// empty: an insecure delegation.
    pub ds: Vec<String>,
    /// The DS TTL, seconds.
    pub ds_ttl: u32,
    /// Whether a CDS/CDNSKEY delete (RFC 8078 §4) may remove the DS.
    #[serde(default)]
    pub allow_delete: bool,
    /// Whether an insecure delegation may get its first DS from the
    /// child's CDS/CDNSKEY, authenticated by RFC 9615 signals.
    #[serde(default)]
    pub bootstrap: bool,
    /// Seconds between polls (Windows' SecureDelegationPollingPeriod).
    pub poll_period: u64,
    /// Where the DS came from: "operator" or "cds".
    pub source: String,
    /// When it was last polled and last changed, Unix seconds (0: never).
    #[serde(default)]
    pub last_polled: u64,
    #[serde(default)]
    pub last_changed: u64,
    /// The latest RRSIG inception of an accepted CDS/CDNSKEY RRset: one
    /// signed earlier is a replay and is refused (RFC 7344 §6.2).
    #[serde(default)]
    pub accepted_inception: u32,
    /// What the last poll found, and why it changed nothing when it should
    /// have (None: nothing blocked).
    #[serde(default)]
    pub last_result: String,
    #[serde(default)]
    pub blocked: Option<String>,
}

/// The zone signer's settings and state for one zone: keymaster keeps the
/// zone signed from its source and serves it (ARCHITECTURE.md, "The zone
/// signer"). Stored, so that a new Key Master serves the next serial above
/// the last one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publishing {
    /// The unsigned zone's master file, on the Key Master's host; None: the
    /// zone is not kept signed (only `zone sign`).
    #[serde(default)]
    pub source_file: Option<String>,
    /// Or a primary, `ADDR:PORT`, that serves the unsigned zone by AXFR.
    #[serde(default)]
    pub source_primary: Option<String>,
    /// The TSIG key (its name, from `--tsig-keys`) transfers from the
    /// primary are signed with, and its answers must be signed with.
    #[serde(default)]
    pub source_tsig_key: Option<String>,
    /// A file the signed zone is written to (atomically) on each new serial.
    #[serde(default)]
    pub out_file: Option<String>,
    /// Secondaries, `ADDR:PORT`: allowed to transfer the zone, and sent a
    /// NOTIFY on every new serial.
    #[serde(default)]
    pub secondaries: Vec<String>,
    #[serde(default)]
    pub serial_policy: SerialPolicy,
    /// The TSIG key a transfer must be signed with (its name); None: the
    /// secondaries' addresses alone decide.
    #[serde(default)]
    pub tsig_key: Option<String>,
    /// The last serial published (None: never).
    #[serde(default)]
    pub serial: Option<u32>,
    /// The source's own serial then, when it was signed (Unix seconds), and why.
    #[serde(default)]
    pub source_serial: u32,
    #[serde(default)]
    pub signed_at: u64,
    #[serde(default)]
    pub reason: String,
    /// The earliest expiration of a signature published, and when the zone
    /// is to be signed again at the latest (Unix seconds).
    #[serde(default)]
    pub expires: u64,
    #[serde(default)]
    pub refresh_at: u64,
    /// Why the last attempt to publish failed; cleared by the next success.
    #[serde(default)]
    pub error: Option<String>,
}

/// How the published SOA serial follows the source's (RFC 1982 arithmetic;
/// it never goes backwards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SerialPolicy {
    /// The source's serial, as it is; a re-signing that needs a new serial
    /// waits for the source to raise it.
    Keep,
    /// The source's serial, or one above the last published if that is higher.
    #[default]
    Increment,
    /// Unix seconds, or one above the last published.
    UnixTime,
    /// YYYYMMDDnn, or one above the last published.
    DateSerial,
}

/// A zone's key lifecycle as stored: what the rollover engine does next
/// depends on nothing else (with the key records and the clock), so a new
/// Key Master takes over from here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// The engine leaves the zone alone (`zone pause`).
    #[serde(default)]
    pub paused: bool,
    /// The roll in flight; one per zone at a time.
    #[serde(default)]
    pub roll: Option<Roll>,
    /// Key ids whose roll an operator asked for (`key roll`) while another
    /// ran, in order.
    #[serde(default)]
    pub queue: Vec<String>,
    /// Why the last roll failed; set, the engine starts nothing until an
    /// operator rolls a key or resumes the zone.
    #[serde(default)]
    pub error: Option<String>,
    /// The largest TTL the zone was last signed with (its max zone TTL,
    /// measured by `zone sign`; the policy's value wins when set).
    #[serde(default)]
    pub max_zone_ttl_seen: u32,
    /// The servers a roll's step still waits for, each with why.
    #[serde(default)]
    pub waiting_on: Vec<String>,
    /// When the last ZSK and KSK rolls finished, Unix seconds (0: never).
    #[serde(default)]
    pub last_zsk_rollover: u64,
    #[serde(default)]
    pub last_ksk_rollover: u64,
    /// Taking the zone back to insecure (`zone unsign`); no roll starts
    /// while it is under way, and none after it is done.
    #[serde(default)]
    pub unsign: Option<Unsign>,
}

/// Going insecure without a validation gap: the parent's DS goes first
/// (CDS/CDNSKEY delete, RFC 8078 §4), caches forget it, then signing stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsign {
    pub step: UnsignStep,
    /// When the step began, Unix seconds.
    pub since: u64,
    /// The parent's DS TTL when its DS was last seen (what caches count
    /// down from).
    pub ttl: u32,
    /// Remove the keys (records and token objects) once unsigned.
    pub remove_keys: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnsignStep {
    /// The zone, still signed, publishes CDS/CDNSKEY delete records and
    /// hands the parent no DS; wait until every parent server serves none.
    DeletePublished,
    /// The parent serves no DS; wait its DS TTL and propagation, so that
    /// no cache holds a DS, before signing stops.
    DsGone,
    /// The zone is published without DNSSEC; its keys are kept (unless
    /// removed) but publish and sign nothing.
    Unsigned,
}

impl Lifecycle {
    /// When the last roll of keys of this role finished (0: never).
    pub fn last_rollover(&self, role: crate::dnssec::KeyRole) -> u64 {
        match role {
            crate::dnssec::KeyRole::Zsk => self.last_zsk_rollover,
            crate::dnssec::KeyRole::Ksk => self.last_ksk_rollover,
        }
    }
}

/// A roll in flight: which key, which step, since when, and the TTL in
/// force when the step's records changed (a step waits for the larger of
/// that and the TTL now in force, RFC 7583 §1.4 leaves TTL changes out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roll {
    pub role: KeyRole,
    /// The key being replaced, and its successor (key ids).
    pub old: String,
    pub new: String,
    pub step: RollStep,
    /// When the step began, Unix seconds.
    pub since: u64,
    pub ttl: u32,
    /// Started by an operator (`key roll`) rather than by the key's lifetime.
    #[serde(default)]
    pub manual: bool,
    /// When every server was first seen serving the step's change (0: not
    /// yet). Caches may hold the old records for a TTL from then, however
    /// long propagation took.
    #[serde(default)]
    pub seen_at: u64,
    /// In an algorithm roll (`old` and `new` are then the KSKs): the ZSKs
    /// replaced and replacing; empty otherwise.
    #[serde(default)]
    pub old_zsk: String,
    #[serde(default)]
    pub new_zsk: String,
    /// A KSK roll by double DS (the policy when it started).
    #[serde(default)]
    pub double_ds: bool,
    /// A KSK roll for RFC 5011 validators (the policy when it started):
    /// the predecessor is revoked rather than removed at once.
    #[serde(default)]
    pub rfc5011: bool,
    /// A CSK roll: a double-KSK roll whose successor also takes over the
    /// zone's signatures at the DS swap, so the predecessor stays until
    /// both the old DS and the old signatures have left the caches.
    #[serde(default)]
    pub csk: bool,
}

impl Roll {
    /// Whether this is an algorithm roll (RFC 6781 §4.1.4).
    pub fn is_algorithm_roll(&self) -> bool {
        !self.new_zsk.is_empty()
    }

    /// Whether the key is one the roll replaces or brings in.
    pub fn involves(&self, id: &str) -> bool {
        [&self.old, &self.new, &self.old_zsk, &self.new_zsk]
            .iter()
            .any(|k| !k.is_empty() && k.as_str() == id)
    }
}

/// The steps of the rolls keymaster runs (RFC 7583 §3.2.1 and §3.3.1,
/// and the conservative algorithm roll of RFC 6781 §4.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollStep {
    /// ZSK pre-publication: the successor is published, not signing; wait
    /// Ipub and until every server serves the new DNSKEY RRset.
    ZskPublished,
    /// The successor signs, the predecessor is retired (still published);
    /// wait Iret and until every server serves the new signatures.
    ZskRetired,
    /// KSK double DS: the predecessor's DNSKEY is swapped for the
    /// successor's (whose DS the parent already serves); wait Dprp +
    /// DNSKEY TTL, then the predecessor and its DS go.
    KskSwapped,
    /// ZSK double signature: the successor is published and signs beside
    /// the predecessor; wait Iret (the larger of the DNSKEY and max zone
    /// TTLs) and until every server serves the new signatures.
    ZskDoubleSigned,
    /// Double-KSK: the successor is published and signs the DNSKEY RRset;
    /// wait IpubC and until every server serves the new DNSKEY RRset.
    KskPublished,
    /// The DS set handed to the parent is the successor's (CDS/CDNSKEY,
    /// the submission hook); wait until every parent server serves it.
    KskDsSubmitted,
    /// The parent serves the new DS; wait its DS TTL and propagation
    /// before the predecessor goes.
    KskDsSeen,
    /// Algorithm roll, first step: the new algorithm's KSK and ZSK sign
    /// every RRset, not yet published; wait Dprp + TTLsig and until every
    /// server serves the new signatures. (Then as a double-KSK roll: the
    /// new DNSKEYs published, `AlgPublished`; the DS swap, `KskDsSubmitted`
    /// and `KskDsSeen`.)
    AlgSigned,
    /// The new algorithm's DNSKEYs are published beside the old; wait Dprp
    /// + TTLkey and until every server serves the DNSKEY RRset.
    AlgPublished,
    /// The old algorithm's DNSKEYs are withdrawn, its keys still sign;
    /// wait Dprp + TTLkey and until every server serves the DNSKEY RRset
    /// without them; then the old keys go, and their signatures with them.
    AlgOldUnpublished,
    /// RFC 5011: the predecessor KSK (or a standby, `key revoke`) is
    /// published revoked and signs the DNSKEY RRset; wait the remove
    /// hold-down (at least Dprp + mQI, RFC 7583 §3.3.4) and until every
    /// server serves it, then it goes.
    KskRevoked,
}

/// A node as registered in the store, with its liveness lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub schema: u32,
    pub node_id: String,
    /// The gRPC address other nodes and operators reach it at.
    pub address: String,
    /// The token it reaches.
    pub token_label: String,
    pub token_serial: String,
    /// DNSSEC algorithm numbers its token supports.
    pub algorithms: Vec<u8>,
    /// When it last renewed its lease, and for how long a lease holds.
    pub last_seen: u64,
    pub lease_secs: u64,
    /// Whether the store's own lease for the node holds, where the store
    /// keeps one (etcd); None: judged from `last_seen` and the clock.
    #[serde(skip)]
    pub store_lease: Option<bool>,
}

impl NodeRecord {
    pub fn online(&self, now: u64) -> bool {
        match self.store_lease {
            Some(alive) => alive,
            None => now.saturating_sub(self.last_seen) <= self.lease_secs,
        }
    }
}

/// Lifecycle state of a key (`keyset` has the table of what each puts
/// where).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the DNSKEY RRset, not signing (a standby or next key).
    Published,
    /// A KSK's successor in a double-KSK roll: published and signing the
    /// DNSKEY RRset, its DS not yet handed to the parent.
    Incoming,
    /// Published and signing.
    Active,
    /// A KSK's predecessor after the DS swap: still published and signing
    /// the DNSKEY RRset until the old DS has left the caches.
    Leaving,
    /// Published, no longer signing.
    Retired,
    /// Neither published nor signing, its DS at the parent: a KSK in a
    /// double-DS roll, the successor before the DNSKEY swap and the
    /// predecessor after it.
    DsOnly,
    /// Signing, not (yet) published: the new algorithm's keys at the start
    /// of an algorithm roll (RFC 6781 §4.1.4: signatures before DNSKEYs).
    #[serde(rename = "pre-active")]
    PreActive,
    /// Signing, no longer published: the old algorithm's keys at the end
    /// of an algorithm roll (their signatures go after their DNSKEYs).
    #[serde(rename = "post-active")]
    PostActive,
    /// A KSK revoked for RFC 5011 validators (REVOKE bit set, key tag
    /// plus 128): published and signing the DNSKEY RRset, which makes the
    /// revocation count (RFC 5011 §2.1), until the remove hold-down has
    /// passed; then removed.
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Published => "published",
            KeyState::Incoming => "incoming",
            KeyState::Active => "active",
            KeyState::Leaving => "leaving",
            KeyState::Retired => "retired",
            KeyState::PreActive => "pre-active",
            KeyState::DsOnly => "ds-only",
            KeyState::PostActive => "post-active",
            KeyState::Revoked => "revoked",
        }
    }
}

/// A key as stored. The private half is in the token under `id` (CKA_ID).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub schema: u32,
    pub zone: String,
    /// Hex of the CKA_ID.
    pub id: String,
    pub role: KeyRole,
    pub algorithm: Algorithm,
    pub key_tag: u16,
    pub state: KeyState,
    /// CKA_LABEL of the objects in the token.
    pub label: String,
    /// The DNSKEY public key field, hex.
    pub public_key: String,
    /// The token that holds the private key.
    pub token_label: String,
    pub token_serial: String,
    pub created: u64,
    pub published: u64,
    pub activated: u64,
    pub retired: u64,
    /// A combined signing key (role KSK, flags 257) that also signs the
    /// zone's data while active: the zone's only key.
    #[serde(default)]
    pub csk: bool,
}

/// A stored record, as the codec handles it.
pub trait Record: Serialize + serde::de::DeserializeOwned {
    /// What the record is, for messages.
    const KIND: &'static str;
    /// Whether it carries `schema`. Audit entries do not: their layout is
    /// fixed by the hash chain over them (`crate::audit`).
    const VERSIONED: bool = true;
}

impl Record for crate::audit::AuditEntry {
    const KIND: &'static str = "audit entry";
    const VERSIONED: bool = false;
}

impl Record for ZoneRecord {
    const KIND: &'static str = "zone";
}

impl Record for KeyRecord {
    const KIND: &'static str = "key";
}

impl Record for NodeRecord {
    const KIND: &'static str = "node";
}

/// A record in its stored form: one JSON object.
pub fn encode<T: Serialize>(v: &T) -> String {
    // Records are plain data with string keys: serializing cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

/// A record from its stored form, migrated to this build's version.
pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("{} record: {e}", T::KIND));
    if !T::VERSIONED {
        return serde_json::from_slice(bytes).map_err(corrupt);
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(corrupt)?;
    let version = value
        .get("schema")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| {
            StoreError::Corrupt(format!("{} record without a schema version", T::KIND))
        })?;
    if version > u64::from(SCHEMA_VERSION) {
        return Err(StoreError::Corrupt(format!(
            "{} record of schema {version}, newer than this build's {SCHEMA_VERSION}: upgrade keymasterd",
            T::KIND
        )));
    }
    migrate(&mut value, version as u32);
    serde_json::from_value(value).map_err(corrupt)
}

/// Brings a record of an older schema up to this build's. There is only
/// version 1 so far; a version 2 adds its step here.
fn migrate(value: &mut serde_json::Value, from: u32) {
    if from < SCHEMA_VERSION {
        value["schema"] = serde_json::Value::from(SCHEMA_VERSION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeRecord {
        NodeRecord {
            schema: SCHEMA_VERSION,
            node_id: "n".into(),
            address: "127.0.0.1:1".into(),
            token_label: "t".into(),
            token_serial: "s".into(),
            algorithms: vec![13],
            last_seen: 5,
            lease_secs: 10,
            store_lease: None,
        }
    }

    #[test]
    fn records_round_trip_and_newer_schemas_are_refused_by_name() {
        let n = node();
        assert_eq!(decode::<NodeRecord>(encode(&n).as_bytes()).unwrap(), n);
        let newer = encode(&n).replace("\"schema\":1", "\"schema\":9");
        let e = decode::<NodeRecord>(newer.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("node record of schema 9"), "{e}");
        let e = decode::<NodeRecord>(b"{\"node_id\":\"n\"}").unwrap_err();
        assert!(e.to_string().contains("without a schema"), "{e}");
        assert!(decode::<NodeRecord>(b"not json").is_err());
    }
}
