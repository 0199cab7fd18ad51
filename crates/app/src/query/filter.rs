//! Instance list filters: parsing both accepted forms into one typed tree, and
//! turning that tree into a SQL `WHERE` clause with bind parameters only.
//!
//! JSON form (`filter=` holds a JSON object):
//! `{"status":{"eq":"A"}}`, `{"currentState":{"in":["a","b"]}}`,
//! `{"attributes":{"amount":{"gt":1000}}}`, `{"attributes":{"customer.name":{"like":"ann"}}}`,
//! nested paths `{"attributes":{"customer":{"age":{"ge":18}}}}`, and the combinators
//! `{"or":[{…},{…}]}` / `{"and":[…]}`. Members of one object are AND-ed.
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
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

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

/// Parses the JSON form.
///
/// # Errors
/// See [`parse_filters`].
pub fn parse_json(text: &str) -> Result<Filter, ApiError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("the filter is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad("a JSON filter must be an object, e.g. {\"status\":{\"eq\":\"A\"}}"));
    };
    parse_object(&map, 0)
}

fn parse_object(map: &Map<String, Value>, depth: usize) -> Result<Filter, ApiError> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("filters nest at most {MAX_DEPTH} levels of and/or")));
    }
    let mut all = Vec::new();
    for (name, value) in map {
        match name.as_str() {
            "and" | "or" => {
                let Value::Array(items) = value else {
                    return Err(bad(format!("`{name}` takes an array of filter objects")));
                };
                let mut parts = Vec::new();
                for item in items {
                    let Value::Object(m) = item else {
                        return Err(bad(format!("every member of `{name}` must be a filter object")));
                    };
                    parts.push(parse_object(m, depth + 1)?);
                }
                all.push(if name == "and" { Filter::All(parts) } else { Filter::Any(parts) });
            }
            "attributes" | "data" => {
                let Value::Object(m) = value else {
                    return Err(bad(format!("`{name}` takes an object of data fields")));
                };
                parse_data(m, &mut Vec::new(), &mut all)?;
            }
            other => {
                let field = Field::top_level(other).ok_or_else(|| {
                    bad(format!("unknown filter field `{other}` (known: {}, and/or)", Field::TOP_LEVEL))
                })?;
                parse_operators(field, value, &mut all)?;
            }
        }
    }
    Ok(Filter::All(all))
}

/// Walks `attributes`: a member whose keys are operators ends a path; any other
/// object nests deeper. A dotted key (`customer.age`) is a path of its own.
fn parse_data(map: &Map<String, Value>, path: &mut Vec<String>, out: &mut Vec<Filter>) -> Result<(), ApiError> {
    if map.is_empty() && !path.is_empty() {
        return Err(bad(format!("`attributes.{}` has no operator", path.join("."))));
    }
    for (name, value) in map {
        if name.is_empty() || name.split('.').any(str::is_empty) {
            return Err(bad(format!("empty field name in `attributes.{}`", path.join("."))));
        }
        let len = path.len();
        path.extend(name.split('.').map(str::to_string));
        match value {
            Value::Object(inner) if inner.keys().any(|k| Op::parse(k).is_some()) => {
                parse_operators(Field::Data(path.clone()), value, out)?;
            }
            Value::Object(inner) => parse_data(inner, path, out)?,
            other => {
                let shown = path.join(".");
                return Err(bad(format!(
                    "`attributes.{shown}` must map to an object of operators ({}), found {other}; if `{name}` was meant as an operator, it is not one of those",
                    Op::NAMES
                )));
            }
        }
        path.truncate(len);
    }
    Ok(())
}

/// `{"gt": 1, "lt": 9}` → two conditions on `field`.
fn parse_operators(field: Field, value: &Value, out: &mut Vec<Filter>) -> Result<(), ApiError> {
    let Value::Object(ops) = value else {
        return Err(bad(format!(
            "`{}` must map to an object of operators ({}), e.g. {{\"eq\": …}}",
            field.display(),
            Op::NAMES
        )));
    };
    if ops.is_empty() {
        return Err(bad(format!("`{}` has no operator", field.display())));
    }
    for (name, v) in ops {
        let op = Op::parse(name).ok_or_else(|| {
            bad(format!("unknown operator `{name}` on `{}` (known: {})", field.display(), Op::NAMES))
        })?;
        out.push(Filter::Cond(check(Condition { field: field.clone(), op, value: v.clone() })?));
    }
    Ok(())
}

/// Parses the legacy text form `attributes=field=op:value` or `field=op:value`.
///
/// # Errors
/// See [`parse_filters`].
pub fn parse_legacy(text: &str) -> Result<Filter, ApiError> {
    let (first, rest) = text
        .split_once('=')
        .ok_or_else(|| bad(format!("cannot read filter `{text}`: expected attributes=field=op:value or field=op:value")))?;
    let (field, op_value) = if first == "attributes" || first == "data" {
        let (path, op_value) = rest
            .split_once('=')
            .ok_or_else(|| bad(format!("cannot read filter `{text}`: expected attributes=field=op:value")))?;
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(bad(format!("empty field name in filter `{text}`")));
        }
        (Field::Data(path.split('.').map(str::to_string).collect()), op_value)
    } else {
        let field = Field::top_level(first).ok_or_else(|| {
            bad(format!("unknown filter field `{first}` (known: {})", Field::TOP_LEVEL))
        })?;
        (field, rest)
    };
    let (op_name, raw) = op_value.split_once(':').unwrap_or(("eq", op_value));
    let op = Op::parse(op_name).ok_or_else(|| {
        bad(format!("unknown operator `{op_name}` on `{}` (known: {})", field.display(), Op::NAMES))
    })?;
    let value = if op == Op::In {
        Value::Array(raw.split(',').map(|s| Value::String(s.to_string())).collect())
    } else {
        Value::String(raw.to_string())
    };
    Ok(Filter::All(vec![Filter::Cond(check(Condition { field, op, value })?)]))
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

/// A value bound to a query parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    TextArray(Vec<String>),
    Json(Value),
    Bool(bool),
    Time(DateTime<Utc>),
    Uuid(Uuid),
}

/// SQL text with `$n` placeholders and the values to bind, in order.
#[derive(Debug, Default)]
pub struct SqlParts {
    pub binds: Vec<Bind>,
}

impl SqlParts {
    /// Adds a bind value and returns its placeholder.
    pub fn push(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }
}

/// Renders a filter as a boolean SQL expression over the `instances` columns.
pub fn to_sql(filter: &Filter, parts: &mut SqlParts) -> String {
    match filter {
        Filter::All(items) if items.is_empty() => "TRUE".into(),
        Filter::Any(items) if items.is_empty() => "FALSE".into(),
        Filter::All(items) => join(items, " AND ", parts),
        Filter::Any(items) => join(items, " OR ", parts),
        Filter::Cond(c) => condition_sql(c, parts),
    }
}

fn join(items: &[Filter], sep: &str, parts: &mut SqlParts) -> String {
    let rendered: Vec<String> = items.iter().map(|f| to_sql(f, parts)).collect();
    format!("({})", rendered.join(sep))
}

fn condition_sql(c: &Condition, parts: &mut SqlParts) -> String {
    if c.op == Op::In {
        let items = c.value.as_array().cloned().unwrap_or_default();
        let alternatives: Vec<String> = items
            .into_iter()
            .map(|v| condition_sql(&Condition { field: c.field.clone(), op: Op::Eq, value: v }, parts))
            .collect();
        return format!("({})", alternatives.join(" OR "));
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match &c.field {
        Field::Status => {
            let p = parts.push(Bind::Text(status_code(&text(&c.value)).unwrap_or("A").to_string()));
            format!("status::text {} {p}", c.op.sql())
        }
        Field::Id => {
            let id = Uuid::parse_str(&text(&c.value)).unwrap_or_default();
            let p = parts.push(Bind::Uuid(id));
            format!("id {} {p}", c.op.sql())
        }
        Field::CreatedAt | Field::ModifiedAt | Field::CompletedAt => {
            let column = match c.field {
                Field::CreatedAt => "created_at",
                Field::ModifiedAt => "modified_at",
                _ => "completed_at",
            };
            let t = parse_time(column, &text(&c.value)).unwrap_or_default();
            let p = parts.push(Bind::Time(t));
            format!("{column} {} {p}", c.op.sql())
        }
        Field::Key | Field::CurrentState | Field::FlowVersion => {
            let column = match c.field {
                Field::Key => "key",
                Field::CurrentState => "current_state",
                _ => "flow_version",
            };
            if c.op == Op::Like {
                let p = parts.push(Bind::Text(like_pattern(&text(&c.value))));
                format!("{column} ILIKE {p}")
            } else {
                let p = parts.push(Bind::Text(text(&c.value)));
                format!("{column} {} {p}", c.op.sql())
            }
        }
        Field::Data(path) => data_sql(path, c.op, &c.value, parts),
    }
}

/// A condition on a data path. `x` is `data #> path` (jsonb), `t` is `data #>> path`.
fn data_sql(path: &[String], op: Op, value: &Value, parts: &mut SqlParts) -> String {
    let path_param = parts.push(Bind::TextArray(path.to_vec()));
    let x = format!("(data #> {path_param}::text[])");
    let t = format!("(data #>> {path_param}::text[])");
    if op == Op::Like {
        let p = parts.push(Bind::Text(like_pattern(value.as_str().unwrap_or_default())));
        return format!("{t} ILIKE {p}");
    }
    match value {
        Value::Null => match op {
            Op::Eq => format!("({x} IS NULL OR {x} = 'null'::jsonb)"),
            _ => format!("({x} IS NOT NULL AND {x} <> 'null'::jsonb)"),
        },
        Value::Bool(b) => {
            let p = parts.push(Bind::Bool(*b));
            format!("{x} {} to_jsonb({p}::boolean)", op.sql())
        }
        Value::Array(_) | Value::Object(_) => {
            let p = parts.push(Bind::Json(value.clone()));
            format!("{x} {} {p}::jsonb", op.sql())
        }
        Value::Number(_) | Value::String(_) => {
            let as_text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match numeric_text(value) {
                Some(num) => {
                    let n = parts.push(Bind::Text(num));
                    let s = parts.push(Bind::Text(as_text));
                    let fallback = if op.is_ordering() { "NULL".to_string() } else { format!("{t} {} {s}", op.sql()) };
                    // Numbers compare numerically, anything else as text; the CASE
                    // guarantees the numeric cast only ever sees a JSON number.
                    format!(
                        "(CASE jsonb_typeof({x}) WHEN 'number' THEN ({t})::numeric {o} {n}::numeric \
                         WHEN 'string' THEN {t} {o} {s} ELSE {fallback} END)",
                        o = op.sql(),
                    )
                }
                None => {
                    let s = parts.push(Bind::Text(as_text));
                    format!("{t} {} {s}", op.sql())
                }
            }
        }
    }
}

/// `like` values: `*` and `%` are wildcards; without one, a substring match.
fn like_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let has_wildcard = value.contains('*') || value.contains('%');
    if !has_wildcard {
        out.push('%');
    }
    for ch in value.chars() {
        match ch {
            '*' | '%' => out.push('%'),
            '_' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    if !has_wildcard {
        out.push('%');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(field: Field, op: Op, value: Value) -> Filter {
        Filter::Cond(Condition { field, op, value })
    }

    #[test]
    fn json_form_parses_top_level_and_nested_data_fields() {
        let f = parse_json(r#"{"status":{"eq":"Active"},"attributes":{"amount":{"gt":1000},"customer":{"name":{"like":"an"}}}}"#)
            .unwrap();
        assert_eq!(
            f,
            Filter::All(vec![
                cond(Field::Status, Op::Eq, json!("Active")),
                cond(Field::Data(vec!["amount".into()]), Op::Gt, json!(1000)),
                cond(Field::Data(vec!["customer".into(), "name".into()]), Op::Like, json!("an")),
            ])
        );
        let f = parse_json(r#"{"attributes":{"customer.age":{"ge":"18"}}}"#).unwrap();
        assert_eq!(f, Filter::All(vec![cond(Field::Data(vec!["customer".into(), "age".into()]), Op::Ge, json!("18"))]));
    }

    #[test]
    fn combinators_nest() {
        let f = parse_json(r#"{"or":[{"currentState":{"eq":"a"}},{"currentState":{"eq":"b"}}]}"#).unwrap();
        let Filter::All(top) = f else { panic!() };
        assert!(matches!(&top[0], Filter::Any(v) if v.len() == 2));
    }

    #[test]
    fn unknown_fields_and_operators_are_named() {
        let e = parse_json(r#"{"colour":{"eq":"red"}}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidFilter);
        assert!(e.detail.contains("`colour`"), "{}", e.detail);
        let e = parse_json(r#"{"attributes":{"amount":{"gt":1,"between":[1,2]}}}"#).unwrap_err();
        assert!(e.detail.contains("`between`"), "{}", e.detail);
        let e = parse_json(r#"{"attributes":{"amount":{"gte":1}}}"#).unwrap_err();
        assert!(e.detail.contains("`gte`"), "{}", e.detail);
        let e = parse_json(r#"{"status":{"gt":"A"}}"#).unwrap_err();
        assert!(e.detail.contains("status"), "{}", e.detail);
        assert!(parse_json(r#"{"status":{"eq":"Sleeping"}}"#).is_err());
        assert!(parse_json(r#"{"createdAt":{"gt":"yesterday"}}"#).is_err());
        assert!(parse_json(r#"{"id":{"eq":"nope"}}"#).is_err());
        assert!(parse_json(r#"[1]"#).is_err());
        assert!(parse_json(r#"{"attributes":{"a":{"gt":true}}}"#).is_err());
    }

    #[test]
    fn legacy_form() {
        assert_eq!(
            parse_legacy("attributes=amount=gt:1000").unwrap(),
            Filter::All(vec![cond(Field::Data(vec!["amount".into()]), Op::Gt, json!("1000"))])
        );
        assert_eq!(
            parse_legacy("currentState=in:a,b").unwrap(),
            Filter::All(vec![cond(Field::CurrentState, Op::In, json!(["a", "b"]))])
        );
        assert_eq!(
            parse_legacy("status=A").unwrap(),
            Filter::All(vec![cond(Field::Status, Op::Eq, json!("A"))])
        );
        let e = parse_legacy("attributes=amount=between:1,2").unwrap_err();
        assert!(e.detail.contains("`between`"), "{}", e.detail);
        assert!(parse_legacy("nonsense").is_err());
    }

    #[test]
    fn sql_binds_every_value() {
        let f = parse_filters([r#"{"attributes":{"amount":{"gt":"1000"}},"key":{"like":"a_b"}}"#, "status=eq:C"]).unwrap();
        let mut parts = SqlParts::default();
        let sql = to_sql(&f, &mut parts);
        assert!(!sql.contains("1000") && !sql.contains("a_b"), "{sql}");
        assert!(sql.contains("::numeric"), "{sql}");
        assert!(parts.binds.contains(&Bind::Text("%a\\_b%".into())), "{:?}", parts.binds);
        assert!(parts.binds.contains(&Bind::Text("C".into())));
        assert!(parts.binds.contains(&Bind::TextArray(vec!["amount".into()])));
    }

    #[test]
    fn like_patterns() {
        assert_eq!(like_pattern("ann"), "%ann%");
        assert_eq!(like_pattern("ann*"), "ann%");
        assert_eq!(like_pattern("100%"), "100%");
    }
}
