//! Where blocking callers run scripts: a helper thread with a large stack, one per
//! calling thread (services use a [`super::ScriptPool`] instead).
//!
//! rhai evaluates, clones, measures and drops nested values recursively, and a
//! script can nest data as deep as its size limits allow, far deeper than a default
//! 2 MiB thread stack survives (a stack overflow aborts the whole process). So
//! compilation and calls run on a helper thread with a [`SCRIPT_STACK_SIZE`] stack.
//! The stack is reserved address space: only the pages a call touches use memory.
//!
//! Each calling thread gets its own helper, started on its first script and reused
//! for every later one (starting a thread per call would cost more than most
//! scripts take to run). The caller waits for the result, so calls from one thread
//! never queue behind calls from another. A helper ends when its calling thread
//! ends; a panic inside a job is caught and reported, and the helper carries on.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread;

use super::ScriptError;

/// Stack reserved for the helper thread that compiles and runs scripts.
pub const SCRIPT_STACK_SIZE: usize = 64 * 1024 * 1024;

type Job = Box<dyn FnOnce() + Send + 'static>;

thread_local! {
    static HELPER: RefCell<Option<mpsc::Sender<Job>>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's helper and waits for its result.
///
/// # Errors
/// [`ScriptError::Runtime`] when no helper thread can be started or `f` panicked.
pub(super) fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ScriptError> {
    let (reply, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        // The caller may have gone (it cannot, it waits); nothing to do then.
        let _ = reply.send(f());
    });
    HELPER
        .try_with(|helper| submit(&mut helper.borrow_mut(), job))
        .map_err(|_| ScriptError::Runtime("scripts cannot run while this thread shuts down".into()))??;
    result.recv().map_err(|_| ScriptError::Runtime("the script panicked; this is a bug in the script host".into()))
}

fn submit(helper: &mut Option<mpsc::Sender<Job>>, job: Job) -> Result<(), ScriptError> {
    let job = match helper {
        Some(jobs) => match jobs.send(job) {
            Ok(()) => return Ok(()),
            // The helper is gone; start another.
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let jobs = start_helper()?;
    jobs.send(job).map_err(|_| ScriptError::Runtime("the script thread stopped at once".into()))?;
    *helper = Some(jobs);
    Ok(())
}

fn start_helper() -> Result<mpsc::Sender<Job>, ScriptError> {
    let (jobs, queue) = mpsc::channel::<Job>();
    thread::Builder::new()
        .name("vnext-script".into())
        .stack_size(SCRIPT_STACK_SIZE)
        .spawn(move || {
            for job in queue {
                // A panic drops the job's reply channel, which the caller reports.
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
        })
        .map_err(|e| ScriptError::Runtime(format!("cannot start a thread for scripts: {e}")))?;
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_helper_per_calling_thread_reused_across_calls() {
        let first = run(|| thread::current().id()).unwrap();
        let second = run(|| thread::current().id()).unwrap();
        assert_eq!(first, second);
        assert_ne!(first, thread::current().id());
        let elsewhere = thread::spawn(|| run(|| thread::current().id()).unwrap()).join().unwrap();
        assert_ne!(elsewhere, first);
    }

    #[test]
    fn a_panic_is_reported_and_the_helper_survives() {
        let err = run(|| -> u8 { panic!("boom") }).unwrap_err();
        assert!(matches!(err, ScriptError::Runtime(ref m) if m.contains("panicked")), "{err:?}");
        assert_eq!(run(|| 7).unwrap(), 7);
    }

    #[test]
    fn deep_recursion_fits() {
        fn down(n: u32) -> u32 {
            let pad = std::hint::black_box([0u8; 512]);
            if n == 0 { u32::from(pad[0]) } else { down(n - 1) + 1 }
        }
        // About 20 MiB of stack: far past a default thread's 2 MiB.
        assert_eq!(run(|| down(40_000)).unwrap(), 40_000);
    }
}
