//! The errors of the service modules, one enum each, whose variants name
//! the zone, key, epoch or node at fault and carry the source error; and
//! `Error`, which gathers them with the errors of the ports (token, store)
//! and of the DNSSEC code. Only `grpc/status.rs` decides which gRPC status
//! each one is. They live here, not in their modules, so that every module
//! can return any of them without the modules depending on each other.

use crate::dnssec::rrset::RrsetError;
use crate::dnssec::sign::SignError;
use crate::dnssec::zone::ZoneError as ZoneFileError;
use crate::hsm::HsmError;
use crate::policy::PolicyError;
use crate::store::StoreError;

/// Whatever a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed or unknown zone name.
    #[error(transparent)]
    ZoneName(#[from] ZoneNameError),
    /// The caller is not known, or lacks a right.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A request field the transport could not take as it came.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A per-caller or per-request limit.
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(transparent)]
    Zones(#[from] ZonesError),
    #[error(transparent)]
    Delegation(#[from] DelegationError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    ZoneFile(#[from] ZoneFileError),
    #[error(transparent)]
    Role(#[from] RoleError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("token: {0}")]
    Hsm(#[from] HsmError),
    /// A blocking task or worker ended without an answer.
    #[error("{0} ended without an answer")]
    Lost(&'static str),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A request field the transport could not take as it came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{field} {value} is not a 16-bit number")]
    NotU16 { field: &'static str, value: u32 },
    #[error("DS digest algorithm {0} is not supported (2 = SHA-256, 4 = SHA-384)")]
    Digest(u32),
    #[error("the first SignZone message must be `start` naming the zone")]
    NoStart,
    #[error("after `start`, SignZone messages must be `chunk`")]
    NotChunk,
    #[error("{0} is not text")]
    Header(&'static str),
    #[error("role {0} is not ksk or zsk")]
    Role(String),
}

/// A limit on what one request or one caller may use; each names the
/// setting that sets it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "{caller} already has {open} zone-signing streams open (max_streams_per_caller = {max})"
    )]
    Streams {
        caller: String,
        open: usize,
        max: usize,
    },
    #[error("{caller} is over its signing rate of {rate} RRsets/s (sign_rate_per_caller)")]
    Rate { caller: String, rate: u32 },
    #[error("batch of {count} RRsets is over the limit of {max} (max_batch_rrsets)")]
    Batch { count: usize, max: usize },
    #[error("zone file is over the limit of {max} bytes (max_zone_bytes)")]
    ZoneBytes { max: usize },
}

// --- node.rs: zone names

/// A zone name that cannot be used, or a zone that is not managed here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneNameError {
    #[error("a zone name is required (the root zone is not managed here)")]
    Missing,
    /// `input` is already escaped for echoing.
    #[error("{input} is not a valid zone name: {reason}")]
    Invalid { input: String, reason: String },
    #[error("zone {0} is not managed here")]
    NotManaged(String),
}

// --- auth.rs: callers and rights

/// A caller that is not known, or lacks a right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("no client certificate")]
    NoCertificate,
    #[error("the client certificate names no one (no SAN, no CN)")]
    Nameless,
    /// `right` says what was missing and which role grants it.
    #[error("{caller} may not {right}")]
    Denied { caller: String, right: String },
}

// --- mastership/: the Key Master role

/// Why a role operation was refused. Nothing was changed by any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("node {node} is not the Key Master of {zone}; its Key Master is {key_master}")]
    NotKeyMaster {
        zone: String,
        node: String,
        key_master: String,
    },
    #[error("the Key Master role of {zone} is being handed over by node {node}; nothing was changed: try again in a moment")]
    HandingOver { zone: String, node: String },
    #[error("{node} is already the Key Master of {zone}")]
    AlreadyHolder { zone: String, node: String },
    /// `node` is escaped, since the caller named it.
    #[error("node {node} is not registered")]
    NotRegistered { node: String },
    #[error("{node} is not a candidate for {zone}: {reason}")]
    NotCandidate {
        zone: String,
        node: String,
        reason: String,
    },
    /// `lease`: when the holder's lease runs out, if it still holds.
    #[error("the Key Master {holder} is not reachable ({why}); seize the role if it is gone for good (keymasterctl role seize {zone} --to {to}{})", match lease {
        Some(until) => format!(", once its lease has run out at {until}; until then a seize is refused"),
        None => String::new(),
    })]
    HolderUnreachable {
        zone: String,
        holder: String,
        to: String,
        why: String,
        lease: Option<String>,
    },
    #[error("the Key Master of {zone}, {holder}, holds its lease until {until} ({secs} s from now): if it answers, transfer the role (keymasterctl role transfer {zone} --to {to}); if it is gone for good, seize the role once the lease has run out")]
    HolderOnline {
        zone: String,
        holder: String,
        to: String,
        until: String,
        secs: u64,
    },
    #[error("{what}, node {node}, is offline (last seen {secs} s ago); nothing was changed. Seize the role if it is gone for good")]
    Offline {
        what: String,
        node: String,
        secs: u64,
    },
    #[error("{node} is offline")]
    TargetOffline { node: String },
    #[error(
        "cannot ask {node}'s token whether it holds the keys of {zone}: {why}; nothing was changed"
    )]
    CannotAsk {
        zone: String,
        node: String,
        why: String,
    },
    #[error("{node} cannot take {zone} with its keys: {reason}; with --force it takes the role and the zone must be re-keyed and every trust anchor replaced")]
    KeysOutOfReach {
        zone: String,
        node: String,
        reason: String,
    },
    #[error("the Key Master role of {zone} moved while this call ran (epoch {expected} → {actual}); nothing was changed: see `keymasterctl role show {zone}`")]
    MovedMeanwhile {
        zone: String,
        expected: u64,
        actual: u64,
    },
    #[error("node {node} does not hold {zone} at epoch {epoch} (its Key Master is {key_master} at epoch {actual}); nothing was released")]
    NotHeldAt {
        zone: String,
        node: String,
        epoch: u64,
        key_master: String,
        actual: u64,
    },
    #[error("asked to make {asked} the Key Master of {zone}, but this is node {node}")]
    WrongNode {
        zone: String,
        asked: String,
        node: String,
    },
    #[error("cannot reach node {node} at {address}: {why}")]
    Unreachable {
        node: String,
        address: String,
        why: String,
    },
    #[error("node {node} did not answer: {message}")]
    Peer { node: String, message: String },
    /// A peer answered and refused, saying why (its message).
    #[error("{message}")]
    PeerRefused { node: String, message: String },
    #[error("this node cannot call other nodes")]
    NoPeers,
    /// `id` is escaped, since the caller sent it.
    #[error("key id {0} is not hex")]
    BadKeyId(String),
}

// --- publish/: the zone signer

/// Why the zone signer published no new version of a zone; the last good
/// one stays served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The source's text, or signing it (a rule it breaks, no usable key,
    /// the token): the source is read again only when it changes.
    #[error("{0}")]
    Source(String),
    /// The zone's record moved on while it was signed (another Key Master,
    /// another serial): it is signed again at the next look.
    #[error("the zone changed hands while it was signed; signing again")]
    Moved,
    /// The store did not take the version's record (a fenced node stops
    /// serving the zone).
    #[error("{0}")]
    Store(String),
    /// The version made did not read back for serving.
    #[error("{0}")]
    Serving(String),
    /// The version waits for review by hand (`zone approve|reject`).
    #[error("serial {serial} waits for review by hand (keymasterctl zone approve|reject ZONE {serial}; files: {files}); the last approved version stays served")]
    Pending { serial: u32, files: String },
    /// The version was not approved by its review (`publish::review`).
    #[error("serial {serial}: {why}; the last approved version stays served")]
    Review { serial: u32, why: String },
    /// The version made failed its check (`dnssec::check`): not served.
    #[error("the signed version failed its check and is not served: {0}")]
    Bogus(String),
    /// The version was recorded and served; its signed file was not written.
    #[error("{0}")]
    Output(String),
}

// --- keyset/: keys

/// Why a key operation was refused, or a stored key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// `which` is escaped, since the caller sent it.
    #[error("zone {zone} has no key {which}")]
    NoSuchKey { zone: String, which: String },
    #[error("key tag {tag} is shared by {count} keys of {zone}; give the key id")]
    AmbiguousTag {
        zone: String,
        tag: u16,
        count: usize,
    },
    #[error("key {tag} is the last active {role} of {zone}; it cannot be {verb} (add and activate another first)")]
    LastActive {
        zone: String,
        tag: u16,
        role: String,
        verb: &'static str,
    },
    /// A hand-made change that would break validation now.
    #[error("{role} {tag} of {zone} cannot be {verb} {earliest}: {why}. `keymasterctl key roll {zone} {tag}` replaces it safely; --force does it anyway")]
    TooEarly {
        zone: String,
        tag: u16,
        role: String,
        verb: &'static str,
        earliest: String,
        why: String,
    },
    #[error("key {tag} of {zone} is already retired")]
    AlreadyRetired { zone: String, tag: u16 },
    #[error("{zone} does not need new keys (only a forced seize asks for a re-key)")]
    NoRekeyNeeded { zone: String },
    #[error("key {tag} of {zone} is {state}; only an active key is rolled")]
    NotRollable {
        zone: String,
        tag: u16,
        state: &'static str,
    },
    #[error("key {tag} of {zone} is in the roll under way ({step}); it changes only as the roll goes on")]
    InRoll {
        zone: String,
        tag: u16,
        step: String,
    },
    #[error("key {tag} of {zone} is {state}: only a KSK that is a standby (published) or one of two active KSKs can be revoked; the last active KSK is rolled instead (key roll)")]
    NotRevocable {
        zone: String,
        tag: u16,
        state: String,
    },
    #[error("{zone} has a roll under way ({step}); revoke the key once it has ended")]
    RollUnderWay { zone: String, step: String },
    #[error("{zone} has no KSK roll waiting for the parent's DS of key {which}; nothing to step")]
    NothingToStep { zone: String, which: String },
    #[error("{zone} cannot change its algorithm now: {why}; nothing was changed")]
    AlgorithmRoll { zone: String, why: String },
    #[error("{field} is not a policy setting (see keymasterctl zone set --help)")]
    UnknownSetting { field: String },
    #[error(
        "token object {id} is key {tag} of {zone}, not an orphan; remove it with `key remove`"
    )]
    NotOrphan { id: String, zone: String, tag: u16 },
    #[error("the token holds no private key with id {id}")]
    NoSuchObject { id: String },
    #[error("stored key {tag} of {zone} is unusable: {what}")]
    BadRecord {
        zone: String,
        tag: u16,
        what: &'static str,
    },
}

// --- signing/: signatures

/// Why something could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("the batch has no RRsets")]
    EmptyBatch,
    #[error("RRset {index}: {source}")]
    Rrset { index: usize, source: RrsetError },
    #[error("RRset {index}: the apex {rtype} RRset is built and signed by keymaster from its key records, never from a caller's records; fetch it with {fetch}")]
    KskOnly {
        index: usize,
        rtype: String,
        fetch: &'static str,
    },
    #[error(transparent)]
    Validity(#[from] ValidityError),
    #[error("zone {zone} has no active {role}")]
    NoActiveKey { zone: String, role: String },
    #[error("zone {zone}: {source}")]
    Sign { zone: String, source: SignError },
    #[error("a signing worker has no session: {0}")]
    Worker(String),
    #[error("the call's deadline passed before {total} RRsets were signed; signing stopped")]
    Deadline { total: usize },
    #[error("signing stopped: the call was cancelled or its deadline passed")]
    Stopped,
}

// --- signing/validity.rs: signature times

/// Times a caller may not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidityError {
    #[error("signature expiration {expiration} is not in the future (now is {now})")]
    Past { expiration: u64, now: u64 },
    #[error("signature expiration {expiration} is {ahead} s from now; the zone allows at most {limit} s ({setting})")]
    TooLong {
        expiration: u64,
        ahead: u64,
        limit: u64,
        setting: &'static str,
    },
    #[error("signature expiration {expiration} is not after inception {inception}")]
    Order { inception: u64, expiration: u64 },
    #[error("signatures valid from {inception} to {expiration} span {span} s; the zone allows at most {limit} s ({setting} + signature_inception_offset)")]
    Window {
        inception: u64,
        expiration: u64,
        span: u64,
        limit: u64,
        setting: &'static str,
    },
    #[error("signature inception {inception} is too far in the past for the DNSKEY RRset's signatures (dnskey_signature_validity {limit} s)")]
    DnskeyInception { inception: u64, limit: u64 },
}

// --- zones.rs: zones

/// Why a zone could not be added or removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZonesError {
    #[error("zone {0} already exists")]
    Exists(String),
    #[error("zone {zone}: no serial {serial} waits for review by hand on its Key Master (waiting: {pending})")]
    NoPendingReview {
        zone: String,
        serial: u32,
        pending: String,
    },
    #[error("zone {zone} is {len} octets long in wire form; NSEC3 needs an apex of at most 222 (use --denial nsec)")]
    ApexTooLongForNsec3 { zone: String, len: usize },
    #[error(
        "zone {zone} has {count} keys in the token; removing it destroys them: repeat with --force"
    )]
    HasKeys { zone: String, count: usize },
    #[error("zone {zone}: source file {path}: {reason}")]
    Source {
        zone: String,
        path: String,
        reason: String,
    },
    #[error("zone {zone}: its Key Master {node} serves no DNS (start it with --dns-listen), so no secondary could transfer the zone and no primary could notify it")]
    NoDnsListener { zone: String, node: String },
    #[error("zone {zone}: give a source file or a primary, not both")]
    TwoSources { zone: String },
    #[error("zone {zone}: primary {given} is not ADDR:PORT")]
    Primary { zone: String, given: String },
    #[error("zone {zone}: secondary {given} is not ADDR:PORT")]
    Secondary { zone: String, given: String },
    #[error("zone {zone}: TSIG key {key} is not in the --tsig-keys file of node {node}")]
    TsigKey {
        zone: String,
        key: String,
        node: String,
    },
    #[error("serial policy {0} is not keep, increment, unixtime or dateserial")]
    SerialPolicy(String),
    #[error("zone {zone}: moving between a CSK and a KSK with a ZSK is not built; nothing was changed (remove the zone and add it again with or without --csk)")]
    CskChange { zone: String },
    #[error("zone {zone}: an algorithm roll of a CSK zone is not built; nothing was changed")]
    CskAlgorithm { zone: String },
    #[error("zone {zone} has a roll under way ({step}): unsign it once the roll has ended")]
    RollUnderWay { zone: String, step: String },
    #[error("zone {zone} is being unsigned already ({step})")]
    Unsigning { zone: String, step: String },
    #[error("zone {zone}: unsigning is at {step}, where this does not apply (an unsigned zone cannot be signed again yet: remove the zone and add it again)")]
    NotUnsigning { zone: String, step: String },
}

/// What `children` refuses.
#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    #[error("{child} is not below {parent}: a zone delegates only names under it")]
    NotBelow { child: String, parent: String },
    #[error(
        "{child} is a zone keymaster manages: its parent's DS follows its key set, with no polling"
    )]
    Managed { child: String },
    #[error("delegation to {child}: give its authoritative servers (--ns HOST[:PORT])")]
    NoServers { child: String },
    #[error("delegation to {child}: server {given}: {reason}")]
    Server {
        child: String,
        given: String,
        reason: String,
    },
    #[error(
        "delegation to {child}: DS {given}: {reason} (expected TAG ALGORITHM DIGEST-TYPE HEX)"
    )]
    Ds {
        child: String,
        given: String,
        reason: String,
    },
    #[error("zone {parent} has no delegation to {child} kept by keymaster (zone delegation add)")]
    NoSuch { parent: String, child: String },
    #[error("the delegation to {child} is secure (DS {ds}); without --ds it would become insecure: give --insecure to do that, or change its servers or poll period with `zone delegation set`; nothing was changed")]
    WouldDropDs { child: String, ds: String },
    #[error("delegation to {child}: no DS given matches a key of the DNSKEY RRset its servers serve ({served}); validators would fail the child. Check the DS, or give --force; nothing was changed")]
    DsMatchesNoKey { child: String, served: String },
    #[error("delegation to {child}: the DS cannot be checked against the child's DNSKEY RRset ({why}); give --force to take it unchecked; nothing was changed")]
    CannotCheckDs { child: String, why: String },
}
