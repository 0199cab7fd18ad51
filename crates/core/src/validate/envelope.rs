//! The envelope every component shares: `key`, `version`, `domain`, `flow`,
//! `flowVersion`, `tags`, `attributes`. Read from the raw JSON so its problems are
//! reported even when `attributes` do not parse.

use serde_json::Value;

use super::codes;
use super::diagnostic::{Ptr, Sink};
use crate::model::ComponentKind;

/// The envelope fields as found; absent or mistyped fields are empty strings
/// (and were reported).
#[derive(Debug, Clone, Default)]
pub(crate) struct Parts {
    pub key: String,
    pub version: String,
    pub domain: String,
    pub flow: String,
    pub flow_version: Option<String>,
    pub tags: Vec<String>,
    pub kind: Option<ComponentKind>,
    pub has_attributes: bool,
}

/// `flow/key@version`, when the envelope names all three.
pub(crate) fn label(value: &Value) -> Option<String> {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    Some(format!(
        "{}/{}@{}",
        field("flow")?,
        field("key")?,
        field("version")?
    ))
}

/// Reads the envelope, reporting absent and mistyped fields and an unknown flow.
/// `None` when the document is not a JSON object at all.
pub(crate) fn read(value: &Value, sink: &mut Sink) -> Option<Parts> {
    let root = Ptr::root();
    let Some(object) = value.as_object() else {
        sink.report(
            &root,
            codes::ENVELOPE_WRONG_TYPE,
            format!(
                "a component must be a JSON object, found {}",
                kind_of(value)
            ),
        );
        return None;
    };
    let mut string = |name: &str, required: bool| -> Option<String> {
        match object.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) if !required => None,
            None => {
                sink.report(&root, codes::ENVELOPE_MISSING_FIELD, format!("the envelope has no `{name}`; every component needs key, version, domain, flow, flowVersion, tags and attributes"));
                None
            }
            Some(other) => {
                sink.report(
                    &root.key(name),
                    codes::ENVELOPE_WRONG_TYPE,
                    format!("`{name}` must be a string, found {}", kind_of(other)),
                );
                None
            }
        }
    };
    let mut parts = Parts {
        key: string("key", true).unwrap_or_default(),
        version: string("version", true).unwrap_or_default(),
        domain: string("domain", true).unwrap_or_default(),
        flow: string("flow", true).unwrap_or_default(),
        flow_version: string("flowVersion", false),
        ..Parts::default()
    };
    match object.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(tag) => parts.tags.push(tag.to_string()),
                    None => sink.report(
                        &root.key("tags").idx(i),
                        codes::ENVELOPE_TAGS_INVALID,
                        format!("a tag must be a string, found {}", kind_of(item)),
                    ),
                }
            }
        }
        Some(other) => sink.report(
            &root.key("tags"),
            codes::ENVELOPE_WRONG_TYPE,
            format!(
                "`tags` must be an array of strings, found {}",
                kind_of(other)
            ),
        ),
    }
    match object.get("attributes") {
        Some(Value::Object(_)) => parts.has_attributes = true,
        None | Some(Value::Null) => sink.report(
            &root,
            codes::ENVELOPE_MISSING_FIELD,
            "the envelope has no `attributes` object",
        ),
        Some(other) => sink.report(
            &root.key("attributes"),
            codes::ENVELOPE_WRONG_TYPE,
            format!("`attributes` must be an object, found {}", kind_of(other)),
        ),
    }
    if object.get("flow").is_some_and(Value::is_string) {
        parts.kind = ComponentKind::from_flow(&parts.flow);
        if parts.kind.is_none() {
            let hint = if parts.flow == "sys-mappings" {
                " (shared C# mappings are not supported: put rhai code in each script)"
            } else {
                ""
            };
            sink.report(&root.key("flow"), codes::ENVELOPE_FLOW_UNKNOWN, format!(
                "unknown component flow `{}`; expected one of sys-flows, sys-tasks, sys-schemas, sys-views, sys-functions, sys-extensions{hint}",
                parts.flow
            ));
        }
    }
    Some(parts)
}

/// The envelope's patterns: names, versions, tags.
pub(crate) fn check_rules(value: &Value, parts: &Parts, sink: &mut Sink) {
    let root = Ptr::root();
    let present = |name: &str| value.get(name).is_some_and(Value::is_string);
    if present("key") && !is_name(&parts.key) {
        sink.report(
            &root.key("key"),
            codes::ENVELOPE_KEY_INVALID,
            format!(
                "key `{}` must match ^[a-z0-9-]+$ (lower-case letters, digits, dashes)",
                parts.key
            ),
        );
    }
    if present("domain") && !is_name(&parts.domain) {
        sink.report(
            &root.key("domain"),
            codes::ENVELOPE_DOMAIN_INVALID,
            format!(
                "domain `{}` must match ^[a-z0-9-]+$ (lower-case letters, digits, dashes)",
                parts.domain
            ),
        );
    }
    if present("version") && !is_component_version(&parts.version) {
        sink.report(&root.key("version"), codes::ENVELOPE_VERSION_INVALID, format!("version `{}` must be MAJOR.MINOR.PATCH with an optional -label.N, e.g. 1.0.0 or 1.0.0-rc.1", parts.version));
    }
    match &parts.flow_version {
        None => sink.report(&root, codes::ENVELOPE_FLOW_VERSION_INVALID, "the envelope has no `flowVersion`; add the component flow's version, e.g. \"flowVersion\": \"1.0.0\""),
        Some(v) if !is_component_version(v) => sink.report(&root.key("flowVersion"), codes::ENVELOPE_FLOW_VERSION_INVALID, format!("flowVersion `{v}` must be MAJOR.MINOR.PATCH with an optional -label.N, e.g. 1.0.0")),
        Some(_) => {}
    }
    let tags = value.get("tags");
    if matches!(tags, None | Some(Value::Null))
        || tags.and_then(Value::as_array).is_some_and(Vec::is_empty)
    {
        sink.report(
            &root,
            codes::ENVELOPE_TAGS_MISSING,
            "the envelope needs at least one tag in `tags`",
        );
    }
    let raw_tags = tags
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, tag) in raw_tags.iter().enumerate() {
        if tag.as_str().is_some_and(|t| t.trim().is_empty()) {
            sink.report(
                &root.key("tags").idx(i),
                codes::ENVELOPE_TAGS_INVALID,
                "a tag must not be empty",
            );
        }
    }
}

/// `^[a-z0-9-]+$`: component keys, domains, state and transition keys.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `^\d+\.\d+\.\d+(-[a-zA-Z]+\.\d+)?$`.
pub(crate) fn is_component_version(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let (core, pre) = match s.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (s, None),
    };
    let mut numbers = core.split('.');
    let core_ok = (0..3).all(|_| numbers.next().is_some_and(digits)) && numbers.next().is_none();
    let pre_ok = pre.is_none_or(|pre| match pre.split_once('.') {
        Some((label, n)) => {
            !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphabetic()) && digits(n)
        }
        None => false,
    });
    core_ok && pre_ok
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_pattern() {
        for ok in ["1.0.0", "10.20.30", "1.0.0-rc.1", "0.0.1-beta.12"] {
            assert!(is_component_version(ok), "{ok}");
        }
        for bad in [
            "1.0",
            "1.0.0.0",
            "v1.0.0",
            "1.0.0-rc",
            "1.0.0-rc.x",
            "1.0.0-1.2",
            "1..0",
            "",
        ] {
            assert!(!is_component_version(bad), "{bad}");
        }
    }

    #[test]
    fn name_pattern() {
        assert!(is_name("payment-v2"));
        assert!(!is_name("Payment"));
        assert!(!is_name("pay_ment"));
        assert!(!is_name(""));
    }
}
