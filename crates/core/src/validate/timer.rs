//! Timers of scheduled transitions: a rhai script, or one declarative schedule
//! (`duration`, `cron` with an optional `timezone`, or `at`).

use super::checker::Checker;
use super::codes;
use super::diagnostic::Ptr;
use super::scripts::Hook;
use crate::model::{DeclarativeTimer, Timer};
use crate::schedule::{CronSpec, IsoDuration, Schedule, parse_timezone};

/// Longest duration a timer or timeout may have. Longer is a typo or a way to
/// say "never", and would outlive any deployment.
pub const MAX_DURATION_YEARS: u32 = 10;

/// How far ahead a cron expression must have a fire time. Five-field crons
/// repeat at least every 4 years (29 February); one without a fire time in
/// this span names an impossible date (`0 0 30 2 *`) or only past years.
pub const CRON_HORIZON_YEARS: u32 = 8;

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
            && let Err((code, e)) = check_duration(d)
        {
            self.report(&pointer.key("duration"), code, format!("timer of {what}: {e}"));
        }
        if let Some(c) = &t.cron {
            match CronSpec::parse(c) {
                Err(e) => self.report(&pointer.key("cron"), codes::TIMER_CRON_INVALID, format!(
                    "timer of {what}: {e}; write e.g. \"0 9 * * *\" (09:00 daily) or \"*/5 * * * *\""
                )),
                Ok(spec) => {
                    let tz = t.timezone.as_deref().and_then(|z| parse_timezone(z).ok()).unwrap_or(chrono_tz::UTC);
                    if let Err(e) = check_fires(&spec, tz, chrono::Utc::now()) {
                        self.report(&pointer.key("cron"), codes::TIMER_CRON_NEVER_FIRES, format!("timer of {what}: {e}"));
                    }
                }
            }
        }
        if let Some(at) = &t.at
            && let Err(e) = Schedule::at(at)
        {
            self.report(
                &pointer.key("at"),
                codes::TIMER_AT_INVALID,
                format!("timer of {what}: {e}"),
            );
        }
        if let Some(zone) = &t.timezone {
            if let Err(e) = parse_timezone(zone) {
                self.report(
                    &pointer.key("timezone"),
                    codes::TIMER_TIMEZONE_UNKNOWN,
                    format!("timer of {what}: {e}"),
                );
            } else if t.cron.is_none() {
                self.report(&pointer.key("timezone"), codes::TIMER_TIMEZONE_WITHOUT_CRON, format!(
                    "timer of {what}: `timezone` only applies to a `cron` schedule; remove it (durations and RFC 3339 instants carry no zone)"
                ));
            }
        }
    }
}

/// An ISO-8601 duration as the runtime reads it ([`IsoDuration::parse`]), of
/// at most [`MAX_DURATION_YEARS`] years.
///
/// # Errors
/// The code ([`codes::TIMER_DURATION_INVALID`] or
/// [`codes::TIMER_DURATION_TOO_LONG`]) and a message naming the value.
pub(crate) fn check_duration(value: &str) -> Result<(), (&'static str, String)> {
    let d = IsoDuration::parse(value).map_err(|e| (codes::TIMER_DURATION_INVALID, e.to_string()))?;
    let max = chrono::TimeDelta::days(i64::from(MAX_DURATION_YEARS) * 365 + i64::from(MAX_DURATION_YEARS / 4));
    if d.years > MAX_DURATION_YEARS || d.fixed_length() > max {
        return Err((
            codes::TIMER_DURATION_TOO_LONG,
            format!("duration `{value}` is longer than {MAX_DURATION_YEARS} years, the longest a timer may wait"),
        ));
    }
    Ok(())
}

/// Whether a cron expression fires within [`CRON_HORIZON_YEARS`] years after `now`.
///
/// # Errors
/// A message naming the expression.
pub(crate) fn check_fires(spec: &CronSpec, tz: chrono_tz::Tz, now: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    let horizon = now.checked_add_months(chrono::Months::new(12 * CRON_HORIZON_YEARS)).unwrap_or(now);
    match spec.next_after(now, tz) {
        Ok(next) if next <= horizon => Ok(()),
        _ => Err(format!(
            "cron `{}` has no fire time within {CRON_HORIZON_YEARS} years, so the transition would never run \
             (an impossible date such as 30 February, or only past years)",
            spec.source()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_the_scheduler_reads_them() {
        for ok in ["PT8S", "PT1H30M", "P1D", "P1Y2M3DT4H5M6S", "PT0.5S", "P2W", "P10Y"] {
            assert!(check_duration(ok).is_ok(), "{ok}");
        }
        for bad in [
            "8s", "P", "PT", "", "1 hour", "PTXS", "PT1.5M", "P1DT", "-PT5S",
        ] {
            let (code, e) = check_duration(bad).expect_err(bad);
            assert_eq!(code, codes::TIMER_DURATION_INVALID);
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }
}
