//! The worker pool that runs request handlers.
//!
//! `threads` slots bound how many handlers run at once; `spare` extra threads stand by
//! so that a handler which gives up its slot in [`step_aside`] (to wait for password
//! hashing, say) lets a queued job run meanwhile. Connection threads only parse and
//! write, and hand each request to [`Workers::call`].

use crate::locks::Unpoisoned;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A bounded pool of worker threads; see the module documentation.
pub struct Workers {
    inner: Arc<Inner>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

struct Inner {
    state: Mutex<State>,
    /// Idle workers wait here for a queued job and a free slot.
    work: Condvar,
    /// Jobs back from `step_aside` wait here for a free slot.
    slots: Condvar,
}

struct State {
    queue: VecDeque<Job>,
    free_slots: usize,
    /// Jobs back from `step_aside` waiting for a slot. They go before queued jobs, so
    /// work already begun finishes before new work starts.
    returning: usize,
    shutting_down: bool,
}

thread_local! {
    /// Set on a worker thread while the job it runs holds a slot.
    static HELD_SLOT: RefCell<Option<Arc<Inner>>> = const { RefCell::new(None) };
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs never run under this lock, so a poisoned lock still holds consistent state.
        self.state.lock().unpoisoned()
    }

    fn release_slot(&self) {
        let mut state = self.lock();
        state.free_slots += 1;
        // One waiter per freed slot, and a returning job first: work already
        // begun finishes before new work starts. Waking only one thread (not
        // every idle worker) keeps a request at two context switches.
        if state.returning > 0 {
            self.slots.notify_one();
        } else {
            self.work.notify_one();
        }
    }

    fn reacquire_slot(&self) {
        let mut state = self.lock();
        state.returning += 1;
        while state.free_slots == 0 {
            state = self.slots.wait(state).unpoisoned();
        }
        state.returning -= 1;
        state.free_slots -= 1;
        // With this job no longer returning, a queued job may now fit a slot.
        if !state.queue.is_empty() && state.free_slots > state.returning {
            self.work.notify_one();
        }
    }

    /// The loop of one worker thread: take a job when a slot is free, until shutdown
    /// and an empty queue.
    fn run_worker(self: Arc<Self>) {
        loop {
            let job = {
                let mut state = self.lock();
                loop {
                    if !state.queue.is_empty() && state.free_slots > state.returning {
                        break;
                    }
                    if state.shutting_down && state.queue.is_empty() {
                        return;
                    }
                    state = self.work.wait(state).unpoisoned();
                }
                state.free_slots -= 1;
                state.queue.pop_front()
            };
            let Some(job) = job else { continue };
            HELD_SLOT.with(|held| *held.borrow_mut() = Some(Arc::clone(&self)));
            // `call` wraps every job in its own panic guard; this one only keeps the
            // thread and its slot accounting alive if that ever fails.
            let _ = panic::catch_unwind(AssertUnwindSafe(job));
            HELD_SLOT.with(|held| held.borrow_mut().take());
            self.release_slot();
        }
    }
}

impl Workers {
    /// `threads` slots run jobs at once. `spare` extra threads stand by so that a job that
    /// gives up its slot in `step_aside` (e.g. while it waits for password hashing)
    /// lets another queued job run: at most `threads` jobs hold a slot at any time,
    /// and at most `threads + spare` threads exist.
    pub fn new(threads: usize, spare: usize) -> Arc<Workers> {
        let threads = threads.max(1);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                free_slots: threads,
                returning: 0,
                shutting_down: false,
            }),
            work: Condvar::new(),
            slots: Condvar::new(),
        });
        let mut handles = Vec::with_capacity(threads + spare);
        for index in 0..threads + spare {
            let inner = Arc::clone(&inner);
            let spawned = thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || inner.run_worker());
            match spawned {
                Ok(handle) => handles.push(handle),
                // Fewer threads still work as long as there is one; more can't be forced.
                Err(error) => log::warn!("could not start worker thread {index}: {error}"),
            }
        }
        Arc::new(Workers {
            inner,
            handles: Mutex::new(handles),
        })
    }

    /// Runs `job` on a worker thread and blocks the caller until it finishes.
    /// Err(()) if the job panicked or the pool is shut down (the caller answers 500/closes).
    ///
    /// Called from a worker thread, the job runs inline: queueing it could wait for the
    /// very slot the caller holds.
    // The unit error is the agreed interface: the caller can only answer 500 and close,
    // and the panic itself was already reported by the panic hook.
    #[allow(clippy::result_unit_err)]
    pub fn call<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, ()> {
        if is_worker_of(&self.inner) {
            return panic::catch_unwind(AssertUnwindSafe(job)).map_err(|_| ());
        }
        let (sender, receiver) = mpsc::sync_channel(1);
        let wrapped: Job = Box::new(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(job));
            // The caller may be gone only if its thread died; nothing to tell then.
            let _ = sender.send(result.map_err(|_| ()));
        });
        {
            let mut state = self.inner.lock();
            if state.shutting_down {
                return Err(());
            }
            state.queue.push_back(wrapped);
        }
        self.inner.work.notify_one();
        // A dropped sender (the job was dropped unrun) also reads as failure.
        receiver.recv().unwrap_or(Err(()))
    }

    /// Stops the threads after queued jobs finish and joins them.
    pub fn shutdown(&self) {
        self.inner.lock().shutting_down = true;
        self.inner.work.notify_all();
        self.inner.slots.notify_all();
        let handles = std::mem::take(&mut *self.handles.lock().unpoisoned());
        let current = thread::current().id();
        for handle in handles {
            // A job calling shutdown can't wait for its own thread.
            if handle.thread().id() != current {
                let _ = handle.join();
            }
        }
    }
}

fn is_worker_of(inner: &Arc<Inner>) -> bool {
    HELD_SLOT.with(|held| {
        held.borrow()
            .as_ref()
            .is_some_and(|own| Arc::ptr_eq(own, inner))
    })
}

/// Runs `f` without holding a worker slot when the calling thread is a worker holding one
/// (re-acquiring the slot afterwards); on any other thread it just runs `f`.
/// The service hands it to the domain as its `Blocking` section: password hashing and
/// picture decoding run in it, so 8 logins in flight on 8 workers never stop profile
/// reads from being served.
pub fn step_aside<R>(f: impl FnOnce() -> R) -> R {
    let Some(inner) = HELD_SLOT.with(|held| held.borrow_mut().take()) else {
        return f();
    };
    inner.release_slot();
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // Re-acquire even when `f` panicked: the worker loop gives the slot back after the job.
    inner.reacquire_slot();
    HELD_SLOT.with(|held| *held.borrow_mut() = Some(inner));
    result.unwrap_or_else(|payload| panic::resume_unwind(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Polls `done` until it holds or the deadline passes.
    fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            thread::sleep(Duration::from_millis(2));
        }
        done()
    }

    #[test]
    fn call_returns_the_result_and_reports_panics() {
        let workers = Workers::new(2, 0);
        assert_eq!(workers.call(|| 6 * 7), Ok(42));
        assert_eq!(workers.call(|| -> u8 { panic!("boom") }), Err(()));
        // The pool survives a panicking job.
        assert_eq!(workers.call(|| "still here"), Ok("still here"));
        workers.shutdown();
        assert_eq!(workers.call(|| 1), Err(()));
    }

    #[test]
    fn at_most_threads_jobs_hold_a_slot() {
        let workers = Workers::new(3, 5);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..12)
            .map(|_| {
                let (workers, running, peak) = (workers.clone(), running.clone(), peak.clone());
                thread::spawn(move || {
                    workers.call(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.join().unwrap(), Ok(()));
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        workers.shutdown();
    }

    #[test]
    fn step_aside_lets_queued_jobs_run() {
        let workers = Workers::new(2, 2);
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let waiting = Arc::new(AtomicUsize::new(0));
        let blocked: Vec<_> = (0..2)
            .map(|_| {
                let (workers, gate, waiting) = (workers.clone(), gate.clone(), waiting.clone());
                thread::spawn(move || {
                    workers.call(move || {
                        step_aside(|| {
                            waiting.fetch_add(1, Ordering::SeqCst);
                            gate.lock().unwrap().recv().unwrap();
                        });
                        "done"
                    })
                })
            })
            .collect();
        assert!(wait_until(Duration::from_secs(5), || waiting
            .load(Ordering::SeqCst)
            == 2));
        let started = Instant::now();
        assert_eq!(workers.call(|| 1), Ok(1));
        assert!(started.elapsed() < Duration::from_secs(1));
        release.send(()).unwrap();
        release.send(()).unwrap();
        for caller in blocked {
            assert_eq!(caller.join().unwrap(), Ok("done"));
        }
        workers.shutdown();
    }

    #[test]
    fn step_aside_outside_a_worker_just_runs() {
        assert_eq!(step_aside(|| 5), 5);
    }

    #[test]
    fn a_panic_inside_step_aside_keeps_the_slot_count() {
        let workers = Workers::new(1, 1);
        assert_eq!(
            workers.call(|| step_aside(|| panic!("in hashing"))),
            Err::<(), ()>(())
        );
        // With one slot, a lost slot would hang here.
        assert_eq!(workers.call(|| step_aside(|| 3)), Ok(3));
        workers.shutdown();
    }

    #[test]
    fn nested_call_runs_inline() {
        let workers = Workers::new(1, 0);
        let inner_pool = workers.clone();
        assert_eq!(workers.call(move || inner_pool.call(|| 9)), Ok(Ok(9)));
        workers.shutdown();
    }

    #[test]
    fn shutdown_finishes_queued_jobs() {
        let workers = Workers::new(1, 0);
        let count = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (workers, count) = (workers.clone(), count.clone());
                thread::spawn(move || {
                    workers.call(move || {
                        thread::sleep(Duration::from_millis(10));
                        count.fetch_add(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        assert!(wait_until(Duration::from_secs(5), || count
            .load(Ordering::SeqCst)
            >= 1));
        workers.shutdown();
        let answered = callers
            .into_iter()
            .map(|caller| caller.join().unwrap())
            .filter(Result::is_ok)
            .count();
        assert_eq!(answered, count.load(Ordering::SeqCst));
    }
}
