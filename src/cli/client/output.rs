//! Tables for people. Columns are aligned and unframed (like `ps` or
//! `kubectl`), so a line can still be read with `grep` and `awk`; `--json`
//! is the form for programs.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use serde_json::Value;

/// Prints rows under upper-case headers, or `empty` when there are none.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>, empty: &str) {
    if rows.is_empty() {
        println!("{empty}");
        return;
    }
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(headers.iter().map(|h| h.to_uppercase()));
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_cell_alignment(CellAlignment::Left);
    }
    println!("{}", trim_lines(&table.to_string()));
}

/// Prints one record as `name  value` lines.
pub fn details(pairs: Vec<(&str, String)>) {
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    for (name, value) in pairs {
        table.add_row(vec![format!("{name}:"), value]);
    }
    println!("{}", trim_lines(&table.to_string()));
}

/// The table's padding leaves a blank column at each edge; people do not need it.
fn trim_lines(text: &str) -> String {
    text.lines().map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end()).collect::<Vec<_>>().join("\n")
}

/// A JSON value in a cell: text as is, `null` empty, lists of text joined,
/// anything else compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// `value[name]` as a cell.
pub fn field(value: &Value, name: &str) -> String {
    cell(value.get(name).unwrap_or(&Value::Null))
}

/// An RFC 3339 time to the second, in UTC as it came (`2026-12-05 13:40:02Z`).
pub fn time(value: &Value) -> String {
    let Some(text) = value.as_str() else { return cell(value) };
    match (text.get(..19), text.ends_with('Z')) {
        (Some(head), true) if head.as_bytes().get(10) == Some(&b'T') => format!("{}Z", head.replacen('T', " ", 1)),
        _ => text.to_string(),
    }
}

/// The name of a vNext status code (`A` → `active`); other text as it came.
pub fn status_name(code: &str) -> String {
    match code {
        "A" => "active",
        "B" => "busy",
        "C" => "completed",
        "F" => "faulted",
        "P" => "passive",
        other => other,
    }
    .to_string()
}

/// `{"A": 2, "B": 0, "C": 1}` → `2 active, 1 completed`.
pub fn counts_by_status(value: &Value) -> String {
    let Some(map) = value.as_object() else { return cell(value) };
    // Every status comes, zero counts included; people need the others.
    let counted: Vec<String> = map.iter().filter(|(_, n)| n.as_i64() != Some(0)).map(|(status, n)| format!("{} {}", cell(n), status_name(status))).collect();
    if counted.is_empty() { "none".to_string() } else { counted.join(", ") }
}

/// Items of a `{links, items}` page (or `{data}` of the older paged shape).
pub fn items(page: &Value) -> &[Value] {
    page.get("items").or_else(|| page.get("data")).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_times_and_statuses_read_well() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(cell(&json!({"x": 1})), r#"{"x":1}"#);
        assert_eq!(time(&json!("2026-12-05T13:40:02.113456Z")), "2026-12-05 13:40:02Z");
        assert_eq!(time(&json!("yesterday")), "yesterday");
        assert_eq!(status_name("F"), "faulted");
        assert_eq!(counts_by_status(&json!({"A": 2, "B": 0, "C": 1})), "2 active, 1 completed");
        assert_eq!(counts_by_status(&json!({"A": 0})), "none");
        assert_eq!(counts_by_status(&json!({})), "none");
    }
}
