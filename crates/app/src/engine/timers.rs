//! When a timer is due: ISO-8601 durations, cron expressions (with an optional
//! IANA time zone), absolute instants and "immediately".
//!
//! Both forms reach here: the declarative `timer` of a scheduled transition and
//! the map a timer script's `fn handler(ctx)` returns.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A due-time rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Duration(String),
    Cron { expr: String, timezone: Option<String> },
    At(String),
    Immediate,
}

/// Reads `{duration}`, `{cron, timezone?}`, `{at}` or `{immediate: true}`.
///
/// # Errors
/// A message naming what the map lacks.
pub fn from_value(v: &Value) -> Result<Schedule, String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    if v.get("immediate").and_then(Value::as_bool) == Some(true) {
        return Ok(Schedule::Immediate);
    }
    if let Some(d) = s("duration") {
        return Ok(Schedule::Duration(d));
    }
    if let Some(c) = s("cron") {
        return Ok(Schedule::Cron { expr: c, timezone: s("timezone") });
    }
    if let Some(a) = s("at") {
        return Ok(Schedule::At(a));
    }
    Err(format!("a timer must give `duration`, `cron`, `at` or `immediate: true`, got {v}"))
}

/// Parses an ISO-8601 duration such as `PT8S` or `P1DT2H`.
///
/// # Errors
/// A message quoting the text.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let d = iso8601::duration(text).map_err(|_| format!("`{text}` is not an ISO-8601 duration (e.g. PT30S)"))?;
    let std: std::time::Duration = d.into();
    chrono::Duration::from_std(std).map_err(|_| format!("duration `{text}` is too long"))
}

/// The first instant the schedule is due after `now`.
///
/// # Errors
/// A message naming the unparsable duration, cron expression, zone or instant.
pub fn due(schedule: &Schedule, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    match schedule {
        Schedule::Immediate => Ok(now),
        Schedule::Duration(d) => Ok(now + parse_duration(d)?),
        Schedule::At(a) => DateTime::parse_from_rfc3339(a)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("`{a}` is not an RFC 3339 instant: {e}")),
        Schedule::Cron { expr, timezone } => {
            // Five-field expressions (minute first) get a seconds field.
            let full = if expr.split_whitespace().count() == 5 { format!("0 {expr}") } else { expr.clone() };
            let cron = cron::Schedule::from_str(&full).map_err(|e| format!("`{expr}` is not a cron expression: {e}"))?;
            let next = match timezone {
                Some(tz) => {
                    let tz: chrono_tz::Tz = tz.parse().map_err(|_| format!("`{tz}` is not an IANA time zone"))?;
                    cron.after(&now.with_timezone(&tz)).next().map(|t| t.with_timezone(&Utc))
                }
                None => cron.after(&now).next(),
            };
            next.ok_or_else(|| format!("cron `{expr}` never fires again"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schedules() {
        let now = DateTime::parse_from_rfc3339("2030-01-01T08:00:00Z").unwrap().with_timezone(&Utc);
        let at = |v| due(&from_value(&v).unwrap(), now).unwrap().to_rfc3339();
        assert_eq!(at(json!({"duration": "PT8S"})), "2030-01-01T08:00:08+00:00");
        assert_eq!(at(json!({"cron": "0 9 * * *"})), "2030-01-01T09:00:00+00:00");
        assert_eq!(at(json!({"cron": "0 9 * * *", "timezone": "Europe/Istanbul"})), "2030-01-02T06:00:00+00:00");
        assert_eq!(at(json!({"immediate": true})), "2030-01-01T08:00:00+00:00");
        assert!(from_value(&json!({"every": 1})).is_err());
        assert!(due(&Schedule::Duration("soon".into()), now).is_err());
    }
}
