//! The one signing pool of a token (ARCHITECTURE.md, The signing path):
//! a fixed set of threads, each owning a session for its life, taking jobs
//! from one queue. RRset batches and whole zones are cut into pieces on the
//! same queue, so every worker stays busy and neither starves the other.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::bound::Watch;
use super::error::HsmError;
use super::port::{Hsm, KeySigner};

/// A job: runs on a worker with its signer, or with the error that kept
/// the worker from opening a session.
type Job = Box<dyn FnOnce(Result<&mut dyn KeySigner, &HsmError>) + Send>;

/// Signing threads with a shared queue. Dropping the pool ends them once
/// the queue is empty.
pub struct SigningPool {
    /// None once the pool is stopped.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    count: usize,
}

impl SigningPool {
    /// Starts `Hsm::worker_count()` threads.
    pub fn start(hsm: Arc<dyn Hsm>) -> SigningPool {
        let count = hsm.worker_count().max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::new();
        for i in 0..count {
            let (hsm, rx) = (hsm.clone(), rx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("signer-{i}"))
                .spawn(move || {
                    let mut signer = hsm.signer();
                    loop {
                        let job = {
                            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
                            match rx.recv() {
                                Ok(job) => job,
                                Err(_) => return, // the pool is gone
                            }
                        };
                        match &mut signer {
                            Ok(s) => job(Ok(s.as_mut())),
                            Err(e) => job(Err(e)),
                        }
                    }
                });
            match spawned {
                Ok(worker) => workers.push(worker),
                Err(e) => tracing::error!(error = %e, "cannot start a signing thread"),
            }
        }
        SigningPool {
            queue: Mutex::new(Some(tx)),
            workers: Mutex::new(workers),
            count,
        }
    }

    /// Lets the queued jobs finish, then ends the workers and waits for
    /// them, so that their sessions are closed before the token is shut
    /// down. Jobs submitted afterwards are dropped (their callers see the
    /// pool gone). Blocks the calling thread.
    pub fn stop(&self) {
        drop(self.queue.lock().unwrap_or_else(|p| p.into_inner()).take());
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in workers {
            let _ = w.join();
        }
    }

    /// How many workers sign at once.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Queues a job; its result comes back through the returned `Pending`,
    /// waited for at most the token's bound (`bound.rs`) from when it is
    /// waited for.
    pub fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(Result<&mut dyn KeySigner, &HsmError>) -> T + Send + 'static,
    ) -> Pending<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let watch = Watch::new();
        let done = watch.clone();
        // The wait is real time, for the metrics.
        use crate::clock::{Clock, SystemClock};
        let queued = SystemClock.instant();
        let job: Job = Box::new(move |w| {
            done.started();
            let waited = SystemClock.instant().duration_since(queued);
            crate::metrics::get()
                .signing_queue_wait
                .observe(waited.as_secs_f64());
            let v = f(w);
            done.returned();
            let _ = tx.send(v);
        });
        if let Some(queue) = &*self.queue.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = queue.send(job);
        }
        Pending { rx, watch }
    }
}

/// A job's result to come. `None`: the job was dropped unrun (the pool
/// stopped); `Some(Err(Stalled))`: it did not finish within the bound.
pub struct Pending<T> {
    rx: tokio::sync::oneshot::Receiver<T>,
    watch: Watch,
}

impl<T> Pending<T> {
    pub async fn wait(self) -> Option<Result<T, HsmError>> {
        super::bound::wait(self.rx, &self.watch).await
    }

    /// `wait` from a blocking thread.
    pub fn wait_blocking(self) -> Option<Result<T, HsmError>> {
        super::bound::wait_blocking(self.rx, &self.watch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsm::fake::FakeHsm;
    use crate::hsm::{KeySpec, SignScheme};

    #[tokio::test]
    async fn jobs_run_on_the_workers_with_their_signers() {
        let hsm = Arc::new(FakeHsm::new("pool"));
        hsm.generate(KeySpec::EcP256, b"k1", "k1").unwrap();
        let pool = SigningPool::start(hsm.clone());
        let jobs: Vec<_> = (0..8)
            .map(|i| {
                pool.submit(move |s| {
                    s.map_err(|e| e.to_string())?
                        .sign(SignScheme::EcdsaSha256, b"k1", &[i])
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        for j in jobs {
            assert_eq!(j.wait().await.unwrap().unwrap().unwrap().len(), 64);
        }
    }
}
