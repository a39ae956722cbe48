//! Making a version of a zone: the last one patched by the source's known
//! change where that can be done (`dnssec::patch`), the source signed
//! whole otherwise; read back for serving; and how to have the last one
//! back when the new one is not published.

use std::net::IpAddr;
use std::sync::Arc;

use domain::base::name::Name;

use super::served::SignedZone;
use crate::dnssec::reuse::{Previous, Undo};
use crate::dnssec::zone::ZoneStats;
use crate::signing::zone::{Changes, SourceChange};
use crate::signing::Signing;

/// A version made, with what gives the last one back if it is not
/// published, and its changes from the last.
pub type MadeVersion = (ZoneStats, Arc<Previous>, Back, Option<Changes>);

/// How to have the last version back when a new one is not published.
pub enum Back {
    /// It was left as it was (the new one was made whole).
    Kept(Option<Arc<Previous>>),
    /// It was patched into the new one.
    Undo(Undo),
}

impl Back {
    /// The last version, from the new one `made` if it was patched.
    pub fn restore(self, made: Option<Arc<Previous>>) -> Option<Arc<Previous>> {
        match (self, made) {
            (Back::Kept(old), _) => old,
            (Back::Undo(undo), Some(mut made)) => {
                Arc::make_mut(&mut made).undo(undo);
                Some(made)
            }
            // Patched, and lost on the way: the next version is made whole.
            (Back::Undo(_), None) => None,
        }
    }
}

/// The source signed whole, keeping what it can of `old`.
pub fn sign_whole(
    signing: &Signing,
    mut config: crate::signing::zone::ZoneSigning,
    text: &[u8],
    old: Option<Arc<Previous>>,
    serial: &mut dyn FnMut(u32) -> std::result::Result<u32, String>,
) -> std::result::Result<MadeVersion, (Back, String)> {
    config.config.previous = old.clone();
    match signing.sign_source_blocking(&config, text, serial) {
        Ok((stats, signed, changes)) => Ok((stats, Arc::new(signed), Back::Kept(old), changes)),
        Err(e) => Err((Back::Kept(old), e.to_string())),
    }
}

/// Makes the new version: the last one patched by the source's known
/// change where that can be done, the source signed whole otherwise.
pub fn make_version(
    signing: &Signing,
    config: crate::signing::zone::ZoneSigning,
    text: &[u8],
    (change, old): (Option<SourceChange>, Option<Arc<Previous>>),
    source_serial: u32,
    serial: &mut dyn FnMut(u32) -> std::result::Result<u32, String>,
) -> std::result::Result<MadeVersion, (Back, String)> {
    // `last` is moved, not cloned: the patch changes it in place, which it
    // can only do while it holds the one reference.
    let (change, mut last) = match (change, old) {
        (Some(change), Some(last)) => (change, last),
        (_, old) => return sign_whole(signing, config, text, old, serial),
    };
    match signing.patch_source_blocking(&config, &mut last, &change, source_serial, serial) {
        Ok(Some((stats, undo, changes))) => Ok((stats, last, Back::Undo(undo), changes)),
        Ok(None) => sign_whole(signing, config, text, Some(last), serial),
        Err(e) => Err((Back::Kept(Some(last)), e.to_string())),
    }
}

/// The new version read back for serving. One made whole is read whole;
/// one patched, or one whose change is journalled, has only its SOA read
/// here (its changes are read as the journal follows them).
pub fn read_back(
    apex: &Name<Vec<u8>>,
    stats: &ZoneStats,
    signed: &Previous,
    journalled: bool,
    secondaries: Vec<IpAddr>,
    tsig: Option<String>,
) -> std::result::Result<SignedZone, String> {
    let chunks = signed.chunks.clone();
    match stats.patched || journalled {
        true => {
            let count = stats.records_out as usize;
            SignedZone::parse_head(apex, chunks, count, secondaries, tsig)
        }
        false => SignedZone::parse(apex, chunks, secondaries, tsig),
    }
}

/// An error about a line of the master-file text a primary's transfer
/// was written as names the record instead: that text is no file the
/// operator has ("zone file line 24" would send them looking for one).
pub fn name_the_record(text: &[u8], error: &str) -> String {
    const AT: &str = "zone file line ";
    let Some(start) = error.find(AT) else {
        return error.to_string();
    };
    let rest = &error[start + AT.len()..];
    let Some((number, message)) = rest.split_once(": ") else {
        return error.to_string();
    };
    let Some(line) = number
        .parse::<usize>()
        .ok()
        .and_then(|n| text.split(|&b| b == b'\n').nth(n.saturating_sub(1)))
    else {
        return error.to_string();
    };
    format!(
        "{}the transferred record {}: {message}",
        &error[..start],
        crate::text::shown(&String::from_utf8_lossy(line))
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_transferred_zone_error_names_the_record_not_a_line() {
        let text = b"a.example. 60 IN A 192.0.2.1\nbig.example. 2147483648 IN A 192.0.2.2\n";
        let said = super::name_the_record(
            text,
            "zone file line 2: big.example. A: TTL 2147483648 is over 2^31 - 1 (RFC 2181 §8)",
        );
        assert_eq!(
            said,
            "the transferred record \"big.example. 2147483648 IN A 192.0.2.2\": big.example. A: \
             TTL 2147483648 is over 2^31 - 1 (RFC 2181 §8)"
        );
        assert_eq!(super::name_the_record(text, "no SOA"), "no SOA");
    }
}
