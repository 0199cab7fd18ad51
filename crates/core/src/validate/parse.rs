//! From JSON to the typed model, with serde's complaint turned into a diagnostic
//! that points at the offending value.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use super::codes;
use super::diagnostic::{Ptr, Sink};
use super::envelope::Parts;
use crate::model::{Component, ComponentKind, Envelope};

/// Parses `attributes` by the envelope's kind and assembles the component.
/// Reports a [`codes::COMPONENT_PARSE`] diagnostic and returns `None` when the
/// attributes do not fit the model.
pub(crate) fn component(value: &Value, parts: &Parts, sink: &mut Sink) -> Option<Component> {
    let kind = parts.kind?;
    let attributes = value.get("attributes").filter(|a| a.is_object())?;
    Some(match kind {
        ComponentKind::Schema => Component::Schema(envelope(parts, attributes, sink)?),
        ComponentKind::Task => Component::Task(envelope(parts, attributes, sink)?),
        ComponentKind::View => Component::View(envelope(parts, attributes, sink)?),
        ComponentKind::Function => Component::Function(envelope(parts, attributes, sink)?),
        ComponentKind::Extension => Component::Extension(envelope(parts, attributes, sink)?),
        ComponentKind::Workflow => {
            Component::Workflow(Box::new(envelope(parts, attributes, sink)?))
        }
    })
}

fn envelope<A: DeserializeOwned>(
    parts: &Parts,
    attributes: &Value,
    sink: &mut Sink,
) -> Option<Envelope<A>> {
    match serde_path_to_error::deserialize::<_, A>(attributes) {
        Ok(attributes) => Some(Envelope {
            key: parts.key.clone(),
            version: parts.version.clone(),
            domain: parts.domain.clone(),
            flow: parts.flow.clone(),
            flow_version: parts.flow_version.clone(),
            tags: parts.tags.clone(),
            attributes,
        }),
        Err(error) => {
            let mut pointer = Ptr::root().key("attributes");
            for segment in error.path().iter() {
                pointer = match segment {
                    Segment::Seq { index } => pointer.idx(*index),
                    Segment::Map { key } => pointer.key(key),
                    Segment::Enum { .. } => continue,
                    Segment::Unknown => break,
                };
            }
            let message = explain(&error.inner().to_string());
            sink.report(&pointer, codes::COMPONENT_PARSE, message);
            None
        }
    }
}

/// serde's words, plus the accepted shapes where serde can only say "no variant matched".
fn explain(serde_message: &str) -> String {
    const SHAPES: [(&str, &str); 5] = [
        (
            "enum Reference",
            "a reference {\"key\", \"domain\", \"flow\", \"version\"} or {\"ref\": \"Folder/file.json\"}",
        ),
        (
            "enum Timer",
            "a timer script {\"location\", \"code\", \"encoding\"} or one of {\"duration\": \"PT8S\"}, {\"cron\": \"0 9 * * *\", \"timezone\": \"Europe/Istanbul\"}, {\"at\": \"<RFC 3339>\"}",
        ),
        (
            "enum ViewBinding",
            "a view binding {\"view\": reference} or {\"rules\": [...], \"default\": {\"view\": reference}}",
        ),
        (
            "enum AvailableIn",
            "a state key or {\"state\": key, \"roles\": [...]}",
        ),
        ("enum Label", "a label {\"label\", \"language\"}"),
    ];
    for (needle, shape) in SHAPES {
        if serde_message.contains(needle) {
            return format!("does not fit the component model: expected {shape}");
        }
    }
    format!("does not fit the component model: {serde_message}")
}
