//! The memory meter behind [`super::ScriptLimits::max_memory`].
//!
//! rhai's size limits bound each value a script keeps, but not what one library
//! call builds on its way: `a.map(|x| s + s)` or `a.for_each(|| this += s)` keep
//! every element under the limits and can still fill the machine's memory before
//! the call returns. So a call also has a budget of new memory, read from the
//! kernel: the page faults of the script's own thread (`getrusage(RUSAGE_THREAD)`)
//! times the page size. A page is counted when the thread first touches it, so
//! the meter counts memory the call made resident, whether it still holds it or
//! not; memory the allocator reuses without a fault is free. That makes it an
//! upper bound of what the call added to the process's resident memory, not a
//! measure of its live data. The meter is cheap (one system call) and is read at
//! most once per [`super::MEMORY_CHECK_INTERVAL`] from rhai's progress callback,
//! so a call stops within about a millisecond of copying past its budget.
//!
//! Limits of the meter: it exists on Linux only (elsewhere the size limits alone
//! apply); with transparent huge pages set to `always`, one fault can bring in
//! 2 MiB and is still counted as one page, so the budget is then looser than it
//! says (the default `madvise` setting is not affected: the C allocator does not
//! ask for huge pages).

/// Bytes of memory this thread has touched for the first time since it started
/// (faulted pages times the page size); `None` where the meter does not exist.
#[cfg(target_os = "linux")]
pub(super) fn touched() -> Option<u64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_THREAD).ok()?;
    let faults = u64::try_from(usage.minor_page_faults()).ok()? + u64::try_from(usage.major_page_faults()).ok()?;
    Some(faults.saturating_mul(page_size()))
}

#[cfg(not(target_os = "linux"))]
pub(super) fn touched() -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    use std::sync::OnceLock;
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or(4096)
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn touching_new_memory_moves_the_meter() {
        let before = touched().expect("the meter exists on Linux");
        let block = std::hint::black_box(vec![1u8; 32 * 1024 * 1024]);
        let after = touched().unwrap();
        assert!(after - before >= 16 * 1024 * 1024, "{before} → {after}");
        drop(block);
    }
}
