//! The one view of what a zone publishes and signs with, derived from its
//! key records (ARCHITECTURE.md, The signing path), and the inventory of
//! its keys (`inventory`: generate, record or undo, retire, remove,
//! re-key, reconcile with the token).
//!
//! What each key state puts where, in one table (`Publication::of`):
//!
//! | state     | DNSKEY RRset | signs | DS handed to the parent (KSK) | CDS/CDNSKEY (KSK) |
//! |-----------|--------------|-------|-------------------------------|-------------------|
//! | published | yes          | no    | yes                           | no                |
//! | incoming  | yes          | yes   | no                            | no                |
//! | active    | yes          | yes   | yes                           | yes, if the policy publishes them (always, or from a KSK roll's DS swap until the old KSK goes) |
//! | leaving   | yes          | yes   | no                            | no                |
//! | retired   | yes          | no    | no                            | no                |
//! | revoked   | yes, REVOKE bit | the DNSKEY RRset | no            | no                |
//! | pre-active, post-active | no | yes | no                        | no                |
//!
//! (Incoming and leaving are the two KSKs of a double-KSK roll around the
//! DS swap, RFC 7583 §3.3.1. Pre- and post-active keys sign without being
//! published: an algorithm roll's new keys before their DNSKEYs go out,
//! its old keys after theirs are withdrawn, RFC 6781 §4.1.4.)
//!
//! While the zone goes insecure (`zone unsign`) the CDS and CDNSKEY are
//! the RFC 8078 delete records and no DS is handed to the parent; once it
//! is unsigned, no key appears anywhere.
//!
//! Active KSKs sign the apex DNSKEY, CDS and CDNSKEY RRsets; active ZSKs
//! sign everything else. A rollover engine changes key states; this view
//! follows.

pub mod disk;
pub mod inventory;
pub mod manual;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use domain::base::name::Name;

use crate::dnssec::ds::{self, DsDigest};
use crate::dnssec::sign::SigningKey;
use crate::dnssec::KeyRole;
use crate::error::{KeyError, Result};
use crate::node::{Node, ZoneName};
use crate::store::schema::{KeyRecord, KeyState, RollStep, UnsignStep, ZoneRecord};

pub use inventory::Inventory;

/// Where a key in a state appears (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publication {
    pub dnskey: bool,
    pub signs: bool,
    pub ds: bool,
    pub cds: bool,
}

impl Publication {
    pub fn of(state: KeyState) -> Publication {
        match state {
            KeyState::Published => Publication {
                dnskey: true,
                signs: false,
                ds: true,
                cds: false,
            },
            KeyState::Active => Publication {
                dnskey: true,
                signs: true,
                ds: true,
                cds: true,
            },
            KeyState::Incoming | KeyState::Leaving => Publication {
                dnskey: true,
                signs: true,
                ds: false,
                cds: false,
            },
            KeyState::Retired => Publication {
                dnskey: true,
                signs: false,
                ds: false,
                cds: false,
            },
            KeyState::DsOnly => Publication {
                dnskey: false,
                signs: false,
                ds: true,
                cds: true,
            },
            KeyState::Revoked => Publication {
                dnskey: true,
                signs: true,
                ds: false,
                cds: false,
            },
            KeyState::PreActive | KeyState::PostActive => Publication {
                dnskey: false,
                signs: true,
                ds: false,
                cds: false,
            },
        }
    }
}

/// Whether a KSK roll of the zone has handed the parent the new DS and
/// not yet withdrawn the old KSK: when CDS/CDNSKEY published "during
/// rollover" are up (for the active, i.e. the new, KSK).
fn waits_for_parent(zone: &ZoneRecord) -> bool {
    zone.lifecycle.roll.as_ref().is_some_and(|r| {
        matches!(
            r.step,
            RollStep::KskDsSubmitted | RollStep::KskDsSeen | RollStep::KskSwapped
        )
    })
}

/// `CDS 0 0 0 00`: remove the whole DS RRset (RFC 8078 §4, erratum 5049).
pub const DELETE_CDS: [u8; 5] = [0, 0, 0, 0, 0];
/// `CDNSKEY 0 3 0 AA==`.
pub const DELETE_CDNSKEY: [u8; 5] = [0, 0, 3, 0, 0];

/// What a zone publishes and signs with, as of its key records.
#[derive(Debug)]
pub struct KeySet {
    pub zone: ZoneRecord,
    pub apex: Name<Vec<u8>>,
    pub keys: Vec<KeyRecord>,
    signing: Vec<SigningKey>,
    /// Record data, sorted and without duplicates.
    dnskeys: Vec<Vec<u8>>,
    cds: Vec<Vec<u8>>,
    cdnskeys: Vec<Vec<u8>>,
}

impl KeySet {
    pub fn new(zone: ZoneRecord, apex: Name<Vec<u8>>, keys: Vec<KeyRecord>) -> Result<KeySet> {
        let mut set = KeySet {
            signing: Vec::new(),
            dnskeys: Vec::new(),
            cds: Vec::new(),
            cdnskeys: Vec::new(),
            zone,
            apex,
            keys,
        };
        let cds = set.zone.policy.publish_cds
            || (set.zone.policy.cds_during_rollover && waits_for_parent(&set.zone));
        match set.zone.lifecycle.unsign.as_ref().map(|u| u.step) {
            // Unsigned: the keys publish and sign nothing.
            Some(UnsignStep::Unsigned) => return Ok(set),
            // Going insecure: the delete records ask the parent to remove
            // the DS (RFC 8078 §4, the erratum 5049 forms); the zone stays
            // signed meanwhile.
            Some(_) => {
                set.cds = vec![DELETE_CDS.to_vec()];
                set.cdnskeys = vec![DELETE_CDNSKEY.to_vec()];
            }
            None => {}
        }
        let unsigning = set.zone.lifecycle.unsign.is_some();
        for k in &set.keys {
            let p = Publication::of(k.state);
            let dnskey = dnskey_of(k)?;
            if p.dnskey {
                set.dnskeys.push(ds::dnskey_wire(&dnskey));
            }
            if p.signs {
                set.signing.push(signing_key(k)?);
                // An active CSK signs the zone's data too; in a CSK roll the
                // other one signs only the DNSKEY RRset.
                if k.csk && k.state == KeyState::Active {
                    set.signing.push(SigningKey {
                        role: KeyRole::Zsk,
                        ..signing_key(k)?
                    });
                }
            }
            if p.cds && k.role == KeyRole::Ksk && cds && !unsigning {
                set.cdnskeys.push(ds::dnskey_wire(&dnskey));
                for d in set.zone.policy.ds_digests() {
                    set.cds.push(ds::ds_wire(&ds::ds(&set.apex, &dnskey, d)));
                }
            }
        }
        for v in [&mut set.dnskeys, &mut set.cds, &mut set.cdnskeys] {
            v.sort();
            v.dedup();
        }
        Ok(set)
    }

    /// The keys that sign, every role.
    pub fn signing_keys(&self) -> &[SigningKey] {
        &self.signing
    }

    /// The keys of one role that sign.
    pub fn signers(&self, role: KeyRole) -> impl Iterator<Item = &SigningKey> {
        self.signing.iter().filter(move |k| k.role == role)
    }

    /// Which role signs an RRset: the KSKs the apex DNSKEY, CDS and
    /// CDNSKEY; the ZSKs everything else.
    pub fn role_for(&self, owner: &Name<Vec<u8>>, rtype: Rtype) -> KeyRole {
        let apex_set = matches!(rtype, Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY);
        if apex_set && *owner == self.apex {
            KeyRole::Ksk
        } else {
            KeyRole::Zsk
        }
    }

    /// Record data of the apex RRset of this type that keymaster builds:
    /// DNSKEY, CDS or CDNSKEY.
    pub fn apex_rrset(&self, rtype: Rtype) -> &[Vec<u8>] {
        match rtype {
            Rtype::DNSKEY => &self.dnskeys,
            Rtype::CDS => &self.cds,
            Rtype::CDNSKEY => &self.cdnskeys,
            _ => &[],
        }
    }

    /// DS record data for the KSKs the parent should have, per digest:
    /// none while the zone goes insecure and after.
    pub fn ds(&self, digests: &[DsDigest]) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        if self.zone.lifecycle.unsign.is_some() {
            return Ok(out);
        }
        for k in self
            .keys
            .iter()
            .filter(|k| k.role == KeyRole::Ksk && Publication::of(k.state).ds)
        {
            let key = dnskey_of(k)?;
            for d in digests {
                out.push(ds::ds_wire(&ds::ds(&self.apex, &key, *d)));
            }
        }
        Ok(out)
    }

    /// Whether the zone was unsigned (`zone unsign`): it is published
    /// without DNSSEC.
    pub fn unsigned(&self) -> bool {
        self.zone
            .lifecycle
            .unsign
            .as_ref()
            .is_some_and(|u| u.step == UnsignStep::Unsigned)
    }

    /// Whether the zone has an active KSK and an active ZSK.
    pub fn is_signed(&self) -> bool {
        self.signers(KeyRole::Ksk).next().is_some() && self.signers(KeyRole::Zsk).next().is_some()
    }
}

/// A stored key as the DNSSEC code signs with it (a revoked key's RRSIGs
/// name its revoked key tag).
fn signing_key(k: &KeyRecord) -> Result<SigningKey> {
    Ok(SigningKey {
        role: k.role,
        algorithm: k.algorithm,
        key_tag: match k.state {
            KeyState::Revoked => dnskey_of(k)?.key_tag(),
            _ => k.key_tag,
        },
        token_id: crate::hex::unhex(&k.id).ok_or_else(|| bad(k, "its id is not hex"))?,
    })
}

/// A stored key's DNSKEY record data; a revoked key's has the REVOKE
/// flag (RFC 5011 §3: 257 becomes 385).
pub fn dnskey_of(k: &KeyRecord) -> Result<domain::rdata::Dnskey<Vec<u8>>> {
    let public =
        crate::hex::unhex(&k.public_key).ok_or_else(|| bad(k, "its public key is not hex"))?;
    let flags = match k.state {
        KeyState::Revoked => k.role.dnskey_flags() | REVOKE_FLAG,
        _ => k.role.dnskey_flags(),
    };
    Ok(ds::dnskey(flags, k.algorithm, &public))
}

/// The DNSKEY REVOKE flag (RFC 5011 §7).
pub const REVOKE_FLAG: u16 = 0x0080;

fn bad(k: &KeyRecord, what: &'static str) -> crate::error::Error {
    KeyError::BadRecord {
        zone: k.zone.clone(),
        tag: k.key_tag,
        what,
    }
    .into()
}

/// How long a key set read from the store is trusted before it is read
/// again (another node may have changed the keys).
const KEY_SET_TTL: Duration = Duration::from_secs(1);

/// A key set as read, and when.
struct Cached {
    /// When the store was last asked for it (monotonic); None for one
    /// read from the disk at start, which the store is asked for at once.
    looked: Option<Instant>,
    /// When the store last answered with it (Unix seconds).
    read_at: u64,
    /// Kept through a store that did not answer.
    stale: bool,
    set: Arc<KeySet>,
}

/// Whether an error says the store could not be used (as opposed to what
/// it answered: a zone not found, a record it refuses).
pub fn store_unusable(e: &crate::error::Error) -> bool {
    matches!(e, crate::error::Error::Store(s) if s.is_unusable())
}

/// How often every zone's key set is read again by `keep_current`, so
/// that a node holds a current one for each zone, also for zones it has
/// not signed since it started (ARCHITECTURE.md, Signing through a store
/// outage); on etcd also at once when zone or key records change.
const KEEP_CURRENT_EVERY: Duration = Duration::from_secs(30);

/// Key sets read from the store, kept for a moment for the hot path, and
/// as the last-known state while the store cannot be read; with a state
/// directory, also on disk for a node that starts during an outage.
pub struct KeySets {
    node: Arc<Node>,
    cache: Mutex<HashMap<String, Cached>>,
    disk: Option<disk::KeySetDir>,
    /// Grows by one each time this node changes a zone's keys, for those
    /// who watch key sets.
    changes: tokio::sync::watch::Sender<u64>,
}

impl KeySets {
    pub fn new(node: Arc<Node>, disk: Option<disk::KeySetDir>) -> KeySets {
        KeySets {
            node,
            cache: Mutex::new(HashMap::new()),
            disk,
            changes: tokio::sync::watch::channel(0).0,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the key sets saved on disk as the last-known ones (a blocking
    /// call, at start): each is asked of the store at its first use, and
    /// stands in while the store cannot answer. Returns how many, and the
    /// oldest read time.
    pub fn load_saved(&self) -> (usize, Option<u64>) {
        let Some(disk) = &self.disk else {
            return (0, None);
        };
        let mut loaded = 0;
        let mut oldest: Option<u64> = None;
        for s in disk.load_all() {
            let Ok(name) = ZoneName::of(&s.zone) else {
                continue;
            };
            let key = name.key().to_string();
            let Ok(set) = KeySet::new(s.zone, name.apex().clone(), s.keys) else {
                continue;
            };
            let mut c = self.cache();
            if c.contains_key(&key) {
                continue;
            }
            c.insert(
                key,
                Cached {
                    looked: None,
                    read_at: s.read_at,
                    stale: true,
                    set: Arc::new(set),
                },
            );
            loaded += 1;
            oldest = Some(oldest.map_or(s.read_at, |o| o.min(s.read_at)));
        }
        (loaded, oldest)
    }

    /// The zone's key set, at most KEY_SET_TTL old: for the RRset signing
    /// path, where a store read per call would cost more than the signing.
    pub async fn get(&self, zone: &ZoneName) -> Result<Arc<KeySet>> {
        let now = self.node.clock.instant();
        if let Some(c) = self.cache().get(zone.key()) {
            if c.looked
                .is_some_and(|l| now.duration_since(l) < KEY_SET_TTL)
            {
                return Ok(c.set.clone());
            }
        }
        self.fresh(zone).await
    }

    /// The zone's key set as the store has it now, for what publishes the
    /// key set (a signed zone, the DNSKEY RRset): another node may have
    /// changed the keys a moment ago. While the store cannot be read, the
    /// last one read (ARCHITECTURE.md, Signing through a store outage):
    /// with the store away nobody changes keys, and a zone whose
    /// signatures expire goes bogus, so signing outranks freshness. The
    /// store is asked again at most once per KEY_SET_TTL meanwhile.
    /// Long because its three outcomes (read, zone removed, store away)
    /// each update the cache and the disk copy in their own way.
    pub async fn fresh(&self, zone: &ZoneName) -> Result<Arc<KeySet>> {
        let key = zone.key().to_string();
        let read = async {
            let z = self.node.zone(zone).await?;
            let keys = self.node.store.list_keys(&z.key).await?;
            Ok::<_, crate::error::Error>(Arc::new(KeySet::new(z.zone, z.apex, keys)?))
        };
        let now = self.node.clock.instant();
        match read.await {
            Ok(set) => {
                let read_at = self.node.clock.now();
                let (was_stale, changed) = {
                    let mut c = self.cache();
                    let old = c.insert(
                        key.clone(),
                        Cached {
                            looked: Some(now),
                            read_at,
                            stale: false,
                            set: set.clone(),
                        },
                    );
                    let changed = old
                        .as_ref()
                        .is_none_or(|o| o.set.zone != set.zone || o.set.keys != set.keys);
                    (old.is_some_and(|o| o.stale), changed)
                };
                if was_stale {
                    tracing::info!(zone = %key, "the store answers again: the zone's key set is read from it");
                }
                if changed {
                    self.save(&set, read_at).await;
                }
                Ok(set)
            }
            Err(crate::error::Error::ZoneName(crate::error::ZoneNameError::NotManaged(z))) => {
                // Removed (by any node): nothing of it is kept.
                if self.cache().remove(&key).is_some() {
                    self.unsave(&key).await;
                }
                Err(crate::error::ZoneNameError::NotManaged(z).into())
            }
            Err(e) if store_unusable(&e) => {
                let last = {
                    let mut c = self.cache();
                    c.get_mut(&key).map(|c| {
                        let was = c.stale;
                        c.looked = Some(now);
                        c.stale = true;
                        (c.set.clone(), c.read_at, was)
                    })
                };
                let Some((set, read_at, was_stale)) = last else {
                    return Err(e);
                };
                if !was_stale {
                    tracing::warn!(
                        zone = %key,
                        error = %e,
                        read_at = %crate::clock::rfc3339(read_at),
                        "the store cannot be read: signing goes on with the zone's last-known key set"
                    );
                }
                Ok(set)
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps the key set on disk, off the async threads; a failure is
    /// logged (the store has the truth; the disk is for an outage).
    async fn save(&self, set: &KeySet, read_at: u64) {
        let Some(disk) = self.disk.clone() else {
            return;
        };
        let saved = disk::Saved {
            read_at,
            zone: set.zone.clone(),
            keys: set.keys.clone(),
        };
        let done = tokio::task::spawn_blocking(move || disk.save(&saved)).await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "cannot keep the zone's key set on disk");
        }
    }

    async fn unsave(&self, zone: &str) {
        if let Some(disk) = self.disk.clone() {
            let zone = zone.to_string();
            let _ = tokio::task::spawn_blocking(move || disk.remove(&zone)).await;
        }
    }

    /// Reads every zone's key set now and every KEEP_CURRENT_EVERY, so
    /// that this node holds a current key set (in memory, and on disk with
    /// a state directory) for each zone, whether or not it has signed for
    /// it since it started. Runs until the process ends.
    pub async fn keep_current(self: Arc<Self>) {
        let mut changes = self.node.store.watch_key_sets().await;
        loop {
            match self.node.store.list_zones().await {
                Ok(zones) => {
                    let names: std::collections::HashSet<String> =
                        zones.iter().map(|z| z.name.clone()).collect();
                    for z in &zones {
                        if let Ok(name) = ZoneName::of(z) {
                            let _ = self.fresh(&name).await;
                        }
                    }
                    // Zones gone from the store are gone from here too.
                    let gone: Vec<String> = self
                        .cache()
                        .keys()
                        .filter(|k| !names.contains(*k))
                        .cloned()
                        .collect();
                    for k in gone {
                        self.cache().remove(&k);
                        self.unsave(&k).await;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "key sets not read again: the store cannot be read")
                }
            }
            match changes.as_mut() {
                Some(rx) => {
                    tokio::select! {
                        _ = self.node.clock.sleep(KEEP_CURRENT_EVERY) => {}
                        _ = rx.recv() => {
                            // A burst of changes (a roll step, a zone
                            // added with its keys) is read once.
                            self.node.clock.sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                None => self.node.clock.sleep(KEEP_CURRENT_EVERY).await,
            }
        }
    }

    /// When the zone's key set in use was read from the store (Unix
    /// seconds), if it is a last-known one kept through a store outage.
    pub fn last_known_since(&self, zone: &ZoneName) -> Option<u64> {
        let c = self.cache();
        c.get(zone.key()).filter(|c| c.stale).map(|c| c.read_at)
    }

    /// The records of the zones whose key sets were read, as last read.
    pub fn last_known_zones(&self) -> Vec<ZoneRecord> {
        let c = self.cache();
        c.values().map(|c| c.set.zone.clone()).collect()
    }

    /// The zone's last key set read and when (Unix seconds), for reads
    /// answered while the store cannot be: `err` when there is none.
    pub fn last_known(
        &self,
        zone: &ZoneName,
        err: crate::error::Error,
    ) -> Result<(Arc<KeySet>, u64)> {
        let c = self.cache();
        c.get(zone.key())
            .map(|c| (c.set.clone(), c.read_at))
            .ok_or(err)
    }

    /// Reads the zone's key set again after this node changed its keys
    /// (the store just took the change, so it answers), so that the new
    /// one, not the old, is what signs if the store goes away next; and
    /// tells those who watch.
    pub async fn changed(&self, zone: &ZoneName) {
        if self.fresh(zone).await.is_err() {
            // Not read: the next use asks the store again.
            if let Some(c) = self.cache().get_mut(zone.key()) {
                c.looked = None;
            }
        }
        self.changes.send_modify(|n| *n += 1);
    }

    /// A signal each time this node changes some zone's keys (changes made
    /// by other nodes are seen by reading again).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::Algorithm;
    use crate::policy::Policy;
    use crate::store::schema::SCHEMA_VERSION;

    fn zone(publish_cds: bool) -> ZoneRecord {
        let policy = Policy {
            publish_cds,
            ..Policy::default()
        };
        ZoneRecord::new("example.", policy, "a", 0)
    }

    fn key(id: u8, role: KeyRole, state: KeyState) -> KeyRecord {
        KeyRecord {
            schema: SCHEMA_VERSION,
            zone: "example.".into(),
            id: format!("{id:02x}"),
            role,
            algorithm: Algorithm::EcdsaP256Sha256,
            key_tag: 0,
            state,
            label: String::new(),
            public_key: format!("{id:02x}").repeat(64),
            token_label: "t".into(),
            token_serial: "s".into(),
            created: 0,
            published: 0,
            activated: 0,
            retired: 0,
            csk: false,
        }
    }

    #[test]
    fn each_state_publishes_and_signs_as_the_table_says() {
        let apex: Name<Vec<u8>> = "example.".parse().unwrap();
        let keys = vec![
            key(1, KeyRole::Ksk, KeyState::Active),
            key(2, KeyRole::Ksk, KeyState::Published),
            key(3, KeyRole::Zsk, KeyState::Active),
            key(4, KeyRole::Zsk, KeyState::Retired),
        ];
        let set = KeySet::new(zone(true), apex.clone(), keys).unwrap();
        assert_eq!(
            set.apex_rrset(Rtype::DNSKEY).len(),
            4,
            "every key is published"
        );
        let ids = |role| -> Vec<u8> { set.signers(role).map(|k| k.token_id[0]).collect() };
        assert_eq!(ids(KeyRole::Ksk), vec![1]);
        assert_eq!(ids(KeyRole::Zsk), vec![3]);
        assert_eq!(
            set.apex_rrset(Rtype::CDNSKEY).len(),
            1,
            "the active KSK only"
        );
        assert_eq!(set.apex_rrset(Rtype::CDS).len(), 1);
        assert_eq!(
            set.ds(&[DsDigest::Sha256]).unwrap().len(),
            2,
            "active and published KSK"
        );
        assert!(set.is_signed());
        assert_eq!(set.role_for(&apex, Rtype::DNSKEY), KeyRole::Ksk);
        let www: Name<Vec<u8>> = "www.example.".parse().unwrap();
        assert_eq!(set.role_for(&www, Rtype::DNSKEY), KeyRole::Zsk);
        assert_eq!(set.role_for(&apex, Rtype::SOA), KeyRole::Zsk);
        let quiet = KeySet::new(
            zone(false),
            apex,
            vec![key(1, KeyRole::Ksk, KeyState::Active)],
        )
        .unwrap();
        assert!(
            quiet.apex_rrset(Rtype::CDS).is_empty(),
            "policy publishes no CDS"
        );
        assert!(!quiet.is_signed(), "no ZSK");
    }

    #[test]
    fn cds_during_rollover_is_up_from_the_ds_swap_until_the_old_ksk_goes() {
        use crate::store::schema::Roll;
        let apex: Name<Vec<u8>> = "example.".parse().unwrap();
        let at = |step: Option<RollStep>, old: KeyState| {
            let mut z = zone(false);
            z.policy.cds_during_rollover = true;
            z.lifecycle.roll = step.map(|step| Roll {
                role: KeyRole::Ksk,
                old: "01".into(),
                new: "02".into(),
                step,
                since: 0,
                ttl: 0,
                manual: false,
                seen_at: 0,
                old_zsk: String::new(),
                new_zsk: String::new(),
                double_ds: false,
                rfc5011: false,
                csk: false,
            });
            let keys = vec![
                key(1, KeyRole::Ksk, old),
                key(2, KeyRole::Ksk, KeyState::Active),
                key(3, KeyRole::Zsk, KeyState::Active),
            ];
            let set = KeySet::new(z, apex.clone(), keys).unwrap();
            set.apex_rrset(Rtype::CDNSKEY).to_vec()
        };
        assert!(at(None, KeyState::Retired).is_empty(), "no roll: no CDS");
        assert!(at(Some(RollStep::KskPublished), KeyState::Active).is_empty());
        let new_only = at(Some(RollStep::KskDsSubmitted), KeyState::Leaving);
        assert_eq!(new_only.len(), 1, "the new KSK's only");
        assert_eq!(new_only, at(Some(RollStep::KskDsSeen), KeyState::Leaving));
    }
}
