//! The signing workers of the RRset path: one thread per worker, each
//! owning a PKCS#11 session for its life (ARCHITECTURE.md, The signing path). Requests are cut into
//! pieces and queued, so every worker stays busy however the requests
//! arrive.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::dnssec::sign::SignerPool;
use crate::hsm::Token;

use super::token_signer::TokenWorker;

type Job = Box<dyn FnOnce(Result<&mut TokenWorker<'_>, &str>) + Send>;

/// A fixed set of signing threads with a shared queue.
pub struct SigningWorkers {
    queue: Mutex<mpsc::Sender<Job>>,
    count: usize,
}

impl SigningWorkers {
    /// Starts `Token::worker_count()` threads. A thread that cannot open a
    /// session answers every job it takes with the error.
    pub fn start(token: Arc<Token>) -> SigningWorkers {
        let count = token.worker_count();
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..count {
            let (token, rx) = (token.clone(), rx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("signer-{i}"))
                .spawn(move || {
                    let mut worker = token.worker();
                    loop {
                        let job = {
                            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
                            match rx.recv() {
                                Ok(job) => job,
                                Err(_) => return, // the service is gone
                            }
                        };
                        match &mut worker {
                            Ok(w) => job(Ok(w)),
                            Err(e) => job(Err(e)),
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a signing thread");
            }
        }
        SigningWorkers {
            queue: Mutex::new(tx),
            count,
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Queues a job; its result comes back through the returned channel.
    pub fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(Result<&mut TokenWorker<'_>, &str>) -> T + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |w| {
            let _ = tx.send(f(w));
        });
        let _ = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job);
        rx
    }
}
