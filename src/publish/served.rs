//! The signed zones this node serves as their Key Master: each version
//! as the signer's text with its SOA and the journal of changes that led
//! to it (for IXFR), and the primaries whose NOTIFY is taken. `dns.rs`
//! serves them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use domain::base::iana::Rtype;
use domain::base::{Name, ToName};
use domain::rdata::ZoneRecordData;

use crate::dnssec::reuse::Chunk;

/// A record of a served zone.
pub type ServedRecord = crate::dnssec::check::Rec;

/// Changes kept for IXFR, at most.
const JOURNAL_DIFFS: usize = 64;

/// One change between two served versions: the old and new SOA, and the
/// records deleted and added besides them.
#[derive(Debug)]
pub struct Diff {
    pub(super) from: ServedRecord,
    pub(super) to: ServedRecord,
    pub(super) deleted: Vec<ServedRecord>,
    pub(super) added: Vec<ServedRecord>,
}

/// The records of master-file text (the signer's own lines), the apex SOA
/// apart.
pub(super) fn read_records(
    apex: &Name<Vec<u8>>,
    text: &[u8],
) -> Result<(Option<ServedRecord>, Vec<ServedRecord>), String> {
    let (mut soa, mut records) = (None, Vec::new());
    for r in crate::dnssec::check::read_records(apex, text)? {
        if r.rtype() == Rtype::SOA && r.owner().name_eq(apex) {
            soa.get_or_insert(r);
        } else {
            records.push(r);
        }
    }
    Ok((soa, records))
}

pub(super) fn serial_of(soa: &ServedRecord) -> Result<u32, String> {
    match soa.data() {
        ZoneRecordData::Soa(s) => Ok(s.serial().into_int()),
        _ => Err("the signed zone's SOA does not read back".into()),
    }
}

/// One signed version of a zone, as served.
#[derive(Debug)]
pub struct SignedZone {
    pub serial: u32,
    pub(super) soa: ServedRecord,
    pub(super) apex: Name<Vec<u8>>,
    /// The signed zone as the signer wrote it (one record per line, names
    /// absolute), in chunks shared with the signer and with the versions
    /// before and after: read again chunk by chunk for each AXFR, so that
    /// the zone is held once, as text, rather than also as records.
    pub(super) chunks: Vec<Arc<Chunk>>,
    /// Records in it, the apex SOA included.
    pub(super) count: usize,
    /// Addresses allowed to transfer the zone.
    pub(super) secondaries: Vec<IpAddr>,
    /// The changes that led to this version, oldest first.
    pub(super) journal: Vec<Arc<Diff>>,
    /// The TSIG key a transfer request must be signed with (name, lower
    /// case with the trailing dot).
    pub(super) tsig: Option<String>,
}

/// A delegation in a served version: the child, its NS targets and the
/// DS records the version carries for it (presentation form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegated {
    pub child: String,
    pub ns: Vec<String>,
    pub ds: Vec<String>,
}

impl SignedZone {
    /// The zone cuts below the apex, as this version has them (NS RRsets
    /// away from the apex), with their DS records.
    pub fn delegations(&self) -> Vec<Delegated> {
        let apex = format!("{}", self.apex).to_ascii_lowercase();
        let apex = if apex.ends_with('.') {
            apex
        } else {
            format!("{apex}.")
        };
        let mut out: std::collections::BTreeMap<String, Delegated> = Default::default();
        let lines = self
            .chunks
            .iter()
            .flat_map(|c| c.text.split(|b| *b == b'\n'))
            .map(String::from_utf8_lossy);
        for line in lines {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [owner, _ttl, _class, rtype, rdata @ ..] = f.as_slice() else {
                continue;
            };
            let owner = owner.to_ascii_lowercase();
            if owner == apex || !matches!(*rtype, "NS" | "DS") {
                continue;
            }
            let d = out.entry(owner.clone()).or_insert_with(|| Delegated {
                child: owner,
                ns: Vec::new(),
                ds: Vec::new(),
            });
            match *rtype {
                "NS" => d.ns.push(rdata.join(" ")),
                _ => d.ds.push(rdata.join(" ")),
            }
        }
        out.into_values().filter(|d| !d.ns.is_empty()).collect()
    }

    /// Takes the signer's own output (a master file); it must read back,
    /// chunk by chunk as a transfer reads it, with one apex SOA.
    pub fn parse(
        apex: &Name<Vec<u8>>,
        chunks: Vec<Arc<Chunk>>,
        secondaries: Vec<IpAddr>,
        tsig: Option<String>,
    ) -> Result<SignedZone, String> {
        let (mut soa, mut count) = (None, 0);
        for chunk in &chunks {
            let (s, records) = read_records(apex, &chunk.text)?;
            count += records.len();
            if let Some(s) = s {
                if soa.replace(s).is_some() {
                    return Err("the signed zone has two SOA records".into());
                }
                count += 1;
            }
        }
        let soa = soa.ok_or("the signed zone has no SOA")?;
        Self::new(apex, chunks, soa, count, secondaries, tsig)
    }

    /// Takes a version made from the last one: only its first chunk is
    /// read, which holds the apex SOA (the signer writes it first); its
    /// changes are read by `follow`.
    pub fn parse_head(
        apex: &Name<Vec<u8>>,
        chunks: Vec<Arc<Chunk>>,
        count: usize,
        secondaries: Vec<IpAddr>,
        tsig: Option<String>,
    ) -> Result<SignedZone, String> {
        let first = chunks
            .first()
            .map(|c| c.text.as_slice())
            .unwrap_or_default();
        let (soa, _) = read_records(apex, first)?;
        let soa = soa.ok_or("the signed zone does not begin with its SOA")?;
        Self::new(apex, chunks, soa, count, secondaries, tsig)
    }

    fn new(
        apex: &Name<Vec<u8>>,
        chunks: Vec<Arc<Chunk>>,
        soa: ServedRecord,
        count: usize,
        secondaries: Vec<IpAddr>,
        tsig: Option<String>,
    ) -> Result<SignedZone, String> {
        Ok(SignedZone {
            serial: serial_of(&soa)?,
            soa,
            apex: apex.clone(),
            chunks,
            count,
            secondaries,
            tsig,
            journal: Vec::new(),
        })
    }

    /// Adds the change from the version served before (its journal and
    /// the lines that went and came) to this version's journal, so that a
    /// secondary at one of the journal's serials is sent only the changes
    /// (IXFR, RFC 1995). The journal keeps at most `JOURNAL_DIFFS` changes
    /// and no more records than the zone has.
    pub fn follow(
        &mut self,
        apex: &Name<Vec<u8>>,
        before: &SignedZone,
        gone: &[u8],
        came: &[u8],
    ) -> Result<(), String> {
        let (_, deleted) = read_records(apex, gone)?;
        let (_, added) = read_records(apex, came)?;
        let mut journal = before.journal.clone();
        journal.push(Arc::new(Diff {
            from: before.soa.clone(),
            to: self.soa.clone(),
            deleted,
            added,
        }));
        let mut size: usize = journal
            .iter()
            .map(|d| d.deleted.len() + d.added.len())
            .sum();
        while journal.len() > JOURNAL_DIFFS || (size > self.count && !journal.is_empty()) {
            let first = journal.remove(0);
            size -= first.deleted.len() + first.added.len();
        }
        self.journal = journal;
        Ok(())
    }

    /// Records in the change that led to this version (its IXFR from the
    /// last serial, both SOAs counted twice as sent), if there is one.
    pub fn last_change_records(&self) -> Option<usize> {
        self.journal
            .last()
            .filter(|d| serial_of(&d.to).ok() == Some(self.serial))
            .map(|d| d.deleted.len() + d.added.len() + 4)
    }

    /// The journal's changes from `serial` to this version, if it has them.
    pub(super) fn changes_since(&self, serial: u32) -> Option<&[Arc<Diff>]> {
        let i = self
            .journal
            .iter()
            .position(|d| serial_of(&d.from).ok() == Some(serial))?;
        Some(&self.journal[i..])
    }

    pub fn records(&self) -> usize {
        self.count
    }
}

/// A zone's stored name (`node::ZoneName`: lower case, trailing
/// dot) from a name as `domain` shows it.
pub(super) fn zone_key(name: &impl std::fmt::Display) -> String {
    format!("{name}.").to_ascii_lowercase()
}

/// What hears a NOTIFY(CDS) or NOTIFY(CDNSKEY) (RFC 9859 §4) that this
/// node's DNS listener takes: the child poller, which polls the child at
/// once (services.rs wires it).
pub trait CdsNotices: Send + Sync {
    /// `child` (stored form) says its CDS/CDNSKEY changed.
    fn notice(&self, child: &str, from: std::net::SocketAddr) -> CdsNotice;
}

/// What became of a NOTIFY(CDS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdsNotice {
    /// The child is polled now.
    Polled,
    /// The child was polled on a NOTIFY moments ago: not again yet.
    TooSoon,
    /// Not a child this node keeps a delegation of.
    Unknown,
}

/// The zones this node serves, by stored name (lower case, trailing dot);
/// and the primaries whose NOTIFY it takes for zones it pulls.
#[derive(Default)]
pub struct Served {
    zones: RwLock<HashMap<String, Arc<SignedZone>>>,
    primaries: RwLock<HashMap<String, IpAddr>>,
    /// The zones kept signed by another node, with their Key Master: a
    /// NOTIFY for one of them is refused as such (said once per zone and
    /// Key Master, not once per NOTIFY).
    elsewhere: RwLock<HashMap<String, String>>,
    told: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    notified: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Woken by each NOTIFY taken.
    pub notifies: tokio::sync::Notify,
    cds_notices: std::sync::OnceLock<Arc<dyn CdsNotices>>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("zones", &self.names())
            .finish()
    }
}

impl Served {
    pub fn put(&self, zone: &str, signed: Arc<SignedZone>) {
        self.zones
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(zone.to_string(), signed);
    }

    /// Stops serving a zone; whether it was served.
    pub fn remove(&self, zone: &str) -> bool {
        self.zones
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(zone)
            .is_some()
            | self
                .primaries
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(zone)
                .is_some()
    }

    /// Who hears NOTIFY(CDS) and NOTIFY(CDNSKEY); until set, they are
    /// refused as for an unknown child.
    pub fn hear_cds_notices(&self, to: Arc<dyn CdsNotices>) {
        let _ = self.cds_notices.set(to);
    }

    /// A NOTIFY(CDS) or NOTIFY(CDNSKEY) for `child`.
    pub(super) fn cds_notice(&self, child: &str, from: std::net::SocketAddr) -> CdsNotice {
        match self.cds_notices.get() {
            Some(to) => to.notice(child, from),
            None => CdsNotice::Unknown,
        }
    }

    /// The zones with a source whose Key Master is another node.
    pub fn set_elsewhere(&self, zones: HashMap<String, String>) {
        *self.elsewhere.write().unwrap_or_else(|p| p.into_inner()) = zones;
    }

    /// Takes NOTIFY for the zone from this address (its primary).
    pub fn expect_notify_from(&self, zone: &str, primary: IpAddr) {
        self.primaries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(zone.to_string(), primary);
    }

    /// Whether a NOTIFY for the zone came since the last call.
    pub fn take_notified(&self, zone: &str) -> bool {
        self.notified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(zone)
    }

    pub fn get(&self, zone: &str) -> Option<Arc<SignedZone>> {
        self.zones
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(zone)
            .cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.zones
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The served zone a name is at or below (the longest match), with
    /// whether the name is its apex.
    pub(super) fn find(&self, qname: &impl ToName) -> Option<(Arc<SignedZone>, bool)> {
        let zones = self.zones.read().unwrap_or_else(|p| p.into_inner());
        let name: Name<Vec<u8>> = qname.to_name();
        for (i, suffix) in name.iter_suffixes().enumerate() {
            if suffix.is_root() {
                break;
            }
            let key = zone_key(&suffix);
            if let Some(z) = zones.get(&key) {
                return Some((z.clone(), i == 0));
            }
        }
        None
    }
}

/// NOTIFY (RFC 1996) from a zone's primary: the zone signer transfers the
/// zone again at once. From anyone else, or for another zone: NOTAUTH.
/// Long because of `domain`'s signature and because each refusal says its
/// own reason in the log.
impl domain::net::server::middleware::notify::Notifiable for Served {
    fn notify_zone_changed(
        &self,
        _class: domain::base::iana::Class,
        apex_name: &Name<Bytes>,
        serial: Option<domain::base::Serial>,
        source: IpAddr,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<(), domain::net::server::middleware::notify::NotifyError>,
                > + Sync
                + Send
                + '_,
        >,
    > {
        use domain::net::server::middleware::notify::NotifyError;
        let zone = zone_key(apex_name);
        let primary = self
            .primaries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&zone)
            .copied();
        let result = if primary == Some(source) {
            tracing::info!(%zone, %source, serial = ?serial.map(|s| s.into_int()), "NOTIFY from the primary");
            self.notified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(zone);
            self.notifies.notify_one();
            Ok(())
        } else {
            let elsewhere = self
                .elsewhere
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&zone)
                .cloned();
            match (primary, elsewhere) {
                (None, Some(key_master)) => {
                    let first = self
                        .told
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert((zone.clone(), key_master.clone()));
                    if first {
                        tracing::info!(
                            %zone,
                            %source,
                            %key_master,
                            "NOTIFY not taken: this node is not the zone's Key Master; its Key \
                             Master takes the primary's NOTIFY (said once)"
                        );
                    }
                }
                (Some(primary), _) => tracing::warn!(
                    %zone,
                    %source,
                    %primary,
                    "NOTIFY refused: not from the zone's primary"
                ),
                (None, None) => tracing::warn!(
                    %zone,
                    %source,
                    "NOTIFY refused: no zone of that name is kept from a primary here"
                ),
            }
            Err(NotifyError::NotAuthForZone)
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn a_zone_in_chunks_reads_back_whole() {
        let mut chunks = vec![Arc::new(Chunk {
            text: b"big.example.\t60\tIN\tSOA\tns.big.example. h.big.example. 9 10 10 60 60\n"
                .to_vec(),
            ..Chunk::default()
        })];
        for c in 0..20 {
            let mut text = String::new();
            for i in 0..1000 {
                let i = c * 1000 + i;
                text.push_str(&format!(
                    "h{i}.big.example.\t60\tIN\tA\t192.0.2.{}\n",
                    i % 250
                ));
            }
            let text = text.into_bytes();
            chunks.push(Arc::new(Chunk {
                id: c + 1,
                text,
                ..Chunk::default()
            }));
        }
        let apex = Name::<Vec<u8>>::from_str("big.example.").unwrap();
        let z = SignedZone::parse(&apex, chunks.clone(), vec![], None).unwrap();
        assert_eq!(z.serial, 9);
        assert_eq!(z.records(), 20_001);
        // A chunk that does not read back is refused.
        let mut broken = chunks;
        broken.push(Arc::new(Chunk {
            id: 99,
            text: b"h.big.example.\t60\tIN\tA\tnot-an-address\n".to_vec(),
            ..Chunk::default()
        }));
        assert!(SignedZone::parse(&apex, broken, vec![], None).is_err());
    }
}
