//! keymasterd under systemd's `Type=notify`: READY=1 once it listens,
//! STOPPING=1 on SIGTERM, sent to $NOTIFY_SOCKET as sd_notify(3) does.
//! NOTIFY_SOCKET is set for that keymasterd alone: the tests share one
//! process, whose environment every process they start inherits.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::common::*;

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
    let token = TestToken::new("systemd");
    let mut d = Daemon::start_notifying(&token, "node-a", &path);
    assert_eq!(next_state(&sock), "READY=1");
    // Ready means serving: a call is answered.
    d.ctl_ok(&["node", "list"]);
    assert!(d.stop(), "keymasterd did not stop on SIGTERM");
    assert_eq!(next_state(&sock), "STOPPING=1");
}
