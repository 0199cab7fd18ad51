//! JSON request bodies, checked at the edge.
//!
//! Axum's own `Json` extractor answers plain-text errors and accepts strings with
//! `\u0000`, which PostgreSQL `jsonb` later refuses with a server error. Here a
//! body is read within the configured limit (413 past it), parsed (400 with the
//! line and column on a syntax error), and scanned for NUL characters in every
//! string and key (400 with the JSON pointer of the first one).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::Value;

use crate::error::{ApiError, ErrorCode, FieldError};

/// A JSON body: the raw bytes as sent (publish stores them byte for byte) and the
/// parsed value. An empty body parses as `null`.
#[derive(Debug, Clone)]
pub struct JsonBody {
    pub raw: Bytes,
    pub value: Value,
}

impl JsonBody {
    /// The raw body as text (it parsed as JSON, so it is UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.raw).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.value.is_null() && self.raw.iter().all(u8::is_ascii_whitespace)
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::BodyTooLarge, "the request body is larger than the configured limit (app.body_limit_bytes)")
            } else {
                ApiError::new(ErrorCode::InvalidJson, format!("the request body could not be read: {}", rejection.body_text()))
            }
        })?;
        let value = parse(&raw)?;
        Ok(JsonBody { raw, value })
    }
}

/// Parses a JSON document and refuses NUL characters anywhere in it.
///
/// # Errors
/// [`ErrorCode::InvalidJson`] with serde's position, or [`ErrorCode::NulCharacter`]
/// with the pointer of the offending string.
pub fn parse(raw: &[u8]) -> Result<Value, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("the request body is not valid JSON: {e}")))?;
    if let Some(pointer) = find_nul(&value, &mut String::new()) {
        return Err(ApiError::new(
            ErrorCode::NulCharacter,
            format!("the JSON text at `{pointer}` contains \\u0000, which cannot be stored"),
        )
        .with_errors(vec![FieldError::new(pointer, "contains \\u0000")]));
    }
    Ok(value)
}

/// The pointer of the first string or key containing NUL (a key's pointer is the
/// member it names).
fn find_nul(value: &Value, at: &mut String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(at.clone()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
            let len = at.len();
            at.push('/');
            at.push_str(&i.to_string());
            let found = find_nul(v, at);
            at.truncate(len);
            found
        }),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let len = at.len();
            at.push('/');
            at.push_str(&escape_pointer(k));
            let found = if k.contains('\0') { Some(at.clone()) } else { find_nul(v, at) };
            at.truncate(len);
            found
        }),
        _ => None,
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_in_values_and_keys_is_refused_with_a_pointer() {
        let e = parse(br#"{"a":[1,{"b":"x\u0000y"}]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::NulCharacter);
        assert_eq!(e.errors[0].pointer, "/a/1/b");
        let e = parse(br#"{"a/b":{"k\u0000":1}}"#).unwrap_err();
        assert_eq!(e.errors[0].pointer, "/a~1b/k\u{0}");
    }

    #[test]
    fn syntax_errors_and_empty_bodies() {
        assert_eq!(parse(b"{\"a\":").unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(parse(b"\xff").unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(parse(b"  \n").unwrap(), Value::Null);
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(parse(deep.as_bytes()).unwrap_err().code, ErrorCode::InvalidJson);
    }
}
