//! The signed zones this node serves as their Key Master, and the DNS
//! service that hands them to secondaries: AXFR (and IXFR, answered with
//! the whole zone, RFC 1995 §4) over TCP to the zone's secondaries, the
//! SOA to anyone who asks (a secondary's refresh check), REFUSED for the
//! rest: keymaster is a hidden primary, not a server for resolvers.
//!
//! The transport is NLnet Labs' `domain` (`net::server`); records are kept
//! as `domain` records and composed into messages by its message builder.
//! Its XFR middleware and zone tree are not used: the in-memory zone keeps
//! one RRset per type and name, so the RRSIGs of one name could not keep
//! each the TTL of the RRset it covers (RFC 4034 §3), and it refuses the
//! RRSIG and NSEC records a signed zone has at a delegation or a CNAME.

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use domain::base::iana::{Opcode, Rcode, Rtype};
use domain::base::message_builder::AnswerBuilder;
use domain::base::name::FlattenInto;
use domain::base::{Name, Record, StreamTarget, ToName};
use domain::net::server::message::Request;
use domain::net::server::service::{CallResult, Service, ServiceResult};
use domain::net::server::util::mk_builder_for_target;
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};
use tokio_stream::wrappers::ReceiverStream;

/// A record of a served zone.
pub type ServedRecord = Record<Name<Bytes>, ZoneRecordData<Bytes, Name<Bytes>>>;

/// Bytes of records per transfer message; well below the 64 KiB a DNS
/// message over TCP may have, as other servers do.
const MESSAGE_BYTES: usize = 16 * 1024;

/// Changes kept for IXFR, at most.
const JOURNAL_DIFFS: usize = 64;

/// One change between two served versions: the old and new SOA, and the
/// records deleted and added besides them.
#[derive(Debug)]
pub struct Diff {
    from: ServedRecord,
    to: ServedRecord,
    deleted: Vec<ServedRecord>,
    added: Vec<ServedRecord>,
}

/// The records of master-file text (the signer's own lines), the apex SOA
/// apart.
fn read_records(
    apex: &Name<Vec<u8>>,
    text: &[u8],
) -> Result<(Option<ServedRecord>, Vec<ServedRecord>), String> {
    let mut zonefile = Zonefile::with_capacity(text.len());
    zonefile.extend_from_slice(text);
    let origin =
        Name::from_octets(Bytes::copy_from_slice(apex.as_slice())).map_err(|e| e.to_string())?;
    zonefile.set_origin(origin.clone());
    zonefile.set_default_class(domain::base::iana::Class::IN);
    let (mut soa, mut records) = (None, Vec::new());
    for entry in zonefile {
        match entry.map_err(|e| format!("the signed zone does not read back: {e}"))? {
            Entry::Record(r) => {
                let r: ServedRecord = r.flatten_into();
                if r.rtype() == Rtype::SOA && r.owner().name_eq(&origin) {
                    soa.get_or_insert(r);
                } else {
                    records.push(r);
                }
            }
            _ => return Err("the signed zone holds a directive".into()),
        }
    }
    Ok((soa, records))
}

fn serial_of(soa: &ServedRecord) -> Result<u32, String> {
    match soa.data() {
        ZoneRecordData::Soa(s) => Ok(s.serial().into_int()),
        _ => Err("the signed zone's SOA does not read back".into()),
    }
}

/// One signed version of a zone, as served.
#[derive(Debug)]
pub struct SignedZone {
    pub serial: u32,
    soa: ServedRecord,
    apex: Name<Vec<u8>>,
    /// The signed zone as the signer wrote it (one record per line, names
    /// absolute): read again in pieces for each AXFR, so that the zone is
    /// held once, as text, rather than also as records.
    text: Arc<Vec<u8>>,
    /// Records in it, the apex SOA included.
    count: usize,
    /// Addresses allowed to transfer the zone.
    secondaries: Vec<IpAddr>,
    /// The changes that led to this version, oldest first.
    journal: Vec<Arc<Diff>>,
    /// The TSIG key a transfer request must be signed with (name, lower
    /// case with the trailing dot).
    tsig: Option<String>,
}

impl SignedZone {
    /// Takes the signer's own output (a master file); it must read back,
    /// piece by piece as a transfer reads it, with one apex SOA.
    pub fn parse(
        apex: &Name<Vec<u8>>,
        text: Arc<Vec<u8>>,
        secondaries: Vec<IpAddr>,
        tsig: Option<String>,
    ) -> Result<SignedZone, String> {
        let (mut soa, mut count) = (None, 0);
        for piece in pieces(&text) {
            let (s, records) = read_records(apex, piece)?;
            count += records.len();
            if let Some(s) = s {
                if soa.replace(s).is_some() {
                    return Err("the signed zone has two SOA records".into());
                }
                count += 1;
            }
        }
        let soa = soa.ok_or("the signed zone has no SOA")?;
        Ok(SignedZone {
            serial: serial_of(&soa)?,
            soa,
            apex: apex.clone(),
            text,
            count,
            secondaries,
            tsig,
            journal: Vec::new(),
        })
    }

    /// Takes a version made from the last one: only its first piece is
    /// read, which holds the apex SOA (the signer writes it first); its
    /// changes are read by `follow`.
    pub fn parse_head(
        apex: &Name<Vec<u8>>,
        text: Arc<Vec<u8>>,
        count: usize,
        secondaries: Vec<IpAddr>,
        tsig: Option<String>,
    ) -> Result<SignedZone, String> {
        let first = pieces(&text).next().unwrap_or_default();
        let (soa, _) = read_records(apex, first)?;
        let soa = soa.ok_or("the signed zone does not begin with its SOA")?;
        Ok(SignedZone {
            serial: serial_of(&soa)?,
            soa,
            apex: apex.clone(),
            text,
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
    fn changes_since(&self, serial: u32) -> Option<&[Arc<Diff>]> {
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

/// The zones this node serves, by stored name (lower case, trailing dot);
/// and the primaries whose NOTIFY it takes for zones it pulls.
#[derive(Debug, Default)]
pub struct Served {
    zones: RwLock<HashMap<String, Arc<SignedZone>>>,
    primaries: RwLock<HashMap<String, IpAddr>>,
    notified: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Woken by each NOTIFY taken.
    pub notifies: tokio::sync::Notify,
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
    fn find(&self, qname: &impl ToName) -> Option<(Arc<SignedZone>, bool)> {
        let zones = self.zones.read().unwrap_or_else(|p| p.into_inner());
        let name: Name<Vec<u8>> = qname.to_name();
        for (i, suffix) in name.iter_suffixes().enumerate() {
            if suffix.is_root() {
                break;
            }
            // The stored form (`node::parse_zone_name`).
            let key = format!("{suffix}.").to_ascii_lowercase();
            if let Some(z) = zones.get(&key) {
                return Some((z.clone(), i == 0));
            }
        }
        None
    }
}

/// The DNS service over the served zones.
#[derive(Debug, Clone)]
pub struct DnsService {
    pub served: Arc<Served>,
}

type Stream = ReceiverStream<ServiceResult<Vec<u8>>>;

/// What `domain`'s TSIG middleware says of a request: the key it was
/// signed with, if it was.
type Meta = Option<domain::tsig::Key>;

impl Service<Vec<u8>, Meta> for DnsService {
    type Target = Vec<u8>;
    type Stream = Stream;
    type Future = Ready<Stream>;

    fn call(&self, request: Request<Vec<u8>, Meta>) -> Ready<Stream> {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        match self.answer(&request) {
            Answer::One(rcode, records) => {
                let _ = tx.try_send(one_message(&request, rcode, &records));
            }
            Answer::Transfer(zone, since) => {
                tokio::task::spawn_blocking(move || transfer(&request, &zone, since, &tx));
            }
        }
        ready(ReceiverStream::new(rx))
    }
}

enum Answer {
    One(Rcode, Vec<ServedRecord>),
    /// The whole zone (AXFR), or the changes since a serial (IXFR).
    Transfer(Arc<SignedZone>, Option<u32>),
}

impl DnsService {
    fn answer(&self, request: &Request<Vec<u8>, Meta>) -> Answer {
        let msg = request.message();
        if msg.header().opcode() != Opcode::QUERY {
            return Answer::One(Rcode::NOTIMP, vec![]);
        }
        let Ok(question) = msg.sole_question() else {
            return Answer::One(Rcode::FORMERR, vec![]);
        };
        let Some((zone, at_apex)) = self.served.find(question.qname()) else {
            return Answer::One(Rcode::REFUSED, vec![]);
        };
        let client = request.client_addr();
        match question.qtype() {
            Rtype::AXFR | Rtype::IXFR => {
                if !zone.secondaries.contains(&client.ip()) {
                    tracing::warn!(
                        zone = %question.qname(),
                        %client,
                        "zone transfer refused: not one of the zone's secondaries"
                    );
                    return Answer::One(Rcode::REFUSED, vec![]);
                }
                let signed_with = request
                    .metadata()
                    .as_ref()
                    .map(|k| super::tsig::key_name_text(k.name()));
                if zone.tsig.is_some() && signed_with != zone.tsig {
                    tracing::warn!(
                        zone = %question.qname(),
                        %client,
                        "zone transfer refused: not signed with the zone's TSIG key {}",
                        zone.tsig.as_deref().unwrap_or_default()
                    );
                    return Answer::One(Rcode::REFUSED, vec![]);
                }
                if request.transport_ctx().is_udp() {
                    // RFC 1995 §2: the SOA alone tells the client to use TCP.
                    return Answer::One(Rcode::NOERROR, vec![zone.soa.clone()]);
                }
                // IXFR: the client's serial is in the SOA of the authority
                // section (RFC 1995 §3); without one, or one the journal
                // does not reach back to, the whole zone is sent.
                let since = (question.qtype() == Rtype::IXFR)
                    .then(|| client_serial(msg))
                    .flatten();
                if since == Some(zone.serial) {
                    return Answer::One(Rcode::NOERROR, vec![zone.soa.clone()]);
                }
                let changes = since.and_then(|s| zone.changes_since(s));
                let records = match changes {
                    Some(diffs) => diffs
                        .iter()
                        .map(|d| d.deleted.len() + d.added.len() + 2)
                        .sum::<usize>(),
                    None => zone.count - 1,
                } + 2;
                let since = since.filter(|_| changes.is_some());
                tracing::info!(
                    zone = %question.qname(),
                    %client,
                    serial = zone.serial,
                    qtype = %question.qtype(),
                    from = ?since,
                    records,
                    "zone transfer{}",
                    if since.is_some() { " (incremental)" } else { "" }
                );
                Answer::Transfer(zone, since)
            }
            Rtype::SOA if at_apex => Answer::One(Rcode::NOERROR, vec![zone.soa.clone()]),
            _ => Answer::One(Rcode::REFUSED, vec![]),
        }
    }
}

/// A response of one message.
fn one_message(
    request: &Request<Vec<u8>, Meta>,
    rcode: Rcode,
    records: &[ServedRecord],
) -> ServiceResult<Vec<u8>> {
    let mut answer = start(request, rcode)?;
    for r in records {
        answer
            .push(r)
            .map_err(|_| domain::net::server::service::ServiceError::InternalError)?;
    }
    Ok(CallResult::new(answer.additional()))
}

fn start(
    request: &Request<Vec<u8>, Meta>,
    rcode: Rcode,
) -> Result<AnswerBuilder<StreamTarget<Vec<u8>>>, domain::net::server::service::ServiceError> {
    let mut answer = mk_builder_for_target()
        .start_answer(request.message(), rcode)
        .map_err(|_| domain::net::server::service::ServiceError::InternalError)?;
    answer.header_mut().set_aa(rcode == Rcode::NOERROR);
    Ok(answer)
}

/// Pieces of the signed text of about 256 KiB, cut after a line end.
fn pieces(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    const PIECE: usize = 256 * 1024;
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = match rest
            .get(PIECE..)
            .and_then(|t| t.iter().position(|b| *b == b'\n'))
        {
            Some(i) => PIECE + i + 1,
            None => rest.len(),
        };
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// Fills transfer messages of about `MESSAGE_BYTES` and sends each when
/// full; false once the client has gone or a message cannot be made.
struct Messages<'a> {
    request: &'a Request<Vec<u8>, Meta>,
    tx: &'a tokio::sync::mpsc::Sender<ServiceResult<Vec<u8>>>,
    answer: Option<AnswerBuilder<StreamTarget<Vec<u8>>>>,
}

impl Messages<'_> {
    fn fresh(&self) -> Option<AnswerBuilder<StreamTarget<Vec<u8>>>> {
        match start(self.request, Rcode::NOERROR) {
            Ok(mut a) => {
                a.set_push_limit(MESSAGE_BYTES);
                Some(a)
            }
            Err(e) => {
                let _ = self.tx.blocking_send(Err(e));
                None
            }
        }
    }

    fn push(&mut self, r: &ServedRecord) -> bool {
        if self.answer.is_none() {
            self.answer = self.fresh();
        }
        let Some(a) = self.answer.as_mut() else {
            return false;
        };
        if a.push(r).is_ok() {
            return true;
        }
        let full = self.answer.take().expect("a message is being filled");
        if self
            .tx
            .blocking_send(Ok(CallResult::new(full.additional())))
            .is_err()
        {
            return false;
        }
        let Some(mut a) = self.fresh() else {
            return false;
        };
        if a.push(r).is_err() {
            tracing::error!(owner = %r.owner(), rtype = %r.rtype(), "a record does not fit a transfer message");
            return false;
        }
        self.answer = Some(a);
        true
    }

    fn finish(self) {
        if let Some(a) = self.answer {
            let _ = self.tx.blocking_send(Ok(CallResult::new(a.additional())));
        }
    }
}

/// Streams the zone as AXFR messages (RFC 5936 §2.2: the SOA, every
/// record, the SOA again), or the changes since a serial as IXFR (RFC 1995
/// §4: each change as the old SOA, the deletions, the new SOA, the
/// additions, the whole between the current SOA). Runs on a blocking
/// thread; stops when the client goes away.
fn transfer(
    request: &Request<Vec<u8>, Meta>,
    zone: &SignedZone,
    since: Option<u32>,
    tx: &tokio::sync::mpsc::Sender<ServiceResult<Vec<u8>>>,
) {
    let mut out = Messages {
        request,
        tx,
        answer: None,
    };
    if !out.push(&zone.soa) {
        return;
    }
    match since.and_then(|s| zone.changes_since(s)) {
        Some(diffs) => {
            for d in diffs {
                let records = std::iter::once(&d.from)
                    .chain(&d.deleted)
                    .chain(std::iter::once(&d.to))
                    .chain(&d.added);
                for r in records {
                    if !out.push(r) {
                        return;
                    }
                }
            }
        }
        None => {
            for piece in pieces(&zone.text) {
                let records = match read_records(&zone.apex, piece) {
                    Ok((_, records)) => records,
                    Err(e) => {
                        tracing::error!(error = %e, "the served zone does not read back; transfer stopped");
                        return;
                    }
                };
                for r in &records {
                    if !out.push(r) {
                        return;
                    }
                }
            }
        }
    }
    if out.push(&zone.soa) {
        out.finish();
    }
}

/// NOTIFY (RFC 1996) from a zone's primary: the zone signer transfers the
/// zone again at once. From anyone else, or for another zone: NOTAUTH.
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
        let zone = format!("{apex_name}.").to_ascii_lowercase();
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
            tracing::warn!(%zone, %source, "NOTIFY refused: not from the zone's primary");
            Err(NotifyError::NotAuthForZone)
        };
        Box::pin(std::future::ready(result))
    }
}

/// The serial in the authority section's SOA of an IXFR request.
fn client_serial(msg: &domain::base::Message<Vec<u8>>) -> Option<u32> {
    msg.authority()
        .ok()?
        .limit_to::<domain::rdata::Soa<domain::base::ParsedName<&[u8]>>>()
        .flatten()
        .map(|r| r.data().serial().into_int())
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn a_large_zone_reads_back_in_pieces_cut_at_line_ends() {
        let mut text = String::from(
            "big.example.\t60\tIN\tSOA\tns.big.example. h.big.example. 9 10 10 60 60\n",
        );
        for i in 0..20_000 {
            text.push_str(&format!(
                "h{i}.big.example.\t60\tIN\tA\t192.0.2.{}\n",
                i % 250
            ));
        }
        let bytes = text.into_bytes();
        let parts: Vec<&[u8]> = pieces(&bytes).collect();
        assert!(parts.len() > 1, "one piece only");
        assert!(parts.iter().all(|p| p.ends_with(b"\n")));
        assert_eq!(parts.concat(), bytes);
        let apex = Name::<Vec<u8>>::from_str("big.example.").unwrap();
        let z = SignedZone::parse(&apex, Arc::new(bytes), vec![], None).unwrap();
        assert_eq!(z.serial, 9);
        assert_eq!(z.records(), 20_001);
    }
}
