//! `{placeholder}` substitution in task URLs.
//!
//! An HTTP task's URL may name values the input mapping supplies, e.g.
//! `https://crm.example/customers/{customerId}/orders?since={since}`. A name is
//! looked up as a dotted path in the task's config (after the input mapping was
//! merged into it), then in the config's `body` object. Values are
//! percent-encoded so that an id holding `/` or `?` cannot change the URL's
//! shape, except for a placeholder that opens the URL (`{baseUrl}/orders`),
//! which is inserted as written because it supplies the scheme and host.

use serde_json::Value;

/// Why a URL could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error("placeholder `{{{name}}}` has no value (set `{name}` in the task config or its input mapping)")]
    Missing { name: String },
    #[error("placeholder `{{{name}}}` is {kind}; only strings, numbers and booleans can go into a URL")]
    NotScalar { name: String, kind: &'static str },
}

/// Replaces every `{name}` in `template` with its value from `config`.
///
/// Text in braces that is not a plain name (letters, digits, `_`, `-`, `.`) is
/// left untouched, so literal braces in URLs keep working.
///
/// # Errors
/// [`PlaceholderError`] for the first placeholder without a usable value.
pub fn substitute(template: &str, config: &Value) -> Result<String, PlaceholderError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                let name = &after[..close];
                let raw = lookup(config, name)?;
                if out.is_empty() {
                    out.push_str(&raw);
                } else {
                    out.push_str(&encode(&raw));
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn lookup(config: &Value, name: &str) -> Result<String, PlaceholderError> {
    let found = path(config, name).or_else(|| config.get("body").and_then(|b| path(b, name)));
    match found {
        None | Some(Value::Null) => Err(PlaceholderError::Missing { name: name.to_string() }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(Value::Array(_)) => Err(PlaceholderError::NotScalar { name: name.to_string(), kind: "an array" }),
        Some(Value::Object(_)) => Err(PlaceholderError::NotScalar { name: name.to_string(), kind: "an object" }),
    }
}

fn path<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    // A key that itself contains dots wins over the nested reading.
    if let Some(v) = value.get(dotted) {
        return Some(v);
    }
    dotted.split('.').try_fold(value, |v, part| v.get(part))
}

/// Percent-encodes everything outside RFC 3986's unreserved set.
pub(crate) fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_names_from_config_and_body() {
        let config = json!({"userId": 42, "body": {"tenant": "acme"}, "filter": {"since": "2024-01-01"}});
        let url = substitute("http://h/t/{tenant}/users/{userId}?since={filter.since}", &config).unwrap();
        assert_eq!(url, "http://h/t/acme/users/42?since=2024-01-01");
    }

    #[test]
    fn encodes_values_but_not_a_leading_base() {
        let config = json!({"base": "http://h:8080/api", "id": "a/b c?"});
        assert_eq!(substitute("{base}/items/{id}", &config).unwrap(), "http://h:8080/api/items/a%2Fb%20c%3F");
    }

    #[test]
    fn leaves_non_placeholders_alone() {
        let config = json!({});
        assert_eq!(substitute("http://h/{ not a name }/{}", &config).unwrap(), "http://h/{ not a name }/{}");
    }

    #[test]
    fn missing_and_structured_values_are_errors() {
        let config = json!({"obj": {"a": 1}, "nothing": null});
        assert_eq!(
            substitute("http://h/{id}", &config).unwrap_err(),
            PlaceholderError::Missing { name: "id".into() }
        );
        assert!(matches!(substitute("http://h/{nothing}", &config), Err(PlaceholderError::Missing { .. })));
        assert!(matches!(substitute("http://h/{obj}", &config), Err(PlaceholderError::NotScalar { .. })));
    }
}
