//! keymasterd under systemd's `Type=notify`: READY=1 once it listens,
//! STOPPING=1 on SIGTERM, sent to $NOTIFY_SOCKET as sd_notify(3) does.
//! A test binary of its own, since it sets NOTIFY_SOCKET for the processes
//! it starts.
// Tests drive real processes in real time: they read the system clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::*;

fn next_state(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn keymasterd_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let dir = TempDir::new("systemd");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The only test of this binary: no other process started here sees it.
    std::env::set_var("NOTIFY_SOCKET", &path);
    let token = TestToken::new("systemd");
    let mut d = Daemon::start(&token, "node-a", &[]);
    assert_eq!(next_state(&sock), "READY=1");
    // Ready means serving: a call is answered.
    d.ctl_ok(&["node", "list"]);
    assert!(d.stop(), "keymasterd did not stop on SIGTERM");
    assert_eq!(next_state(&sock), "STOPPING=1");
}
