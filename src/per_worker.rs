//! What belongs to the worker thread running now: its slot of a [`PerWorker`] (the
//! upstream's keep-alive pools), and its count of open tasks, which [`spawn_here`] adds
//! to. The worker threads themselves are the listener's (`listen::workers`), which tells
//! each thread which worker it is with [`enter`].

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// The index of the worker this thread is, if it is one.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
    /// Its count of open tasks, on a worker thread.
    static OPEN: RefCell<Option<Arc<AtomicUsize>>> = const { RefCell::new(None) };
}

/// Marks the calling thread as worker `index`, whose open tasks `open` counts.
pub(crate) fn enter(index: usize, open: Arc<AtomicUsize>) {
    CURRENT.set(Some(index));
    OPEN.set(Some(open));
}

/// One `T` per worker, and one for every other thread: each worker uses its own.
pub(crate) struct PerWorker<T> {
    slots: Box<[T]>,
}

impl<T> PerWorker<T> {
    /// Makes the `T`s for `workers` workers: `workers` + 1 of them.
    pub(crate) fn new(workers: usize, make: impl FnMut() -> T) -> Self {
        PerWorker { slots: std::iter::repeat_with(make).take(workers + 1).collect() }
    }

    /// The calling thread's `T`.
    pub(crate) fn get(&self) -> &T {
        // Built for as many workers as run, so the fallback is never needed.
        let slot = CURRENT.get().map_or(0, |index| index + 1);
        self.slots.get(slot).unwrap_or(&self.slots[0])
    }
}

/// Runs `task` on the current thread's runtime, counted as open on its worker (if it is
/// one) until it ends: a task that outlives the request it came from, as a WebSocket
/// tunnel does, still weighs on the choice of worker for new connections.
pub(crate) fn spawn_here<F>(task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let open = OPEN.with_borrow(|open| open.clone().map(Finished::of));
    tokio::spawn(counted(open, task));
}

/// `task`, counted open (from now, polled or not) until it ends or is dropped.
pub(crate) async fn counted(open: Option<Finished>, task: impl Future<Output = ()>) {
    let _open = open;
    task.await;
}

/// Counts a task open from its creation; finished when it ends or is dropped.
pub(crate) struct Finished(Arc<AtomicUsize>);

impl Finished {
    pub(crate) fn of(open: Arc<AtomicUsize>) -> Finished {
        open.fetch_add(1, Ordering::Relaxed);
        Finished(open)
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
