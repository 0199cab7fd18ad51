//! Timers of scheduled transitions: a rhai script, or one declarative schedule
//! (`duration`, `cron` with an optional `timezone`, or `at`).

use std::str::FromStr;

use super::checker::Checker;
use super::codes;
use super::diagnostic::Ptr;
use super::scripts::Hook;
use crate::model::{DeclarativeTimer, Timer};

impl Checker<'_> {
    pub(crate) fn timer(&mut self, pointer: &Ptr, timer: &Timer, what: &str) {
        match timer {
            Timer::Script(code)
                if code.code.is_none() && code.location.is_none() && !code.is_global() =>
            {
                self.report(pointer, codes::TIMER_NO_SCHEDULE, format!(
                    "timer of {what} is neither a declarative schedule (one of \"duration\", \"cron\", \"at\" as a string) \
                     nor a rhai script ({{\"location\", \"code\"}})"
                ));
            }
            Timer::Script(code) => {
                self.script(pointer, code, Hook::Handler, &format!("timer of {what}"))
            }
            Timer::Declarative(t) => self.declarative_timer(pointer, t, what),
        }
    }

    fn declarative_timer(&mut self, pointer: &Ptr, t: &DeclarativeTimer, what: &str) {
        let set: Vec<&str> = [("duration", &t.duration), ("cron", &t.cron), ("at", &t.at)]
            .into_iter()
            .filter_map(|(name, v)| v.as_ref().map(|_| name))
            .collect();
        match set.len() {
            0 => self.report(pointer, codes::TIMER_NO_SCHEDULE, format!(
                "timer of {what} names no schedule; give exactly one of {{\"duration\": \"PT8S\"}}, {{\"cron\": \"0 9 * * *\"}}, {{\"at\": \"2030-01-01T09:00:00Z\"}}, or a rhai script"
            )),
            1 => {}
            _ => self.report(pointer, codes::TIMER_AMBIGUOUS, format!(
                "timer of {what} names {}; give exactly one of duration, cron, at",
                set.join(" and ")
            )),
        }
        if let Some(d) = &t.duration
            && let Err(e) = check_duration(d)
        {
            self.report(
                &pointer.key("duration"),
                codes::TIMER_DURATION_INVALID,
                format!("timer of {what}: {e}"),
            );
        }
        if let Some(c) = &t.cron
            && let Err(e) = check_cron(c)
        {
            self.report(
                &pointer.key("cron"),
                codes::TIMER_CRON_INVALID,
                format!("timer of {what}: {e}"),
            );
        }
        if let Some(at) = &t.at
            && chrono::DateTime::parse_from_rfc3339(at).is_err()
        {
            self.report(&pointer.key("at"), codes::TIMER_AT_INVALID, format!(
                "timer of {what}: `{at}` is not an RFC 3339 instant such as 2030-01-01T09:00:00Z or 2030-01-01T12:00:00+03:00"
            ));
        }
        if let Some(zone) = &t.timezone
            && chrono_tz::Tz::from_str(zone).is_err()
        {
            self.report(&pointer.key("timezone"), codes::TIMER_TIMEZONE_UNKNOWN, format!(
                "timer of {what}: `{zone}` is not an IANA time zone such as Europe/Istanbul or UTC"
            ));
        }
    }
}

/// An ISO-8601 duration such as `PT8S`, `PT1H30M`, `P1D`.
///
/// # Errors
/// A message naming the value and the expected form.
pub(crate) fn check_duration(value: &str) -> Result<(), String> {
    if is_iso_duration(value.trim()) {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not an ISO-8601 duration such as PT8S, PT1H30M or P1D"
        ))
    }
}

/// `P[nY][nM][nW][nD][T[nH][nM][n[.n]S]]` with at least one component, and a
/// time component after any `T`. Only seconds may be fractional.
fn is_iso_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else {
        return false;
    };
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let components = |part: &str, units: &[char], fraction_unit: Option<char>| -> Option<usize> {
        let mut count = 0;
        let mut next_unit = 0;
        let mut number = String::new();
        for ch in part.chars() {
            if ch.is_ascii_digit() || ch == '.' {
                number.push(ch);
                continue;
            }
            let position = units.iter().skip(next_unit).position(|u| *u == ch)? + next_unit;
            let fractional = number.contains('.');
            let valid_number = if fractional {
                Some(ch) == fraction_unit
                    && number
                        .split_once('.')
                        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('.'))
            } else {
                !number.is_empty()
            };
            if !valid_number {
                return None;
            }
            number.clear();
            next_unit = position + 1;
            count += 1;
        }
        number.is_empty().then_some(count)
    };
    let Some(date_count) = components(date, &['Y', 'M', 'W', 'D'], None) else {
        return false;
    };
    match time {
        None => date_count > 0,
        Some(time) => components(time, &['H', 'M', 'S'], Some('S')).is_some_and(|n| n > 0),
    }
}

/// A cron expression: five fields (minute precision, `0 9 * * *`), six or seven
/// fields (with seconds, and a year), or a shorthand such as `@daily`.
///
/// # Errors
/// A message naming the value and the parser's complaint.
pub(crate) fn check_cron(value: &str) -> Result<(), String> {
    let expression = normalize_cron(value);
    cron::Schedule::from_str(&expression)
        .map(|_| ())
        .map_err(|e| format!("`{value}` is not a cron expression ({e}); write e.g. \"0 9 * * *\" (09:00 daily) or \"*/5 * * * *\""))
}

/// The cron crate counts seconds; five-field expressions get `0` seconds.
pub(crate) fn normalize_cron(value: &str) -> String {
    let trimmed = value.trim();
    if trimmed.split_whitespace().count() == 5 {
        format!("0 {trimmed}")
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for ok in ["PT8S", "PT1H30M", "P1D", "P1Y2M3DT4H5M6S", "PT0.5S"] {
            assert!(check_duration(ok).is_ok(), "{ok}");
        }
        for bad in [
            "8s", "P", "PT", "", "1 hour", "PTXS", "P1H", "PT1D", "PT1.5M", "P1DT", "PT5S1M",
            "PT.5S", "P-1D",
        ] {
            assert!(check_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_expressions() {
        for ok in [
            "0 9 * * *",
            "*/5 * * * *",
            "0 0 9 * * *",
            "0 0 9 * * Mon-Fri 2030",
            "@daily",
        ] {
            assert!(check_cron(ok).is_ok(), "{ok}");
        }
        for bad in ["", "61 * * * *", "every day", "* * *"] {
            assert!(check_cron(bad).is_err(), "{bad}");
        }
    }
}
