//! Signing for DNS servers: RRset batches, the apex RRsets the KSK signs,
//! the public material, and whole zones (`zone`), all on the token's one
//! signing pool and from the zone's key set (ARCHITECTURE.md, The signing
//! path).
//!
//! - `validity`: what inception and expiration a signature gets;
//! - `worker`: the DNSSEC code's view of a pool worker; cancelling work;
//! - `zone`: whole-zone signing, batch by batch on the pool.

pub mod validity;
pub mod worker;
pub mod zone;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::base::iana::Rtype;
use domain::base::name::Name;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};

use crate::dnssec::denial::Denial;
use crate::dnssec::ds::DsDigest;
use crate::dnssec::rrset::{self, CanonicalRrset, WireRecord};
use crate::dnssec::sign;
use crate::dnssec::{Algorithm, KeyRole, Validity};
use crate::error::{LimitError, Result, SigningError};
use crate::hsm::SigningPool;
use crate::keyset::{KeySet, KeySets};
use crate::node::{Node, ZoneName};

use validity::{validity_for, SigKind};
pub use worker::{Cancel, KeyWorker};
pub use zone::ZoneSigning;

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

/// The CDS and CDNSKEY RRsets with their KSK signatures.
#[derive(Debug, Clone)]
pub struct SignedCds {
    pub cds: Vec<OutRecord>,
    pub cdnskeys: Vec<OutRecord>,
    pub rrsigs: Vec<OutRecord>,
}

/// What an online signer must match (see `signing_parameters`).
#[derive(Debug, Clone)]
pub struct SigningParameters {
    pub zone: String,
    pub denial: Denial,
    /// Key tag and algorithm of each key that signs, by role.
    pub zsks: Vec<(u16, Algorithm)>,
    pub ksks: Vec<(u16, Algorithm)>,
    pub signature_validity: u32,
    pub dnskey_signature_validity: u32,
    pub signature_inception_offset: u32,
    pub dnskey_ttl: u32,
    pub max_batch_rrsets: usize,
}

/// A zone's key set as a DNS server follows it.
#[derive(Debug, Clone)]
pub struct KeySetView {
    pub dnskeys: Vec<OutRecord>,
    pub cds: Vec<OutRecord>,
    pub cdnskeys: Vec<OutRecord>,
    pub zsks: Vec<u16>,
    pub ksks: Vec<u16>,
}

impl KeySetView {
    /// Whether two views publish and sign alike.
    pub fn same(&self, other: &KeySetView) -> bool {
        let rdata = |v: &[OutRecord]| v.iter().map(|r| r.rdata.clone()).collect::<Vec<_>>();
        rdata(&self.dnskeys) == rdata(&other.dnskeys)
            && rdata(&self.cds) == rdata(&other.cds)
            && self.zsks == other.zsks
            && self.ksks == other.ksks
    }
}

/// KSK signatures kept for handing out again (see `ksk_signed`).
struct KskSignatures {
    rdatas: Vec<Vec<u8>>,
    ksks: Vec<u16>,
    ttl: u32,
    expiration: u32,
    rrsigs: Vec<OutRecord>,
}

/// The signing service of this node.
pub struct Signing {
    node: Arc<Node>,
    keysets: Arc<KeySets>,
    /// The one signing pool of the token.
    pool: SigningPool,
    limits: Limits,
    /// KSK signatures over the apex RRsets, by zone and type.
    ksk_signatures: Mutex<HashMap<(String, u16), KskSignatures>>,
}

impl Signing {
    pub fn new(node: Arc<Node>, keysets: Arc<KeySets>, limits: Limits) -> Signing {
        Signing {
            pool: SigningPool::start(node.hsm.clone()),
            node,
            keysets,
            limits,
            ksk_signatures: Mutex::new(HashMap::new()),
        }
    }

    /// The node's clock (for timing the phases of work done here).
    pub fn clock(&self) -> &Arc<dyn crate::clock::Clock> {
        &self.node.clock
    }

    /// When the key set this node signs the zone with was read, while it
    /// is a last-known one kept through a store outage (Unix seconds).
    pub fn last_known_since(&self, zone: &ZoneName) -> Option<u64> {
        self.keysets.last_known_since(zone)
    }

    /// Ends the signing pool's workers once their jobs are done (for the
    /// process's exit; blocks the calling thread).
    pub fn stop(&self) {
        self.pool.stop();
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// DS records of the KSKs the parent should have, and the DNSKEY RRset.
    pub async fn ds(
        &self,
        zone: &ZoneName,
        digests: &[DsDigest],
    ) -> Result<(Vec<OutRecord>, Vec<OutRecord>)> {
        let set = self.keysets.fresh(zone).await?;
        let policy = &set.zone.policy;
        let digests = if digests.is_empty() {
            policy.ds_digests()
        } else {
            digests.to_vec()
        };
        let ds = set
            .ds(&digests)?
            .into_iter()
            .map(|rdata| out_record(&set.apex, Rtype::DS, policy.ds_ttl, rdata))
            .collect();
        Ok((ds, apex_records(&set, Rtype::DNSKEY)))
    }

    /// The DNSKEY RRset with its signatures by the active KSKs.
    pub async fn signed_dnskeys(
        &self,
        who: &str,
        zone: &ZoneName,
    ) -> Result<(Vec<OutRecord>, Vec<OutRecord>)> {
        let set = self.keysets.fresh(zone).await?;
        let rrsigs = self.ksk_signed(who, &set, Rtype::DNSKEY).await?;
        Ok((apex_records(&set, Rtype::DNSKEY), rrsigs))
    }

    /// The CDS and CDNSKEY RRsets the zone publishes (empty when its policy
    /// publishes none), with their signatures by the active KSKs.
    pub async fn signed_cds(&self, who: &str, zone: &ZoneName) -> Result<SignedCds> {
        let set = self.keysets.fresh(zone).await?;
        let mut rrsigs = Vec::new();
        if !set.apex_rrset(Rtype::CDS).is_empty() {
            rrsigs.extend(self.ksk_signed(who, &set, Rtype::CDS).await?);
            rrsigs.extend(self.ksk_signed(who, &set, Rtype::CDNSKEY).await?);
        }
        Ok(SignedCds {
            cds: apex_records(&set, Rtype::CDS),
            cdnskeys: apex_records(&set, Rtype::CDNSKEY),
            rrsigs,
        })
    }

    /// Signatures by the active KSKs over one of the apex RRsets keymaster
    /// builds from its key records (ARCHITECTURE.md, Invariants 6). They
    /// are kept and handed out again until a quarter of their validity has
    /// passed or the RRset or the KSKs change, so that the KSK signs
    /// rarely; every signature it does make is written to the audit log
    /// first (fail closed).
    async fn ksk_signed(
        &self,
        who: &str,
        set: &Arc<KeySet>,
        rtype: Rtype,
    ) -> Result<Vec<OutRecord>> {
        let rdatas = set.apex_rrset(rtype).to_vec();
        let ksks: Vec<u16> = set.signers(KeyRole::Ksk).map(|k| k.key_tag).collect();
        let now = self.node.clock.now();
        let policy = &set.zone.policy;
        let cache_key = (set.zone.name.clone(), rtype.to_int());
        if let Some(rrsigs) = self.kept_ksk_signatures(&cache_key, set, &rdatas, &ksks) {
            return Ok(rrsigs);
        }
        let validity =
            validity_for(policy, now, 0, 0, SigKind::Dnskey).map_err(SigningError::from)?;
        let records: Vec<WireRecord> = rdatas
            .iter()
            .map(|rdata| WireRecord {
                class: 1,
                ttl: policy.dnskey_ttl,
                rdata: rdata.clone(),
            })
            .collect();
        let canon = rrset::canonicalize(&set.apex, set.apex.as_slice(), rtype.to_int(), &records)
            .map_err(|source| SigningError::Rrset { index: 0, source })?;
        let tags: Vec<String> = ksks.iter().map(u16::to_string).collect();
        self.node
            .audit_event(
                who,
                &set.zone.name,
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
            .sign_canonical(set.clone(), vec![canon], validity, true, Cancel::default())
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

    /// KSK signatures made earlier for the same RRset and KSKs, if a quarter
    /// of their validity has not yet passed.
    fn kept_ksk_signatures(
        &self,
        cache_key: &(String, u16),
        set: &KeySet,
        rdatas: &[Vec<u8>],
        ksks: &[u16],
    ) -> Option<Vec<OutRecord>> {
        let policy = &set.zone.policy;
        let kept = self
            .ksk_signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let c = kept.get(cache_key)?;
        let fresh = u64::from(c.expiration).saturating_sub(self.node.clock.now())
            >= u64::from(policy.dnskey_signature_validity) * 3 / 4;
        (fresh && c.rdatas == rdatas && c.ksks == ksks && c.ttl == policy.dnskey_ttl)
            .then(|| c.rrsigs.clone())
    }

    /// What a zone publishes and signs with now, for those who watch
    /// (`WatchKeySet`): the DNSKEY RRset, the tags that sign, CDS/CDNSKEY.
    pub async fn key_set_view(&self, zone: &ZoneName) -> Result<KeySetView> {
        let set = self.keysets.fresh(zone).await?;
        let tags = |role| set.signers(role).map(|k| k.key_tag).collect();
        Ok(KeySetView {
            dnskeys: apex_records(&set, Rtype::DNSKEY),
            cds: apex_records(&set, Rtype::CDS),
            cdnskeys: apex_records(&set, Rtype::CDNSKEY),
            zsks: tags(KeyRole::Zsk),
            ksks: tags(KeyRole::Ksk),
        })
    }

    /// Waits until this node changes some zone's keys, or `within` passes
    /// (another node may have changed them: read again then).
    pub async fn key_sets_changed(&self, within: std::time::Duration) {
        let mut changes = self.keysets.changes();
        let _ = tokio::time::timeout(within, changes.changed()).await;
    }

    /// What a DNS server that signs online must build to match this zone:
    /// its denial, the keys that sign each kind of RRset, and the times and
    /// TTLs in force.
    pub async fn signing_parameters(&self, zone: &ZoneName) -> Result<SigningParameters> {
        let set = self.keysets.get(zone).await?;
        let policy = &set.zone.policy;
        let tags = |role| {
            set.signers(role)
                .map(|k| (k.key_tag, k.algorithm))
                .collect()
        };
        Ok(SigningParameters {
            zone: set.zone.name.clone(),
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

    /// Signs a batch of RRsets for a DNS server; the whole batch is refused
    /// if one is bad. The apex DNSKEY, CDS and CDNSKEY RRsets are refused:
    /// the KSK signs only those keymaster builds (GetDnskeys, GetCds), or a
    /// signer could have it sign a key set or a CDS of its own making and
    /// so take the zone over at its parent (RFC 7344, RFC 8078). Signing
    /// stops at the next RRset once `cancel` is set.
    pub async fn sign_rrsets(
        &self,
        zone: &ZoneName,
        rrsets: Vec<RrsetRequest>,
        inception: u32,
        expiration: u32,
        with_text: bool,
        cancel: Cancel,
    ) -> Result<Vec<Vec<OutRecord>>> {
        if rrsets.is_empty() {
            return Err(SigningError::EmptyBatch.into());
        }
        if rrsets.len() > self.limits.max_batch_rrsets {
            return Err(LimitError::Batch {
                count: rrsets.len(),
                max: self.limits.max_batch_rrsets,
            }
            .into());
        }
        let set = self.keysets.get(zone).await?;
        let policy = &set.zone.policy;
        let now = self.node.clock.now();
        let validity = validity_for(policy, now, inception, expiration, SigKind::Zone)
            .map_err(SigningError::from)?;
        let denial = policy.denial();
        let mut canon = Vec::with_capacity(rrsets.len());
        for (index, r) in rrsets.iter().enumerate() {
            let c = rrset::canonicalize(&set.apex, &r.owner, r.rtype, &r.records)
                .and_then(|c| rrset::check_denial(&c, &denial).map(|_| c))
                .map_err(|source| SigningError::Rrset { index, source })?;
            if set.role_for(&c.owner, c.rtype) == KeyRole::Ksk {
                return Err(SigningError::KskOnly {
                    index,
                    rtype: c.rtype.to_string(),
                    fetch: if c.rtype == Rtype::DNSKEY {
                        "GetDnskeys"
                    } else {
                        "GetCds"
                    },
                }
                .into());
            }
            canon.push(c);
        }
        self.sign_canonical(set, canon, validity, with_text, cancel)
            .await
    }

    /// Signs canonical RRsets on the pool, each with the keys of the role
    /// the key set gives it, cut into one piece per worker (small batches
    /// stay whole).
    async fn sign_canonical(
        &self,
        set: Arc<KeySet>,
        canon: Vec<CanonicalRrset>,
        validity: Validity,
        with_text: bool,
        cancel: Cancel,
    ) -> Result<Vec<Vec<OutRecord>>> {
        let piece = canon.len().div_ceil(self.pool.count()).max(16);
        let canon = Arc::new(canon);
        let mut pending = Vec::new();
        for start in (0..canon.len()).step_by(piece) {
            let end = (start + piece).min(canon.len());
            let (set, canon, cancel) = (set.clone(), canon.clone(), cancel.clone());
            pending.push(self.pool.submit(move |signer| {
                let signer = signer.map_err(|e| SigningError::Worker(e.to_string()))?;
                let worker = &mut KeyWorker::new(signer, &set.zone.name);
                canon[start..end]
                    .iter()
                    .map(|c| {
                        if cancel.is_set() {
                            return Err(SigningError::Stopped);
                        }
                        sign_one(worker, &set, c, validity, with_text)
                    })
                    .collect::<std::result::Result<Vec<_>, SigningError>>()
            }));
        }
        let mut out = Vec::with_capacity(canon.len());
        for p in pending {
            let piece = p
                .wait()
                .await
                .ok_or(crate::error::Error::Lost("a signing worker"))?;
            out.extend(piece.map_err(crate::error::Error::from)??);
        }
        Ok(out)
    }
}

/// Signs one canonical RRset with the active keys of the role the key set
/// gives it.
fn sign_one(
    worker: &mut KeyWorker<'_>,
    set: &KeySet,
    c: &CanonicalRrset,
    validity: Validity,
    with_text: bool,
) -> std::result::Result<Vec<OutRecord>, SigningError> {
    let role = set.role_for(&c.owner, c.rtype);
    let mut sigs = Vec::new();
    for key in set.signers(role) {
        let rrsig = sign::sign_rrset(
            worker,
            key,
            &set.apex,
            &c.owner_wire,
            c.labels,
            c.rtype,
            c.ttl,
            c.rdatas.iter().map(|r| r.as_slice()),
            validity,
        )
        .map_err(|source| SigningError::Sign {
            zone: set.zone.name.clone(),
            source,
        })?;
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
        return Err(SigningError::NoActiveKey {
            zone: set.zone.name.clone(),
            role: role.as_str().to_uppercase(),
        });
    }
    Ok(sigs)
}

/// The apex RRset of this type, as records.
fn apex_records(set: &KeySet, rtype: Rtype) -> Vec<OutRecord> {
    let ttl = set.zone.policy.dnskey_ttl;
    set.apex_rrset(rtype)
        .iter()
        .map(|rdata| out_record(&set.apex, rtype, ttl, rdata.clone()))
        .collect()
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
