//! Asking a DNS server one question, as the rollover engine, the zone
//! signer and the child poller all do (NLnet Labs' `domain` client): UDP
//! with TCP when the answer is truncated, RD off, the DO bit set, a timeout
//! and one retry; what it answered, or why there is no answer. The one
//! recursive question (`resolve`) is the RFC 9615 signal lookup.

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
    send_within(server, qname, qtype, TIMEOUT, false).await
}

/// One query to a recursive resolver, RD on, DO on and CD on (checking
/// disabled: the resolver hands over what it found with its RRSIGs, and
/// keymaster validates it itself from its own trust anchors; RFC 4035
/// §3.2.2): the answer, or why there is none. NXDOMAIN and an empty
/// answer are answers.
pub async fn resolve(
    resolver: SocketAddr,
    qname: &Name<Vec<u8>>,
    qtype: Rtype,
) -> Result<Message<Bytes>, String> {
    let answer = send_within(resolver, qname, qtype, TIMEOUT, true).await?;
    match answer.header().rcode() {
        Rcode::NOERROR | Rcode::NXDOMAIN => Ok(answer),
        other => Err(format!("the resolver answered {other}")),
    }
}

/// `send` with its own bound on each try (two tries by UDP, then TCP when
/// the answer is truncated); `recursive`: RD and CD on, for a resolver.
async fn send_within(
    server: SocketAddr,
    qname: &Name<Vec<u8>>,
    qtype: Rtype,
    timeout: Duration,
    recursive: bool,
) -> Result<Message<Bytes>, String> {
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_rd(recursive);
    msg.header_mut().set_cd(recursive);
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
    let answer = match send_within(server, apex, Rtype::SOA, within, false).await {
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

/// The zone a name is in, as a server authoritative for it answers: the
/// closest enclosing name (the name itself not counted) for which it
/// answers its SOA with authority. A child's parent zone, asked of the
/// parent's primary.
pub async fn enclosing_zone(
    server: SocketAddr,
    name: &Name<Vec<u8>>,
) -> Result<Name<Vec<u8>>, String> {
    let mut candidate = name.parent();
    while let Some(above) = candidate {
        let zone: Name<Vec<u8>> = domain::base::ToName::to_name(&above);
        if let Ok(answer) = query(server, &zone, Rtype::SOA).await {
            if answer_soa_serial(&answer).is_some() {
                return Ok(zone);
            }
        }
        candidate = above.parent();
    }
    Err(format!(
        "serves no zone above {name} (no SOA answered with authority)"
    ))
}

/// Replaces `owner`'s RRset of `rtype` in `zone` at its primary by DNS
/// UPDATE (RFC 2136), signed with `key` when given (RFC 8945) and sent
/// over TCP. Ok once the primary answered NOERROR (signed with the key,
/// when one was used); else what it answered, with its TSIG error.
pub async fn update_rrset(
    server: SocketAddr,
    zone: &Name<Vec<u8>>,
    owner: &Name<Vec<u8>>,
    rrset: (Rtype, u32, &[Vec<u8>]),
    key: Option<domain::tsig::Key>,
) -> Result<(), String> {
    use domain::rdata::tsig::Time48;
    let (wire, transaction) = update_message(zone, owner, rrset, key.as_ref())?;
    let answer = tokio::time::timeout(TIMEOUT, exchange_tcp(server, &wire))
        .await
        .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))??;
    let mut answer = Message::from_octets(answer).map_err(|_| "a malformed answer".to_string())?;
    let rcode = answer.header().rcode();
    if rcode != Rcode::NOERROR {
        return Err(match tsig_error(&answer) {
            Some(e) => format!("answered {rcode} (TSIG error {e})"),
            None => format!("answered {rcode}"),
        });
    }
    if let Some(t) = transaction {
        t.answer(&mut answer, Time48::now())
            .map_err(|e| format!("answered NOERROR, but its TSIG does not verify ({e})"))?;
    }
    Ok(())
}

/// An UPDATE of `zone` that replaces `owner`'s RRset: the RRset deleted
/// (RFC 2136 §2.5.2), then each record added (§2.5.1), in one message the
/// server applies whole or not at all; with the TSIG transaction that
/// checks the answer when a key signs it.
#[allow(clippy::type_complexity)]
fn update_message<'k>(
    zone: &Name<Vec<u8>>,
    owner: &Name<Vec<u8>>,
    (rtype, ttl, rdatas): (Rtype, u32, &[Vec<u8>]),
    key: Option<&'k domain::tsig::Key>,
) -> Result<
    (
        Vec<u8>,
        Option<domain::tsig::ClientTransaction<&'k domain::tsig::Key>>,
    ),
    String,
> {
    use domain::base::iana::{Class, Opcode};
    use domain::base::rdata::UnknownRecordData;
    use domain::base::{Record, Ttl};
    use domain::rdata::tsig::Time48;

    let bad = |e: &dyn std::fmt::Display| format!("cannot build the UPDATE: {e}");
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_opcode(Opcode::UPDATE);
    msg.header_mut().set_random_id();
    // The zone section is the question section (RFC 2136 §2.3).
    let mut msg = msg.question();
    msg.push((zone, Rtype::SOA)).map_err(|e| bad(&e))?;
    // No prerequisites (the answer section); the update section is the
    // authority section.
    let mut msg = msg.answer().authority();
    let none = UnknownRecordData::from_octets(rtype, Vec::new()).map_err(|e| bad(&e))?;
    msg.push(Record::new(owner, Class::ANY, Ttl::ZERO, none))
        .map_err(|e| bad(&e))?;
    for rdata in rdatas {
        let data = UnknownRecordData::from_octets(rtype, rdata.clone()).map_err(|e| bad(&e))?;
        msg.push(Record::new(owner, Class::IN, Ttl::from_secs(ttl), data))
            .map_err(|e| bad(&e))?;
    }
    let mut msg = msg.additional();
    let transaction = match key {
        Some(key) => Some(
            domain::tsig::ClientTransaction::request(key, &mut msg, Time48::now())
                .map_err(|e| bad(&e))?,
        ),
        None => None,
    };
    Ok((msg.finish(), transaction))
}

/// One request and its answer over TCP (RFC 1035 §4.2.2: each message
/// after its two-octet length).
async fn exchange_tcp(server: SocketAddr, wire: &[u8]) -> Result<Vec<u8>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let len = u16::try_from(wire.len()).map_err(|_| "a request over 65535 octets".to_string())?;
    let mut tcp = tokio::net::TcpStream::connect(server)
        .await
        .map_err(|e| format!("no connection ({e})"))?;
    let sent = |e: std::io::Error| format!("not sent ({e})");
    tcp.write_all(&len.to_be_bytes()).await.map_err(sent)?;
    tcp.write_all(wire).await.map_err(sent)?;
    let read = |e: std::io::Error| format!("no answer ({e})");
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await.map_err(read)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut answer).await.map_err(read)?;
    Ok(answer)
}

/// The error a TSIG record of an answer carries (BADKEY, BADSIG, …), if
/// the answer has one.
fn tsig_error(answer: &Message<Vec<u8>>) -> Option<String> {
    let additional = answer.additional().ok()?;
    additional
        .limit_to::<domain::rdata::Tsig<&[u8], domain::base::ParsedName<&[u8]>>>()
        .flatten()
        .map(|r| r.data().error().to_string())
        .next()
}

/// Sends a NOTIFY (RFC 1996; RFC 9859 for types other than SOA) for
/// `qname` and `qtype` to `server` over UDP, once, and waits `within` for
/// its answer: Ok once it answered NOERROR; else what it answered.
pub async fn notify(
    server: SocketAddr,
    qname: &Name<Vec<u8>>,
    qtype: Rtype,
    within: Duration,
) -> Result<(), String> {
    use domain::base::iana::Opcode;
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_opcode(Opcode::NOTIFY);
    msg.header_mut().set_aa(true);
    msg.header_mut().set_random_id();
    let id = msg.header().id();
    let mut msg = msg.question();
    msg.push((qname, qtype))
        .map_err(|e| format!("cannot build the NOTIFY: {e}"))?;
    let wire = msg.finish();
    let exchange = async {
        let bind: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| format!("no socket ({e})"))?;
        socket
            .connect(server)
            .await
            .map_err(|e| format!("not sent ({e})"))?;
        socket
            .send(&wire)
            .await
            .map_err(|e| format!("not sent ({e})"))?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket
                .recv(&mut buf)
                .await
                .map_err(|e| format!("no answer ({e})"))?;
            let Ok(answer) = Message::from_octets(buf[..n].to_vec()) else {
                continue;
            };
            let h = answer.header();
            if h.id() == id && h.qr() && h.opcode() == Opcode::NOTIFY {
                return Ok::<_, String>(answer);
            }
        }
    };
    let answer = tokio::time::timeout(within, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", within.as_secs()))??;
    match answer.header().rcode() {
        Rcode::NOERROR => Ok(()),
        rcode => Err(format!("answered {rcode}")),
    }
}
