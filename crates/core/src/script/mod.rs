//! The rhai script host: mappings, rules and timers (ARCHITECTURE.md §5).
//!
//! Scripts arrive in the vNext `scriptCode` envelope. [`decode_source`] turns it
//! into source text (B64 or NAT) and refuses C#; [`ScriptHost::compile`] parses
//! it once into a [`CompiledScript`] that is cached with the definition and shared
//! by every call, on any thread.
//!
//! # Calling a script
//! A hook is a function of one parameter, `fn name(ctx)`. [`ScriptHost::call`] runs
//! it with `ctx` (a [`ScriptContext`] turned into JSON) and returns its result as
//! JSON; [`ScriptHost::call_map`], [`ScriptHost::call_bool`] and
//! [`ScriptHost::call_timer`] check the result's type for mappings, rules and timer
//! scripts. JSON and rhai values convert both ways unchanged: objects are maps (keys
//! kept), integers stay integers, floats floats, null is `()`. Only functions run:
//! top-level statements of a script are not evaluated.
//!
//! `ctx` is the script's own copy: changing it inside the script changes nothing
//! outside. A missing property reads as `()` (`ctx.body.missing == ()`), and
//! `ctx.response?.status_code` reads safely when there is no response.
//!
//! # Sandbox
//! Every engine limit is set explicitly from [`ScriptLimits`] (operations,
//! wall-clock time, string/array/map sizes, call depth, expression depth). A script
//! that loops or allocates without end stops with [`ScriptError::Limit`], never
//! hangs the caller. There is no file or network access, no module loading, no
//! `eval`; `print` and `debug` print nothing; `sleep` is an error. Variables must be
//! declared before use, so typos fail at compile time (at publish). Scripts compile
//! and run on threads with a large stack ([`SCRIPT_STACK_SIZE`]), so deeply nested
//! data cannot overflow the caller's stack.
//!
//! Size limits are checked after each operation that builds or changes a value.
//! Library calls that would build a whole large result before that check
//! (`split`, `split_rev`, `to_chars`, `parse_json`) count first. What a call
//! builds through closures (`map`, `for_each`, ...) is bounded by the memory
//! budget ([`ScriptLimits::max_memory`], see [`memory`]).
//!
//! # Where calls run
//! [`ScriptHost::call`] and its typed siblings block the calling thread while a
//! helper thread of its own runs the call: for tools, tests and validation.
//! Services prepare a call ([`ScriptHost::prepare`]) and hand it to a
//! [`ScriptPool`], a fixed set of script threads, so that no script ever runs on
//! an async worker; the deadline starts when a pool thread picks the call up.
//!
//! # Helpers for script authors
//! Besides rhai's standard library (string, array, map and math functions):
//! - `parse_json(text)`: any JSON text as a value (objects become maps).
//! - `to_json(value)`: any value as compact JSON text (`()` is `null`).
//! - `is_empty(value)`: true for `()` and for empty strings, arrays and maps.
//! - `add_duration(instant, duration)`: an RFC 3339 instant plus an ISO-8601
//!   duration, as RFC 3339 in UTC, e.g. `#{at: add_duration(ctx.runtime.now, "P1D")}`.
//!
//! # Errors
//! Runtime errors and limits say where they happened: `line L, column C in fn output`.

mod call;
mod context;
mod convert;
mod helpers;
mod limits;
mod memory;
mod pool;
mod stack;

pub use call::{PreparedCall, ScriptOutput};
pub use context::{
    InstanceContext, ResponseContext, RuntimeContext, ScriptContext, TransitionContext,
};
pub use limits::{CHECK_EVERY, MAX_FUNCTIONS, MAX_RESULT_DEPTH, MAX_VARIABLES, MEMORY_CHECK_INTERVAL, ScriptLimits};
pub use pool::ScriptPool;
pub use stack::SCRIPT_STACK_SIZE;

use std::sync::Arc;

use base64::Engine as _;

use crate::model::{ScriptCode, ScriptEncoding};

/// Why a script could not be decoded, compiled or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptError {
    #[error("script code is missing")]
    MissingCode,
    #[error("script code is not valid base64 (encoding B64): {0}")]
    BadBase64(String),
    #[error("script code is not UTF-8 text")]
    NotUtf8,
    #[error("script references a shared mapping (encoding REF), which this runtime does not support; inline the rhai code instead")]
    Reference,
    #[error("{location} is a C# script; this runtime runs rhai scripts (.rhai): rewrite it in rhai")]
    CSharp { location: String },
    #[error("rhai syntax error at line {line}, column {column}: {message}")]
    Syntax { message: String, line: usize, column: usize },
    #[error("script does not define `fn {0}(ctx)`")]
    MissingFunction(String),
    #[error("script error: {0}")]
    Runtime(String),
    #[error("script stopped: {0}")]
    Limit(String),
    #[error("script returned {got}, expected {expected}")]
    BadReturn { expected: String, got: String },
}

/// Returns the script's source text.
///
/// # Errors
/// [`ScriptError::CSharp`] when the location ends in `.csx` or the text looks like
/// C#; decoding errors otherwise.
pub fn decode_source(code: &ScriptCode) -> Result<String, ScriptError> {
    let location = code.location.clone().unwrap_or_else(|| "(inline script)".to_string());
    if location.to_ascii_lowercase().ends_with(".csx") || location.to_ascii_lowercase().ends_with(".cs") {
        return Err(ScriptError::CSharp { location });
    }
    let text = match code.encoding {
        ScriptEncoding::REF => return Err(ScriptError::Reference),
        ScriptEncoding::NAT => code.code.as_ref().and_then(|c| c.as_str()).ok_or(ScriptError::MissingCode)?.to_string(),
        ScriptEncoding::B64 => {
            let raw = code.code.as_ref().and_then(|c| c.as_str()).ok_or(ScriptError::MissingCode)?;
            let cleaned: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(cleaned.as_bytes())
                .map_err(|e| ScriptError::BadBase64(e.to_string()))?;
            String::from_utf8(bytes).map_err(|_| ScriptError::NotUtf8)?
        }
    };
    if looks_like_csharp(&text) {
        return Err(ScriptError::CSharp { location });
    }
    Ok(text)
}

/// C# scripts in vNext files open with `using` directives and declare a class
/// implementing one of the mapping interfaces.
fn looks_like_csharp(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("using ")
        || t.contains("public class ")
        || t.contains("ScriptBase")
        || t.contains("Task<ScriptResponse>")
}

/// A parsed script, shared by every call: cloning is cheap (an `Arc`), and it can be
/// used from any thread.
#[derive(Debug, Clone)]
pub struct CompiledScript {
    pub(crate) ast: Arc<rhai::AST>,
}

impl CompiledScript {
    /// True when the script defines `fn name(ctx)` (one parameter).
    pub fn has_function(&self, name: &str) -> bool {
        self.ast.iter_functions().any(|f| f.name == name && f.params.len() == 1)
    }
}

/// The sandboxed rhai engine. `Send + Sync`: one host serves every thread;
/// cloning is cheap (the engine is shared).
#[derive(Clone)]
pub struct ScriptHost {
    /// Shared with the helper thread that runs each call (see [`stack`]).
    engine: Arc<rhai::Engine>,
    limits: ScriptLimits,
}

impl Default for ScriptHost {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ScriptHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptHost").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl ScriptHost {
    /// A host with [`ScriptLimits::default`].
    pub fn new() -> Self {
        Self::with_limits(ScriptLimits::default())
    }

    /// A host with the given limits.
    pub fn with_limits(limits: ScriptLimits) -> Self {
        let mut engine = limits::engine(&limits);
        helpers::register(&mut engine);
        Self { engine: Arc::new(engine), limits }
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &ScriptLimits {
        &self.limits
    }

    /// Decodes and parses a script.
    ///
    /// # Errors
    /// Decoding errors from [`decode_source`], or [`ScriptError::Syntax`] with the
    /// line and column rhai reports.
    pub fn compile(&self, code: &ScriptCode) -> Result<CompiledScript, ScriptError> {
        let source = decode_source(code)?;
        self.compile_source(&source)
    }

    /// Parses source text.
    ///
    /// # Errors
    /// [`ScriptError::Syntax`] with the line and column rhai reports.
    pub fn compile_source(&self, source: &str) -> Result<CompiledScript, ScriptError> {
        // The parser recurses once per nesting level, up to `max_expr_depth`.
        let engine = Arc::clone(&self.engine);
        let source = source.to_string();
        let parsed = stack::run(move || engine.compile(source))?;
        let ast = parsed.map_err(|e| ScriptError::Syntax {
            message: e.err_type().to_string(),
            line: e.position().line().unwrap_or(0),
            column: e.position().position().unwrap_or(0),
        })?;
        Ok(CompiledScript { ast: Arc::new(ast) })
    }
}
