//! When timers fire: scheduled transitions, workflow timeouts and timer scripts.
//!
//! A [`Schedule`] comes from a declarative timer in a definition
//! (`{"duration": "PT8S"}`, `{"cron": "0 9 * * *", "timezone": "Europe/Istanbul"}`,
//! `{"at": "2025-01-31T09:00:00Z"}`) or from the map a rhai timer script returns
//! (the same keys, plus `#{immediate: true}`). [`Schedule::next_fire`] turns it into
//! an instant, given the instant the timer was armed: nothing here reads a clock.
//!
//! - Durations are ISO-8601 ([`duration`] documents years, months and fractions).
//! - Cron expressions are read in the timer's IANA time zone (UTC by default), with
//!   the daylight-saving rules documented in [`cron_expr`].
//! - `at` is an RFC 3339 instant with an offset; an instant already past fires at once.
//! - `immediate` fires at the arming instant.

pub mod cron_expr;
pub mod duration;

use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::model::DeclarativeTimer;

pub use cron_expr::CronSpec;
pub use duration::{IsoDuration, parse_duration};

/// When a timer fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// A fixed span after arming (a duration without years or months).
    Duration(TimeDelta),
    /// A duration with years or months, added on the UTC calendar.
    Calendar(IsoDuration),
    /// The first time after arming that the cron expression matches on the wall
    /// clock of `timezone`.
    Cron { expr: String, timezone: Tz },
    /// A fixed instant.
    At(DateTime<Utc>),
    /// At the arming instant.
    Immediate,
}

/// Why a timer could not be read or computed. Every message names the offending
/// input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("`{input}` is not an ISO-8601 duration such as PT8S, PT0.5S, P1D or P1Y2M: {reason}")]
    BadDuration { input: String, reason: String },
    #[error("`{input}` is not a valid cron expression: {reason}")]
    BadCron { input: String, reason: String },
    #[error("`{0}` is not an IANA time zone name such as Europe/Istanbul or UTC")]
    BadTimezone(String),
    #[error("`{input}` is not an RFC 3339 instant such as 2025-01-31T09:00:00Z: {reason}")]
    BadInstant { input: String, reason: String },
    /// The timer's shape is wrong (missing, conflicting, unknown or mistyped keys).
    #[error("invalid timer: {0}")]
    BadTimer(String),
    #[error("cron expression `{expr}` has no fire time after {after}")]
    NeverFires { expr: String, after: DateTime<Utc> },
    #[error("timer fire time is out of the supported date range (armed at {armed_at})")]
    OutOfRange { armed_at: DateTime<Utc> },
}

impl Schedule {
    /// Reads a declarative timer: exactly one of `duration`, `cron` or `at`;
    /// `timezone` only with `cron`.
    ///
    /// # Errors
    /// [`ScheduleError::BadTimer`] for a wrong shape; the specific parse error for a
    /// bad value.
    pub fn from_declarative(timer: &DeclarativeTimer) -> Result<Schedule, ScheduleError> {
        if timer.timezone.is_some() && timer.cron.is_none() {
            return Err(ScheduleError::BadTimer("`timezone` is only allowed together with `cron`".into()));
        }
        match (&timer.duration, &timer.cron, &timer.at) {
            (Some(d), None, None) => Schedule::from_duration(d),
            (None, Some(c), None) => Schedule::cron(c, timer.timezone.as_deref()),
            (None, None, Some(a)) => Schedule::at(a),
            (None, None, None) => Err(ScheduleError::BadTimer("set one of `duration`, `cron` or `at`".into())),
            (d, c, a) => {
                let set: Vec<&str> = [("duration", d.is_some()), ("cron", c.is_some()), ("at", a.is_some())]
                    .into_iter()
                    .filter_map(|(k, on)| on.then_some(k))
                    .collect();
                Err(ScheduleError::BadTimer(format!(
                    "set exactly one of `duration`, `cron` or `at`, not {}",
                    join_keys(&set)
                )))
            }
        }
    }

    /// Reads the value a timer script returned: `#{duration: "PT8S"}`,
    /// `#{cron: "0 9 * * *", timezone: "Europe/Istanbul"}`, `#{at: "<RFC 3339>"}` or
    /// `#{immediate: true}`.
    ///
    /// # Errors
    /// [`ScheduleError::BadTimer`] saying what is wrong with the shape (not a map,
    /// no key, several kinds, unknown key, wrong type); the specific parse error for
    /// a bad value.
    pub fn from_script_value(value: &Value) -> Result<Schedule, ScheduleError> {
        const KINDS: [&str; 4] = ["duration", "cron", "at", "immediate"];
        let Value::Object(map) = value else {
            return Err(ScheduleError::BadTimer(format!(
                "expected a map such as #{{duration: \"PT8S\"}}, got {}",
                describe(value)
            )));
        };
        if let Some(unknown) = map.keys().find(|k| !KINDS.contains(&k.as_str()) && *k != "timezone") {
            return Err(ScheduleError::BadTimer(format!(
                "unknown key `{unknown}` (expected duration, cron with optional timezone, at, or immediate)"
            )));
        }
        let kinds: Vec<&str> = KINDS.iter().copied().filter(|k| map.contains_key(*k)).collect();
        let string = |key: &str| -> Result<&str, ScheduleError> {
            match map.get(key) {
                Some(Value::String(s)) => Ok(s),
                Some(other) => Err(ScheduleError::BadTimer(format!("`{key}` must be a string, got {}", describe(other)))),
                None => unreachable!("key checked above"),
            }
        };
        let timezone = match map.get("timezone") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(ScheduleError::BadTimer(format!("`timezone` must be a string, got {}", describe(other))));
            }
        };
        if timezone.is_some() && !kinds.contains(&"cron") {
            return Err(ScheduleError::BadTimer("`timezone` is only allowed together with `cron`".into()));
        }
        match kinds.as_slice() {
            ["duration"] => Schedule::from_duration(string("duration")?),
            ["cron"] => Schedule::cron(string("cron")?, timezone),
            ["at"] => Schedule::at(string("at")?),
            ["immediate"] => match map.get("immediate") {
                Some(Value::Bool(true)) => Ok(Schedule::Immediate),
                Some(other) => Err(ScheduleError::BadTimer(format!("`immediate` must be true, got {}", describe(other)))),
                None => unreachable!("key checked above"),
            },
            [] => Err(ScheduleError::BadTimer(
                "the map is empty; set one of duration, cron, at or immediate".into(),
            )),
            many => Err(ScheduleError::BadTimer(format!(
                "set exactly one of duration, cron, at or immediate, not {}",
                join_keys(many)
            ))),
        }
    }

    /// A duration timer: [`Schedule::Duration`], or [`Schedule::Calendar`] when the
    /// duration has years or months.
    ///
    /// # Errors
    /// [`ScheduleError::BadDuration`].
    pub fn from_duration(text: &str) -> Result<Schedule, ScheduleError> {
        let d = IsoDuration::parse(text)?;
        Ok(if d.is_calendar() { Schedule::Calendar(d) } else { Schedule::Duration(d.exact) })
    }

    /// A cron timer; `timezone` is an IANA name, UTC when absent or empty.
    ///
    /// # Errors
    /// [`ScheduleError::BadCron`] or [`ScheduleError::BadTimezone`].
    pub fn cron(expr: &str, timezone: Option<&str>) -> Result<Schedule, ScheduleError> {
        CronSpec::parse(expr)?;
        let timezone = match timezone.map(str::trim) {
            None | Some("") => Tz::UTC,
            Some(name) => parse_timezone(name)?,
        };
        Ok(Schedule::Cron { expr: expr.to_string(), timezone })
    }

    /// A fixed-instant timer from RFC 3339 text (with `Z` or an offset).
    ///
    /// # Errors
    /// [`ScheduleError::BadInstant`].
    pub fn at(text: &str) -> Result<Schedule, ScheduleError> {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|t| Schedule::At(t.with_timezone(&Utc)))
            .map_err(|e| ScheduleError::BadInstant { input: text.to_string(), reason: e.to_string() })
    }

    /// When the timer fires, for a timer armed at `armed_at`. Never earlier than
    /// `armed_at`: a past `at` and `immediate` fire at `armed_at`; a cron timer fires
    /// at its first match strictly after `armed_at`.
    ///
    /// # Errors
    /// [`ScheduleError::NeverFires`] for a cron expression with no future match,
    /// [`ScheduleError::OutOfRange`] when the instant overflows the calendar, and
    /// parse errors for a hand-built `Cron` with a bad expression.
    pub fn next_fire(&self, armed_at: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        match self {
            Schedule::Duration(d) => armed_at.checked_add_signed(*d).ok_or(ScheduleError::OutOfRange { armed_at }),
            Schedule::Calendar(d) => d.add_to(armed_at).ok_or(ScheduleError::OutOfRange { armed_at }),
            Schedule::Cron { expr, timezone } => CronSpec::parse(expr)?.next_after(armed_at, *timezone),
            Schedule::At(at) => Ok((*at).max(armed_at)),
            Schedule::Immediate => Ok(armed_at),
        }
    }
}

/// Reads an IANA time zone name (`Europe/Istanbul`, `America/New_York`, `UTC`).
///
/// # Errors
/// [`ScheduleError::BadTimezone`].
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name.trim()).map_err(|_| ScheduleError::BadTimezone(name.to_string()))
}

fn join_keys(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ")
}

/// A short description of a JSON value for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (unit)".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a map".into(),
    }
}
