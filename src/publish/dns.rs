//! The DNS service over the served zones (NLnet Labs' `domain`,
//! `net::server`): AXFR (and IXFR from the journal, else the whole zone,
//! RFC 1995 §4) over TCP to the zone's secondaries, the SOA to anyone who
//! asks (a secondary's refresh check), REFUSED for the rest: keymaster is a
//! hidden primary, not a server for resolvers. Records are composed into
//! messages by `domain`'s message builder.
//!
//! Its XFR middleware and zone tree are not used: the in-memory zone keeps
//! one RRset per type and name, so the RRSIGs of one name could not keep
//! each the TTL of the RRset it covers (RFC 4034 §3), and it refuses the
//! RRSIG and NSEC records a signed zone has at a delegation or a CNAME.

use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::Arc;

use domain::base::iana::{Opcode, Rcode, Rtype};
use domain::base::message_builder::AnswerBuilder;
use domain::base::StreamTarget;
use domain::net::server::message::Request;
use domain::net::server::service::{CallResult, Service, ServiceFeedback, ServiceResult};
use domain::net::server::util::mk_builder_for_target;
use tokio_stream::wrappers::ReceiverStream;

use super::served::{read_records, CdsNotice, Served, ServedRecord, SignedZone};
use crate::tsig::TsigKeys;

/// Bytes of records per transfer message; well below the 64 KiB a DNS
/// message over TCP may have, as other servers do.
const MESSAGE_BYTES: usize = 16 * 1024;

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
    /// Long because a DNS request is checked in RFC order (opcode,
    /// class, zone, TSIG, who may transfer) before it is answered.
    fn answer(&self, request: &Request<Vec<u8>, Meta>) -> Answer {
        let msg = request.message();
        if msg.header().opcode() == Opcode::NOTIFY {
            // A NOTIFY(SOA) was taken by `domain`'s middleware before.
            return self.cds_notify(request);
        }
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
                    .map(|k| crate::tsig::key_name_text(k.name()));
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

impl DnsService {
    /// NOTIFY(CDS) or NOTIFY(CDNSKEY) from a child's operator (RFC 9859
    /// §4.2): the child is polled at once, by the rules of every poll;
    /// NOERROR also when it was polled moments ago (a NOTIFY is a hint).
    /// For a name this node keeps no delegation of: REFUSED. Other
    /// NOTIFY types: NOTIMP.
    fn cds_notify(&self, request: &Request<Vec<u8>, Meta>) -> Answer {
        let Ok(question) = request.message().sole_question() else {
            return Answer::One(Rcode::FORMERR, vec![]);
        };
        if !matches!(question.qtype(), Rtype::CDS | Rtype::CDNSKEY) {
            return Answer::One(Rcode::NOTIMP, vec![]);
        }
        let child = super::served::zone_key(&question.qname());
        match self.served.cds_notice(&child, request.client_addr()) {
            CdsNotice::Polled | CdsNotice::TooSoon => Answer::One(Rcode::NOERROR, vec![]),
            CdsNotice::Unknown => Answer::One(Rcode::REFUSED, vec![]),
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

/// Fills transfer messages of about `MESSAGE_BYTES` and sends each when
/// full; false once the client has gone or a message cannot be made.
///
/// The messages are one transaction for the server and its middleware:
/// `domain`'s TSIG middleware signs every message of an answer only when
/// the service says that a sequence begins (`BeginTransaction`), and
/// otherwise signs the first alone, which secondaries refuse (RFC 8945
/// §5.3.1: each message of a multi-message answer is signed). `open`
/// says so before the first message; `finish` ends it after the last.
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

    /// Begins the transaction; false once the client has gone.
    fn open(&self) -> bool {
        self.tx
            .blocking_send(Ok(CallResult::feedback_only(
                ServiceFeedback::BeginTransaction,
            )))
            .is_ok()
    }

    fn finish(self) {
        if let Some(a) = self.answer {
            let _ = self.tx.blocking_send(Ok(CallResult::new(a.additional())));
        }
        let _ = self.tx.blocking_send(Ok(CallResult::feedback_only(
            ServiceFeedback::EndTransaction,
        )));
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
    if !out.open() || !out.push(&zone.soa) {
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
            for chunk in &zone.chunks {
                let records = match read_records(&zone.apex, &chunk.text) {
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

/// What `domain`'s TSIG middleware answers to a request whose TSIG does
/// not check, made right and said: RFC 8945 §5.2.2 answers a MAC that
/// does not verify with NOTAUTH and TSIG error BADSIG, where `domain`
/// 0.12.3 puts FORMERR in the TSIG record (and logs "refused:
/// FORMERR(1)"); a secondary or an operator reading either would look for
/// a malformed message instead of a wrong secret. The answer is the same
/// unsigned NOTAUTH with the error BADSIG; every refusal (BADSIG, BADKEY,
/// BADTIME) is logged here as answered.
#[derive(Clone, Debug)]
pub struct TsigRefusals<S> {
    inner: S,
}

impl<S> TsigRefusals<S> {
    pub fn new(inner: S) -> Self {
        TsigRefusals { inner }
    }
}

type Boxed<T> = std::pin::Pin<Box<T>>;

impl<S> Service<Vec<u8>, ()> for TsigRefusals<S>
where
    S: Service<Vec<u8>, (), Target = Vec<u8>> + Clone,
    S::Stream: 'static,
    S::Future: 'static,
{
    type Target = Vec<u8>;
    type Stream = Boxed<dyn tokio_stream::Stream<Item = ServiceResult<Vec<u8>>> + Send>;
    type Future = Boxed<dyn std::future::Future<Output = Self::Stream> + Send>;

    fn call(&self, request: Request<Vec<u8>, ()>) -> Self::Future {
        use tokio_stream::StreamExt;
        let answers = self.inner.call(request.clone());
        Box::pin(async move {
            let stream = answers.await;
            Box::pin(stream.map(move |item| said_as_answered(&request, item))) as Self::Stream
        })
    }
}

/// One answer of the stream: a TSIG refusal made and logged as RFC 8945
/// says; anything else as it is.
fn said_as_answered(
    request: &Request<Vec<u8>, ()>,
    item: ServiceResult<Vec<u8>>,
) -> ServiceResult<Vec<u8>> {
    use domain::base::iana::TsigRcode;
    let Ok(result) = item else {
        return item;
    };
    let Some(response) = result.response() else {
        return Ok(result);
    };
    let Ok(answer) = domain::base::Message::from_octets(response.as_slice()) else {
        return Ok(result);
    };
    if answer.header().rcode() != Rcode::NOTAUTH {
        return Ok(result);
    }
    let Some((key, error)) = tsig_of(&answer) else {
        return Ok(result);
    };
    let client = request.client_addr();
    if error != TsigRcode::FORMERR {
        tracing::warn!(%client, key = %key, answered = %format!("NOTAUTH, TSIG error {error}"), "TSIG refused: {}", tsig_error_words(error));
        return Ok(result);
    }
    match badsig_answer(request.message()) {
        Some(fixed) => {
            tracing::warn!(%client, key = %key, answered = "NOTAUTH, TSIG error BADSIG", "TSIG refused: {}", tsig_error_words(TsigRcode::BADSIG));
            Ok(CallResult::new(fixed))
        }
        None => Ok(result),
    }
}

fn tsig_error_words(error: domain::base::iana::TsigRcode) -> &'static str {
    use domain::base::iana::TsigRcode;
    match error {
        TsigRcode::BADSIG => "the MAC does not verify with the key of that name (a wrong secret)",
        TsigRcode::BADKEY => "no key of that name and algorithm is known here (--tsig-keys)",
        TsigRcode::BADTIME => "the time signed is outside the fudge (the clocks differ)",
        _ => "the TSIG does not check",
    }
}

/// The key name and error of the TSIG record that ends a message.
fn tsig_of(m: &domain::base::Message<&[u8]>) -> Option<(String, domain::base::iana::TsigRcode)> {
    let additional = m.additional().ok()?;
    let tsig = additional
        .limit_to::<domain::rdata::Tsig<&[u8], domain::base::ParsedName<&[u8]>>>()
        .flatten()
        .last()?;
    Some((tsig.owner().to_string(), tsig.data().error()))
}

/// An unsigned NOTAUTH answer with TSIG error BADSIG to a request whose
/// MAC did not verify (RFC 8945 §5.2.2, §5.3.2: no MAC, since the request's
/// could not be trusted).
fn badsig_answer(
    request: &domain::base::Message<Vec<u8>>,
) -> Option<domain::base::message_builder::AdditionalBuilder<StreamTarget<Vec<u8>>>> {
    use domain::base::iana::TsigRcode;
    let additional = request.additional().ok()?;
    let tsig = additional
        .limit_to::<domain::rdata::Tsig<&[u8], domain::base::ParsedName<&[u8]>>>()
        .flatten()
        .last()?;
    let answer = mk_builder_for_target()
        .start_answer(request, Rcode::NOTAUTH)
        .ok()?;
    let mut answer = answer.additional();
    let data = tsig.data();
    let record = domain::rdata::Tsig::new(
        data.algorithm(),
        data.time_signed(),
        data.fudge(),
        &b""[..],
        request.header().id(),
        TsigRcode::BADSIG,
        &b""[..],
    )
    .ok()?;
    answer
        .push((tsig.owner(), tsig.class(), tsig.ttl(), record))
        .ok()?;
    Some(answer)
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

/// Starts the DNS service (UDP and TCP on one address) over the served
/// zones; returns the address it listens on.
pub async fn serve(addr: &str, served: Arc<Served>, keys: TsigKeys) -> Result<SocketAddr, String> {
    use domain::net::server::buf::VecBufSource;
    use domain::net::server::dgram::DgramServer;
    use domain::net::server::middleware::mandatory::MandatoryMiddlewareSvc;
    use domain::net::server::middleware::notify::NotifyMiddlewareSvc;
    use domain::net::server::middleware::tsig::TsigMiddlewareSvc;
    use domain::net::server::stream::StreamServer;
    let udp = tokio::net::UdpSocket::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for DNS on {addr} (UDP): {e}"))?;
    let local = udp.local_addr().map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpListener::bind(local)
        .await
        .map_err(|e| format!("cannot listen for DNS on {local} (TCP): {e}"))?;
    let svc = DnsService {
        served: served.clone(),
    };
    let svc = NotifyMiddlewareSvc::new(svc, served);
    let svc =
        MandatoryMiddlewareSvc::new(TsigRefusals::new(TsigMiddlewareSvc::new(svc, keys.store)));
    let dgram = DgramServer::new(Arc::new(udp), VecBufSource, svc.clone());
    tokio::spawn(async move { dgram.run().await });
    let stream = StreamServer::new(tcp, VecBufSource, svc);
    tokio::spawn(async move { stream.run().await });
    Ok(local)
}
