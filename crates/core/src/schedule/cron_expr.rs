//! Cron expressions evaluated in a time zone, across daylight-saving changes.
//!
//! Accepted forms:
//! - 5 fields, standard cron: `minute hour day-of-month month day-of-week`, day of
//!   week `0-7` (0 and 7 are Sunday) or `SUN`..`SAT`. As in standard cron, when both
//!   day of month and day of week are restricted, a day matching *either* fires.
//! - 6 or 7 fields: `second minute hour day-of-month month day-of-week [year]`, as the
//!   `cron` crate reads them (Quartz style: day of week `1-7` with 1 = Sunday, or names;
//!   day of month and day of week must both match).
//! - `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`.
//!
//! Fields are matched against the wall clock of the time zone. Daylight-saving rules
//! (the ones widely used by cron implementations, e.g. Vixie cron and .NET's Cronos):
//! - **Fixed-time expressions** (the hour field is not `*`), e.g. `30 2 * * *`:
//!   a local time skipped by spring-forward fires at the first instant after the gap
//!   (02:30 becomes 03:00 that day); a local time that occurs twice at fall-back fires
//!   once, at its first occurrence.
//! - **Interval expressions** (the hour field is `*`), e.g. `*/15 * * * *`: they follow
//!   real time, so fire times inside a spring-forward gap do not exist and are skipped,
//!   and both occurrences of a repeated fall-back hour fire.
//!
//! The `cron` crate alone evaluated in a zone skips nonexistent local times and yields
//! both occurrences of ambiguous ones (in an order that is not monotonic); the policy
//! above is applied here by evaluating the expression on the naive wall clock and
//! mapping each candidate to UTC ourselves.

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use cron::TimeUnitSpec;

use super::ScheduleError;

/// No zone shifts its clock by more than this at once; bounds how far wall-clock
/// order and real order of fire times can disagree.
const MAX_SHIFT: TimeDelta = TimeDelta::hours(3);
/// Candidates examined before giving up (a per-second expression examines a few
/// thousand around a daylight-saving change; a normal one, one or two).
const MAX_CANDIDATES: usize = 200_000;

/// A parsed cron expression, ready to compute fire times.
#[derive(Debug, Clone)]
pub struct CronSpec {
    source: String,
    /// Schedules whose fire times are united (two for standard cron's
    /// day-of-month OR day-of-week).
    schedules: Vec<cron::Schedule>,
    /// The hour field is `*`: follow real time across daylight-saving changes.
    interval: bool,
}

impl CronSpec {
    /// Parses a cron expression (see the module docs for the accepted forms).
    ///
    /// # Errors
    /// [`ScheduleError::BadCron`] naming the expression and the problem.
    pub fn parse(expr: &str) -> Result<CronSpec, ScheduleError> {
        let bad = |reason: String| ScheduleError::BadCron { input: expr.to_string(), reason };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let texts: Vec<String> = match fields.as_slice() {
            [] => return Err(bad("it is empty".into())),
            [one] if one.starts_with('@') => {
                let name = one.to_ascii_lowercase();
                let canonical = match name.as_str() {
                    "@yearly" | "@annually" => "@yearly",
                    "@monthly" => "@monthly",
                    "@weekly" => "@weekly",
                    "@daily" | "@midnight" => "@daily",
                    "@hourly" => "@hourly",
                    _ => return Err(bad(format!("unknown shorthand `{one}` (use @yearly, @monthly, @weekly, @daily or @hourly)"))),
                };
                vec![canonical.to_string()]
            }
            [minute, hour, dom, month, dow] => {
                let days = parse_unix_weekdays(dow).map_err(|r| bad(format!("day of week `{dow}`: {r}")))?;
                let dom_restricted = !matches!(*dom, "*" | "?");
                match days {
                    None => vec![format!("0 {minute} {hour} {dom} {month} *")],
                    Some(list) if !dom_restricted => vec![format!("0 {minute} {hour} * {month} {list}")],
                    Some(list) => vec![
                        format!("0 {minute} {hour} {dom} {month} *"),
                        format!("0 {minute} {hour} * {month} {list}"),
                    ],
                }
            }
            [_, _, _, _, _, _] | [_, _, _, _, _, _, _] => vec![fields.join(" ")],
            _ => {
                return Err(bad(format!(
                    "{} fields; expected 5 (minute hour day-of-month month day-of-week), or 6/7 starting with seconds (and ending with a year)",
                    fields.len()
                )));
            }
        };
        let schedules = texts
            .iter()
            .map(|t| cron::Schedule::from_str(t).map_err(|e| bad(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let interval = schedules[0].hours().is_all();
        Ok(CronSpec { source: expr.to_string(), schedules, interval })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first fire time strictly after `after`, with the expression's fields read
    /// on the wall clock of `tz`.
    ///
    /// # Errors
    /// [`ScheduleError::NeverFires`] when no fire time follows (e.g. a past year).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Result<DateTime<Utc>, ScheduleError> {
        self.schedules
            .iter()
            .filter_map(|s| self.next_of(s, after, tz))
            .min()
            .ok_or_else(|| ScheduleError::NeverFires { expr: self.source.clone(), after })
    }

    fn next_of(&self, schedule: &cron::Schedule, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local_after = after.with_timezone(&tz).naive_local();
        // When the offset drops soon (fall-back), wall-clock times a little before
        // `after` happen again after it: start the scan early enough to see them.
        let lookback = (offset(tz, after) - offset(tz, after + MAX_SHIFT)).max(TimeDelta::zero());
        let start = (local_after - lookback).and_utc();

        let mut best: Option<DateTime<Utc>> = None;
        let mut stop_after: Option<NaiveDateTime> = None;
        for candidate in schedule.after(&start).take(MAX_CANDIDATES) {
            let wall = candidate.naive_utc();
            if stop_after.is_some_and(|stop| wall > stop) {
                break;
            }
            for instant in self.resolve(tz, wall) {
                if instant > after && best.is_none_or(|b| instant < b) {
                    best = Some(instant);
                    // A later wall-clock time can only happen earlier in real time
                    // when the offset was larger just before `instant`.
                    let window = (offset(tz, instant - MAX_SHIFT) - offset(tz, instant)).max(TimeDelta::zero());
                    stop_after = Some(wall + window);
                }
            }
        }
        best
    }

    /// The real instants at which wall-clock time `wall` fires (see the
    /// daylight-saving rules in the module docs).
    fn resolve(&self, tz: Tz, wall: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
            LocalResult::Ambiguous(first, second) if self.interval => {
                vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
            }
            LocalResult::Ambiguous(first, _) => vec![first.with_timezone(&Utc)],
            LocalResult::None if self.interval => Vec::new(),
            LocalResult::None => gap_end(tz, wall).into_iter().collect(),
        }
    }
}

/// The zone's UTC offset at `t`.
fn offset(tz: Tz, t: DateTime<Utc>) -> TimeDelta {
    TimeDelta::seconds(i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()))
}

/// The first instant whose wall-clock time is at or after `wall`, for a `wall` that
/// a spring-forward gap skips: the instant the clock jumps.
fn gap_end(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    let reaches = |secs: i64| {
        DateTime::from_timestamp(secs, 0).is_some_and(|t| t.with_timezone(&tz).naive_local() >= wall)
    };
    // Offsets lie within -12h..+14h, so the answer is within 18 hours of `wall` read as UTC.
    let centre = wall.and_utc().timestamp();
    let (mut lo, mut hi) = (centre - 18 * 3600, centre + 18 * 3600);
    if reaches(lo) || !reaches(hi) {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reaches(mid) { hi = mid } else { lo = mid }
    }
    DateTime::from_timestamp(hi, 0)
}

/// Reads a standard-cron day-of-week field. `None` when it is unrestricted;
/// otherwise the matching days in the `cron` crate's numbering (1 = Sunday).
fn parse_unix_weekdays(field: &str) -> Result<Option<String>, String> {
    if matches!(field, "*" | "?") {
        return Ok(None);
    }
    let mut days = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: usize = s.parse().map_err(|_| format!("step `{s}` is not a number"))?;
                if step == 0 {
                    return Err("a step must be at least 1".into());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => (weekday(a)?, weekday(b)?),
                // `N/step` runs from N to the end of the week.
                None if part.contains('/') => (weekday(r)?, 6),
                None => {
                    let d = weekday(r)?;
                    (d, d)
                }
            },
        };
        // 7 is Sunday: as a start it is day 0, as a range end (`5-7`) it means
        // through Sunday (`d % 7` below).
        let (from, to) = match (from, to) {
            (7, 7) => (0, 0),
            (7, to) => (0, to),
            other => other,
        };
        if to < from {
            return Err(format!("range `{range}` runs backwards"));
        }
        for d in (from..=to).step_by(step) {
            days[d % 7] = true;
        }
    }
    if days.iter().all(|d| *d) {
        return Ok(None);
    }
    let list: Vec<String> = (0..7).filter(|d| days[*d]).map(|d| (d + 1).to_string()).collect();
    Ok(Some(list.join(",")))
}

fn weekday(text: &str) -> Result<usize, String> {
    const NAMES: [(&str, &str); 7] = [
        ("sun", "sunday"),
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
    ];
    if let Ok(n) = text.parse::<usize>() {
        return if n <= 7 { Ok(n) } else { Err(format!("`{n}` is not a day of the week (0-7)")) };
    }
    let lower = text.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .ok_or_else(|| format!("`{text}` is not a day of the week (0-7 or SUN..SAT)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_weekdays_translate_to_crate_numbering() {
        assert_eq!(parse_unix_weekdays("*").unwrap(), None);
        assert_eq!(parse_unix_weekdays("1-5").unwrap().as_deref(), Some("2,3,4,5,6"));
        assert_eq!(parse_unix_weekdays("0").unwrap().as_deref(), Some("1"));
        assert_eq!(parse_unix_weekdays("7").unwrap().as_deref(), Some("1"));
        assert_eq!(parse_unix_weekdays("7/3").unwrap().as_deref(), Some("1,4,7"));
        assert_eq!(parse_unix_weekdays("5-7").unwrap().as_deref(), Some("1,6,7"));
        assert_eq!(parse_unix_weekdays("MON,wed,Friday").unwrap().as_deref(), Some("2,4,6"));
        assert_eq!(parse_unix_weekdays("*/2").unwrap().as_deref(), Some("1,3,5,7"));
        assert_eq!(parse_unix_weekdays("1/2").unwrap().as_deref(), Some("2,4,6"));
        assert_eq!(parse_unix_weekdays("0-6").unwrap(), None);
        assert!(parse_unix_weekdays("8").is_err());
        assert!(parse_unix_weekdays("5-1").is_err());
        assert!(parse_unix_weekdays("*/0").is_err());
        assert!(parse_unix_weekdays("funday").is_err());
    }
}
