//! Instance list filters: parsing both accepted forms into one typed tree, and
//! turning that tree into a SQL `WHERE` clause with bind parameters only.
//!
//! JSON form (`filter=` holds a JSON object):
//! `{"status":{"eq":"A"}}`, `{"currentState":{"in":["a","b"]}}`,
//! `{"attributes":{"amount":{"gt":1000}}}`, `{"attributes":{"customer.name":{"like":"ann"}}}`,
//! nested paths `{"attributes":{"customer":{"age":{"ge":18}}}}`, and the combinators
//! `{"or":[{…},{…}]}` / `{"and":[…]}` / `{"not":{…}}`. Members of one object are AND-ed.
//!
//! OData-like text (`status eq 'A'`) is refused with a 400, as the engine does.
//!
//! Legacy form (`filter=` holds text): `attributes=amount=gt:1000`,
//! `status=eq:A`, `currentState=in:a,b`; several `filter` parameters are AND-ed.
//!
//! Operators: `eq ne gt ge lt le like in`. `like` is case-insensitive; without a
//! `*` or `%` wildcard it matches a substring. Data comparisons are typed by the
//! stored value: numbers compare numerically, strings as text. Unknown fields and
//! operators are refused with a 400 that names them. No text from the request
//! ever becomes SQL: field names map to fixed column expressions, data paths and
//! values are bind parameters.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

mod json;
mod legacy;
mod sql;

pub use json::parse_json;
pub use legacy::parse_legacy;
pub use sql::{to_sql, Bind, SqlParts};

/// Deepest `and`/`or` nesting and most conditions accepted in one filter.
const MAX_DEPTH: usize = 8;
const MAX_CONDITIONS: usize = 64;
const MAX_IN_VALUES: usize = 100;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    In,
}

impl Op {
    pub const NAMES: &'static str = "eq, ne, gt, ge, lt, le, like, in";

    pub fn parse(name: &str) -> Option<Op> {
        Some(match name.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "like" => Op::Like,
            "in" => Op::In,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Like | Op::In => unreachable!("like and in are expanded before"),
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }
}

/// A filterable field of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Id,
    Key,
    Status,
    CurrentState,
    FlowVersion,
    CreatedAt,
    ModifiedAt,
    CompletedAt,
    /// A path into instance data (`attributes`).
    Data(Vec<String>),
}

impl Field {
    pub const TOP_LEVEL: &'static str =
        "id, key, status, currentState, flowVersion, createdAt, modifiedAt, completedAt, attributes.<path>";

    /// A top-level field by its API name.
    pub fn top_level(name: &str) -> Option<Field> {
        Some(match name {
            "id" => Field::Id,
            "key" => Field::Key,
            "status" => Field::Status,
            "currentState" | "state" => Field::CurrentState,
            "flowVersion" => Field::FlowVersion,
            "createdAt" => Field::CreatedAt,
            "modifiedAt" => Field::ModifiedAt,
            "completedAt" => Field::CompletedAt,
            _ => return None,
        })
    }

    /// `attributes.a.b` for data paths, the API name otherwise (for messages).
    pub fn display(&self) -> String {
        match self {
            Field::Id => "id".into(),
            Field::Key => "key".into(),
            Field::Status => "status".into(),
            Field::CurrentState => "currentState".into(),
            Field::FlowVersion => "flowVersion".into(),
            Field::CreatedAt => "createdAt".into(),
            Field::ModifiedAt => "modifiedAt".into(),
            Field::CompletedAt => "completedAt".into(),
            Field::Data(path) => format!("attributes.{}", path.join(".")),
        }
    }
}

/// One condition: `field op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    pub value: Value,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Cond(Condition),
}

impl Filter {
    /// No condition at all.
    pub fn none() -> Filter {
        Filter::All(Vec::new())
    }

    fn count(&self) -> usize {
        match self {
            Filter::All(v) | Filter::Any(v) => v.iter().map(Filter::count).sum(),
            Filter::Not(f) => f.count(),
            Filter::Cond(_) => 1,
        }
    }
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidFilter, detail)
}

/// Parses every `filter` parameter (JSON or legacy text) and AND-s them.
///
/// # Errors
/// [`ErrorCode::InvalidFilter`] naming the unknown field, operator or bad value.
pub fn parse_filters<'a>(params: impl IntoIterator<Item = &'a str>) -> Result<Filter, ApiError> {
    let mut all = Vec::new();
    for raw in params {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        if raw.contains('\0') {
            return Err(bad("the filter contains a NUL character"));
        }
        if raw.starts_with('{') {
            all.push(parse_json(raw)?);
        } else if looks_like_odata(raw) {
            return Err(bad(format!(
                "OData-style filters are not supported (found `{}`); use JSON, e.g. {{\"status\":{{\"eq\":\"A\"}}}}, or field=op:value",
                crate::error::printable(raw)
            )));
        } else {
            all.push(parse_legacy(raw)?);
        }
    }
    let filter = Filter::All(all);
    if filter.count() > MAX_CONDITIONS {
        return Err(bad(format!("a filter may hold at most {MAX_CONDITIONS} conditions")));
    }
    Ok(filter)
}

/// `status eq 'A'`, `amount gt 5 and …`: an OData-like expression, which the
/// engine refuses too. The legacy form has `=` before any space.
fn looks_like_odata(raw: &str) -> bool {
    let before_eq = raw.split('=').next().unwrap_or(raw);
    let mut words = before_eq.split_whitespace();
    matches!((words.next(), words.next()), (Some(_), Some(op)) if Op::parse(op).is_some() || op.eq_ignore_ascii_case("contains"))
}

/// Checks that the value suits the field and operator, so SQL never sees a value
/// it would fail to cast.
fn check(c: Condition) -> Result<Condition, ApiError> {
    let name = c.field.display();
    if c.op == Op::In {
        let Value::Array(items) = &c.value else {
            return Err(bad(format!("`in` on `{name}` takes an array")));
        };
        if items.is_empty() || items.len() > MAX_IN_VALUES {
            return Err(bad(format!("`in` on `{name}` takes 1 to {MAX_IN_VALUES} values")));
        }
        for item in items {
            check_scalar(&c.field, Op::Eq, item)?;
        }
    } else {
        check_scalar(&c.field, c.op, &c.value)?;
    }
    Ok(c)
}

fn check_scalar(field: &Field, op: Op, value: &Value) -> Result<(), ApiError> {
    let name = field.display();
    let text = || -> Result<String, ApiError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(bad(format!("`{name}` compares with a string, found {other}"))),
        }
    };
    match field {
        Field::Status => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(bad(format!("`status` supports eq, ne and in, not {}", op_name(op))));
            }
            status_code(&text()?)?;
        }
        Field::Id => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(bad("`id` supports eq, ne and in"));
            }
            let t = text()?;
            Uuid::parse_str(&t).map_err(|_| bad(format!("`id` compares with a UUID, found `{t}`")))?;
        }
        Field::CreatedAt | Field::ModifiedAt | Field::CompletedAt => {
            if op == Op::Like {
                return Err(bad(format!("`{name}` does not support like")));
            }
            parse_time(&name, &text()?)?;
        }
        Field::Key | Field::CurrentState | Field::FlowVersion => {
            text()?;
        }
        Field::Data(_) => match value {
            Value::String(_) | Value::Number(_) => {}
            Value::Bool(_) | Value::Null | Value::Array(_) | Value::Object(_)
                if matches!(op, Op::Eq | Op::Ne) => {}
            other => {
                return Err(bad(format!("`{name}`: {} needs a number or string, found {other}", op_name(op))));
            }
        },
    }
    if op == Op::Like && !value.is_string() {
        return Err(bad(format!("`like` on `{name}` takes a string")));
    }
    Ok(())
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Eq => "eq",
        Op::Ne => "ne",
        Op::Gt => "gt",
        Op::Ge => "ge",
        Op::Lt => "lt",
        Op::Le => "le",
        Op::Like => "like",
        Op::In => "in",
    }
}

/// Accepts a status code (`A`) or its name (`Active`), any case.
///
/// # Errors
/// [`ErrorCode::InvalidFilter`] for anything else.
pub fn status_code(text: &str) -> Result<&'static str, ApiError> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "a" | "active" => "A",
        "b" | "busy" => "B",
        "c" | "completed" => "C",
        "f" | "faulted" => "F",
        "p" | "passive" => "P",
        _ => {
            return Err(bad(format!(
                "unknown status `{text}` (known: A Active, B Busy, C Completed, F Faulted, P Passive)"
            )));
        }
    })
}

/// RFC 3339 instants, or a bare date meaning its midnight UTC.
fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(bad(format!("`{field}` compares with an RFC 3339 time or a date, found `{text}`")))
}

/// A number as PostgreSQL `numeric` accepts it, or `None`.
fn numeric_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let plausible = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    (plausible && text.parse::<f64>().is_ok_and(f64::is_finite)).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odata_is_refused_and_legacy_still_reads() {
        for odata in ["status eq 'A'", "attributes/amount gt 5 and status eq 'A'", "currentState ne 'x'"] {
            let e = parse_filters([odata]).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidFilter, "{odata}");
            assert!(e.detail.contains("OData"), "{}", e.detail);
        }
        assert!(parse_filters(["status=eq:A"]).is_ok());
        assert!(parse_filters(["attributes=note=eq:a b"]).is_ok());
    }
}
