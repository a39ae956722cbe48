//! Writing a planned batch of RRsets as master-file text with their
//! signatures, reused from the last version or made now.

use domain::base::iana::Rtype;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};

use super::{Item, Signer, ZoneError, ZoneSignConfig};
use crate::dnssec::record::{self, Rec};
use crate::dnssec::reuse::{self, Group, GroupKey};
use crate::dnssec::sign::{self, KeyRole, SignWorker, SigningKey, Validity};

/// One signed batch in master-file form.
pub struct Rendered {
    pub text: String,
    /// Records in it, RRSIGs included, and of them RRSIGs, and of those
    /// the ones made now.
    pub records: u64,
    pub rrsigs: u64,
    pub made: u64,
    /// Each RRset, its lines placed within `text` (with `stagger`; the
    /// chunk id is left 0 for the caller to set).
    pub groups: Vec<(GroupKey, Group)>,
    /// The sort key of the batch's first owner.
    pub first: Vec<u8>,
    /// The earliest expiration of its signatures (`u32::MAX`: none).
    pub expires: u32,
    /// Of an NSEC3 chain's records.
    pub chain: bool,
    /// With a last version: the lines of its RRsets that changed, as they
    /// were and as they are now; and how many RRsets it had of this batch.
    pub gone: Vec<u8>,
    pub came: Vec<u8>,
    pub matched: usize,
}

/// Formats the RRsets of one batch with their signatures.
///
/// Long because the RRsets of a batch are written and signed in one
/// pass over the batch (each RRset's signatures reused or made, in order),
/// and that pass is the signer's hot loop.
pub(super) fn render_batch(
    items: &[Item],
    recs: &[Rec],
    denial_recs: &[Rec],
    config: &ZoneSignConfig,
    worker: &mut dyn SignWorker,
) -> Result<Rendered, ZoneError> {
    let mut out = Rendered {
        text: String::with_capacity(items.len() * 160),
        records: 0,
        rrsigs: 0,
        made: 0,
        groups: Vec::new(),
        first: Vec::new(),
        expires: u32::MAX,
        chain: false,
        gone: Vec::new(),
        came: Vec::new(),
        matched: 0,
    };
    if let Some(item) = items.first() {
        let source = if item.denial { denial_recs } else { recs };
        out.first = source[item.start as usize].key().to_vec();
        out.chain = item.denial;
    }
    let previous = config.previous.as_deref();
    // The owner's presentation and wire forms are made only when a record
    // of it is written: most RRsets of a version made from the last are
    // copied as they were.
    let (mut owner_key, mut forms): (&[u8], Option<OwnerName>) = (&[], None);
    for item in items {
        let source = if item.denial { denial_recs } else { recs };
        let rrset = &source[item.start as usize..(item.start + item.len) as usize];
        if rrset[0].key() != owner_key {
            owner_key = rrset[0].key();
            forms = None;
        }
        let rtype = rrset[0].rtype;
        let signing = match item.signer {
            Signer::Nobody => None,
            Signer::Zsk => Some((KeyRole::Zsk, config.validity)),
            Signer::Ksk => Some((KeyRole::Ksk, config.dnskey_validity)),
        };
        let signers: Vec<&SigningKey> = match signing {
            Some((role, _)) => config.keys.iter().filter(|k| k.role == role).collect(),
            None => Vec::new(),
        };
        let start = out.text.len();
        if !config.stagger {
            // A one-shot signing (`zone sign`): nothing is kept.
            let owner = forms.get_or_insert_with(|| OwnerName::of(owner_key));
            write_rrset(&mut out, rrset, owner);
            if let Some((_, validity)) = signing {
                for key in &signers {
                    write_rrsig(&mut out, rrset, owner, key, validity, config, worker)?;
                    out.made += 1;
                }
            }
            continue;
        }
        let tags: Vec<u16> = signers.iter().map(|k| k.key_tag).collect();
        let keys = reuse::keys_of(&tags);
        let digest = reuse::digest(rrset);
        let group = reuse::group_key(owner_key, rtype);
        let old = previous.and_then(|p| p.get(group).map(|g| (p, g)));
        out.matched += usize::from(old.is_some());
        // Unchanged records, the same keys, signatures not yet due: the
        // RRset's lines as they were (records and RRSIGs).
        let kept = old.filter(|(_, g)| {
            g.digest == digest
                && g.keys == keys
                && (keys == 0 || g.expiration >= config.reuse_until)
        });
        let (expiration, sigs_at) = match kept {
            Some((p, g)) => {
                out.text.push_str(&String::from_utf8_lossy(p.lines(g)));
                out.records += rrset.len() as u64 + u64::from(g.sigs);
                out.rrsigs += u64::from(g.sigs);
                (g.expiration, g.sigs_at)
            }
            None => {
                let owner = forms.get_or_insert_with(|| OwnerName::of(owner_key));
                write_rrset(&mut out, rrset, owner);
                let sigs_at = (out.text.len() - start) as u32;
                let mut expiration = u32::MAX;
                if let Some((_, mut validity)) = signing {
                    // Of the validity ahead, not of the whole window: the
                    // inception lies an offset (an hour) in the past, and
                    // a tenth of that window can exceed a short validity.
                    let spread = validity.expiration.saturating_sub(config.signed_at) / 10;
                    // One offset for the whole batch (its chunk), so that a
                    // refresh round is due in some chunks and not in others
                    // (and patches those alone).
                    validity.expiration -= reuse::jitter(&out.first, Rtype::NSEC, spread);
                    for key in &signers {
                        write_rrsig(&mut out, rrset, owner, key, validity, config, worker)?;
                        out.made += 1;
                    }
                    expiration = validity.expiration;
                }
                // What an IXFR from the last version carries for it.
                if let Some(p) = previous {
                    if let Some((_, g)) = old {
                        out.gone.extend_from_slice(p.lines(g));
                    }
                    out.came.extend_from_slice(&out.text.as_bytes()[start..]);
                }
                (expiration, sigs_at)
            }
        };
        if keys != 0 {
            out.expires = out.expires.min(expiration);
        }
        out.groups.push((
            group,
            Group {
                digest,
                keys,
                sigs: tags.len() as u16,
                expiration,
                chunk: 0,
                start: start as u32,
                len: (out.text.len() - start) as u32,
                sigs_at,
            },
        ));
    }
    Ok(out)
}

/// Writes an RRset's records.
fn write_rrset(out: &mut Rendered, rrset: &[Rec], owner: &OwnerName) {
    for r in rrset {
        record::write_record(&mut out.text, &owner.text, r.rtype, r.ttl, r.rdata());
    }
    out.records += rrset.len() as u64;
}

/// An owner name in the forms the output needs.
#[derive(Default)]
struct OwnerName {
    key: Vec<u8>,
    wire: Vec<u8>,
    /// Presentation form with the final dot.
    text: String,
}

impl OwnerName {
    fn of(key: &[u8]) -> OwnerName {
        let name = record::key_to_name(key);
        OwnerName {
            key: key.to_vec(),
            wire: record::key_to_wire(key),
            text: if name.is_root() {
                ".".to_string()
            } else {
                format!("{name}.")
            },
        }
    }
}

/// Signs an RRset with one key and writes the RRSIG record.
fn write_rrsig(
    out: &mut Rendered,
    rrset: &[Rec],
    owner: &OwnerName,
    key: &SigningKey,
    validity: Validity,
    config: &ZoneSignConfig,
    worker: &mut dyn SignWorker,
) -> Result<(), ZoneError> {
    use std::fmt::Write as _;
    let first = &rrset[0];
    let labels = sign::rrsig_labels(
        record::key_label_count(&owner.key),
        record::key_is_wildcard(&owner.key),
    );
    let rrsig = sign::sign_rrset(
        worker,
        key,
        &config.apex,
        &owner.wire,
        labels,
        first.rtype,
        first.ttl,
        rrset.iter().map(|r| r.rdata()),
        validity,
    )?;
    let _ = writeln!(
        out.text,
        "{}\t{}\tIN\tRRSIG\t{}",
        owner.text,
        first.ttl,
        rrsig.display_zonefile(DisplayKind::Simple)
    );
    out.rrsigs += 1;
    out.records += 1;
    Ok(())
}
