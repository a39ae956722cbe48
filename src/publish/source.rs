//! Where a zone's unsigned data comes from: a master file on the Key
//! Master's host, or a primary that serves it by zone transfer (AXFR, on
//! NOTIFY and at the SOA refresh interval). Either way the signer gets
//! master-file text, so a zone is read and checked the same way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::Rtype;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};
use domain::base::{MessageBuilder, Name, ParsedName, Record};
use domain::net::client::request::{RequestMessage, RequestMessageMulti, SendRequestMulti};
use domain::net::client::{stream, tsig};
use domain::rdata::ZoneRecordData;
use domain::tsig::Key;

use crate::dns::soa_serial;
use crate::signing::zone::SourceChange;
use crate::store::schema::Publishing;

/// How long a transfer from a primary may take, all messages together.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);

/// A zone's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(String),
    Primary(SocketAddr),
}

/// A source's text (and its SHA-256), and for a primary the SOA REFRESH
/// to look again after, the serial of the version, and how it came (AXFR
/// or IXFR). The text is shared: the zone signer signs it and keeps it to
/// apply the next IXFR to, or to compare the file with when it changes.
/// When the change from the last text is known (an IXFR; a file changed
/// in lines that each stand alone), also that change, with the digest of
/// the text it applies to: the signer patches the last signed version by
/// it rather than sign the whole.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub text: Arc<Vec<u8>>,
    pub digest: Vec<u8>,
    pub refresh: Option<u32>,
    pub serial: Option<u32>,
    pub how: &'static str,
    pub change: Option<(Vec<u8>, SourceChange)>,
}

/// SHA-256 of a source's text.
fn digest_of(text: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, text)
        .as_ref()
        .to_vec()
}

impl Source {
    pub fn of(p: &Publishing) -> Option<Source> {
        if let Some(f) = &p.source_file {
            return Some(Source::File(f.clone()));
        }
        p.source_primary
            .as_deref()
            .and_then(|a| a.parse().ok())
            .map(Source::Primary)
    }

    /// A cheap sign of a change: a file's size and modification time, a
    /// primary's SOA serial. None when it cannot be had.
    pub async fn mark(&self, apex: &Name<Vec<u8>>) -> Option<String> {
        match self {
            Source::File(path) => {
                let m = tokio::fs::metadata(path).await.ok()?;
                Some(format!("{} {:?}", m.len(), m.modified().ok()?))
            }
            Source::Primary(addr) => {
                let serial = soa_serial(*addr, apex).await.ok()?;
                Some(format!("serial {serial}"))
            }
        }
    }

    /// The zone's text as it is now; an error names the file or primary.
    /// A transfer is signed with `tsig` when given, and then every answer
    /// must be signed with it too (RFC 8945); from `last`, the version a
    /// primary last gave, it asks for the differences only (IXFR).
    pub async fn fetch(
        &self,
        apex: &Name<Vec<u8>>,
        tsig: Option<&Key>,
        last: Option<&Fetched>,
    ) -> Result<Fetched, String> {
        match self {
            Source::File(path) => {
                let text = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("source file {path}: {e}"))?;
                let last = last.cloned();
                tokio::task::spawn_blocking(move || {
                    let change = last.and_then(|l| {
                        let c = super::file_diff::change(&l.text, &text)?;
                        Some((l.digest.clone(), c))
                    });
                    Fetched {
                        digest: digest_of(&text),
                        text: Arc::new(text),
                        refresh: None,
                        serial: None,
                        how: "file",
                        change,
                    }
                })
                .await
                .map_err(|e| format!("source file {path}: {e}"))
            }
            Source::Primary(addr) => {
                tokio::time::timeout(TRANSFER_TIMEOUT, from_primary(*addr, apex, tsig, last))
                    .await
                    .map_err(|_| {
                        format!("transfer from primary {addr}: no end within {TRANSFER_TIMEOUT:?}")
                    })?
                    .map_err(|e| format!("transfer from primary {addr}: {e}"))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::File(f) => format!("source file {f}"),
            Source::Primary(a) => format!("primary {a}"),
        }
    }
}

/// A record as a transfer brings it.
type Rr = Record<ParsedName<Bytes>, ZoneRecordData<Bytes, ParsedName<Bytes>>>;

/// A record as a master-file line (what the signer reads).
fn line_of(r: &Rr) -> String {
    format!(
        "{}. {} IN {} {}\n",
        r.owner(),
        r.ttl().as_secs(),
        r.rtype(),
        r.data().display_zonefile(DisplayKind::Simple)
    )
}

/// What makes two lines the same record: all but the TTL, the owner in
/// lower case.
fn key_of(line: &str) -> String {
    let mut f = line.split_whitespace();
    let owner = f.next().unwrap_or_default().to_ascii_lowercase();
    let _ttl = f.next();
    let rest: Vec<&str> = f.collect();
    format!("{owner} {}", rest.join(" "))
}

fn soa_of(r: &Rr) -> Option<(u32, u32)> {
    match r.data() {
        ZoneRecordData::Soa(soa) => Some((soa.serial().into_int(), soa.refresh().as_secs())),
        _ => None,
    }
}

/// The zone from a primary: by IXFR from the version `last` holds when
/// there is one (RFC 1995), applied to its text; by AXFR when there is
/// none, or when the IXFR fails or does not apply.
async fn from_primary(
    addr: SocketAddr,
    apex: &Name<Vec<u8>>,
    tsig: Option<&Key>,
    last: Option<&Fetched>,
) -> Result<Fetched, String> {
    if let Some(last) = last.filter(|l| l.serial.is_some()) {
        match transfer(addr, apex, tsig, last.serial)
            .await
            .and_then(|rs| apply_ixfr(last, rs))
        {
            Ok(f) => return Ok(f),
            Err(e) => {
                tracing::info!(%addr, zone = %apex, error = %e, "IXFR from the primary failed; AXFR instead")
            }
        }
    }
    let rs = transfer(addr, apex, tsig, None).await?;
    let Some((serial, refresh)) = rs.first().and_then(soa_of) else {
        return Err("the transfer does not begin with the SOA".into());
    };
    // The closing SOA repeats the first.
    let text: String = rs[..rs.len().saturating_sub(1).max(1)]
        .iter()
        .map(line_of)
        .collect();
    Ok(Fetched {
        digest: digest_of(text.as_bytes()),
        text: Arc::new(text.into_bytes()),
        refresh: Some(refresh),
        serial: Some(serial),
        how: "AXFR",
        change: None,
    })
}

/// The version an IXFR answer leads to from `last`: the same (the primary
/// has nothing newer), a whole zone (it answered as AXFR), or `last`'s
/// records with each difference's deletions and additions applied.
///
/// Long because the differences are summed and applied in one pass
/// over the kept copy, with the fallback to comparing records inline.
fn apply_ixfr(last: &Fetched, rs: Vec<Rr>) -> Result<Fetched, String> {
    let Some((serial, refresh)) = rs.first().and_then(soa_of) else {
        return Err("the IXFR answer does not begin with the SOA".into());
    };
    let unchanged = || Fetched {
        text: last.text.clone(),
        digest: last.digest.clone(),
        refresh: Some(refresh),
        serial: Some(serial),
        how: "IXFR",
        change: None,
    };
    if rs.len() == 1 {
        return match Some(serial) == last.serial {
            true => Ok(unchanged()),
            false => Err("the IXFR answer holds only a newer SOA".into()),
        };
    }
    if soa_of(&rs[1]).is_none() {
        // A whole zone, as an AXFR (RFC 1995 §4); the closing SOA repeats.
        let text: String = rs[..rs.len() - 1].iter().map(line_of).collect();
        return Ok(Fetched {
            digest: digest_of(text.as_bytes()),
            text: Arc::new(text.into_bytes()),
            how: "IXFR (whole zone)",
            ..unchanged()
        });
    }
    // The change in all: a record deleted by one difference and added
    // again by a later one (or the other way round) is no change.
    let mut net: std::collections::HashMap<String, i32> = Default::default();
    let mut deleting = None;
    for r in &rs[1..rs.len() - 1] {
        if soa_of(r).is_some() {
            // An old SOA starts a difference's deletions, the new SOA its
            // additions; each is itself removed or added.
            deleting = Some(deleting != Some(true));
        }
        let step = match deleting {
            Some(true) => -1,
            Some(false) => 1,
            None => return Err("the IXFR answer is malformed".into()),
        };
        *net.entry(line_of(r)).or_default() += step;
    }
    let mut change = SourceChange::default();
    for (line, n) in &net {
        let side = match n.signum() {
            -1 => &mut change.deleted,
            1 => &mut change.added,
            _ => continue,
        };
        for _ in 0..n.unsigned_abs() {
            side.extend_from_slice(line.as_bytes());
        }
    }
    let text = match remove_lines(&last.text, &change.deleted) {
        Some(mut text) => {
            text.extend_from_slice(&change.added);
            text
        }
        None => apply_by_record(&last.text, &change)?,
    };
    Ok(Fetched {
        digest: digest_of(&text),
        text: Arc::new(text),
        change: Some((last.digest.clone(), change)),
        ..unchanged()
    })
}

/// The text without the given lines (each taken once), in one pass; None
/// if one of them is not there as it is written (then `apply_by_record`).
fn remove_lines(text: &[u8], lines: &[u8]) -> Option<Vec<u8>> {
    let mut wanted: std::collections::HashMap<&[u8], usize> = Default::default();
    for l in lines.split_inclusive(|b| *b == b'\n') {
        *wanted.entry(l).or_default() += 1;
    }
    let mut left = lines.split_inclusive(|b| *b == b'\n').count();
    let mut out = Vec::with_capacity(text.len());
    for l in text.split_inclusive(|b| *b == b'\n') {
        match wanted.get_mut(l) {
            Some(n) if *n > 0 => {
                *n -= 1;
                left -= 1;
            }
            _ => out.extend_from_slice(l),
        }
    }
    (left == 0).then_some(out)
}

/// The change applied record by record: a deletion matches a line of the
/// same record whatever its TTL and the case of its owner.
fn apply_by_record(text: &[u8], change: &SourceChange) -> Result<Vec<u8>, String> {
    let mut lines: Vec<(String, String)> = String::from_utf8_lossy(text)
        .lines()
        .map(|l| (key_of(l), format!("{l}\n")))
        .collect();
    for line in String::from_utf8_lossy(&change.deleted).lines() {
        let key = key_of(line);
        let Some(i) = lines.iter().position(|(k, _)| *k == key) else {
            return Err(format!(
                "the IXFR deletes a record the last version does not have: {line}"
            ));
        };
        lines.swap_remove(i);
    }
    let mut out: Vec<u8> = lines
        .into_iter()
        .flat_map(|(_, l)| l.into_bytes())
        .collect();
    out.extend_from_slice(&change.added);
    Ok(out)
}

/// One transfer from a primary over TCP, AXFR or (from `ixfr_from`) IXFR:
/// its records in order. With a TSIG key, `domain`'s TSIG transport signs
/// the request and checks every answer.
///
/// Long because the transfer is one conversation (request, TSIG,
/// the answers until the closing SOA), with a named error at each step.
async fn transfer(
    addr: SocketAddr,
    apex: &Name<Vec<u8>>,
    tsig: Option<&Key>,
    ixfr_from: Option<u32>,
) -> Result<Vec<Rr>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_random_id();
    let mut msg = msg.question();
    let qtype = if ixfr_from.is_some() {
        Rtype::IXFR
    } else {
        Rtype::AXFR
    };
    msg.push((apex, qtype))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let msg = match ixfr_from {
        None => msg.into_message(),
        Some(serial) => {
            let mut msg = msg.authority();
            // RFC 1995 §3: the client's version, as its SOA (only the serial counts).
            let soa = domain::rdata::Soa::new(
                apex.clone(),
                apex.clone(),
                domain::base::Serial(serial),
                domain::base::Ttl::ZERO,
                domain::base::Ttl::ZERO,
                domain::base::Ttl::ZERO,
                domain::base::Ttl::ZERO,
            );
            msg.push((apex, domain::base::Ttl::ZERO, soa))
                .map_err(|e| format!("cannot build the request: {e}"))?;
            msg.into_message()
        }
    };
    let request =
        RequestMessageMulti::new(msg).map_err(|e| format!("cannot build the request: {e}"))?;
    // The plain connection must live until the last answer: the
    // transport closes once no handle to it is left (a TSIG request holds
    // its own).
    let plain;
    let (mut response, running) = match tsig {
        None => {
            let (connection, transport) = stream::Connection::<
                RequestMessage<Vec<u8>>,
                RequestMessageMulti<Vec<u8>>,
            >::new(tcp);
            let running = tokio::spawn(transport.run());
            plain = connection;
            (SendRequestMulti::send_request(&plain, request), running)
        }
        Some(key) => {
            let (connection, transport) = stream::Connection::<
                tsig::RequestMessage<RequestMessage<Vec<u8>>, Key>,
                tsig::RequestMessage<RequestMessageMulti<Vec<u8>>, Key>,
            >::new(tcp);
            let running = tokio::spawn(transport.run());
            let signed = tsig::Connection::new(key.clone(), connection);
            (SendRequestMulti::send_request(&signed, request), running)
        }
    };
    let mut records = Vec::new();
    let result = loop {
        let message = match response.get_response().await {
            Ok(Some(m)) => m,
            Ok(None) => break Ok(()),
            Err(e) => break Err(format!("{e}")),
        };
        let rcode = message.header().rcode();
        if rcode != domain::base::iana::Rcode::NOERROR {
            break Err(format!("answered {rcode}"));
        }
        let Ok(answer) = message.answer() else {
            break Err("a malformed answer".into());
        };
        for r in answer.limit_to::<ZoneRecordData<Bytes, ParsedName<Bytes>>>() {
            match r {
                Ok(r) => records.push(r),
                Err(e) => return Err(format!("a record does not read: {e}")),
            }
        }
    };
    running.abort();
    result?;
    if records.is_empty() {
        return Err("the transfer carried no records".into());
    }
    Ok(records)
}
