//! Nodes started at the same moment on one token, while another node
//! writes to it: SoftHSM shows no token for a moment while a process
//! writes it, and every node must start anyway.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::common::*;

#[test]
fn nodes_started_together_on_one_token_all_start() {
    let token = Arc::new(TestToken::new("together"));
    let pki = Arc::new(Pki::new());
    let dir = TempDir::new("together-store");
    let store = format!("sqlite:{}", dir.path().join("keymaster.db").display());
    let a = Arc::new(Daemon::start_node(&token, "tog-a", &store, &pki, &[]));
    a.ctl_ok(&["zone", "add", "together.example."]);
    // Node a writes the token (key pairs made and destroyed) throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                a.ctl(&["key", "add", "together.example.", "--role", "zsk"]);
            }
        })
    };
    let mut failed = Vec::new();
    let mut started = 0;
    for round in 0..3 {
        let starts: Vec<_> = (0..6)
            .map(|i| {
                let (token, pki, store) = (token.clone(), pki.clone(), store.clone());
                std::thread::spawn(move || {
                    let id = format!("tog-{round}-{i}");
                    let d = Daemon::start_node(&token, &id, &store, &pki, &[]);
                    let o = d.ctl(&["zone", "show", "together.example."]);
                    assert!(
                        o.status.success(),
                        "{}\n{}",
                        String::from_utf8_lossy(&o.stderr),
                        d.log_text()
                    );
                })
            })
            .collect();
        for s in starts {
            match s.join() {
                Ok(()) => started += 1,
                Err(e) => failed.push(
                    e.downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| "panicked".into()),
                ),
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} starts failed: {:#?}",
        failed.len(),
        started + failed.len(),
        failed
            .iter()
            .map(|f| f.lines().next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    );
}

/// SIGTERM after signing: the workers end and the token is finalised
/// before the process exits, which it does at once with status 0, every
/// time (a PKCS#11 module left to unload itself during exit once made a
/// node spin for minutes).
#[test]
fn sigterm_closes_the_token_in_order_and_exits_at_once() {
    use std::time::{Duration, Instant};
    let token = TestToken::new("sigterm");
    let dir = TempDir::new("sigterm-store");
    let store = format!("sqlite:{}", dir.path().join("keymaster.db").display());
    let pki = Arc::new(Pki::new());
    let mut slowest = Duration::ZERO;
    for round in 0..8 {
        let mut d = Daemon::start_node(&token, "term", &store, &pki, &[]);
        if round == 0 {
            d.ctl_ok(&["zone", "add", "term.example."]);
        }
        d.sign_validated("term.example.", &sample_zone("term.example.", 30));
        let mut child = d.child.take().unwrap();
        signal_pid(child.id(), "TERM");
        let began = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if began.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!(
                    "round {round}: still running 10 s after SIGTERM: {}",
                    d.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        slowest = slowest.max(began.elapsed());
        assert!(
            status.success(),
            "round {round}: {status:?}\n{}",
            d.log_text()
        );
        let log = d.log_text();
        let closed = log.find("token closed (C_Finalize)");
        let stopped = log.find("keymasterd stopped");
        assert!(
            closed.is_some() && stopped.is_some() && closed < stopped,
            "round {round}: {log}"
        );
    }
    eprintln!("slowest exit after SIGTERM: {slowest:?}");
}
