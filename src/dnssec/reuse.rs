//! Signatures kept from one signed version of a zone to the next: an RRset
//! whose records, TTL and signing keys are as they were, and whose
//! signatures expire after the refresh window, keeps them; only changed
//! RRsets (and the NSEC/NSEC3 records and SOA around a change) and those
//! near expiry are signed again. Each version's signatures expire at
//! staggered times (a jitter per RRset), so that refreshing them is spread
//! over time rather than done for the whole zone at one instant.

use std::collections::HashMap;
use std::sync::Arc;

use domain::base::iana::Rtype;

use super::record::Rec;

/// What a signed version's RRset had: a digest of its records and TTL,
/// the keys that signed it, when the first of its signatures expires, and
/// where its lines are in that version's text (which chunk, where in it).
///
/// Kept small (a zone of 1M RRsets has about 1.7M of them): owner and type
/// as a 128-bit keyed hash, the records as another, the signing keys as a
/// 64-bit one; the hashes' keys are random per process, so no zone content
/// can be made to collide, and a version is only ever compared with one
/// made by the same process.
#[derive(Debug, Clone)]
pub struct Group {
    pub digest: u128,
    /// The signing keys' tags hashed; 0 for an RRset that is not signed
    /// (a delegation's NS, glue).
    pub keys: u64,
    /// RRSIGs of the RRset.
    pub sigs: u16,
    pub expiration: u32,
    /// Where the RRset's lines (records, then RRSIGs) are: the chunk's
    /// id, the offset in its text; and how far into them its RRSIG lines
    /// start.
    pub chunk: u32,
    pub start: u32,
    pub len: u32,
    pub sigs_at: u32,
}

/// 128 bits of keyed hash (two SipHash instances with random keys).
fn hash128(feed: impl Fn(&mut dyn std::hash::Hasher)) -> u128 {
    use std::hash::BuildHasher;
    static KEYS: std::sync::OnceLock<(std::hash::RandomState, std::hash::RandomState)> =
        std::sync::OnceLock::new();
    let (a, b) = KEYS.get_or_init(|| (Default::default(), Default::default()));
    let (mut ha, mut hb) = (a.build_hasher(), b.build_hasher());
    feed(&mut ha);
    feed(&mut hb);
    (u128::from(std::hash::Hasher::finish(&ha)) << 64) | u128::from(std::hash::Hasher::finish(&hb))
}

/// The key of an RRset: its owner (canonical sort key) and type.
pub fn group_key(owner: &[u8], rtype: Rtype) -> GroupKey {
    hash128(|h| {
        h.write(owner);
        h.write_u16(rtype.to_int());
    })
}

/// The signing keys of an RRset, as `Group::keys`.
pub fn keys_of(tags: &[u16]) -> u64 {
    if tags.is_empty() {
        return 0;
    }
    (hash128(|h| {
        for t in tags {
            h.write_u16(*t);
        }
    }) as u64)
        | 1
}

/// An RRset's owner and type, hashed (`group_key`).
pub type GroupKey = u128;

/// The RRsets of a version by key. The keys are keyed hashes already, so
/// the map uses their low bits as they are rather than hash them again.
pub type Groups = HashMap<GroupKey, Group, std::hash::BuildHasherDefault<KeyBits>>;

/// A `Hasher` for `GroupKey`s: their low 64 bits.
#[derive(Default)]
pub struct KeyBits(u64);

impl std::hash::Hasher for KeyBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for u128 keys; kept correct for any other use.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// A piece of a signed version's text: whole owners (an owner with its
/// glue and the names below a cut never straddle two chunks), one signing
/// batch as made. A version made from the last shares the chunks that did
/// not change with it.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Unique within the versions that share chunks.
    pub id: u32,
    pub text: Vec<u8>,
    /// The canonical sort key of the first owner (`record::name_key`).
    pub first: Vec<u8>,
    /// Records in it, RRSIGs included, and of them RRSIGs.
    pub records: u64,
    pub rrsigs: u64,
    /// The earliest expiration of its signatures (`u32::MAX`: none).
    pub expires: u32,
    /// Of an NSEC3 chain's records (which follow the owners', in hash
    /// order).
    pub chain: bool,
}

/// One signed version: its text in chunks, in zone order, and its RRsets,
/// by owner and type.
#[derive(Default, Clone)]
pub struct Previous {
    pub chunks: Vec<Arc<Chunk>>,
    /// Where each chunk (by id) is in `chunks`.
    pub at: HashMap<u32, usize>,
    pub groups: Groups,
}

impl std::fmt::Debug for Previous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Previous({} RRsets in {} chunks)",
            self.groups.len(),
            self.chunks.len()
        )
    }
}

impl Previous {
    /// A version of these chunks and RRsets.
    pub fn new(chunks: Vec<Arc<Chunk>>, groups: Groups) -> Previous {
        let at = places(&chunks);
        Previous { chunks, at, groups }
    }

    /// What the version had of an RRset.
    pub fn get(&self, key: GroupKey) -> Option<&Group> {
        self.groups.get(&key)
    }

    /// The lines of an RRset (records and RRSIGs) in this version's text.
    pub fn lines(&self, g: &Group) -> &[u8] {
        let Some(chunk) = self.at.get(&g.chunk).map(|&i| &self.chunks[i]) else {
            return &[];
        };
        let start = g.start as usize;
        chunk
            .text
            .get(start..start.saturating_add(g.len as usize))
            .unwrap_or_default()
    }

    /// Records in the version, RRSIGs included, and of them RRSIGs.
    pub fn counts(&self) -> (u64, u64) {
        self.chunks
            .iter()
            .fold((0, 0), |(r, s), c| (r + c.records, s + c.rrsigs))
    }

    /// The chunk ids from which a version made from this one numbers its
    /// new chunks.
    pub fn next_id(&self) -> u32 {
        self.chunks.iter().map(|c| c.id + 1).max().unwrap_or(0)
    }

    /// Makes this the version after a patch: `chunks` in place of the
    /// last ones, the RRsets `gone` removed and `came` put in. Returns what
    /// undoes it, should the new version not be published after all.
    pub fn apply(
        &mut self,
        chunks: Vec<Arc<Chunk>>,
        gone: impl IntoIterator<Item = GroupKey>,
        came: impl IntoIterator<Item = (GroupKey, Group)>,
    ) -> Undo {
        let mut groups = Vec::new();
        for k in gone {
            if let Some(g) = self.groups.remove(&k) {
                groups.push((k, Some(g)));
            }
        }
        for (k, g) in came {
            let old = self.groups.insert(k, g);
            groups.push((k, old));
        }
        let chunks = std::mem::replace(&mut self.chunks, chunks);
        self.at = places(&self.chunks);
        Undo { chunks, groups }
    }

    /// Makes this the version it was before `apply`.
    pub fn undo(&mut self, undo: Undo) {
        for (k, old) in undo.groups.into_iter().rev() {
            match old {
                Some(g) => self.groups.insert(k, g),
                None => self.groups.remove(&k),
            };
        }
        self.chunks = undo.chunks;
        self.at = places(&self.chunks);
    }

    /// The lines of the RRsets this version has and `next` has not.
    pub fn removed_in(&self, next: &Previous) -> Vec<u8> {
        let mut gone = Vec::new();
        for (k, g) in &self.groups {
            if !next.groups.contains_key(k) {
                gone.extend_from_slice(self.lines(g));
            }
        }
        gone
    }

    /// The earliest expiration of any signature of the version.
    pub fn earliest_expiration(&self) -> Option<u32> {
        self.groups
            .values()
            .filter(|g| g.keys != 0)
            .map(|g| g.expiration)
            .min()
    }
}

/// Where each chunk (by id) is in a version's list.
fn places(chunks: &[Arc<Chunk>]) -> HashMap<u32, usize> {
    chunks.iter().enumerate().map(|(i, c)| (c.id, i)).collect()
}

/// What `Previous::apply` changed: the chunks it replaced, and each RRset
/// it removed or replaced as it was (None: it was new).
#[derive(Debug, Default)]
pub struct Undo {
    chunks: Vec<Arc<Chunk>>,
    groups: Vec<(GroupKey, Option<Group>)>,
}

/// A digest of an RRset's records and TTL (its owner and type are the key).
pub fn digest(rrset: &[Rec]) -> u128 {
    hash128(|h| {
        h.write_u32(rrset[0].ttl);
        for r in rrset {
            h.write_usize(r.rdata().len());
            h.write(r.rdata());
        }
    })
}

/// How much earlier than the zone's expiration signatures expire: up to
/// `spread` seconds, the same for an owner and type in every version
/// (FNV-1a of them), so that their refreshes stay spread. The zone signer
/// gives each chunk one offset (of its first owner), so that a refresh
/// round is due in some chunks only.
pub fn jitter(owner: &[u8], rtype: Rtype, spread: u32) -> u32 {
    if spread == 0 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in owner.iter().chain(&rtype.to_int().to_be_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(spread)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(chunk: u32, start: u32, len: u32) -> Group {
        Group {
            digest: u128::from(chunk) << 32 | u128::from(start),
            keys: 1,
            sigs: 1,
            expiration: 100,
            chunk,
            start,
            len,
            sigs_at: 0,
        }
    }

    fn chunk(id: u32, text: &str) -> Arc<Chunk> {
        Arc::new(Chunk {
            id,
            text: text.as_bytes().to_vec(),
            records: 1,
            expires: u32::MAX,
            ..Chunk::default()
        })
    }

    #[test]
    fn a_patch_reads_the_new_chunks_and_its_undo_gives_the_last_version_back() {
        let (a, b, c) = (1u128, 2u128, 3u128);
        let mut groups = Groups::default();
        groups.insert(a, group(0, 0, 4));
        groups.insert(b, group(1, 0, 4));
        let mut v = Previous::new(vec![chunk(0, "aaaa"), chunk(1, "bbbb")], groups);
        assert_eq!(v.lines(&v.groups[&b]), b"bbbb");
        assert_eq!(v.next_id(), 2);
        // Chunk 1 replaced by chunk 2: b gone, c new, a as it was.
        let undo = v.apply(
            vec![v.chunks[0].clone(), chunk(2, "xxcccc")],
            [b],
            [(c, group(2, 2, 4))],
        );
        assert_eq!(v.lines(&v.groups[&c]), b"cccc");
        assert_eq!(v.lines(&v.groups[&a]), b"aaaa");
        assert!(v.get(b).is_none());
        assert_eq!(v.counts(), (2, 0));
        v.undo(undo);
        assert_eq!(v.groups.len(), 2);
        assert_eq!(v.lines(&v.groups[&b]), b"bbbb");
        assert!(v.get(c).is_none());
        assert_eq!(v.chunks.iter().map(|c| c.id).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn jitter_is_stable_per_rrset_and_within_the_spread() {
        let a = jitter(b"\x03www", Rtype::A, 3600);
        assert_eq!(a, jitter(b"\x03www", Rtype::A, 3600));
        assert!(a < 3600);
        assert_eq!(jitter(b"\x03www", Rtype::A, 0), 0);
        let spread: std::collections::HashSet<u32> = (0..100u32)
            .map(|i| jitter(format!("host{i}").as_bytes(), Rtype::A, 3600))
            .collect();
        assert!(
            spread.len() > 90,
            "jitter does not spread: {}",
            spread.len()
        );
    }
}
