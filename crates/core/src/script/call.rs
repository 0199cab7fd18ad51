//! Running a compiled script's functions.

use rhai::{CallFnOptions, Dynamic, Scope};
use serde_json::{Map, Value};

use super::convert::{call_error, describe, to_dynamic, to_json_value};
use std::sync::Arc;

use super::limits::{DeadlineGuard, MAX_RESULT_DEPTH};
use super::stack;
use super::{CompiledScript, ScriptError, ScriptHost};
use crate::schedule::Schedule;

const TIMER_SHAPES: &str =
    "a timer: #{duration: \"PT8S\"}, #{cron: \"0 9 * * *\", timezone: \"...\"}, #{at: \"<RFC 3339>\"} or #{immediate: true}";

/// What a call returned, converted on the script's thread.
struct Returned {
    /// The result as JSON, or why it cannot be JSON.
    json: Result<Value, String>,
    /// The result described for messages (`the integer 1`, `a map`, ...).
    description: String,
}

impl ScriptHost {
    /// Runs `fn function(ctx)` of `script` and returns its result as JSON (`()` is
    /// null).
    ///
    /// # Errors
    /// [`ScriptError::MissingFunction`] when the script defines no such one-parameter
    /// function; [`ScriptError::Limit`] when a limit stopped it (including a result
    /// nested deeper than [`super::MAX_RESULT_DEPTH`]); [`ScriptError::Runtime`] for
    /// any other failure, with line and column; [`ScriptError::BadReturn`] when the
    /// result cannot be JSON.
    pub fn call(&self, script: &CompiledScript, function: &str, ctx: &Value) -> Result<Value, ScriptError> {
        let returned = self.run(script, function, ctx)?;
        returned.json.map_err(|got| ScriptError::BadReturn { expected: "JSON-compatible data".into(), got })
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
        let Returned { json, description } = self.run(script, function, ctx)?;
        match json {
            Ok(Value::Null) => Ok(None),
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Err(ScriptError::BadReturn { expected: "a map (#{...}) or nothing".into(), got: description }),
            Err(got) => Err(ScriptError::BadReturn { expected: "a map of JSON-compatible data".into(), got }),
        }
    }

    /// Runs a rule, which returns `true` or `false`.
    ///
    /// # Errors
    /// As [`ScriptHost::call`]; [`ScriptError::BadReturn`] for a non-boolean result.
    pub fn call_bool(&self, script: &CompiledScript, function: &str, ctx: &Value) -> Result<bool, ScriptError> {
        let Returned { json, description } = self.run(script, function, ctx)?;
        match json {
            Ok(Value::Bool(b)) => Ok(b),
            _ => Err(ScriptError::BadReturn { expected: "a boolean (true or false)".into(), got: description }),
        }
    }

    /// Runs a timer script, which returns one of the timer maps of
    /// [`Schedule::from_script_value`].
    ///
    /// # Errors
    /// As [`ScriptHost::call`]; [`ScriptError::BadReturn`] saying what is wrong with
    /// the returned timer.
    pub fn call_timer(&self, script: &CompiledScript, function: &str, ctx: &Value) -> Result<Schedule, ScriptError> {
        let json = self.run(script, function, ctx)?.json;
        let json = json.map_err(|got| ScriptError::BadReturn { expected: TIMER_SHAPES.into(), got })?;
        Schedule::from_script_value(&json)
            .map_err(|e| ScriptError::BadReturn { expected: TIMER_SHAPES.into(), got: e.to_string() })
    }

    /// Runs the call on the script thread (see [`super::stack`]): the context goes
    /// in as a rhai value, the result comes out as JSON; nothing deep crosses back.
    fn run(&self, script: &CompiledScript, function: &str, ctx: &Value) -> Result<Returned, ScriptError> {
        if !script.has_function(function) {
            return Err(ScriptError::MissingFunction(function.to_string()));
        }
        let arg = to_dynamic(ctx)?;
        let engine = Arc::clone(&self.engine);
        let ast = Arc::clone(&script.ast);
        let function = function.to_string();
        let timeout = self.limits.timeout;
        stack::run(move || {
            let result = {
                let _deadline = DeadlineGuard::arm(timeout);
                let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
                engine
                    .call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &ast, &function, (arg,))
                    .map_err(|e| call_error(&function, timeout, *e))?
            };
            if depth(&result) > MAX_RESULT_DEPTH {
                return Err(ScriptError::Limit(format!(
                    "the result of fn {function} is nested deeper than {MAX_RESULT_DEPTH} levels"
                )));
            }
            Ok(Returned { json: to_json_value(&result), description: describe(&result) })
        })?
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
