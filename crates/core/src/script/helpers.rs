//! Pure helper functions registered for script authors (listed in the module docs
//! of [`super`]), and the built-ins that must not run inside the sandbox.

use chrono::{DateTime, SecondsFormat, Utc};
use rhai::{Array, Dynamic, Engine, EvalAltResult, FLOAT, INT, ImmutableString, NativeCallContext, Position};
use serde_json::Value;

use crate::schedule::IsoDuration;

type Fallible<T> = Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine) {
    engine.register_fn("parse_json", parse_json);
    register_splits(engine);
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
///
/// Counted before parsing: a text of a few megabytes can hold millions of
/// elements, and the parsed value would take many times the text's memory before
/// rhai measures it.
fn parse_json(ctx: NativeCallContext, text: &str) -> Fallible<Dynamic> {
    let (items, entries) = json_items(text);
    let engine = ctx.engine();
    if over(engine.max_array_size(), items) {
        return Err(too_large("Size of array", ctx.call_position()));
    }
    if over(engine.max_map_size(), entries) {
        return Err(too_large("Size of map", ctx.call_position()));
    }
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

/// Upper bounds of the array elements and map properties a JSON text holds:
/// separators and openings outside strings (`[1,2]` counts 2 elements, `{}` 1 entry).
fn json_items(text: &str) -> (usize, usize) {
    let (mut items, mut entries) = (0usize, 0usize);
    // Which kind of container each open bracket is: true for an object.
    let mut open: Vec<bool> = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                open.push(b == b'{');
                if b == b'{' { entries += 1 } else { items += 1 }
            }
            b']' | b'}' => {
                open.pop();
            }
            b',' => match open.last() {
                Some(true) => entries += 1,
                _ => items += 1,
            },
            _ => {}
        }
    }
    (items, entries)
}

fn over(max: usize, n: usize) -> bool {
    max > 0 && n > max
}

fn too_large(what: &str, position: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorDataTooLarge(what.into(), position).into()
}

/// The standard `split`, `split_rev` and `to_chars` build their whole result
/// before rhai measures it: a 4 MiB string split into characters is four million
/// strings. These count the parts first (without allocating) and build only what
/// fits the array limit; otherwise they behave exactly like the standard ones.
fn register_splits(engine: &mut Engine) {
    type S = ImmutableString;
    engine.register_fn("to_chars", |ctx: NativeCallContext, s: &str| -> Fallible<Array> { parts(&ctx, s.chars()) });
    engine.register_fn("split", |ctx: NativeCallContext, s: &mut S| -> Fallible<Array> {
        if s.is_empty() { Ok(vec![s.clone().into()]) } else { parts(&ctx, s.split_whitespace()) }
    });
    engine.register_fn("split", |ctx: NativeCallContext, s: &mut S, d: &str| -> Fallible<Array> {
        if whole(s, d) { Ok(vec![s.clone().into()]) } else { parts(&ctx, s.split(d)) }
    });
    engine.register_fn("split", |ctx: NativeCallContext, s: &mut S, d: &str, n: INT| -> Fallible<Array> {
        if n <= 1 || whole(s, d) { Ok(vec![s.clone().into()]) } else { parts(&ctx, s.splitn(segments(n), d)) }
    });
    engine.register_fn("split", |ctx: NativeCallContext, s: &mut S, d: char| -> Fallible<Array> {
        if s.is_empty() || !s.contains(d) { Ok(vec![s.clone().into()]) } else { parts(&ctx, s.split(d)) }
    });
    engine.register_fn("split", |ctx: NativeCallContext, s: &mut S, d: char, n: INT| -> Fallible<Array> {
        if n <= 1 || s.is_empty() || !s.contains(d) {
            Ok(vec![s.clone().into()])
        } else {
            parts(&ctx, s.splitn(segments(n), d))
        }
    });
    engine.register_fn("split_rev", |ctx: NativeCallContext, s: &mut S, d: &str| -> Fallible<Array> {
        if whole(s, d) { Ok(vec![s.clone().into()]) } else { parts(&ctx, s.rsplit(d)) }
    });
    engine.register_fn("split_rev", |ctx: NativeCallContext, s: &mut S, d: &str, n: INT| -> Fallible<Array> {
        if n <= 1 || whole(s, d) { Ok(vec![s.clone().into()]) } else { parts(&ctx, s.rsplitn(segments(n), d)) }
    });
    engine.register_fn("split_rev", |ctx: NativeCallContext, s: &mut S, d: char| -> Fallible<Array> {
        if s.is_empty() || !s.contains(d) { Ok(vec![s.clone().into()]) } else { parts(&ctx, s.rsplit(d)) }
    });
    engine.register_fn("split_rev", |ctx: NativeCallContext, s: &mut S, d: char, n: INT| -> Fallible<Array> {
        if n <= 1 || s.is_empty() || !s.contains(d) {
            Ok(vec![s.clone().into()])
        } else {
            parts(&ctx, s.rsplitn(segments(n), d))
        }
    });
}

/// The string is returned whole: empty, or without the (non-empty) delimiter.
fn whole(s: &str, delimiter: &str) -> bool {
    s.is_empty() || (!delimiter.is_empty() && !s.contains(delimiter))
}

fn segments(n: INT) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The parts as an array, if there are no more than the array limit allows.
fn parts<T: Into<Dynamic>>(ctx: &NativeCallContext, parts: impl Iterator<Item = T> + Clone) -> Fallible<Array> {
    if over(ctx.engine().max_array_size(), parts.clone().count()) {
        return Err(too_large("Size of array", ctx.call_position()));
    }
    Ok(parts.map(Into::into).collect())
}
