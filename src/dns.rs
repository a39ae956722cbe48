//! Asking a DNS server one question, as the rollover engine, the zone
//! signer and the child poller all do (NLnet Labs' `domain` client): UDP
//! with TCP when the answer is truncated, RD off, the DO bit set, a timeout
//! and one retry; what it answered, or why there is no answer.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::{Rcode, Rtype};
use domain::base::name::Name;
use domain::base::rdata::ComposeRecordData;
use domain::base::{Message, MessageBuilder};
use domain::net::client::protocol::{TcpConnect, UdpConnect};
use domain::net::client::request::{ComposeRequest, RequestMessage, SendRequest};
use domain::net::client::{dgram, dgram_stream};

/// How long one server may take to answer a query.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// One query to one server: the authoritative answer, or why there is
/// none.
pub async fn query(
    server: SocketAddr,
    qname: &Name<Vec<u8>>,
    qtype: Rtype,
) -> Result<Message<Bytes>, String> {
    let answer = send(server, qname, qtype).await?;
    let header = answer.header();
    if header.rcode() != Rcode::NOERROR {
        return Err(format!("answered {}", header.rcode()));
    }
    if !header.aa() {
        return Err("answered without authority (AA not set)".into());
    }
    Ok(answer)
}

/// One query to one server, RD off and DO on: whatever it answers.
pub async fn send(
    server: SocketAddr,
    qname: &Name<Vec<u8>>,
    qtype: Rtype,
) -> Result<Message<Bytes>, String> {
    send_within(server, qname, qtype, TIMEOUT).await
}

/// `send` with its own bound on each try (two tries by UDP, then TCP when
/// the answer is truncated).
async fn send_within(
    server: SocketAddr,
    qname: &Name<Vec<u8>>,
    qtype: Rtype,
    timeout: Duration,
) -> Result<Message<Bytes>, String> {
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_rd(false);
    msg.header_mut().set_random_id();
    let mut msg = msg.question();
    msg.push((qname, qtype))
        .map_err(|e| format!("cannot build the query: {e}"))?;
    let mut request =
        RequestMessage::new(msg).map_err(|e| format!("cannot build the query: {e}"))?;
    request.set_dnssec_ok(true);
    let mut dgram_config = dgram::Config::new();
    dgram_config.set_read_timeout(timeout);
    dgram_config.set_max_retries(1);
    let mut config = dgram_stream::Config::new();
    config.set_dgram(dgram_config);
    config
        .stream_mut()
        .stream_mut()
        .set_response_timeout(timeout);
    let (connection, transport) = dgram_stream::Connection::with_config(
        UdpConnect::new(server),
        TcpConnect::new(server),
        config,
    );
    let running = tokio::spawn(transport.run());
    let answer = tokio::time::timeout(timeout * 3, async {
        connection.send_request(request).get_response().await
    })
    .await;
    running.abort();
    match answer {
        Err(_) => Err(format!("no answer within {} s", (timeout * 3).as_secs())),
        Ok(Err(e)) => Err(format!("no answer ({e})")),
        Ok(Ok(m)) => Ok(m),
    }
}

/// The record data of the answer's records of one type at the name, in
/// canonical wire form, with their TTL.
pub fn answer_rdata(
    answer: &Message<Bytes>,
    qname: &Name<Vec<u8>>,
    rtype: Rtype,
) -> Vec<(Vec<u8>, u32)> {
    let Ok(section) = answer.answer() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for record in section
        .limit_to::<domain::rdata::ZoneRecordData<Bytes, domain::base::ParsedName<Bytes>>>()
        .flatten()
    {
        if record.rtype() != rtype
            || record.owner().to_string().to_ascii_lowercase() != qname.to_string()
        {
            continue;
        }
        let mut rdata = Vec::new();
        let _ = record.data().compose_canonical_rdata(&mut rdata);
        out.push((rdata, record.ttl().as_secs()));
    }
    out
}

/// The serial of the SOA in an answer.
pub fn answer_soa_serial(answer: &Message<Bytes>) -> Option<u32> {
    answer
        .answer()
        .ok()?
        .limit_to::<domain::rdata::Soa<domain::base::ParsedName<Bytes>>>()
        .flatten()
        .map(|r| r.data().serial().into_int())
        .next()
}

/// What a server answers when asked for a zone's SOA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoaAnswer {
    /// It serves the zone at this serial.
    Serial(u32),
    /// It answered with this error code: SERVFAIL from a secondary that
    /// has not loaded the zone, REFUSED or NOTAUTH from one not set up
    /// for it.
    Rcode(Rcode),
    /// It answered without authority, or without the SOA.
    NotServed(&'static str),
    /// No answer came (the reason as the transport gives it).
    NoAnswer(String),
}

impl std::fmt::Display for SoaAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SoaAnswer::Serial(s) => write!(f, "serial {s}"),
            SoaAnswer::Rcode(Rcode::SERVFAIL) => {
                f.write_str("has not loaded the zone (answers SERVFAIL)")
            }
            SoaAnswer::Rcode(r) => write!(f, "does not serve the zone (answers {r})"),
            SoaAnswer::NotServed(why) => write!(f, "does not serve the zone ({why})"),
            SoaAnswer::NoAnswer(why) => f.write_str(why),
        }
    }
}

/// The zone's SOA serial as a server answers it, each try bounded by
/// `within` (a status shown to an operator waits no longer).
pub async fn soa_answer(server: SocketAddr, apex: &Name<Vec<u8>>, within: Duration) -> SoaAnswer {
    let answer = match send_within(server, apex, Rtype::SOA, within).await {
        Ok(a) => a,
        Err(e) => return SoaAnswer::NoAnswer(e),
    };
    let header = answer.header();
    if header.rcode() != Rcode::NOERROR {
        return SoaAnswer::Rcode(header.rcode());
    }
    if !header.aa() {
        return SoaAnswer::NotServed("answers without authority");
    }
    match answer_soa_serial(&answer) {
        Some(s) => SoaAnswer::Serial(s),
        None => SoaAnswer::NotServed("answers without an SOA"),
    }
}

/// The SOA serial a server answers for the zone, or why there is none.
pub async fn soa_serial(server: SocketAddr, apex: &Name<Vec<u8>>) -> Result<u32, String> {
    let answer = query(server, apex, Rtype::SOA).await?;
    answer_soa_serial(&answer).ok_or_else(|| "answered without an SOA".to_string())
}
