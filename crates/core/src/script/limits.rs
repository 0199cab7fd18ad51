//! The sandbox: every rhai limit set explicitly, and the watch a call runs under
//! (a wall-clock deadline and a memory budget).
//!
//! rhai's default limits differ between debug and release builds (in debug, a map
//! literal nested two deep inside a function already fails to parse with
//! `ExprTooDeep`), so each one is set here from [`ScriptLimits`].
//!
//! Scripts run on threads with a large stack (see [`super::stack`] and
//! [`super::ScriptPool`]); results nested deeper than [`MAX_RESULT_DEPTH`] are
//! refused there, so nothing deep ever reaches the caller's thread.
//!
//! The deadline is a resource limit, not business time: it is measured on the
//! monotonic clock from the moment the call starts on its script thread (time spent
//! waiting for a thread does not count), and checked from rhai's progress callback
//! every [`CHECK_EVERY`] operations. One operation is bounded by the size limits
//! (copying a 4 MiB string takes about a millisecond), so a script stops within a
//! few milliseconds of its deadline. The memory budget is checked from the same
//! callback at most once per [`MEMORY_CHECK_INTERVAL`] (see [`super::memory`]).
//! The watch of the call in progress sits in a thread-local, so one engine serves
//! calls with their own limits on any number of threads.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, OptimizationLevel};

use super::memory;

/// Limits applied to every script run by one [`super::ScriptHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Operations one call may perform (0 = unlimited; then only `timeout` stops a loop).
    pub max_operations: u64,
    /// Wall-clock time one call may take once it runs.
    pub timeout: Duration,
    /// Bytes of string data in one value (all strings inside it together).
    pub max_string_size: usize,
    /// Elements of arrays in one value (nested arrays counted together).
    pub max_array_size: usize,
    /// Properties of maps in one value (nested maps counted together).
    pub max_map_size: usize,
    /// New memory one call may touch, in bytes (0 = no budget; the size limits
    /// still apply). See [`super::memory`] for what is counted.
    pub max_memory: usize,
    /// Depth of nested function calls (recursion).
    pub max_call_levels: usize,
    /// Nesting depth of expressions, at top level and inside functions.
    pub max_expr_depth: usize,
}

impl Default for ScriptLimits {
    /// Generous for mappings, rules and timers over real instance data; small enough
    /// that a runaway script stops within a second or two.
    fn default() -> Self {
        ScriptLimits {
            max_operations: 5_000_000,
            timeout: Duration::from_secs(2),
            max_string_size: 4 * 1024 * 1024,
            max_array_size: 100_000,
            max_map_size: 100_000,
            max_memory: 64 * 1024 * 1024,
            max_call_levels: 64,
            max_expr_depth: 64,
        }
    }
}

/// Nesting depth of a returned value (the limit serde_json also applies when
/// reading JSON text back).
pub const MAX_RESULT_DEPTH: usize = 128;
/// Variables alive at once in one call.
pub const MAX_VARIABLES: usize = 10_000;
/// Functions one script may define.
pub const MAX_FUNCTIONS: usize = 1_000;
/// How often (in operations) the deadline is checked. Reading the clock costs
/// about as much as a cheap operation, so every 16th keeps the cost small while
/// an overshoot stays within 16 operations.
pub const CHECK_EVERY: u64 = 16;
/// How often, at most, the memory budget is checked (a system call).
pub const MEMORY_CHECK_INTERVAL: Duration = Duration::from_millis(1);

/// The value the progress callback stops a script with when its time is up.
pub(super) const DEADLINE_TOKEN: &str = "deadline";
/// The value the progress callback stops a script with when it used its memory.
pub(super) const MEMORY_TOKEN: &str = "memory";

/// What the progress callback checks for the call running on this thread.
#[derive(Debug, Clone, Copy)]
struct Watch {
    deadline: Option<Instant>,
    memory: Option<MemoryWatch>,
}

#[derive(Debug, Clone, Copy)]
struct MemoryWatch {
    /// The meter's reading when the call started.
    base: u64,
    /// Bytes the call may add to it.
    budget: u64,
    next_check: Instant,
}

thread_local! {
    static WATCH: Cell<Option<Watch>> = const { Cell::new(None) };
    static TICKS: Cell<u64> = const { Cell::new(0) };
}

/// The limits of the call running on this thread, from when it was armed;
/// restores the previous watch (if any) when dropped.
pub(super) struct CallGuard {
    previous: Option<Watch>,
    started: Instant,
}

impl CallGuard {
    pub(super) fn arm(limits: &ScriptLimits) -> CallGuard {
        let started = Instant::now();
        // An unrepresentable deadline (absurd timeout) means no deadline.
        let deadline = started.checked_add(limits.timeout);
        let memory = (limits.max_memory > 0).then(memory::touched).flatten().map(|base| MemoryWatch {
            base,
            budget: limits.max_memory as u64,
            next_check: started,
        });
        CallGuard { previous: WATCH.replace(Some(Watch { deadline, memory })), started }
    }

    /// Time since the call was armed.
    pub(super) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        WATCH.set(self.previous);
    }
}

fn progress(_operations: u64) -> Option<Dynamic> {
    // rhai's own count starts again in each closure a library call runs
    // (`a.map(|x| ...)`), so a short closure would never reach a multiple of
    // CHECK_EVERY: this thread counts the callbacks itself.
    let ticks = TICKS.get().wrapping_add(1);
    TICKS.set(ticks);
    if !ticks.is_multiple_of(CHECK_EVERY) {
        return None;
    }
    let mut watch = WATCH.get()?;
    let now = Instant::now();
    if watch.deadline.is_some_and(|deadline| now >= deadline) {
        return Some(Dynamic::from(DEADLINE_TOKEN));
    }
    if let Some(mut m) = watch.memory
        && now >= m.next_check
    {
        m.next_check = now + MEMORY_CHECK_INTERVAL;
        watch.memory = Some(m);
        WATCH.set(Some(watch));
        if memory::touched().is_some_and(|t| t.saturating_sub(m.base) > m.budget) {
            return Some(Dynamic::from(MEMORY_TOKEN));
        }
    }
    None
}

/// An engine with the limits applied and the sandbox closed: no `eval`, no module
/// loading (`no_module` feature), no output to the process's stdout.
pub(super) fn engine(limits: &ScriptLimits) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(limits.max_operations);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_variables(MAX_VARIABLES);
    engine.set_max_functions(MAX_FUNCTIONS);
    engine.set_optimization_level(OptimizationLevel::Simple);
    // Undefined variables are reported when the script is compiled (at publish).
    engine.set_strict_variables(true);
    // `ctx.body.missing` is `()`, not an error.
    engine.set_fail_on_invalid_map_property(false);
    engine.disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.on_progress(progress);
    engine
}
