//! The JSON filter language: an object of fields, data paths and `and`/`or`/`not`.

use serde_json::{Map, Value};

use super::{bad, check, Condition, Field, Filter, Op, MAX_DEPTH};
use crate::error::ApiError;

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
            "not" => {
                let Value::Object(m) = value else {
                    return Err(bad("`not` takes one filter object"));
                };
                all.push(Filter::Not(Box::new(parse_object(m, depth + 1)?)));
            }
            "attributes" | "data" => {
                let Value::Object(m) = value else {
                    return Err(bad(format!("`{name}` takes an object of data fields")));
                };
                parse_data(m, &mut Vec::new(), &mut all)?;
            }
            other => {
                let field = Field::top_level(other).ok_or_else(|| {
                    bad(format!("unknown filter field `{other}` (known: {}, and/or/not)", Field::TOP_LEVEL))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
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
        let f = parse_json(r#"{"not":{"currentState":{"eq":"a"}}}"#).unwrap();
        let Filter::All(top) = f else { panic!() };
        assert!(matches!(&top[0], Filter::Not(_)));
        assert!(parse_json(r#"{"not":[1]}"#).is_err());
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
}
