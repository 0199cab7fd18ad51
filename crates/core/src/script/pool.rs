//! The script threads of a service: a fixed number of threads, each with a
//! [`SCRIPT_STACK_SIZE`] stack, taking calls from one queue in order.
//!
//! A script runs until it returns or a limit stops it, and nothing can interrupt
//! it from outside, so it must not run on a thread that has other work: on an
//! async runtime's worker it would hold up every request scheduled there. Callers
//! hand [`super::PreparedCall`]s to the pool and wait for the reply the job sends
//! them (an async caller awaits a one-shot channel; the pool knows nothing of the
//! runtime). A fixed number of threads bounds the CPU scripts can take and the
//! number of allocator arenas that keep their memory; a call waits in the queue
//! while every thread is busy, and its limits start when a thread picks it up.
//! Dropping the pool lets its threads finish the calls they run and end.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use super::{SCRIPT_STACK_SIZE, ScriptError};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A bounded pool of script threads. `Send + Sync`: one pool serves a process.
pub struct ScriptPool {
    jobs: mpsc::Sender<Job>,
    threads: usize,
    /// Jobs handed in and not yet picked up by a thread.
    queued: Arc<AtomicUsize>,
}

impl std::fmt::Debug for ScriptPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptPool").field("threads", &self.threads).field("queued", &self.queued()).finish()
    }
}

impl ScriptPool {
    /// Starts `threads` script threads (at least one).
    ///
    /// # Errors
    /// [`ScriptError::Runtime`] when a thread cannot be started.
    pub fn new(threads: usize) -> Result<ScriptPool, ScriptError> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let queued = Arc::new(AtomicUsize::new(0));
        for i in 0..threads {
            let (queue, queued) = (Arc::clone(&queue), Arc::clone(&queued));
            thread::Builder::new()
                .name(format!("vnext-script-{i}"))
                .stack_size(SCRIPT_STACK_SIZE)
                .spawn(move || work(&queue, &queued))
                .map_err(|e| ScriptError::Runtime(format!("cannot start a thread for scripts: {e}")))?;
        }
        Ok(ScriptPool { jobs, threads, queued })
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Calls waiting for a thread right now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Queues `job` for the next free thread and returns at once. A job that
    /// panics is dropped (with whatever reply channel it holds, which tells its
    /// caller); the thread carries on.
    ///
    /// # Errors
    /// [`ScriptError::Runtime`] when every thread has ended.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), ScriptError> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.jobs.send(Box::new(job)).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            ScriptError::Runtime("the script threads have stopped".into())
        })
    }

    /// Runs `f` on a pool thread and waits for its result (for callers that may
    /// block their thread).
    ///
    /// # Errors
    /// [`ScriptError::Runtime`] when every thread has ended or `f` panicked.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, ScriptError> {
        let (reply, result) = mpsc::sync_channel(1);
        self.execute(move || {
            let _ = reply.send(f());
        })?;
        result.recv().map_err(|_| ScriptError::Runtime("the script panicked; this is a bug in the script host".into()))
    }
}

fn work(queue: &Mutex<mpsc::Receiver<Job>>, queued: &AtomicUsize) {
    loop {
        // The lock is held only while waiting for the next job; a job never
        // runs under it, so it cannot be poisoned by one.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        queued.fetch_sub(1, Ordering::Relaxed);
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Barrier;
    use std::time::Duration;

    #[test]
    fn jobs_run_on_the_pool_threads_and_no_more_at_once() {
        let pool = ScriptPool::new(2).unwrap();
        assert_eq!(pool.threads(), 2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (done, results) = mpsc::channel();
        for _ in 0..8 {
            let (running, most, done) = (Arc::clone(&running), Arc::clone(&most), done.clone());
            pool.execute(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                done.send(thread::current().name().map(String::from)).unwrap();
            })
            .unwrap();
        }
        let names: HashSet<_> = (0..8).map(|_| results.recv().unwrap().unwrap()).collect();
        assert!(names.iter().all(|n| n.starts_with("vnext-script-")), "{names:?}");
        assert!(names.len() <= 2, "{names:?}");
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(pool.queued(), 0);
    }

    #[test]
    fn a_busy_pool_queues_and_counts_what_waits() {
        let pool = ScriptPool::new(1).unwrap();
        let gate = Arc::new(Barrier::new(2));
        let held = Arc::clone(&gate);
        pool.execute(move || {
            held.wait();
        })
        .unwrap();
        let (done, result) = mpsc::channel();
        pool.execute(move || done.send(7).unwrap()).unwrap();
        // The second job cannot start before the first one ends.
        assert!(result.recv_timeout(Duration::from_millis(50)).is_err());
        assert_eq!(pool.queued(), 1);
        gate.wait();
        assert_eq!(result.recv().unwrap(), 7);
    }

    #[test]
    fn a_panic_is_reported_and_the_thread_survives() {
        let pool = ScriptPool::new(1).unwrap();
        let err = pool.run(|| -> u8 { panic!("boom") }).unwrap_err();
        assert!(matches!(err, ScriptError::Runtime(ref m) if m.contains("panicked")), "{err:?}");
        assert_eq!(pool.run(|| 7).unwrap(), 7);
    }

    #[test]
    fn the_threads_have_the_large_stack() {
        fn down(n: u32) -> u32 {
            let pad = std::hint::black_box([0u8; 512]);
            if n == 0 { u32::from(pad[0]) } else { down(n - 1) + 1 }
        }
        let pool = ScriptPool::new(1).unwrap();
        // About 20 MiB of stack: far past a default thread's 2 MiB.
        assert_eq!(pool.run(|| down(40_000)).unwrap(), 40_000);
    }
}
