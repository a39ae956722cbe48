//! Where a zone's unsigned data comes from: a master file on the Key
//! Master's host, or a primary that serves it by zone transfer (AXFR, on
//! NOTIFY and at the SOA refresh interval). Either way the signer gets
//! master-file text, so a zone is read and checked the same way.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::Rtype;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};
use domain::base::{MessageBuilder, Name, ParsedName, Record};
use domain::net::client::request::{RequestMessage, RequestMessageMulti, SendRequestMulti};
use domain::net::client::{stream, tsig};
use domain::rdata::ZoneRecordData;
use domain::tsig::Key;

use crate::store::schema::Publishing;

/// How long a transfer from a primary may take, all messages together.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);

/// A zone's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(String),
    Primary(SocketAddr),
}

/// A source's text, and for a primary the SOA REFRESH to look again after.
pub struct Fetched {
    pub text: Vec<u8>,
    pub refresh: Option<u32>,
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
    /// must be signed with it too (RFC 8945).
    pub async fn fetch(&self, apex: &Name<Vec<u8>>, tsig: Option<&Key>) -> Result<Fetched, String> {
        match self {
            Source::File(path) => tokio::fs::read(path)
                .await
                .map(|text| Fetched {
                    text,
                    refresh: None,
                })
                .map_err(|e| format!("source file {path}: {e}")),
            Source::Primary(addr) => {
                tokio::time::timeout(TRANSFER_TIMEOUT, axfr(*addr, apex, tsig))
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

/// The SOA serial a server answers for the zone, or why there is none.
pub async fn soa_serial(server: SocketAddr, apex: &Name<Vec<u8>>) -> Result<u32, String> {
    let answer = crate::lifecycle::probe::query(server, apex, Rtype::SOA).await?;
    let section = answer.answer().map_err(|e| e.to_string())?;
    section
        .limit_to::<domain::rdata::Soa<ParsedName<Bytes>>>()
        .flatten()
        .map(|r| r.data().serial().into_int())
        .next()
        .ok_or_else(|| "answered without an SOA".to_string())
}

/// Transfers the zone from a primary by AXFR over TCP and writes its
/// records as master-file lines; with a TSIG key, `domain`'s TSIG
/// transport signs the request and checks every answer.
async fn axfr(
    addr: SocketAddr,
    apex: &Name<Vec<u8>>,
    tsig: Option<&Key>,
) -> Result<Fetched, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_random_id();
    let mut msg = msg.question();
    msg.push((apex, Rtype::AXFR))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let request =
        RequestMessageMulti::new(msg).map_err(|e| format!("cannot build the request: {e}"))?;
    let (mut response, running) = match tsig {
        None => {
            let (connection, transport) = stream::Connection::<
                RequestMessage<Vec<u8>>,
                RequestMessageMulti<Vec<u8>>,
            >::new(tcp);
            let running = tokio::spawn(transport.run());
            (
                SendRequestMulti::send_request(&connection, request),
                running,
            )
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
    let (mut text, mut refresh, mut records) = (String::new(), None, 0usize);
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
            let r: Record<ParsedName<Bytes>, ZoneRecordData<Bytes, ParsedName<Bytes>>> = match r {
                Ok(r) => r,
                Err(e) => return Err(format!("a record does not read: {e}")),
            };
            if let ZoneRecordData::Soa(soa) = r.data() {
                refresh.get_or_insert(soa.refresh().as_secs());
            }
            text.push_str(&format!(
                "{}. {} IN {} {}\n",
                r.owner(),
                r.ttl().as_secs(),
                r.rtype(),
                r.data().display_zonefile(DisplayKind::Simple)
            ));
            records += 1;
        }
    };
    running.abort();
    result?;
    if records == 0 {
        return Err("the transfer carried no records".into());
    }
    Ok(Fetched {
        text: text.into_bytes(),
        refresh,
    })
}
