//! The sandbox: every rhai limit set explicitly, and a wall-clock deadline per call.
//!
//! rhai's default limits differ between debug and release builds (in debug, a map
//! literal nested two deep inside a function already fails to parse with
//! `ExprTooDeep`), so each one is set here from [`ScriptLimits`].
//!
//! Scripts run on a helper thread with a large stack (see [`super::stack`]);
//! results nested deeper than [`MAX_RESULT_DEPTH`] are refused there, so nothing
//! deep ever reaches the caller's thread.
//!
//! The deadline is a resource limit, not business time: it is measured on the
//! monotonic clock of the thread running the call, checked from rhai's progress
//! callback every [`CHECK_EVERY`] operations. The deadline of the call in progress
//! sits in a thread-local, so one engine serves calls with their own deadlines on
//! any number of threads.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, OptimizationLevel};

/// Limits applied to every script run by one [`super::ScriptHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Operations one call may perform (0 = unlimited; then only `timeout` stops a loop).
    pub max_operations: u64,
    /// Wall-clock time one call may take.
    pub timeout: Duration,
    /// Bytes of string data in one value (all strings inside it together).
    pub max_string_size: usize,
    /// Elements of arrays in one value (nested arrays counted together).
    pub max_array_size: usize,
    /// Properties of maps in one value (nested maps counted together).
    pub max_map_size: usize,
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
/// How often (in operations) the deadline is checked.
pub const CHECK_EVERY: u64 = 256;

/// The value the progress callback stops a script with when its time is up.
pub(super) const DEADLINE_TOKEN: &str = "deadline";

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The deadline of the call running on this thread; restores the previous one
/// (if any) when dropped.
pub(super) struct DeadlineGuard {
    previous: Option<Instant>,
}

impl DeadlineGuard {
    pub(super) fn arm(timeout: Duration) -> DeadlineGuard {
        // An unrepresentable deadline (absurd timeout) means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        DeadlineGuard { previous: DEADLINE.replace(deadline) }
    }
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        DEADLINE.set(self.previous);
    }
}

fn progress(operations: u64) -> Option<Dynamic> {
    if !operations.is_multiple_of(CHECK_EVERY) {
        return None;
    }
    let deadline = DEADLINE.get()?;
    (Instant::now() >= deadline).then(|| Dynamic::from(DEADLINE_TOKEN))
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
