//! The legacy text form `field=op:value` and `attributes=path=op:value`.

use serde_json::Value;

use super::{bad, check, Condition, Field, Filter, Op};
use crate::error::ApiError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(field: Field, op: Op, value: Value) -> Filter {
        Filter::Cond(Condition { field, op, value })
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
}
