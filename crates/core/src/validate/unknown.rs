//! Fields the model does not know: warnings, not errors, since vNext
//! components may carry fields this runtime ignores; strict publishing turns
//! them into errors.
//!
//! The document is parsed into the typed model and serialized back; a member
//! of the document that the model's own serialization lacks is one the model
//! dropped. Members whose value is empty (`null`, `false`, `0`, `""`, `[]`,
//! `{}`) are not reported: the model omits its own empty optional fields the
//! same way, so they cannot be told apart, and an empty value changes nothing.
//! Free-form parts of the model (task configs, JSON Schemas, view content) are
//! kept whole by the round trip and so never reported.

use serde::Serialize;
use serde_json::Value;

use super::codes;
use super::diagnostic::{Diagnostic, Ptr, Sink};
use super::envelope;
use crate::model::Component;

/// Warnings for the members of `value` the typed model does not know. Empty
/// when the document does not parse (its errors are reported by validation).
pub fn unknown_fields(value: &Value) -> Vec<Diagnostic> {
    let Ok(component) = Component::from_json(value) else { return Vec::new() };
    let known = match &component {
        Component::Schema(e) => to_value(e),
        Component::Task(e) => to_value(e),
        Component::View(e) => to_value(e),
        Component::Function(e) => to_value(e),
        Component::Extension(e) => to_value(e),
        Component::Workflow(e) => to_value(e),
    };
    let Some(known) = known else { return Vec::new() };
    let mut sink = Sink::new(None);
    sink.component = envelope::label(value);
    compare(value, &known, &Ptr::root(), &mut sink);
    sink.out
}

fn to_value<T: Serialize>(v: &T) -> Option<Value> {
    serde_json::to_value(v).ok()
}

fn compare(given: &Value, known: &Value, at: &Ptr, sink: &mut Sink) {
    match (given, known) {
        (Value::Object(g), Value::Object(k)) => {
            for (name, value) in g {
                match k.get(name) {
                    Some(kv) => compare(value, kv, &at.key(name), sink),
                    None if is_empty(value) => {}
                    None => sink.report(
                        &at.key(name),
                        codes::COMPONENT_UNKNOWN_FIELD,
                        format!("`{name}` is not a field this runtime knows here; it is ignored (check its spelling)"),
                    ),
                }
            }
        }
        (Value::Array(g), Value::Array(k)) if g.len() == k.len() => {
            for (i, (gv, kv)) in g.iter().zip(k).enumerate() {
                compare(gv, kv, &at.idx(i), sink);
            }
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}
