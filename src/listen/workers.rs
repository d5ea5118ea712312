//! The worker threads that serve connections: one per core, each with a single-threaded
//! runtime of its own, so that a client connection, the upstream connections its requests
//! use and every wake-up between them stay on one thread, as in nginx's worker processes.
//!
//! A multi-threaded runtime lets any thread run any task: a page's bytes hop from the
//! task reading the upstream to the task writing the client, often on the other core,
//! and each hop wakes a parked thread. Measured back to back (load run, one 2-vCPU
//! machine), CPU per request on tokio's multi-threaded runtime and on a runtime per core:
//! 100 KB page 206 and 183 µs, 10 KB page 109 and 64 µs.
//!
//! The accept loop stays where the proxy was started and hands each accepted connection
//! to the worker with the fewest open; the upstream pools are [`crate::per_worker::PerWorker`], so a request
//! reuses only connections its own worker reads.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

use crate::per_worker::{self, Finished, counted};
use tokio::sync::oneshot;

/// How long a stopping worker waits for its blocking threads (a DNS lookup, say).
const BLOCKING_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// How long stopping waits for the workers to end (their blocking threads get
/// [`BLOCKING_GRACE`] of it).
const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Blocking threads (DNS lookups) the workers may have in all, as one runtime would.
const BLOCKING_THREADS: usize = 512;

/// The running workers. Dropped, they stop at once, their connections closed.
pub(super) struct Workers {
    workers: Vec<Worker>,
    /// Where the search for the least busy worker starts, so ties take turns.
    next: AtomicUsize,
}

struct Worker {
    handle: Handle,
    /// Tasks spawned on it and not yet finished.
    open: Arc<AtomicUsize>,
    /// Dropped (or sent), the worker stops.
    stop: oneshot::Sender<()>,
    /// Told once its runtime is gone.
    stopped: oneshot::Receiver<()>,
}

impl Workers {
    /// Starts `count` worker threads (at least one), each running its own runtime.
    pub(super) async fn start(count: usize) -> std::io::Result<Workers> {
        let count = count.max(1);
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            workers.push(Worker::start(index, (BLOCKING_THREADS / count).max(1)).await?);
        }
        Ok(Workers { workers, next: AtomicUsize::new(0) })
    }

    /// Runs `task` on the worker with the fewest tasks open.
    pub(super) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let worker = self.least_busy();
        worker.handle.spawn(counted(Some(Finished::of(Arc::clone(&worker.open))), task));
    }

    fn least_busy(&self) -> &Worker {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.workers.len();
        (0..n)
            .map(|i| &self.workers[(start + i) % n])
            .min_by_key(|worker| worker.open.load(Ordering::Relaxed))
            .unwrap_or(&self.workers[0])
    }

    /// Stops every worker, dropping the tasks still open, and waits until they have (a
    /// few seconds at most).
    pub(super) async fn stop(self) {
        let mut stopped = Vec::with_capacity(self.workers.len());
        for worker in self.workers {
            let _ = worker.stop.send(());
            stopped.push(worker.stopped);
        }
        let all_stopped = async {
            for worker in stopped {
                let _ = worker.await;
            }
        };
        if tokio::time::timeout(STOP_TIMEOUT, all_stopped).await.is_err() {
            tracing::warn!(timeout = ?STOP_TIMEOUT, "a worker did not stop in time; leaving it");
        }
    }
}

impl Worker {
    /// Starts the thread; its runtime is built, run and dropped there, never here.
    async fn start(index: usize, blocking_threads: usize) -> std::io::Result<Worker> {
        let open = Arc::new(AtomicUsize::new(0));
        let (stop, stopping) = oneshot::channel::<()>();
        let (told, stopped) = oneshot::channel();
        let (started, handle) = oneshot::channel();
        let counted = Arc::clone(&open);
        std::thread::Builder::new().name(format!("invent-worker-{index}")).spawn(move || {
            let built = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(blocking_threads)
                .build();
            let runtime = match built {
                Ok(runtime) => runtime,
                Err(error) => return drop(started.send(Err(error))),
            };
            per_worker::enter(index, counted);
            if started.send(Ok(runtime.handle().clone())).is_ok() {
                let _ = runtime.block_on(stopping);
            }
            runtime.shutdown_timeout(BLOCKING_GRACE);
            let _ = told.send(());
        })?;
        let handle = handle.await.map_err(|_| std::io::Error::other("the worker thread ended at start"))??;
        Ok(Worker { handle, open, stop, stopped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::per_worker::{PerWorker, spawn_here};

    /// Tasks held open on the workers (as connections are) until released.
    struct Held {
        release: tokio::sync::watch::Sender<bool>,
    }

    impl Held {
        fn new() -> Held {
            Held { release: tokio::sync::watch::channel(false).0 }
        }

        /// Spawns one on `workers`, and returns what `report` says on its thread.
        async fn spawn<T: Send + 'static>(&self, workers: &Workers, report: impl FnOnce() -> T + Send + 'static) -> T {
            let (tx, rx) = oneshot::channel();
            let mut released = self.release.subscribe();
            workers.spawn(async move {
                let _ = tx.send(report());
                let _ = released.wait_for(|done| *done).await;
            });
            rx.await.expect("the worker ran the task")
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            let _ = self.release.send(true);
        }
    }

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn connections_held_open_spread_over_the_workers() {
        let workers = Workers::start(2).await.unwrap();
        let held = Held::new();
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(held.spawn(&workers, thread_name).await);
        }
        names.sort();
        assert_eq!(names, ["invent-worker-0", "invent-worker-0", "invent-worker-1", "invent-worker-1"]);
        drop(held);
        workers.stop().await;
    }

    #[tokio::test]
    async fn each_worker_has_its_own_slot_and_other_threads_share_the_first() {
        let workers = Workers::start(2).await.unwrap();
        let made = AtomicUsize::new(0);
        let slots = Arc::new(PerWorker::new(2, || made.fetch_add(1, Ordering::Relaxed)));
        assert_eq!(*slots.get(), 0, "not a worker");
        let held = Held::new();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let slots = Arc::clone(&slots);
            seen.push(held.spawn(&workers, move || *slots.get()).await);
        }
        seen.sort();
        assert_eq!(seen, [1, 2]);
        drop(held);
        workers.stop().await;
    }

    #[tokio::test]
    async fn tasks_a_connection_leaves_running_count_on_its_worker() {
        let workers = Workers::start(2).await.unwrap();
        let (tx, rx) = oneshot::channel();
        workers.spawn(async move {
            // Two tunnels, say, that outlive the connection that opened them.
            spawn_here(std::future::pending());
            spawn_here(std::future::pending());
            let _ = tx.send(thread_name());
        });
        let busy = rx.await.unwrap();
        let held = Held::new();
        for _ in 0..2 {
            assert_ne!(held.spawn(&workers, thread_name).await, busy, "new connections go to the other worker");
        }
        drop(held);
        workers.stop().await;
    }

    #[tokio::test]
    async fn stopping_drops_the_tasks_still_open_and_ends_the_threads() {
        let workers = Workers::start(1).await.unwrap();
        let (dropped_tx, mut dropped) = oneshot::channel::<()>();
        workers.spawn(async move {
            let _tell_when_dropped = dropped_tx;
            std::future::pending::<()>().await;
        });
        let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), workers.stop()).await;
        assert!(stopped.is_ok(), "the workers stopped");
        let dropped = matches!(dropped.try_recv(), Err(oneshot::error::TryRecvError::Closed));
        assert!(dropped, "the pending task was dropped, not left running");
    }
}
