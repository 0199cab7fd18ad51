//! Instance list ordering.
//!
//! Accepted forms of `sort=` (alias `orderBy=`): `createdAt`, `-createdAt`,
//! `createdAt desc`, `createdAt:desc`, several of them comma-separated, or JSON
//! `{"field":"createdAt","direction":"desc"}`, `{"fields":[…]}` (the engine's
//! forms) or an array of such objects. The text forms are ours: the engine
//! takes JSON only.
//! Fields: `createdAt`, `modifiedAt`, `completedAt`, `key`, `currentState`,
//! `status`, and data paths `attributes.<path>`. The id breaks ties, so paging
//! is stable.

use serde_json::Value;

use super::filter::{Bind, SqlParts};
use crate::error::{ApiError, ErrorCode};

const MAX_KEYS: usize = 4;

/// What to order by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    ModifiedAt,
    CompletedAt,
    Key,
    CurrentState,
    Status,
    Data(Vec<String>),
}

/// One ordering key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub field: SortField,
    pub descending: bool,
}

/// Newest first, the default.
pub fn default_sort() -> Vec<SortKey> {
    vec![SortKey { field: SortField::CreatedAt, descending: true }]
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidSort, detail)
}

const KNOWN: &str = "createdAt, modifiedAt, completedAt, key, currentState, status, attributes.<path>";

fn field(name: &str) -> Result<SortField, ApiError> {
    Ok(match name {
        "createdAt" => SortField::CreatedAt,
        "modifiedAt" => SortField::ModifiedAt,
        "completedAt" => SortField::CompletedAt,
        "key" => SortField::Key,
        "currentState" | "state" => SortField::CurrentState,
        "status" => SortField::Status,
        other => {
            let path = other.strip_prefix("attributes.").or_else(|| other.strip_prefix("data."));
            match path {
                Some(p) if !p.split('.').any(str::is_empty) => {
                    SortField::Data(p.split('.').map(str::to_string).collect())
                }
                _ => return Err(bad(format!("unknown sort field `{other}` (known: {KNOWN})"))),
            }
        }
    })
}

fn direction(name: &str) -> Result<bool, ApiError> {
    match name.to_ascii_lowercase().as_str() {
        "asc" | "ascending" => Ok(false),
        "desc" | "descending" => Ok(true),
        other => Err(bad(format!("unknown sort direction `{other}` (use asc or desc)"))),
    }
}

/// Parses a `sort` parameter; `None` or blank gives [`default_sort`].
///
/// # Errors
/// [`ErrorCode::InvalidSort`] naming the unknown field or direction.
pub fn parse_sort(raw: Option<&str>) -> Result<Vec<SortKey>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(default_sort());
    };
    if raw.contains('\0') {
        return Err(bad("the sort contains a NUL character"));
    }
    let keys = if raw.starts_with('{') || raw.starts_with('[') {
        let value: Value = serde_json::from_str(raw).map_err(|e| bad(format!("the sort is not valid JSON: {e}")))?;
        let items = match value {
            Value::Array(items) => items,
            // The engine's several keys: {"fields": [{field, direction}, …]}.
            Value::Object(mut map) if map.contains_key("fields") => match map.remove("fields") {
                Some(Value::Array(items)) => items,
                _ => return Err(bad("`fields` of a JSON sort takes an array of {\"field\", \"direction\"}")),
            },
            other => vec![other],
        };
        items.iter().map(json_key).collect::<Result<Vec<_>, _>>()?
    } else {
        raw.split(',').map(|s| text_key(s.trim())).collect::<Result<Vec<_>, _>>()?
    };
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(bad(format!("sort by 1 to {MAX_KEYS} keys")));
    }
    Ok(keys)
}

fn json_key(v: &Value) -> Result<SortKey, ApiError> {
    let name = v
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a JSON sort is {\"field\": \"createdAt\", \"direction\": \"asc|desc\"}"))?;
    let descending = match v.get("direction") {
        None | Some(Value::Null) => false,
        Some(Value::String(d)) => direction(d)?,
        Some(other) => return Err(bad(format!("sort direction must be a string, found {other}"))),
    };
    Ok(SortKey { field: field(name)?, descending })
}

fn text_key(s: &str) -> Result<SortKey, ApiError> {
    if let Some(name) = s.strip_prefix('-') {
        return Ok(SortKey { field: field(name)?, descending: true });
    }
    let (name, dir) = match s.split_once(|c: char| c == ':' || c.is_whitespace()) {
        Some((n, d)) => (n, Some(d.trim())),
        None => (s.strip_prefix('+').unwrap_or(s), None),
    };
    let descending = match dir {
        Some(d) => direction(d)?,
        None => false,
    };
    Ok(SortKey { field: field(name)?, descending })
}

/// `ORDER BY` items (without the keyword), ending with the id tie-breaker.
pub fn to_sql(keys: &[SortKey], parts: &mut SqlParts) -> String {
    let mut items: Vec<String> = keys
        .iter()
        .map(|k| {
            let expr = match &k.field {
                SortField::CreatedAt => "created_at".to_string(),
                SortField::ModifiedAt => "modified_at".to_string(),
                SortField::CompletedAt => "completed_at".to_string(),
                SortField::Key => "key".to_string(),
                SortField::CurrentState => "current_state".to_string(),
                SortField::Status => "status".to_string(),
                SortField::Data(path) => {
                    let p = parts.push(Bind::TextArray(path.clone()));
                    format!("(data #> {p}::text[])")
                }
            };
            format!("{expr} {} NULLS LAST", if k.descending { "DESC" } else { "ASC" })
        })
        .collect();
    let tie = if keys.first().is_some_and(|k| k.descending) { "id DESC" } else { "id ASC" };
    items.push(tie.to_string());
    items.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_fields_form() {
        let keys = parse_sort(Some(r#"{"fields":[{"field":"attributes.amount","direction":"desc"},{"field":"createdAt"}]}"#)).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], SortKey { field: SortField::Data(vec!["amount".into()]), descending: true });
        assert_eq!(keys[1], SortKey { field: SortField::CreatedAt, descending: false });
        assert!(parse_sort(Some(r#"{"fields":"createdAt"}"#)).is_err());
    }

    #[test]
    fn all_text_forms() {
        let k = |f, d| SortKey { field: f, descending: d };
        assert_eq!(parse_sort(None).unwrap(), default_sort());
        assert_eq!(parse_sort(Some("key")).unwrap(), vec![k(SortField::Key, false)]);
        assert_eq!(parse_sort(Some("-modifiedAt")).unwrap(), vec![k(SortField::ModifiedAt, true)]);
        assert_eq!(parse_sort(Some("createdAt desc")).unwrap(), vec![k(SortField::CreatedAt, true)]);
        assert_eq!(
            parse_sort(Some("attributes.amount:desc,key:asc")).unwrap(),
            vec![k(SortField::Data(vec!["amount".into()]), true), k(SortField::Key, false)]
        );
        assert_eq!(
            parse_sort(Some(r#"{"field":"createdAt","direction":"desc"}"#)).unwrap(),
            vec![k(SortField::CreatedAt, true)]
        );
    }

    #[test]
    fn refuses_unknown_fields_and_directions() {
        let e = parse_sort(Some("colour")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSort);
        assert!(e.detail.contains("`colour`"));
        assert!(parse_sort(Some("key:sideways")).is_err());
        assert!(parse_sort(Some("attributes.")).is_err());
        assert!(parse_sort(Some(r#"{"direction":"desc"}"#)).is_err());
    }
}
