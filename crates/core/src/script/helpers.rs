//! Pure helper functions registered for script authors (listed in the module docs
//! of [`super`]), and the built-ins that must not run inside the sandbox.

use chrono::{DateTime, SecondsFormat, Utc};
use rhai::{Dynamic, Engine, EvalAltResult, FLOAT, INT, ImmutableString, NativeCallContext};
use serde_json::Value;

use crate::schedule::IsoDuration;

type Fallible<T> = Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine) {
    engine.register_fn("parse_json", parse_json);
    engine.register_fn("to_json", to_json);
    // Replaces the built-in map version, whose escaping is not always valid JSON.
    engine.register_fn("to_json", |map: &mut rhai::Map| to_json(Dynamic::from_map(map.clone())));
    engine.register_fn("is_empty", |_: ()| true);
    engine.register_fn("add_duration", add_duration);
    // The standard `sleep` would block the thread where no deadline can reach it.
    engine.register_fn("sleep", |_: INT| -> Fallible<()> { Err(no_sleep()) });
    engine.register_fn("sleep", |_: FLOAT| -> Fallible<()> { Err(no_sleep()) });
    // The standard `replace` builds its result before rhai checks its size, so one
    // call could allocate far beyond the string limit (`s.replace("x", s)` squares
    // the length); these check the length first.
    engine.register_fn("replace", |ctx: NativeCallContext, s: &mut ImmutableString, find: &str, with: &str| {
        checked_replace(&ctx, s, find, with)
    });
    engine.register_fn("replace", |ctx: NativeCallContext, s: &mut ImmutableString, find: char, with: &str| {
        checked_replace(&ctx, s, &find.to_string(), with)
    });
}

fn checked_replace(ctx: &NativeCallContext, s: &mut ImmutableString, find: &str, with: &str) -> Fallible<()> {
    if s.is_empty() {
        return Ok(());
    }
    let max = ctx.engine().max_string_size();
    if max > 0 && with.len() > find.len() {
        let grown = s.len().saturating_add(s.matches(find).count().saturating_mul(with.len() - find.len()));
        if grown > max {
            return Err(EvalAltResult::ErrorDataTooLarge("Length of string".into(), ctx.call_position()).into());
        }
    }
    *s = s.replace(find, with).into();
    Ok(())
}

fn no_sleep() -> Box<EvalAltResult> {
    "sleep() is not available to scripts; use a scheduled transition to wait".into()
}

/// Any JSON text (object, array, string, number, boolean or null) as a value.
fn parse_json(text: &str) -> Fallible<Dynamic> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("parse_json: not valid JSON: {e}"))?;
    rhai::serde::to_dynamic(&value)
}

/// Any value as compact JSON text; `()` is `null`.
fn to_json(value: Dynamic) -> Fallible<String> {
    let json = super::convert::to_json_value(&value).map_err(|e| format!("to_json: {e}"))?;
    Ok(json.to_string())
}

/// An RFC 3339 instant plus an ISO-8601 duration, as RFC 3339 in UTC
/// (`add_duration(ctx.runtime.now, "P1D")`). Years and months are calendar units.
fn add_duration(instant: &str, duration: &str) -> Fallible<String> {
    let start = DateTime::parse_from_rfc3339(instant.trim())
        .map_err(|e| format!("add_duration: `{instant}` is not an RFC 3339 instant: {e}"))?
        .with_timezone(&Utc);
    let parsed = IsoDuration::parse(duration).map_err(|e| format!("add_duration: {e}"))?;
    let end = parsed.add_to(start).ok_or_else(|| format!("add_duration: `{instant}` + `{duration}` is out of range"))?;
    Ok(end.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}
