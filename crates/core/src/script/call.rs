//! Running a compiled script's functions.

use rhai::{CallFnOptions, Dynamic, Scope};
use serde_json::{Map, Value};

use std::sync::Arc;
use std::time::Duration;

use super::convert::{call_error, describe, to_dynamic, to_json_value};
use super::limits::{CallGuard, MAX_RESULT_DEPTH};
use super::stack;
use super::{CompiledScript, ScriptError, ScriptHost, ScriptLimits};
use crate::schedule::Schedule;

const TIMER_SHAPES: &str =
    "a timer: #{duration: \"PT8S\"}, #{cron: \"0 9 * * *\", timezone: \"...\"}, #{at: \"<RFC 3339>\"} or #{immediate: true}";

/// A call ready to run on a script thread: made by [`ScriptHost::prepare`] on
/// the caller's thread, run by [`PreparedCall::run`] on a thread with a
/// [`super::SCRIPT_STACK_SIZE`] stack (a [`super::ScriptPool`] thread).
pub struct PreparedCall {
    engine: Arc<rhai::Engine>,
    ast: Arc<rhai::AST>,
    function: String,
    ctx: Value,
    limits: ScriptLimits,
}

impl std::fmt::Debug for PreparedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedCall").field("function", &self.function).finish_non_exhaustive()
    }
}

/// What a call returned, converted on the script's thread: JSON, and how long
/// the call ran there.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptOutput {
    /// The result as JSON, or why it cannot be JSON.
    json: Result<Value, String>,
    /// The result described for messages (`the integer 1`, `a map`, ...).
    description: String,
    /// From the start of the call on its thread to its result.
    pub elapsed: Duration,
}

impl PreparedCall {
    /// Runs the call on this thread, under the host's limits; the deadline starts
    /// now. The context goes in as a rhai value, the result comes out as JSON;
    /// nothing deep crosses back.
    ///
    /// # Errors
    /// As [`ScriptHost::call`].
    pub fn run(self) -> Result<ScriptOutput, ScriptError> {
        let PreparedCall { engine, ast, function, ctx, limits } = self;
        // The context is the caller's data: converted before the call's limits
        // start, so neither its time nor its memory counts against the script.
        let arg = to_dynamic(&ctx)?;
        drop(ctx);
        let guard = CallGuard::arm(&limits);
        let result = {
            let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
            engine
                .call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &ast, &function, (arg,))
                .map_err(|e| call_error(&function, &limits, guard.elapsed(), *e))?
        };
        if depth(&result) > MAX_RESULT_DEPTH {
            return Err(ScriptError::Limit(format!(
                "the result of fn {function} is nested deeper than {MAX_RESULT_DEPTH} levels"
            )));
        }
        let json = to_json_value(&result);
        let description = describe(&result);
        drop(result);
        Ok(ScriptOutput { json, description, elapsed: guard.elapsed() })
    }
}

impl ScriptOutput {
    /// The result as JSON (`()` is null).
    ///
    /// # Errors
    /// [`ScriptError::BadReturn`] when the result cannot be JSON.
    pub fn into_json(self) -> Result<Value, ScriptError> {
        self.json.map_err(|got| ScriptError::BadReturn { expected: "JSON-compatible data".into(), got })
    }

    /// A mapping's result: a map, or `None` for nothing.
    ///
    /// # Errors
    /// [`ScriptError::BadReturn`] for any other result.
    pub fn into_map(self) -> Result<Option<Map<String, Value>>, ScriptError> {
        match self.json {
            Ok(Value::Null) => Ok(None),
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => {
                Err(ScriptError::BadReturn { expected: "a map (#{...}) or nothing".into(), got: self.description })
            }
            Err(got) => Err(ScriptError::BadReturn { expected: "a map of JSON-compatible data".into(), got }),
        }
    }

    /// A rule's result.
    ///
    /// # Errors
    /// [`ScriptError::BadReturn`] for a non-boolean result.
    pub fn into_bool(self) -> Result<bool, ScriptError> {
        match self.json {
            Ok(Value::Bool(b)) => Ok(b),
            _ => Err(ScriptError::BadReturn { expected: "a boolean (true or false)".into(), got: self.description }),
        }
    }

    /// A timer script's result, one of the timer maps of [`Schedule::from_script_value`].
    ///
    /// # Errors
    /// [`ScriptError::BadReturn`] saying what is wrong with the returned timer.
    pub fn into_timer(self) -> Result<Schedule, ScriptError> {
        let json = self.json.map_err(|got| ScriptError::BadReturn { expected: TIMER_SHAPES.into(), got })?;
        Schedule::from_script_value(&json)
            .map_err(|e| ScriptError::BadReturn { expected: TIMER_SHAPES.into(), got: e.to_string() })
    }
}

impl ScriptHost {
    /// A call of `fn function(ctx)` of `script`, to run on a script thread.
    ///
    /// # Errors
    /// [`ScriptError::MissingFunction`] when the script defines no such
    /// one-parameter function.
    pub fn prepare(&self, script: &CompiledScript, function: &str, ctx: Value) -> Result<PreparedCall, ScriptError> {
        if !script.has_function(function) {
            return Err(ScriptError::MissingFunction(function.to_string()));
        }
        Ok(PreparedCall {
            engine: Arc::clone(&self.engine),
            ast: Arc::clone(&script.ast),
            function: function.to_string(),
            ctx,
            limits: self.limits.clone(),
        })
    }

    /// Runs `fn function(ctx)` of `script` and returns its result as JSON (`()` is
    /// null). The call runs on this thread's helper (see [`super::stack`]) and
    /// this thread waits for it; async callers use a [`super::ScriptPool`].
    ///
    /// # Errors
    /// [`ScriptError::MissingFunction`] when the script defines no such one-parameter
    /// function; [`ScriptError::Limit`] when a limit stopped it (including a result
    /// nested deeper than [`super::MAX_RESULT_DEPTH`]); [`ScriptError::Runtime`] for
    /// any other failure, with line and column; [`ScriptError::BadReturn`] when the
    /// result cannot be JSON.
    pub fn call(&self, script: &CompiledScript, function: &str, ctx: &Value) -> Result<Value, ScriptError> {
        self.run(script, function, ctx)?.into_json()
    }

    /// Runs a mapping function, which returns a map or nothing: `None` for `()`.
    ///
    /// # Errors
    /// As [`ScriptHost::call`]; [`ScriptError::BadReturn`] for any other result.
    pub fn call_map(
        &self,
        script: &CompiledScript,
        function: &str,
        ctx: &Value,
    ) -> Result<Option<Map<String, Value>>, ScriptError> {
        self.run(script, function, ctx)?.into_map()
    }

    /// Runs a rule, which returns `true` or `false`.
    ///
    /// # Errors
    /// As [`ScriptHost::call`]; [`ScriptError::BadReturn`] for a non-boolean result.
    pub fn call_bool(&self, script: &CompiledScript, function: &str, ctx: &Value) -> Result<bool, ScriptError> {
        self.run(script, function, ctx)?.into_bool()
    }

    /// Runs a timer script, which returns one of the timer maps of
    /// [`Schedule::from_script_value`].
    ///
    /// # Errors
    /// As [`ScriptHost::call`]; [`ScriptError::BadReturn`] saying what is wrong with
    /// the returned timer.
    pub fn call_timer(&self, script: &CompiledScript, function: &str, ctx: &Value) -> Result<Schedule, ScriptError> {
        self.run(script, function, ctx)?.into_timer()
    }

    /// Runs the call on this thread's helper and waits for it.
    fn run(&self, script: &CompiledScript, function: &str, ctx: &Value) -> Result<ScriptOutput, ScriptError> {
        let call = self.prepare(script, function, ctx.clone())?;
        stack::run(move || call.run())?
    }
}

/// Nesting depth of a value (a scalar is 0), counted no further than just past the
/// limit.
fn depth(value: &Dynamic) -> usize {
    fn walk(value: &Dynamic, level: usize) -> usize {
        if level > MAX_RESULT_DEPTH {
            return level;
        }
        if let Some(array) = value.read_lock::<rhai::Array>() {
            return array.iter().map(|v| walk(v, level + 1)).max().unwrap_or(level + 1);
        }
        if let Some(map) = value.read_lock::<rhai::Map>() {
            return map.values().map(|v| walk(v, level + 1)).max().unwrap_or(level + 1);
        }
        level
    }
    walk(value, 0)
}
