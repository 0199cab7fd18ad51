//! The engine's only door to rhai: compile a `scriptCode`, call one of its
//! functions with a context, get JSON back.
//!
//! Every call site in the pipeline goes through [`Scripts`], so the sandbox
//! (operation count, wall-clock limit, size limits) is set in one place.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{CallFnOptions, Dynamic, EvalAltResult, Scope, AST};
use serde_json::Value;
use vnext_core::model::ScriptCode;
use vnext_core::script::{decode_source, ScriptError};

/// A compiled script and where it came from.
#[derive(Clone)]
pub struct Script {
    ast: Arc<AST>,
    /// `./src/approve.rhai`, or the definition path when the file is unnamed.
    pub location: String,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script").field("location", &self.location).finish()
    }
}

impl Script {
    /// True when the script defines `fn name(ctx)`.
    pub fn has_function(&self, name: &str) -> bool {
        self.ast.iter_functions().any(|f| f.name == name && f.params.len() == 1)
    }
}

/// Limits of one script call.
#[derive(Debug, Clone, Copy)]
pub struct ScriptLimits {
    pub max_operations: u64,
    pub timeout: Duration,
}

thread_local! {
    /// Deadline of the call running on this thread. A call never awaits, so it
    /// starts and ends on one thread.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The sandboxed rhai engine with the configured limits.
pub struct Scripts {
    engine: rhai::Engine,
    limits: ScriptLimits,
}

impl Scripts {
    pub fn new(limits: ScriptLimits) -> Scripts {
        let mut engine = rhai::Engine::new();
        // Explicit limits: rhai's defaults differ between debug and release builds.
        engine.set_max_expr_depths(128, 64);
        engine.set_max_call_levels(64);
        engine.set_max_operations(limits.max_operations);
        engine.set_max_string_size(4 * 1024 * 1024);
        engine.set_max_array_size(100_000);
        engine.set_max_map_size(100_000);
        engine.set_max_variables(10_000);
        engine.on_progress(|ops| {
            if ops % 1024 != 0 {
                return None;
            }
            match DEADLINE.with(Cell::get) {
                Some(d) if Instant::now() > d => Some(Dynamic::from("time limit")),
                _ => None,
            }
        });
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        Scripts { engine, limits }
    }

    /// Decodes and parses a script.
    ///
    /// # Errors
    /// Decoding errors (C#, bad base64, REF) and syntax errors with line and column.
    pub fn compile(&self, code: &ScriptCode, fallback_location: &str) -> Result<Script, ScriptError> {
        let source = decode_source(code)?;
        let ast = self.engine.compile(&source).map_err(|e| ScriptError::Syntax {
            message: e.err_type().to_string(),
            line: e.position().line().unwrap_or(0),
            column: e.position().position().unwrap_or(0),
        })?;
        let location = code.location.clone().unwrap_or_else(|| fallback_location.to_string());
        Ok(Script { ast: Arc::new(ast), location })
    }

    /// Calls `fn name(ctx)` and returns its result as JSON.
    ///
    /// # Errors
    /// [`ScriptError::MissingFunction`], [`ScriptError::Limit`] when the script ran
    /// too long or built something too large, [`ScriptError::Runtime`] otherwise.
    pub fn call(&self, script: &Script, name: &str, ctx: &Value) -> Result<Value, ScriptError> {
        if !script.has_function(name) {
            return Err(ScriptError::MissingFunction(name.to_string()));
        }
        let arg = rhai::serde::to_dynamic(ctx).map_err(|e| ScriptError::Runtime(e.to_string()))?;
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        DEADLINE.with(|d| d.set(Some(Instant::now() + self.limits.timeout)));
        let result = self.engine.call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &script.ast, name, (arg,));
        DEADLINE.with(|d| d.set(None));
        let out = result.map_err(|e| self.describe(*e))?;
        if out.is_unit() {
            return Ok(Value::Null);
        }
        rhai::serde::from_dynamic::<Value>(&out).map_err(|e| ScriptError::BadReturn {
            expected: "a value convertible to JSON".into(),
            got: e.to_string(),
        })
    }

    /// Calls `fn name(ctx)` expecting a map (or nothing, read as no change).
    ///
    /// # Errors
    /// As [`Scripts::call`], and [`ScriptError::BadReturn`] for a non-map result.
    pub fn call_map(&self, script: &Script, name: &str, ctx: &Value) -> Result<Option<Value>, ScriptError> {
        match self.call(script, name, ctx)? {
            Value::Null => Ok(None),
            v @ Value::Object(_) => Ok(Some(v)),
            other => Err(ScriptError::BadReturn { expected: "a map".into(), got: json_type(&other).into() }),
        }
    }

    /// Calls `fn name(ctx)` expecting a bool.
    ///
    /// # Errors
    /// As [`Scripts::call`], and [`ScriptError::BadReturn`] for a non-bool result.
    pub fn call_bool(&self, script: &Script, name: &str, ctx: &Value) -> Result<bool, ScriptError> {
        match self.call(script, name, ctx)? {
            Value::Bool(b) => Ok(b),
            other => Err(ScriptError::BadReturn { expected: "true or false".into(), got: json_type(&other).into() }),
        }
    }

    fn describe(&self, e: EvalAltResult) -> ScriptError {
        match e {
            EvalAltResult::ErrorTerminated(..) => {
                ScriptError::Limit(format!("ran longer than {} ms", self.limits.timeout.as_millis()))
            }
            EvalAltResult::ErrorTooManyOperations(pos) => {
                ScriptError::Limit(format!("more than {} operations ({pos})", self.limits.max_operations))
            }
            EvalAltResult::ErrorDataTooLarge(what, pos) => ScriptError::Limit(format!("{what} too large ({pos})")),
            EvalAltResult::ErrorStackOverflow(pos) => ScriptError::Limit(format!("calls nested too deep ({pos})")),
            other => ScriptError::Runtime(other.to_string()),
        }
    }
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vnext_core::model::ScriptEncoding;

    fn scripts() -> Scripts {
        Scripts::new(ScriptLimits { max_operations: 1_000_000, timeout: Duration::from_millis(500) })
    }

    fn nat(src: &str) -> ScriptCode {
        ScriptCode { kind: None, code: Some(Value::String(src.into())), location: None, encoding: ScriptEncoding::NAT }
    }

    #[test]
    fn calls_with_context_and_returns_json() {
        let s = scripts();
        let sc = s.compile(&nat("fn handler(ctx) { #{ total: ctx.body.a + 1, nested: #{ deep: #{ x: [1, 2] } } } }"), "t").unwrap();
        let out = s.call_map(&sc, "handler", &json!({"body": {"a": 41}})).unwrap().unwrap();
        assert_eq!(out, json!({"total": 42, "nested": {"deep": {"x": [1, 2]}}}));
        let rule = s.compile(&nat("fn handler(ctx) { ctx.body.a > 10 }"), "t").unwrap();
        assert!(s.call_bool(&rule, "handler", &json!({"body": {"a": 41}})).unwrap());
    }

    #[test]
    fn runaway_scripts_are_stopped() {
        let s = scripts();
        let sc = s.compile(&nat("fn handler(ctx) { loop { } }"), "t").unwrap();
        assert!(matches!(s.call(&sc, "handler", &json!({})), Err(ScriptError::Limit(_))));
        let big = s.compile(&nat("fn handler(ctx) { let s = \"x\"; loop { s += s; } }"), "t").unwrap();
        assert!(matches!(s.call(&big, "handler", &json!({})), Err(ScriptError::Limit(_))));
    }

    #[test]
    fn wrong_returns_are_reported() {
        let s = scripts();
        let sc = s.compile(&nat("fn handler(ctx) { 5 }"), "t").unwrap();
        assert!(matches!(s.call_map(&sc, "handler", &json!({})), Err(ScriptError::BadReturn { .. })));
        assert!(matches!(s.call_bool(&sc, "other", &json!({})), Err(ScriptError::MissingFunction(_))));
    }
}
