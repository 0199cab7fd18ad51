//! The SQL a filter compiles to: a boolean expression over the `instances`
//! columns whose every value is a bind parameter.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{numeric_text, parse_time, status_code, Condition, Field, Filter, Op};

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
        // NOT over SQL NULL would drop rows whose data lacks the field; the
        // engine's `not` keeps them, so a NULL inner result counts as false.
        Filter::Not(inner) => format!("(NOT coalesce({}, false))", to_sql(inner, parts)),
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
    use crate::query::filter::parse_filters;

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
