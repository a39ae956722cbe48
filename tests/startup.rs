//! Nodes started at the same moment on one token, while another node
//! writes to it: SoftHSM shows no token for a moment while a process
//! writes it, and every node must start anyway.
// Tests drive real processes in real time: they read the system clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;

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
