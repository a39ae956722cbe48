//! Zone and key operations and signing, on one node: the services the gRPC
//! handlers call. Token work runs on blocking threads, never on the async
//! runtime's (ARCHITECTURE.md, The signing path).
//!
//! Key writes follow Parsec's order: generate in the token, then record; if
//! recording fails, destroy the new objects. Removals go the other way:
//! forget the record first, then destroy, so a crash leaves at worst an
//! unreferenced object that `reconcile` reports, never a record without key.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use domain::base::name::Name;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};

use super::token_signer::KeyWorker;
use crate::audit::{self, AuditDraft, AuditEntry};
use crate::clock::Clock;
use crate::dnssec::ds::{self, DsDigest};
use crate::dnssec::rrset::{self, CanonicalRrset, WireRecord};
use crate::dnssec::sign::{self, SigningKey, Validity};
use crate::dnssec::zone::{self as zonesign, ZoneSignConfig, ZoneStats};
use crate::dnssec::{Algorithm, KeyRole};
use crate::error::{shown, Error, Result};
use crate::hsm::{keys, Hsm, SigningPool};
use crate::keymaster::PeerTokens;
use crate::policy::{DenialPolicy, Policy};
use crate::store::schema::{KeyRecord, KeyState, ZoneRecord, SCHEMA_VERSION};
use crate::store::{Store, StoreError};

/// Size limits on requests.
#[derive(Debug, Clone)]
pub struct Limits {
    /// RRsets in one SignRrsets request.
    pub max_batch_rrsets: usize,
    /// Records in one zone sent for signing.
    pub max_zone_records: usize,
    /// Bytes of one zone file sent for signing.
    pub max_zone_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_rrsets: 10_000,
            max_zone_records: 20_000_000,
            max_zone_bytes: 2 << 30,
        }
    }
}

/// A zone's settings as shown to operators.
#[derive(Debug, Clone)]
pub struct ZoneView {
    pub zone: ZoneRecord,
    pub is_key_master: bool,
    pub key_master_online: bool,
    pub is_signed: bool,
}

/// A record produced by the service, in wire form with its text.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub owner: Vec<u8>,
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
    pub text: String,
}

/// One RRset to sign, as a DNS server sends it.
#[derive(Debug, Clone)]
pub struct RrsetRequest {
    pub owner: Vec<u8>,
    pub rtype: u16,
    pub records: Vec<WireRecord>,
}

/// What signing a zone needs, cached per zone for the hot path.
#[derive(Debug)]
struct SigningContext {
    zone: ZoneRecord,
    apex: Name<Vec<u8>>,
    keys: Vec<KeyRecord>,
    signing: Vec<SigningKey>,
    loaded: Instant,
}

/// How long a cached signing context is trusted before re-reading the
/// store (another node may have changed the keys).
const CONTEXT_TTL: Duration = Duration::from_secs(1);

pub struct ZoneService {
    pub(crate) node_id: String,
    pub(crate) token: Arc<dyn Hsm>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    limits: Limits,
    contexts: Mutex<HashMap<String, Arc<SigningContext>>>,
    /// KSK signatures over the apex RRsets, by zone and type.
    ksk_signatures: Mutex<HashMap<(String, u16), KskSignatures>>,
    /// The one signing pool of the token.
    pool: SigningPool,
    /// Zones this node was Key Master of at its last look, with the epoch:
    /// to notice and log a role it lost (or took) elsewhere.
    pub(crate) held: Mutex<Option<HashMap<String, u64>>>,
    /// Other nodes' tokens, for the candidate check.
    pub(crate) peers: Option<Arc<dyn PeerTokens>>,
    /// One lock per zone, held by each management call while it runs, so
    /// that a release for a transfer waits until the calls under way end.
    zone_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Zones released for a transfer: (epoch, until when, Unix seconds).
    pub(crate) released: Mutex<HashMap<String, (u64, u64)>>,
}

/// A zone a management call may change: this node is its Key Master and
/// has not released it. The zone's lock is held while this lives.
pub(crate) struct Managed {
    pub key: String,
    pub zone: ZoneRecord,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

/// Parses a zone name into its stored form ("example.com.") and its name.
pub fn parse_zone_name(s: &str) -> Result<(String, Name<Vec<u8>>)> {
    let trimmed = s.trim();
    if trimmed.is_empty() || trimmed == "." {
        return Err(Error::InvalidArgument(
            "a zone name is required (the root zone is not managed here)".into(),
        ));
    }
    let with_dot = if trimmed.ends_with('.') {
        trimmed.to_string()
    } else {
        format!("{trimmed}.")
    };
    let name = Name::<Vec<u8>>::from_str(&with_dot.to_ascii_lowercase()).map_err(|e| {
        Error::InvalidArgument(format!("{} is not a valid zone name: {e}", shown(s)))
    })?;
    Ok((format!("{name}."), name))
}

/// Runs token work on a blocking thread.
pub(crate) async fn hsm_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
}

impl ZoneService {
    pub fn new(
        node_id: String,
        token: Arc<dyn Hsm>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        ZoneService {
            node_id,
            store,
            clock,
            limits,
            contexts: Mutex::new(HashMap::new()),
            ksk_signatures: Mutex::new(HashMap::new()),
            pool: SigningPool::start(token.clone()),
            token,
            held: Mutex::new(None),
            peers: None,
            zone_locks: Mutex::new(HashMap::new()),
            released: Mutex::new(HashMap::new()),
        }
    }

    /// Lets the service ask other nodes' tokens (the candidate check).
    pub fn with_peers(mut self, peers: Arc<dyn PeerTokens>) -> Self {
        self.peers = Some(peers);
        self
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn token(&self) -> &Arc<dyn Hsm> {
        &self.token
    }

    pub(crate) async fn zone(&self, name: &str) -> Result<(String, Name<Vec<u8>>, ZoneRecord)> {
        let (key, apex) = parse_zone_name(name)?;
        let zone = self
            .store
            .get_zone(&key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("zone {key} is not managed here")))?;
        Ok((key, apex, zone))
    }

    pub(crate) fn zone_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.zone_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    /// Opens a management call on a zone: takes its lock, then checks that
    /// this node is its Key Master and has not released it for a transfer.
    pub(crate) async fn managed(&self, name: &str) -> Result<Managed> {
        let (key, _) = parse_zone_name(name)?;
        let guard = self.zone_lock(&key).lock_owned().await;
        let (key, _, zone) = self.zone(&key).await?;
        self.require_key_master(&zone)?;
        let released = self
            .released
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied();
        if let Some((epoch, until)) = released {
            if epoch == zone.epoch && self.clock.now() < until {
                return Err(Error::FailedPrecondition(format!(
                    "the Key Master role of {key} is being handed over by node {}; nothing was \
                     changed: try again in a moment",
                    self.node_id
                )));
            }
        }
        Ok(Managed {
            key,
            zone,
            _guard: guard,
        })
    }

    pub(crate) fn require_key_master(&self, zone: &ZoneRecord) -> Result<()> {
        if zone.key_master != self.node_id {
            return Err(Error::FailedPrecondition(format!(
                "node {} is not the Key Master of {}; its Key Master is {}",
                self.node_id, zone.name, zone.key_master
            )));
        }
        Ok(())
    }

    /// An audit entry of this node for a successful action.
    pub(crate) fn draft(&self, who: &str, zone: &str, action: &str, detail: String) -> AuditDraft {
        AuditDraft {
            time: self.clock.now(),
            node: self.node_id.clone(),
            caller: who.to_string(),
            // The stored form, so that `audit --zone` finds every entry.
            zone: match parse_zone_name(zone) {
                Ok((key, _)) => key,
                Err(_) => shown(zone),
            },
            action: action.to_string(),
            outcome: "ok".to_string(),
            detail,
        }
    }

    /// Records a refused call. A refusal that cannot be recorded is logged;
    /// the call is refused either way.
    pub async fn audit_refusal(&self, who: &str, zone: &str, action: &str, reason: &str) {
        let mut d = self.draft(who, zone, action, String::new());
        d.outcome = format!("refused: {reason}");
        if let Err(e) = self.store.append_audit(&d).await {
            tracing::error!(error = %e, action, "cannot record a refused call in the audit log");
        }
    }

    /// Records an event that changes nothing in the store (a signed zone);
    /// fails when the log cannot be written.
    pub async fn audit_event(
        &self,
        who: &str,
        zone: &str,
        action: &str,
        detail: String,
    ) -> Result<()> {
        self.store
            .append_audit(&self.draft(who, zone, action, detail))
            .await?;
        Ok(())
    }

    /// The audit log, or one zone's part of it from a time on.
    pub async fn read_audit(&self, zone: Option<&str>, since: u64) -> Result<Vec<AuditEntry>> {
        let zone = match zone {
            Some(z) => Some(parse_zone_name(z)?.0),
            None => None,
        };
        Ok(self.store.read_audit(zone.as_deref(), since).await?)
    }

    /// Checks the whole chain: (entries, the first break if any).
    pub async fn verify_audit(&self) -> Result<(usize, Option<audit::ChainBreak>)> {
        let entries = self.store.read_audit(None, 0).await?;
        Ok((entries.len(), audit::verify_chain(&entries).err()))
    }

    pub(crate) fn forget_context(&self, zone: &str) {
        self.contexts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(zone);
    }

    async fn context(&self, name: &str) -> Result<Arc<SigningContext>> {
        let (key, _) = parse_zone_name(name)?;
        if let Some(c) = self
            .contexts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if self.clock.instant().duration_since(c.loaded) < CONTEXT_TTL {
                return Ok(c.clone());
            }
        }
        let (key, apex, zone) = self.zone(&key).await?;
        let keys = self.store.list_keys(&key).await?;
        let signing = keys
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .map(signing_key)
            .collect::<Result<Vec<_>>>()?;
        let ctx = Arc::new(SigningContext {
            zone,
            apex,
            keys,
            signing,
            loaded: self.clock.instant(),
        });
        self.contexts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, ctx.clone());
        Ok(ctx)
    }

    async fn view(&self, zone: ZoneRecord, keys: &[KeyRecord]) -> ZoneView {
        let active = |role| {
            keys.iter()
                .any(|k| k.role == role && k.state == KeyState::Active)
        };
        let key_master_online = zone.key_master == self.node_id
            || self
                .is_online(&zone.key_master, self.clock.now())
                .await
                .unwrap_or(false);
        ZoneView {
            is_key_master: zone.key_master == self.node_id,
            key_master_online,
            is_signed: active(KeyRole::Ksk) && active(KeyRole::Zsk),
            zone,
        }
    }

    // ------------------------------------------------------------ zones --

    /// Adds a zone: generates its KSK and ZSK and makes this node its Key
    /// Master.
    pub async fn add_zone(&self, who: &str, name: &str, policy: Policy) -> Result<ZoneView> {
        let (key, apex) = parse_zone_name(name)?;
        policy.validate()?;
        // An NSEC3 owner is a 32-character hash label (33 octets) over the
        // apex, and a name holds at most 255 octets (RFC 5155 §3, RFC 1035
        // §3.1).
        if matches!(policy.denial, DenialPolicy::Nsec3 { .. }) && apex.as_slice().len() > 222 {
            return Err(Error::InvalidArgument(format!(
                "zone {key} is {} octets long in wire form; NSEC3 needs an apex of at most 222 \
                 (use --denial nsec)",
                apex.as_slice().len()
            )));
        }
        if self.store.get_zone(&key).await?.is_some() {
            return Err(Error::AlreadyExists(format!("zone {key} already exists")));
        }
        let now = self.clock.now();
        let keys = self
            .generate_ksk_and_zsk(&key, policy.algorithm, now)
            .await?;
        let zone = ZoneRecord {
            schema: SCHEMA_VERSION,
            name: key.clone(),
            policy,
            key_master: self.node_id.clone(),
            epoch: 1,
            key_master_since: now,
            created: now,
            needs_rekey: false,
        };
        let audit = self.draft(
            who,
            &key,
            "generate",
            format!(
                "zone added, Key Master {} epoch 1; KSK {} and ZSK {} ({}) generated, published and active",
                self.node_id, keys[0].key_tag, keys[1].key_tag, zone.policy.algorithm
            ),
        );
        if let Err(e) = self.store.create_zone(&zone, &keys, &audit).await {
            self.undo_generated(&keys, &e).await;
            return Err(e.into());
        }
        tracing::info!(zone = %key, ksk = keys[0].key_tag, zsk = keys[1].key_tag, "zone added");
        Ok(self.view(zone, &keys).await)
    }

    pub async fn get_zone(&self, name: &str) -> Result<ZoneView> {
        let (key, _, zone) = self.zone(name).await?;
        let keys = self.store.list_keys(&key).await?;
        Ok(self.view(zone, &keys).await)
    }

    pub async fn list_zones(&self) -> Result<Vec<ZoneView>> {
        let mut out = Vec::new();
        for zone in self.store.list_zones().await? {
            let keys = self.store.list_keys(&zone.name).await?;
            out.push(self.view(zone, &keys).await);
        }
        Ok(out)
    }

    /// Removes a zone. Its keys are destroyed in the token, which needs
    /// `force`. Returns how many keys were destroyed.
    pub async fn remove_zone(&self, who: &str, name: &str, force: bool) -> Result<usize> {
        let Managed { key, zone, .. } = &self.managed(name).await?;
        let key = key.clone();
        let keys = self.store.list_keys(&key).await?;
        if !keys.is_empty() && !force {
            return Err(Error::FailedPrecondition(format!(
                "zone {key} has {} keys in the token; removing it destroys them: repeat with --force",
                keys.len()
            )));
        }
        let tags: Vec<String> = keys.iter().map(|k| k.key_tag.to_string()).collect();
        let audit = self.draft(
            who,
            &key,
            "delete",
            format!(
                "zone removed; keys {} destroyed in the token",
                tags.join(", ")
            ),
        );
        self.store.delete_zone(&key, zone.epoch, &audit).await?;
        self.forget_context(&key);
        let n = self
            .destroy_in_token(keys.iter().map(|k| k.id.clone()).collect())
            .await;
        tracing::info!(zone = %key, keys_destroyed = n, "zone removed");
        Ok(n)
    }

    // ------------------------------------------------------------- keys --

    /// A new active KSK and ZSK (in that order) for a zone, in this node's
    /// token; if the second cannot be made, the first is destroyed.
    pub(crate) async fn generate_ksk_and_zsk(
        &self,
        zone: &str,
        algorithm: Algorithm,
        now: u64,
    ) -> Result<Vec<KeyRecord>> {
        let ksk = self
            .generate_key(zone, KeyRole::Ksk, algorithm, KeyState::Active, now)
            .await?;
        match self
            .generate_key(zone, KeyRole::Zsk, algorithm, KeyState::Active, now)
            .await
        {
            Ok(zsk) => Ok(vec![ksk, zsk]),
            Err(e) => {
                self.destroy_in_token(vec![ksk.id]).await;
                Err(e)
            }
        }
    }

    pub(crate) async fn generate_key(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: Algorithm,
        state: KeyState,
        now: u64,
    ) -> Result<KeyRecord> {
        let token = self.token.clone();
        let zone = zone.to_string();
        hsm_blocking(move || {
            let id = keys::new_id()?;
            let pending = format!("{}-{}-new", zone.trim_end_matches('.'), role.as_str());
            let public = token.generate(algorithm.key_spec(), &id, &pending)?;
            let dnskey = ds::dnskey(role.dnskey_flags(), algorithm, &public);
            let key_tag = dnskey.key_tag();
            let label = format!("{}-{}-{key_tag}", zone.trim_end_matches('.'), role.as_str());
            if let Err(e) = token.set_label(&id, &label) {
                let _ = token.destroy(&id);
                return Err(e.into());
            }
            let identity = token.identity();
            Ok(KeyRecord {
                schema: SCHEMA_VERSION,
                zone: zone.clone(),
                id: crate::hex::hex(&id),
                role,
                algorithm,
                key_tag,
                state,
                label,
                public_key: crate::hex::hex(&public),
                token_label: identity.label.clone(),
                token_serial: identity.serial.clone(),
                created: now,
                published: now,
                activated: if state == KeyState::Active { now } else { 0 },
                retired: 0,
            })
        })
        .await
    }

    /// Undoes keys just generated for a store write that failed. When the
    /// store could not be reached, the write may have landed all the same
    /// (the answer was lost): the keys stay, since destroying a key the
    /// store refers to would break the zone; an unreferenced one is only an
    /// orphan, which `reconcile` reports at the next start.
    pub(crate) async fn undo_generated(&self, keys: &[KeyRecord], failure: &StoreError) {
        if matches!(failure, StoreError::Unavailable { .. }) {
            for k in keys {
                tracing::warn!(zone = %k.zone, key = %k.id, key_tag = k.key_tag, "store unreachable during the write: key kept in the token in case the write landed");
            }
            return;
        }
        self.destroy_in_token(keys.iter().map(|k| k.id.clone()).collect())
            .await;
    }

    /// Destroys key pairs in the token; failures are logged, not returned,
    /// since the store no longer refers to them (reconcile reports them).
    pub(crate) async fn destroy_in_token(&self, ids: Vec<String>) -> usize {
        let token = self.token.clone();
        hsm_blocking(move || {
            let mut n = 0;
            for id in ids {
                match crate::hex::unhex(&id).map(|raw| token.destroy(&raw)) {
                    Some(Ok(count)) if count > 0 => n += 1,
                    Some(Ok(_)) => tracing::warn!(key = %id, "key to destroy was not in the token"),
                    Some(Err(e)) => tracing::warn!(key = %id, error = %e, "could not destroy key"),
                    None => tracing::warn!(key = %id, "stored key id is not hex"),
                }
            }
            Ok(n)
        })
        .await
        .unwrap_or(0)
    }

    pub async fn list_keys(&self, zone: &str) -> Result<Vec<KeyRecord>> {
        let (key, _, _) = self.zone(zone).await?;
        Ok(self.store.list_keys(&key).await?)
    }

    /// Adds a key to a zone: published only (a standby or next key), or
    /// active at once.
    pub async fn add_key(
        &self,
        who: &str,
        zone: &str,
        role: KeyRole,
        activate: bool,
    ) -> Result<KeyRecord> {
        let Managed { key, zone: z, .. } = &self.managed(zone).await?;
        let key = key.clone();
        let state = if activate {
            KeyState::Active
        } else {
            KeyState::Published
        };
        let now = self.clock.now();
        let k = self
            .generate_key(&key, role, z.policy.algorithm, state, now)
            .await?;
        let audit = self.draft(
            who,
            &key,
            if activate {
                "generate+activate"
            } else {
                "generate+publish"
            },
            format!(
                "{} {} generated, {}",
                role.as_str().to_uppercase(),
                k.key_tag,
                state.as_str()
            ),
        );
        if let Err(e) = self.store.put_key(&k, z.epoch, &audit).await {
            self.undo_generated(std::slice::from_ref(&k), &e).await;
            return Err(e.into());
        }
        self.forget_context(&key);
        tracing::info!(zone = %key, key_tag = k.key_tag, role = role.as_str(), state = state.as_str(), "key added");
        Ok(k)
    }

    fn find_key<'a>(keys: &'a [KeyRecord], zone: &str, which: &str) -> Result<&'a KeyRecord> {
        let which = which.trim();
        if let Some(k) = keys.iter().find(|k| k.id.eq_ignore_ascii_case(which)) {
            return Ok(k);
        }
        if let Ok(tag) = which.parse::<u16>() {
            let found: Vec<_> = keys.iter().filter(|k| k.key_tag == tag).collect();
            match found.as_slice() {
                [one] => return Ok(one),
                [] => {}
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "key tag {tag} is shared by {} keys of {zone}; give the key id",
                        found.len()
                    )))
                }
            }
        }
        Err(Error::NotFound(format!("zone {zone} has no key {which:?}")))
    }

    /// Refuses to take the last active key of a role out of signing.
    fn check_not_last_active(keys: &[KeyRecord], k: &KeyRecord, verb: &str) -> Result<()> {
        if k.state != KeyState::Active {
            return Ok(());
        }
        let others = keys
            .iter()
            .filter(|o| o.id != k.id && o.role == k.role && o.state == KeyState::Active)
            .count();
        if others == 0 {
            return Err(Error::FailedPrecondition(format!(
                "key {} is the last active {} of {}; it cannot be {verb} (add and activate another first)",
                k.key_tag,
                k.role.as_str().to_uppercase(),
                k.zone
            )));
        }
        Ok(())
    }

    /// Takes a key out of signing; it stays published.
    pub async fn retire_key(&self, who: &str, zone: &str, which: &str) -> Result<KeyRecord> {
        let Managed { key, zone: z, .. } = &self.managed(zone).await?;
        let key = key.clone();
        let keys = self.store.list_keys(&key).await?;
        let k = Self::find_key(&keys, &key, which)?;
        if k.state == KeyState::Retired {
            return Err(Error::FailedPrecondition(format!(
                "key {} of {key} is already retired",
                k.key_tag
            )));
        }
        Self::check_not_last_active(&keys, k, "retired")?;
        let mut k = k.clone();
        k.state = KeyState::Retired;
        k.retired = self.clock.now();
        let audit = self.draft(
            who,
            &key,
            "retire",
            format!("{} {} retired", k.role.as_str().to_uppercase(), k.key_tag),
        );
        self.store.put_key(&k, z.epoch, &audit).await?;
        self.forget_context(&key);
        if let Some(id) = crate::hex::unhex(&k.id) {
            // Drops the session copy the key was signing with (a token call).
            let token = self.token.clone();
            let _ = hsm_blocking(move || {
                token.forget_handle(&id);
                Ok(())
            })
            .await;
        }
        tracing::info!(zone = %key, key_tag = k.key_tag, "key retired");
        Ok(k)
    }

    /// Removes a key from the zone and destroys it in the token.
    pub async fn remove_key(&self, who: &str, zone: &str, which: &str) -> Result<KeyRecord> {
        let Managed { key, zone: z, .. } = &self.managed(zone).await?;
        let key = key.clone();
        let keys = self.store.list_keys(&key).await?;
        let k = Self::find_key(&keys, &key, which)?.clone();
        Self::check_not_last_active(&keys, &k, "removed")?;
        let audit = self.draft(
            who,
            &key,
            "delete",
            format!(
                "{} {} removed and destroyed in the token",
                k.role.as_str().to_uppercase(),
                k.key_tag
            ),
        );
        self.store.delete_key(&key, &k.id, z.epoch, &audit).await?;
        self.forget_context(&key);
        self.destroy_in_token(vec![k.id.clone()]).await;
        tracing::info!(zone = %key, key_tag = k.key_tag, "key removed");
        Ok(k)
    }

    // ---------------------------------------------------- public material --

    /// The DNSKEY RRset of the zone: every stored key is published.
    fn dnskey_records(ctx: &SigningContext) -> Result<Vec<OutRecord>> {
        let ttl = ctx.zone.policy.dnskey_ttl;
        ctx.keys
            .iter()
            .map(|k| {
                let rdata = ds::dnskey_wire(&dnskey_of(k)?);
                Ok(out_record(&ctx.apex, Rtype::DNSKEY, ttl, rdata))
            })
            .collect()
    }

    /// DS records of the published and active KSKs, and the DNSKEY RRset.
    pub async fn ds(
        &self,
        zone: &str,
        digests: &[DsDigest],
    ) -> Result<(Vec<OutRecord>, Vec<OutRecord>)> {
        let ctx = self.context(zone).await?;
        let digests = if digests.is_empty() {
            ctx.zone.policy.ds_digests()
        } else {
            digests.to_vec()
        };
        let mut out = Vec::new();
        for k in ctx
            .keys
            .iter()
            .filter(|k| k.role == KeyRole::Ksk && k.state != KeyState::Retired)
        {
            let key = dnskey_of(k)?;
            for d in &digests {
                let rdata = ds::ds_wire(&ds::ds(&ctx.apex, &key, *d));
                out.push(out_record(
                    &ctx.apex,
                    Rtype::DS,
                    ctx.zone.policy.ds_ttl,
                    rdata,
                ));
            }
        }
        Ok((out, Self::dnskey_records(&ctx)?))
    }

    /// The DNSKEY RRset with its signatures by the active KSKs.
    pub async fn signed_dnskeys(
        &self,
        who: &str,
        zone: &str,
    ) -> Result<(Vec<OutRecord>, Vec<OutRecord>)> {
        let ctx = self.context(zone).await?;
        let dnskeys = Self::dnskey_records(&ctx)?;
        let rrsigs = self.ksk_signed(who, &ctx, Rtype::DNSKEY).await?;
        Ok((dnskeys, rrsigs))
    }

    /// The CDS and CDNSKEY RRsets the zone publishes (empty when its policy
    /// publishes none), with their signatures by the active KSKs.
    pub async fn signed_cds(&self, who: &str, zone: &str) -> Result<SignedCds> {
        let ctx = self.context(zone).await?;
        let apex = apex_rrsets(&ctx)?;
        let ttl = ctx.zone.policy.dnskey_ttl;
        let records = |rtype, rdatas: &[Vec<u8>]| -> Vec<OutRecord> {
            rdatas
                .iter()
                .map(|r| out_record(&ctx.apex, rtype, ttl, r.clone()))
                .collect()
        };
        let mut rrsigs = Vec::new();
        if !apex.cds.is_empty() {
            rrsigs.extend(self.ksk_signed(who, &ctx, Rtype::CDS).await?);
            rrsigs.extend(self.ksk_signed(who, &ctx, Rtype::CDNSKEY).await?);
        }
        Ok(SignedCds {
            cds: records(Rtype::CDS, &apex.cds),
            cdnskeys: records(Rtype::CDNSKEY, &apex.cdnskeys),
            rrsigs,
        })
    }

    /// Signatures by the active KSKs over one of the apex RRsets keymaster
    /// builds from its key records (DNSKEY, CDS, CDNSKEY); callers never
    /// hand the KSK data to sign. Signatures are kept and handed out again
    /// until a quarter of their validity has passed or the RRset or the
    /// KSKs change, so that the KSK signs rarely; every signature it does
    /// make is written to the audit log first (fail closed).
    async fn ksk_signed(
        &self,
        who: &str,
        ctx: &Arc<SigningContext>,
        rtype: Rtype,
    ) -> Result<Vec<OutRecord>> {
        let apex = apex_rrsets(ctx)?;
        let rdatas = match rtype {
            Rtype::DNSKEY => apex.dnskeys,
            Rtype::CDS => apex.cds,
            _ => apex.cdnskeys,
        };
        let ksks: Vec<u16> = ctx
            .signing
            .iter()
            .filter(|k| k.role == KeyRole::Ksk)
            .map(|k| k.key_tag)
            .collect();
        let now = self.clock.now();
        let policy = &ctx.zone.policy;
        let cache_key = (ctx.zone.name.clone(), rtype.to_int());
        if let Some(c) = self
            .ksk_signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
        {
            let fresh = u64::from(c.expiration).saturating_sub(now)
                >= u64::from(policy.dnskey_signature_validity) * 3 / 4;
            if fresh && c.rdatas == rdatas && c.ksks == ksks && c.ttl == policy.dnskey_ttl {
                return Ok(c.rrsigs.clone());
            }
        }
        let validity = validity_for(policy, now, 0, 0, SigKind::Dnskey)?;
        let records: Vec<WireRecord> = rdatas
            .iter()
            .map(|rdata| WireRecord {
                class: 1,
                ttl: policy.dnskey_ttl,
                rdata: rdata.clone(),
            })
            .collect();
        let canon = rrset::canonicalize(&ctx.apex, ctx.apex.as_slice(), rtype.to_int(), &records)?;
        let tags: Vec<String> = ksks.iter().map(u16::to_string).collect();
        self.audit_event(
            who,
            &ctx.zone.name,
            "ksk-sign",
            format!(
                "KSK {} signed the {rtype} RRset ({} records), valid until {}",
                tags.join(", "),
                rdatas.len(),
                validity.expiration
            ),
        )
        .await?;
        let signed = self
            .sign_canonical(
                ctx.clone(),
                vec![canon],
                validity,
                validity,
                true,
                Cancel::default(),
            )
            .await?;
        let rrsigs: Vec<OutRecord> = signed.into_iter().flatten().collect();
        self.ksk_signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                cache_key,
                KskSignatures {
                    rdatas,
                    ksks,
                    ttl: policy.dnskey_ttl,
                    expiration: validity.expiration,
                    rrsigs: rrsigs.clone(),
                },
            );
        Ok(rrsigs)
    }

    /// What a DNS server that signs online must build to match this zone:
    /// its denial, the keys that sign each kind of RRset, and the times and
    /// TTLs in force.
    pub async fn signing_parameters(&self, zone: &str) -> Result<SigningParameters> {
        let ctx = self.context(zone).await?;
        let policy = &ctx.zone.policy;
        let tags = |role| {
            ctx.signing
                .iter()
                .filter(|k| k.role == role)
                .map(|k| (k.key_tag, k.algorithm))
                .collect()
        };
        Ok(SigningParameters {
            zone: ctx.zone.name.clone(),
            denial: policy.denial(),
            zsks: tags(KeyRole::Zsk),
            ksks: tags(KeyRole::Ksk),
            signature_validity: policy.signature_validity,
            dnskey_signature_validity: policy.dnskey_signature_validity,
            signature_inception_offset: policy.signature_inception_offset,
            dnskey_ttl: policy.dnskey_ttl,
            max_batch_rrsets: self.limits.max_batch_rrsets,
        })
    }

    // ---------------------------------------------------------- signing --

    /// Signs a batch of RRsets for a DNS server; the whole batch is refused
    /// if one is bad. The apex DNSKEY, CDS and CDNSKEY RRsets are refused:
    /// the KSK signs only those keymaster builds (GetDnskeys, GetCds), or a
    /// signer could have it sign a key set or a CDS of its own making and
    /// so take the zone over at its parent (RFC 7344, RFC 8078). Signing
    /// stops at the next RRset once `cancel` is set.
    pub async fn sign_rrsets(
        &self,
        zone: &str,
        rrsets: Vec<RrsetRequest>,
        inception: u32,
        expiration: u32,
        with_text: bool,
        cancel: Cancel,
    ) -> Result<Vec<Vec<OutRecord>>> {
        if rrsets.is_empty() {
            return Err(Error::InvalidArgument("the batch has no RRsets".into()));
        }
        if rrsets.len() > self.limits.max_batch_rrsets {
            return Err(Error::ResourceExhausted(format!(
                "batch of {} RRsets is over the limit of {} (max_batch_rrsets)",
                rrsets.len(),
                self.limits.max_batch_rrsets
            )));
        }
        let ctx = self.context(zone).await?;
        let validity = validity_for(
            &ctx.zone.policy,
            self.clock.now(),
            inception,
            expiration,
            SigKind::Zone,
        )?;
        let denial = ctx.zone.policy.denial();
        let mut canon = Vec::with_capacity(rrsets.len());
        for (i, r) in rrsets.iter().enumerate() {
            let c = rrset::canonicalize(&ctx.apex, &r.owner, r.rtype, &r.records)
                .map_err(|e| Error::InvalidArgument(format!("RRset {i}: {e}")))?;
            if c.owner == ctx.apex && matches!(c.rtype, Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY)
            {
                return Err(Error::InvalidArgument(format!(
                    "RRset {i}: the apex {} RRset is built and signed by keymaster from its key \
                     records, never from a caller's records; fetch it with {}",
                    c.rtype,
                    if c.rtype == Rtype::DNSKEY {
                        "GetDnskeys"
                    } else {
                        "GetCds"
                    }
                )));
            }
            rrset::check_denial(&c, &denial)
                .map_err(|e| Error::InvalidArgument(format!("RRset {i}: {e}")))?;
            canon.push(c);
        }
        self.sign_canonical(ctx, canon, validity, validity, with_text, cancel)
            .await
    }

    /// Signs canonical RRsets on the signing workers: the apex DNSKEY, CDS
    /// and CDNSKEY with the KSKs (and `dnskey_validity`), the rest with the
    /// ZSKs.
    async fn sign_canonical(
        &self,
        ctx: Arc<SigningContext>,
        canon: Vec<CanonicalRrset>,
        validity: Validity,
        dnskey_validity: Validity,
        with_text: bool,
        cancel: Cancel,
    ) -> Result<Vec<Vec<OutRecord>>> {
        // One piece per worker (small batches stay whole).
        let piece = canon.len().div_ceil(self.pool.count()).max(16);
        let canon = Arc::new(canon);
        let mut pending = Vec::new();
        for start in (0..canon.len()).step_by(piece) {
            let end = (start + piece).min(canon.len());
            let (ctx, canon, cancel) = (ctx.clone(), canon.clone(), cancel.clone());
            pending.push(self.pool.submit(move |signer| {
                let worker = &mut KeyWorker(signer.map_err(|e| Error::Unavailable(e.to_string()))?);
                canon[start..end]
                    .iter()
                    .map(|c| {
                        if cancel.is_set() {
                            return Err(Error::DeadlineExceeded(
                                "signing stopped: the call was cancelled or its deadline passed"
                                    .into(),
                            ));
                        }
                        sign_one(worker, &ctx, c, validity, dnskey_validity, with_text)
                    })
                    .collect::<Result<Vec<_>>>()
            }));
        }
        let mut out = Vec::with_capacity(canon.len());
        for p in pending {
            out.extend(
                p.await
                    .map_err(|_| Error::Internal("a signing worker stopped".into()))??,
            );
        }
        Ok(out)
    }

    /// Reads a zone file's text, signs it and streams the
    /// result through `emit`. Runs on the calling (blocking) thread.
    pub fn sign_zone_blocking(
        &self,
        zone: &ZoneSigning,
        text: &[u8],
        emit: &mut dyn FnMut(Vec<u8>) -> std::result::Result<(), String>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ZoneStats> {
        let mut stats = ZoneStats::default();
        let began = self.clock.instant();
        let recs = zonesign::read_zone(
            text,
            &zone.config.apex,
            self.limits.max_zone_records,
            &mut stats,
        )?;
        tracing::debug!(
            records = recs.len(),
            read_s = self.clock.instant().duration_since(began).as_secs_f64(),
            "zone read"
        );
        let plan = zonesign::plan_zone(recs, &zone.config, &mut stats)?;
        let planned = self.clock.instant();
        self.sign_plan(Arc::new(plan), &mut stats, emit, progress)?;
        tracing::debug!(
            plan_s = planned.duration_since(began).as_secs_f64(),
            sign_s = self.clock.instant().duration_since(planned).as_secs_f64(),
            "zone signing phases"
        );
        Ok(stats)
    }

    /// Signs a planned zone on the signing pool, batch by batch, and emits
    /// the batches in order. A few batches per worker are in flight, so
    /// that the pool stays busy while the output waits for the earliest; the
    /// RRset path's pieces queue between them. Blocks the calling thread.
    fn sign_plan(
        &self,
        plan: Arc<zonesign::ZonePlan>,
        stats: &mut ZoneStats,
        emit: &mut dyn FnMut(Vec<u8>) -> std::result::Result<(), String>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let in_flight = self.pool.count() * 4;
        let stop = Cancel::default();
        let mut pending = std::collections::VecDeque::new();
        // Batches submitted, batches emitted, RRsets emitted.
        let (mut next, mut emitted, mut done) = (0, 0, 0);
        let result = loop {
            while next < plan.batches() && pending.len() < in_flight {
                let (plan, stop) = (plan.clone(), stop.clone());
                pending.push_back(self.pool.submit(move |signer| {
                    if stop.is_set() {
                        return Err(zonesign::ZoneError::Aborted("stopped".into()));
                    }
                    let signer = signer.map_err(|e| zonesign::ZoneError::Worker(e.to_string()))?;
                    plan.render(next, &mut KeyWorker(signer))
                }));
                next += 1;
            }
            let Some(batch) = pending.pop_front() else {
                break Ok(());
            };
            let rendered = match batch.blocking_recv() {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => break Err(e.into()),
                Err(_) => break Err(Error::Internal("a signing worker stopped".into())),
            };
            stats.records_out += rendered.records;
            stats.rrsigs += rendered.rrsigs;
            done += plan.batch_rrsets(emitted);
            emitted += 1;
            if let Err(e) = emit(rendered.text.into_bytes()) {
                break Err(zonesign::ZoneError::Aborted(e).into());
            }
            progress(done, plan.rrsets());
        };
        // Batches still queued find the flag set and return at once.
        stop.set();
        result
    }

    /// Everything needed to sign a whole zone, read from the store.
    pub async fn zone_signing(
        &self,
        zone: &str,
        inception: u32,
        expiration: u32,
    ) -> Result<ZoneSigning> {
        let ctx = self.context(zone).await?;
        let policy = &ctx.zone.policy;
        let now = self.clock.now();
        let validity = validity_for(policy, now, inception, expiration, SigKind::Zone)?;
        let dnskey_validity = dnskey_validity_within(policy, now, validity)?;
        let apex = apex_rrsets(&ctx)?;
        let ksks: Vec<String> = ctx
            .signing
            .iter()
            .filter(|k| k.role == KeyRole::Ksk)
            .map(|k| k.key_tag.to_string())
            .collect();
        let ksk_use = format!(
            "KSK {} signed the DNSKEY{} RRset{}",
            ksks.join(", "),
            if apex.cds.is_empty() {
                ""
            } else {
                ", CDS and CDNSKEY"
            },
            if apex.cds.is_empty() { "" } else { "s" }
        );
        Ok(ZoneSigning {
            ksk_use,
            config: ZoneSignConfig {
                apex: ctx.apex.clone(),
                keys: ctx.signing.clone(),
                dnskeys: apex.dnskeys,
                cds: apex.cds,
                cdnskeys: apex.cdnskeys,
                dnskey_ttl: policy.dnskey_ttl,
                denial: policy.denial(),
                dnskey_validity,
                validity,
            },
        })
    }

    /// Compares the token's private keys with the stored key records and
    /// logs what does not match. Returns (orphans in token, records
    /// without key).
    pub async fn reconcile(&self) -> Result<(usize, usize)> {
        let mut stored = Vec::new();
        for z in self.store.list_zones().await? {
            stored.extend(self.store.list_keys(&z.name).await?);
        }
        let token = self.token.clone();
        let objects = hsm_blocking(move || Ok(token.list_private_keys()?)).await?;
        let identity = self.token.identity().clone();
        let mut orphans = 0;
        for o in &objects {
            let id = crate::hex::hex(&o.id);
            if !stored.iter().any(|k| k.id == id) {
                orphans += 1;
                tracing::warn!(key_id = %id, label = %o.label, "token holds a private key that no zone refers to");
            }
        }
        let mut missing = 0;
        for k in stored.iter().filter(|k| k.token_serial == identity.serial) {
            if !objects.iter().any(|o| crate::hex::hex(&o.id) == k.id) {
                missing += 1;
                tracing::warn!(zone = %k.zone, key_tag = k.key_tag, key_id = %k.id, "stored key is missing from the token");
            }
        }
        Ok((orphans, missing))
    }
}

/// Signs one canonical RRset with the zone's active keys of the right role:
/// KSKs for DNSKEY, CDS and CDNSKEY at the apex, ZSKs for the rest.
fn sign_one(
    worker: &mut KeyWorker<'_>,
    ctx: &SigningContext,
    c: &CanonicalRrset,
    validity: Validity,
    dnskey_validity: Validity,
    with_text: bool,
) -> Result<Vec<OutRecord>> {
    let at_apex = c.owner == ctx.apex;
    let ksk_signed = at_apex && matches!(c.rtype, Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY);
    let (role, v) = if ksk_signed {
        (KeyRole::Ksk, dnskey_validity)
    } else {
        (KeyRole::Zsk, validity)
    };
    let mut sigs = Vec::new();
    for key in ctx.signing.iter().filter(|k| k.role == role) {
        let rrsig = sign::sign_rrset(
            worker,
            key,
            &ctx.apex,
            &c.owner_wire,
            c.labels,
            c.rtype,
            c.ttl,
            c.rdatas.iter().map(|r| r.as_slice()),
            v,
        )
        .map_err(|e| Error::Unavailable(e.to_string()))?;
        let text = if with_text {
            format!(
                "{}.\t{}\tIN\tRRSIG\t{}",
                c.owner,
                c.ttl,
                rrsig.display_zonefile(DisplayKind::Simple)
            )
        } else {
            String::new()
        };
        sigs.push(OutRecord {
            owner: c.owner_wire.clone(),
            rtype: Rtype::RRSIG.to_int(),
            ttl: c.ttl,
            rdata: sign::rrsig_wire(&rrsig),
            text,
        });
    }
    if sigs.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "zone {} has no active {}",
            ctx.zone.name,
            role.as_str().to_uppercase()
        )));
    }
    Ok(sigs)
}

/// A prepared whole-zone signing.
#[derive(Debug, Clone)]
pub struct ZoneSigning {
    pub config: ZoneSignConfig,
    /// What the KSK signs in it, for the audit entry.
    pub ksk_use: String,
}

/// The apex RRsets keymaster builds from its key records, record data
/// sorted: every stored key in the DNSKEY RRset; CDS and CDNSKEY for the
/// active KSKs when the policy publishes them.
struct ApexRrsets {
    dnskeys: Vec<Vec<u8>>,
    cds: Vec<Vec<u8>>,
    cdnskeys: Vec<Vec<u8>>,
}

fn apex_rrsets(ctx: &SigningContext) -> Result<ApexRrsets> {
    let policy = &ctx.zone.policy;
    let mut out = ApexRrsets {
        dnskeys: Vec::new(),
        cds: Vec::new(),
        cdnskeys: Vec::new(),
    };
    for k in &ctx.keys {
        let key = dnskey_of(k)?;
        out.dnskeys.push(ds::dnskey_wire(&key));
        if policy.publish_cds && k.role == KeyRole::Ksk && k.state == KeyState::Active {
            out.cdnskeys.push(ds::dnskey_wire(&key));
            for d in policy.ds_digests() {
                out.cds.push(ds::ds_wire(&ds::ds(&ctx.apex, &key, d)));
            }
        }
    }
    for v in [&mut out.dnskeys, &mut out.cds, &mut out.cdnskeys] {
        v.sort();
        v.dedup();
    }
    Ok(out)
}

/// The CDS and CDNSKEY RRsets with their KSK signatures.
#[derive(Debug, Clone)]
pub struct SignedCds {
    pub cds: Vec<OutRecord>,
    pub cdnskeys: Vec<OutRecord>,
    pub rrsigs: Vec<OutRecord>,
}

/// KSK signatures kept for handing out again (see `ksk_signed`).
struct KskSignatures {
    rdatas: Vec<Vec<u8>>,
    ksks: Vec<u16>,
    ttl: u32,
    expiration: u32,
    rrsigs: Vec<OutRecord>,
}

/// What an online signer must match (see `signing_parameters`).
#[derive(Debug, Clone)]
pub struct SigningParameters {
    pub zone: String,
    pub denial: crate::dnssec::denial::Denial,
    /// Key tag and algorithm of each key that signs, by role.
    pub zsks: Vec<(u16, Algorithm)>,
    pub ksks: Vec<(u16, Algorithm)>,
    pub signature_validity: u32,
    pub dnskey_signature_validity: u32,
    pub signature_inception_offset: u32,
    pub dnskey_ttl: u32,
    pub max_batch_rrsets: usize,
}

/// Set when the caller of a signing call has gone or its deadline has
/// passed: the signing workers stop at the next RRset.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn signing_key(k: &KeyRecord) -> Result<SigningKey> {
    Ok(SigningKey {
        role: k.role,
        algorithm: k.algorithm,
        key_tag: k.key_tag,
        token_id: crate::hex::unhex(&k.id)
            .ok_or_else(|| Error::Internal(format!("stored key id {:?} is not hex", k.id)))?,
    })
}

fn dnskey_of(k: &KeyRecord) -> Result<domain::rdata::Dnskey<Vec<u8>>> {
    let public = crate::hex::unhex(&k.public_key)
        .ok_or_else(|| Error::Internal(format!("stored public key of {} is not hex", k.key_tag)))?;
    Ok(ds::dnskey(k.role.dnskey_flags(), k.algorithm, &public))
}

fn out_record(apex: &Name<Vec<u8>>, rtype: Rtype, ttl: u32, rdata: Vec<u8>) -> OutRecord {
    let mut text = String::new();
    crate::dnssec::record::write_record(&mut text, &format!("{apex}."), rtype, ttl, &rdata);
    OutRecord {
        owner: apex.as_slice().to_vec(),
        rtype: rtype.to_int(),
        ttl,
        rdata,
        text: text.trim_end().to_string(),
    }
}

/// Which signatures a validity is for: the apex DNSKEY, CDS and CDNSKEY
/// RRsets (signed by the KSK) have their own, shorter validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigKind {
    Zone,
    Dnskey,
}

/// Inception and expiration of signatures made now. A caller may ask for
/// its own times (0 = the policy's: inception now minus the inception
/// offset, expiration now plus the validity), but never for more than the
/// policy gives: the expiration must lie in the future and at most the
/// zone's validity from now, and the window from inception to expiration
/// at most validity plus inception offset. (A long-lived signature can be
/// replayed long after the data or the key has changed.)
fn validity_for(
    policy: &Policy,
    now: u64,
    inception: u32,
    expiration: u32,
    kind: SigKind,
) -> Result<Validity> {
    let (span, setting) = match kind {
        SigKind::Zone => (policy.signature_validity, "signature_validity"),
        SigKind::Dnskey => (
            policy.dnskey_signature_validity,
            "dnskey_signature_validity",
        ),
    };
    let span = u64::from(span);
    let inception = match inception {
        0 => now.saturating_sub(u64::from(policy.signature_inception_offset)),
        i => u64::from(i),
    };
    let expiration = match expiration {
        0 => now + span,
        e => u64::from(e),
    };
    if expiration <= now {
        return Err(Error::InvalidArgument(format!(
            "signature expiration {expiration} is not in the future (now is {now})"
        )));
    }
    if expiration > now + span {
        return Err(Error::InvalidArgument(format!(
            "signature expiration {expiration} is {} s from now; the zone allows at most {span} s ({setting})",
            expiration - now
        )));
    }
    if expiration <= inception {
        return Err(Error::InvalidArgument(format!(
            "signature expiration {expiration} is not after inception {inception}"
        )));
    }
    let window = span + u64::from(policy.signature_inception_offset);
    if expiration - inception > window {
        return Err(Error::InvalidArgument(format!(
            "signatures valid from {inception} to {expiration} span {} s; the zone allows at most {window} s ({setting} + signature_inception_offset)",
            expiration - inception
        )));
    }
    // Both fit in 32 bits: the RRSIG fields use serial number arithmetic
    // (RFC 4034 §3.1.5), and `now` is before 2106.
    Ok(Validity {
        inception: inception as u32,
        expiration: expiration as u32,
    })
}

/// The validity of the KSK's signatures in a zone signed with `validity`:
/// the same inception, expiring with the zone's other signatures or when
/// the DNSKEY validity (from now, and from the inception) runs out,
/// whichever comes first.
fn dnskey_validity_within(policy: &Policy, now: u64, validity: Validity) -> Result<Validity> {
    let span = u64::from(policy.dnskey_signature_validity);
    let inception = u64::from(validity.inception);
    let expiration = u64::from(validity.expiration)
        .min(now + span)
        .min(inception + span + u64::from(policy.signature_inception_offset));
    if expiration <= now {
        return Err(Error::InvalidArgument(format!(
            "signature inception {inception} is too far in the past for the DNSKEY RRset's \
             signatures (dnskey_signature_validity {span} s)"
        )));
    }
    Ok(Validity {
        inception: validity.inception,
        expiration: expiration as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn default_validity_runs_from_the_inception_offset_to_the_validity() {
        let p = Policy::default();
        let v = validity_for(&p, NOW, 0, 0, SigKind::Zone).unwrap();
        assert_eq!(u64::from(v.inception), NOW - 3600);
        assert_eq!(u64::from(v.expiration), NOW + 240 * 3600);
        let d = validity_for(&p, NOW, 0, 0, SigKind::Dnskey).unwrap();
        assert_eq!(u64::from(d.expiration), NOW + 168 * 3600);
    }

    #[test]
    fn validity_beyond_the_policy_or_in_the_past_is_refused() {
        let p = Policy::default();
        let twenty_years = (NOW + 20 * 365 * 86400) as u32;
        let e = validity_for(&p, NOW, 0, twenty_years, SigKind::Zone).unwrap_err();
        assert!(e.to_string().contains("at most 864000 s"), "{e}");
        let e = validity_for(&p, NOW, 0, (NOW - 10) as u32, SigKind::Zone).unwrap_err();
        assert!(e.to_string().contains("not in the future"), "{e}");
        let e = validity_for(&p, NOW, 1, (NOW + 60) as u32, SigKind::Zone).unwrap_err();
        assert!(e.to_string().contains("span"), "{e}");
        let ok = validity_for(&p, NOW, 0, (NOW + 86400) as u32, SigKind::Zone).unwrap();
        assert_eq!(u64::from(ok.expiration), NOW + 86400);
    }

    #[test]
    fn ksk_signatures_expire_with_the_zone_or_at_the_dnskey_validity() {
        let p = Policy::default();
        let short = validity_for(&p, NOW, 0, (NOW + 86400) as u32, SigKind::Zone).unwrap();
        assert_eq!(dnskey_validity_within(&p, NOW, short).unwrap(), short);
        let long = validity_for(&p, NOW, 0, 0, SigKind::Zone).unwrap();
        let d = dnskey_validity_within(&p, NOW, long).unwrap();
        assert_eq!(u64::from(d.expiration), NOW + 168 * 3600);
        assert_eq!(d.inception, long.inception);
    }
}
