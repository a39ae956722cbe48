//! Reading a master file into compact records, with errors that name
//! the line of the entry at fault.

use domain::base::iana::{Class, Rtype};
use domain::base::name::Name;
use domain::base::rdata::ComposeRecordData;
use domain::zonefile::inplace::{Entry, ScannedRecord, Zonefile};

use super::{ZoneError, ZoneStats};
use crate::dnssec::record::{self, Rec};

/// Reads every record of a zone file into compact records, checking that
/// each lies in the zone and has class IN. DNSSEC records in the input
/// (RRSIG, NSEC, NSEC3, NSEC3PARAM, and DNSKEY, CDS, CDNSKEY at the apex) are
/// dropped: the signer makes its own.
pub fn read_zone(
    text: &[u8],
    apex: &Name<Vec<u8>>,
    limit: usize,
    stats: &mut ZoneStats,
) -> Result<Vec<Rec>, ZoneError> {
    let (mut zonefile, reader) = scanner(text, apex);
    let mut recs = Vec::new();
    let mut rdata = Vec::with_capacity(512);
    loop {
        let entry_start = zonefile.current_offset();
        let Some(r) = reader.next_record(&mut zonefile, entry_start)? else {
            break;
        };
        stats.records_in += 1;
        let Some(rec) = reader.compact(&r, entry_start, &mut rdata)? else {
            stats.dropped_dnssec += 1;
            continue;
        };
        if recs.len() >= limit {
            return Err(ZoneError::TooLarge {
                count: recs.len() + 1,
                limit,
            });
        }
        recs.push(rec);
    }
    Ok(recs)
}

/// The NSEC3 records of signed text (the chain's chunks, read back to be
/// signed again: `patch`).
pub fn read_nsec3(text: &[u8], apex: &Name<Vec<u8>>) -> Result<Vec<Rec>, ZoneError> {
    let (mut zonefile, reader) = scanner(text, apex);
    let (mut recs, mut rdata) = (Vec::new(), Vec::new());
    loop {
        let entry_start = zonefile.current_offset();
        let Some(r) = reader.next_record(&mut zonefile, entry_start)? else {
            break;
        };
        if r.rtype() == Rtype::NSEC3 {
            rdata.clear();
            let _ = r.data().compose_canonical_rdata(&mut rdata);
            let key = record::name_key(r.owner());
            recs.push(Rec::new(&key, Rtype::NSEC3, r.ttl().as_secs(), &rdata));
        }
    }
    Ok(recs)
}

/// domain's scanner over master-file text, relative names from the apex,
/// and what judges each entry.
fn scanner<'a>(text: &'a [u8], apex: &'a Name<Vec<u8>>) -> (Zonefile, Reader<'a>) {
    let mut zonefile = Zonefile::with_capacity(text.len());
    zonefile.extend_from_slice(text);
    let origin = Name::from_octets(bytes::Bytes::copy_from_slice(apex.as_slice()))
        .expect("apex is a valid name");
    zonefile.set_origin(origin);
    zonefile.set_default_class(Class::IN);
    let reader = Reader {
        text,
        apex,
        apex_key: record::name_key(apex),
    };
    (zonefile, reader)
}

/// The serial of the apex SOA among records `read_zone` read.
pub fn source_serial(recs: &[Rec], apex: &Name<Vec<u8>>) -> Result<u32, ZoneError> {
    let apex_key = record::name_key(apex);
    recs.iter()
        .find(|r| r.rtype == Rtype::SOA && r.key() == apex_key)
        .map(Rec::soa_serial)
        .ok_or_else(|| ZoneError::NoSoa {
            apex: apex.to_string(),
        })
}

/// What reading a zone file needs to know to judge each entry.
struct Reader<'a> {
    text: &'a [u8],
    apex: &'a Name<Vec<u8>>,
    apex_key: Vec<u8>,
}

impl Reader<'_> {
    /// The next record of the file, or None at its end.
    fn next_record(
        &self,
        zonefile: &mut Zonefile,
        entry_start: usize,
    ) -> Result<Option<ScannedRecord>, ZoneError> {
        // domain 0.12.3's scanner can panic on some malformed character
        // strings (index out of bounds in inplace.rs, found by fuzzing):
        // such an entry is refused like any other malformed one.
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| zonefile.next_entry()));
        match next {
            Ok(Ok(Some(Entry::Record(r)))) => Ok(Some(r)),
            Ok(Ok(Some(Entry::Include { .. }))) => Err(ZoneError::Include),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(parse_error(self.text, entry_start, &e.to_string())),
            Err(_) => Err(parse_error(
                self.text,
                entry_start,
                "malformed entry (the zone file scanner could not read it)",
            )),
        }
    }

    /// The record in compact form after checking it, or None for a DNSSEC
    /// record the signer replaces.
    fn compact(
        &self,
        r: &ScannedRecord,
        entry_start: usize,
        rdata: &mut Vec<u8>,
    ) -> Result<Option<Rec>, ZoneError> {
        let key = record::name_key(r.owner());
        let rtype = r.rtype();
        if !record::key_is_at_or_below(&key, &self.apex_key) {
            return Err(ZoneError::OutsideZone {
                owner: format!("{}", r.owner()),
                rtype: rtype.to_string(),
                apex: self.apex.to_string(),
            });
        }
        if r.class() != Class::IN {
            return Err(ZoneError::Class {
                owner: format!("{}", r.owner()),
                rtype: rtype.to_string(),
                class: r.class().to_string(),
            });
        }
        let signer_owned = matches!(
            rtype,
            Rtype::RRSIG | Rtype::NSEC | Rtype::NSEC3 | Rtype::NSEC3PARAM
        ) || (key == self.apex_key
            && matches!(rtype, Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY));
        if signer_owned {
            return Ok(None);
        }
        let ttl = r.ttl().as_secs();
        if ttl > crate::dnssec::rrset::MAX_TTL {
            let message = format!(
                "{}. {rtype}: TTL {ttl} is over 2^31 - 1 (RFC 2181 §8)",
                r.owner()
            );
            return Err(parse_error(self.text, entry_start, &message));
        }
        rdata.clear();
        let _ = r.data().compose_canonical_rdata(rdata);
        if rdata.len() > usize::from(u16::MAX) {
            let message = format!(
                "record data of {} octets is over the 65,535 a record can hold",
                rdata.len()
            );
            return Err(parse_error(self.text, entry_start, &message));
        }
        Ok(Some(Rec::new(&key, rtype, ttl, rdata)))
    }
}

/// The error of an entry that starts at byte `start`, named by the line
/// where the entry's first token is. (domain's scanner reports where it
/// stopped, which for an error at the end of a line is the next line.)
fn parse_error(text: &[u8], start: usize, message: &str) -> ZoneError {
    let mut pos = start.min(text.len());
    // Skip blank space, line ends and comments before the entry.
    while pos < text.len() {
        match text[pos] {
            b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
            b';' => {
                while pos < text.len() && text[pos] != b'\n' {
                    pos += 1;
                }
            }
            _ => break,
        }
    }
    let line = 1 + text[..pos].iter().filter(|&&b| b == b'\n').count();
    // Drop domain's own "LINE:COL: " prefix.
    let message = match message.splitn(3, ':').collect::<Vec<_>>().as_slice() {
        [l, c, rest] if l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok() => rest.trim(),
        _ => message,
    };
    ZoneError::Parse {
        line: line.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_that_crashes_the_scanner_is_refused_with_its_line() {
        // Found by `cargo fuzz run zonefile`: domain's scanner indexes out
        // of bounds on this character string.
        let crash = include_bytes!("../../../fuzz/corpus/zonefile/scanner-panic-1");
        let apex: Name<Vec<u8>> = "example.com.".parse().unwrap();
        let mut stats = ZoneStats::default();
        let e = match read_zone(crash, &apex, 1000, &mut stats) {
            Ok(_) => panic!("the crashing entry was accepted"),
            Err(e) => e,
        };
        assert!(matches!(e, ZoneError::Parse { .. }), "{e}");
        assert!(e.to_string().contains("zone file line"), "{e}");
    }
}
