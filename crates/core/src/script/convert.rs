//! JSON ↔ rhai values, and rhai errors → [`ScriptError`].

use std::time::Duration;

use rhai::{Dynamic, EvalAltResult, Position};
use serde_json::Value;

use super::limits::{DEADLINE_TOKEN, MEMORY_TOKEN};
use super::{ScriptError, ScriptLimits};

/// A JSON value as a rhai value: objects become maps, arrays arrays, integers
/// `i64` (larger ones `f64`), other numbers `f64`, null `()`.
pub(super) fn to_dynamic(value: &Value) -> Result<Dynamic, ScriptError> {
    rhai::serde::to_dynamic(value).map_err(|e| ScriptError::Runtime(format!("the context cannot be given to the script: {e}")))
}

/// A rhai value as JSON: `()` is null, maps objects, integers stay integers and
/// floats floats (NaN and infinities become null). Values JSON cannot hold
/// (function pointers, timestamps, ...) are an error.
pub(super) fn to_json_value(value: &Dynamic) -> Result<Value, String> {
    rhai::serde::from_dynamic::<Value>(value).map_err(|e| {
        let mut e = *e;
        e.clear_position();
        format!("{} cannot be turned into JSON: {e}", describe(value))
    })
}

/// A short description of a value for messages: its kind and, for scalars, the value.
pub(super) fn describe(value: &Dynamic) -> String {
    if value.is_unit() {
        return "nothing (unit)".into();
    }
    if let Ok(b) = value.as_bool() {
        return format!("the boolean {b}");
    }
    if let Ok(i) = value.as_int() {
        return format!("the integer {i}");
    }
    if let Ok(f) = value.as_float() {
        return format!("the number {f}");
    }
    if value.is_string() {
        let text = value.clone().into_string().unwrap_or_default();
        let shown: String = text.chars().take(40).collect();
        let ellipsis = if shown.len() < text.len() { "..." } else { "" };
        return format!("the string {shown:?}{ellipsis}");
    }
    if value.is_array() {
        return "an array".into();
    }
    if value.is_map() {
        return "a map".into();
    }
    format!("a value of type {}", value.type_name())
}

/// Turns a failed call of `function` into a [`ScriptError`]: limits become
/// [`ScriptError::Limit`], anything else [`ScriptError::Runtime`], with the line
/// and column where it happened and the chain of functions it happened in.
/// `elapsed` is how long the call had run when it stopped.
pub(super) fn call_error(
    function: &str,
    limits: &ScriptLimits,
    elapsed: Duration,
    error: EvalAltResult,
) -> ScriptError {
    let mut chain = vec![function.to_string()];
    let mut error = error;
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, _) = error {
        chain.push(name);
        error = *inner;
    }
    // Limits (system errors) carry the position of the outermost call site, which
    // is unknown for the hook itself; other errors, where they happened.
    let position = error.take_position();
    let functions = format!("fn {}", chain.join(" → fn "));
    let place = match location(position) {
        Some(at) => format!("{at} in {functions}"),
        None => format!("in {functions}"),
    };
    let limit = |what: String| ScriptError::Limit(format!("{what} ({place})"));
    match error {
        EvalAltResult::ErrorTerminated(token, _) if token.clone().into_string().is_ok_and(|t| t == DEADLINE_TOKEN) => {
            limit(format!(
                "ran longer than the {} ms allowed (stopped after {} ms)",
                limits.timeout.as_millis(),
                elapsed.as_millis()
            ))
        }
        EvalAltResult::ErrorTerminated(token, _) if token.clone().into_string().is_ok_and(|t| t == MEMORY_TOKEN) => {
            limit(format!("used more than the {} allowed", mebibytes(limits.max_memory)))
        }
        EvalAltResult::ErrorTooManyOperations(_) => limit("exceeded the number of operations allowed".into()),
        EvalAltResult::ErrorStackOverflow(_) => limit("nested function calls too deep (runaway recursion?)".into()),
        EvalAltResult::ErrorDataTooLarge(what, _) => limit(format!("{what} exceeds the size allowed")),
        other => ScriptError::Runtime(format!("{other}, {place}")),
    }
}

/// `67108864` as `64 MiB of memory`; sizes below a MiB in bytes.
fn mebibytes(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB of memory", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes of memory")
    }
}

fn location(position: Position) -> Option<String> {
    match (position.line(), position.position()) {
        (Some(line), Some(column)) => Some(format!("line {line}, column {column}")),
        (Some(line), None) => Some(format!("line {line}")),
        _ => None,
    }
}
