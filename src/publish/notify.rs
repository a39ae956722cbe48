//! NOTIFY (RFC 1996) to a zone's secondaries when a new serial is served:
//! over UDP, retried, each secondary on its own.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::{Opcode, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Name};

/// Tries per secondary, and how long each waits for the answer.
const TRIES: usize = 3;
const WAIT: Duration = Duration::from_secs(2);

/// Tells one secondary that the zone has a new serial; Ok once it
/// answered, or why it did not.
pub async fn notify(secondary: SocketAddr, apex: &Name<Vec<u8>>) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..TRIES {
        match notify_once(secondary, apex).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn notify_once(secondary: SocketAddr, apex: &Name<Vec<u8>>) -> Result<(), String> {
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_opcode(Opcode::NOTIFY);
    msg.header_mut().set_aa(true);
    msg.header_mut().set_random_id();
    let id = msg.header().id();
    let mut msg = msg.question();
    msg.push((apex, Rtype::SOA))
        .map_err(|e| format!("cannot build the NOTIFY: {e}"))?;
    let wire = msg.finish();
    let local: SocketAddr = if secondary.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let sock = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| format!("cannot open a socket: {e}"))?;
    sock.send_to(&wire, secondary)
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut buf = vec![0u8; 4096];
    tokio::time::timeout(WAIT, answer_to(&sock, secondary, id, &mut buf))
        .await
        .map_err(|_| format!("no answer within {} s", WAIT.as_secs()))?
}

/// Reads datagrams until the secondary's answer to NOTIFY `id` comes.
async fn answer_to(
    sock: &tokio::net::UdpSocket,
    secondary: SocketAddr,
    id: u16,
    buf: &mut [u8],
) -> Result<(), String> {
    loop {
        let (n, from) = sock
            .recv_from(buf)
            .await
            .map_err(|e| format!("cannot receive: {e}"))?;
        if from != secondary {
            continue;
        }
        let Ok(answer) = Message::from_octets(Bytes::copy_from_slice(&buf[..n])) else {
            continue;
        };
        let h = answer.header();
        if h.id() != id || !h.qr() || h.opcode() != Opcode::NOTIFY {
            continue;
        }
        return match h.rcode() {
            Rcode::NOERROR => Ok(()),
            rcode => Err(format!("answered {rcode}")),
        };
    }
}
