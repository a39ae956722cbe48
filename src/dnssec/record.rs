//! A compact record for sorting large zones in canonical order.
//!
//! A zone of a million RRsets is held as one `Rec` per record: one heap
//! block with the owner's canonical sort key followed by the record data in
//! canonical form (RFC 4034 §6.2). The sort key makes canonical name order
//! (RFC 4034 §6.1) a plain byte comparison:
//!
//! ```text
//! labels from the root down, each lower-cased, escaped, ended by 0x00;
//! then a final 0x00.   escape: 0x00 -> 01 01, 0x01 -> 01 02, else the byte
//! ```
//! Since no escaped byte is 0x00, a label's end sorts before any longer label
//! with the same prefix, and a name's end sorts before any child name.

use std::cmp::Ordering;
use std::fmt::Write as _;

use domain::base::name::{Name, ToName};
use domain::base::rdata::ParseRecordData;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};
use domain::base::{Rtype, Ttl};
use domain::dep::octseq::Parser;
use domain::rdata::ZoneRecordData;

/// One record: owner (as sort key), type, TTL and canonical record data.
#[derive(Clone, PartialEq, Eq)]
pub struct Rec {
    buf: Box<[u8]>,
    key_len: u16,
    pub rtype: Rtype,
    pub ttl: u32,
}

impl Rec {
    pub fn new(owner_key: &[u8], rtype: Rtype, ttl: u32, rdata: &[u8]) -> Rec {
        let mut buf = Vec::with_capacity(owner_key.len() + rdata.len());
        buf.extend_from_slice(owner_key);
        buf.extend_from_slice(rdata);
        Rec {
            buf: buf.into_boxed_slice(),
            key_len: owner_key.len() as u16,
            rtype,
            ttl,
        }
    }

    /// The serial of an SOA record (it sits 20 octets from the end of the
    /// RDATA, before REFRESH, RETRY, EXPIRE and MINIMUM; RFC 1035 §3.3.13).
    pub fn soa_serial(&self) -> u32 {
        let rd = self.rdata();
        u32::from_be_bytes(
            rd[rd.len() - 20..rd.len() - 16]
                .try_into()
                .expect("SOA RDATA"),
        )
    }

    /// Replaces the serial of an SOA record.
    pub fn set_soa_serial(&mut self, serial: u32) {
        let end = self.buf.len();
        self.buf[end - 20..end - 16].copy_from_slice(&serial.to_be_bytes());
    }

    /// The owner's canonical sort key.
    pub fn key(&self) -> &[u8] {
        &self.buf[..self.key_len as usize]
    }

    /// The record data in canonical wire form.
    pub fn rdata(&self) -> &[u8] {
        &self.buf[self.key_len as usize..]
    }

    /// Canonical order: owner, then type, then record data (RFC 4034 §6.3).
    pub fn canonical_cmp(&self, other: &Rec) -> Ordering {
        self.key()
            .cmp(other.key())
            .then(self.rtype.to_int().cmp(&other.rtype.to_int()))
            .then_with(|| self.rdata().cmp(other.rdata()))
    }

    /// Whether both records belong to the same RRset.
    pub fn same_rrset(&self, other: &Rec) -> bool {
        self.rtype == other.rtype && self.key() == other.key()
    }
}

/// The sort key of a name (see the module documentation).
pub fn name_key(name: &impl ToName) -> Vec<u8> {
    let labels: Vec<_> = name.iter_labels().collect();
    let mut key = Vec::with_capacity(name.compose_len() as usize + 2);
    for label in labels.iter().rev() {
        if label.is_root() {
            continue;
        }
        for &b in label.as_slice() {
            match b.to_ascii_lowercase() {
                0 => key.extend_from_slice(&[1, 1]),
                1 => key.extend_from_slice(&[1, 2]),
                c => key.push(c),
            }
        }
        key.push(0);
    }
    key.push(0);
    key
}

/// The lower-case wire form of the name with this sort key.
pub fn key_to_wire(key: &[u8]) -> Vec<u8> {
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < key.len() {
        match key[i] {
            0 => {
                if cur.is_empty() {
                    break; // end of name
                }
                labels.push(std::mem::take(&mut cur));
            }
            1 => {
                i += 1;
                cur.push(key.get(i).map_or(0, |&b| b - 1));
            }
            b => cur.push(b),
        }
        i += 1;
    }
    let mut wire = Vec::with_capacity(key.len() + 1);
    for l in labels.iter().rev() {
        wire.push(l.len() as u8);
        wire.extend_from_slice(l);
    }
    wire.push(0);
    wire
}

/// The name with this sort key.
pub fn key_to_name(key: &[u8]) -> Name<Vec<u8>> {
    // key_to_wire only ever produces a valid wire name from a key that
    // name_key made.
    Name::from_octets(key_to_wire(key)).unwrap_or_else(|_| Name::root_vec())
}

/// Number of labels of the name with this key, not counting the root.
pub fn key_label_count(key: &[u8]) -> usize {
    // Each label ends with a 0x00; escaped bytes are never 0x00.
    key.iter().filter(|&&b| b == 0).count().saturating_sub(1)
}

/// Whether `key` names `ancestor` or a name below it.
pub fn key_is_at_or_below(key: &[u8], ancestor: &[u8]) -> bool {
    let stem = &ancestor[..ancestor.len() - 1];
    key.starts_with(stem)
}

/// Whether `key` names a name strictly below `ancestor`.
pub fn key_is_below(key: &[u8], ancestor: &[u8]) -> bool {
    key.len() > ancestor.len() && key_is_at_or_below(key, ancestor)
}

/// Whether the leftmost label of the name is `*` (RFC 4592).
pub fn key_is_wildcard(key: &[u8]) -> bool {
    key.len() >= 3 && key.ends_with(&[0, b'*', 0, 0][..]) || key == [b'*', 0, 0]
}

/// The sort key of the parent of the name with this key; `None` at the root.
pub fn key_parent(key: &[u8]) -> Option<Vec<u8>> {
    if key.len() <= 1 {
        return None;
    }
    // Drop the final 0x00, then the last label with its terminator.
    let body = &key[..key.len() - 1];
    let without_end = &body[..body.len() - 1];
    let cut = without_end
        .iter()
        .rposition(|&b| b == 0)
        .map_or(0, |p| p + 1);
    let mut parent = body[..cut].to_vec();
    parent.push(0);
    Some(parent)
}

/// Writes one record in master-file format with a tab-separated layout.
pub fn write_record(out: &mut String, owner: &str, rtype: Rtype, ttl: u32, rdata: &[u8]) {
    let _ = write!(
        out,
        "{owner}\t{}\tIN\t{rtype}\t",
        Ttl::from_secs(ttl).as_secs()
    );
    write_rdata(out, rtype, rdata);
    out.push('\n');
}

/// Writes record data in presentation format, or RFC 3597 generic form when
/// the type is not one the DNS library knows.
pub fn write_rdata(out: &mut String, rtype: Rtype, rdata: &[u8]) {
    let mut parser = Parser::from_ref(rdata);
    match ZoneRecordData::<&[u8], domain::base::ParsedName<&[u8]>>::parse_rdata(rtype, &mut parser)
    {
        Ok(Some(data)) if parser.remaining() == 0 => {
            let _ = write!(out, "{}", data.display_zonefile(DisplayKind::Simple));
        }
        _ => {
            let _ = write!(out, "\\# {}", rdata.len());
            if !rdata.is_empty() {
                out.push(' ');
                for b in rdata {
                    let _ = write!(out, "{b:02x}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn key(s: &str) -> Vec<u8> {
        name_key(&Name::<Vec<u8>>::from_str(s).unwrap())
    }

    #[test]
    fn sort_keys_follow_rfc4034_canonical_order() {
        // The example of RFC 4034 §6.1, in order.
        let names = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let keys: Vec<_> = names.iter().map(|n| key(n)).collect();
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{:?} !< {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn keys_decode_to_lower_case_names() {
        let n = key_to_name(&key("WWW.Example.COM."));
        assert_eq!(n.to_string(), "www.example.com");
        assert_eq!(key_to_name(&key("\\000a.b.")).to_string(), "\\000a.b");
        assert_eq!(key_label_count(&key("a.b.c.")), 3);
        assert_eq!(key_label_count(&key(".")), 0);
    }

    #[test]
    fn ancestry_and_parents_are_read_from_keys() {
        let apex = key("example.");
        assert!(key_is_below(&key("a.b.example."), &apex));
        assert!(key_is_at_or_below(&apex, &apex));
        assert!(!key_is_below(&apex, &apex));
        assert!(!key_is_at_or_below(&key("example2."), &apex));
        assert!(!key_is_at_or_below(&key("xexample."), &apex));
        assert_eq!(key_parent(&key("a.b.example.")).unwrap(), key("b.example."));
        assert_eq!(key_parent(&apex).unwrap(), key("."));
        assert!(key_is_wildcard(&key("*.example.")));
        assert!(!key_is_wildcard(&key("a*.example.")));
    }
}
