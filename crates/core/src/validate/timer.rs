//! Timers of scheduled transitions: a rhai script, or one declarative schedule
//! (`duration`, `cron` with an optional `timezone`, or `at`).

use super::checker::Checker;
use super::codes;
use super::diagnostic::Ptr;
use super::scripts::Hook;
use crate::model::{DeclarativeTimer, Timer};
use crate::schedule::{CronSpec, IsoDuration, Schedule, parse_timezone};

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
            && let Err(e) = CronSpec::parse(c)
        {
            self.report(&pointer.key("cron"), codes::TIMER_CRON_INVALID, format!(
                "timer of {what}: {e}; write e.g. \"0 9 * * *\" (09:00 daily) or \"*/5 * * * *\""
            ));
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

/// An ISO-8601 duration as the runtime reads it ([`IsoDuration::parse`]).
///
/// # Errors
/// A message naming the value and what is wrong with it.
pub(crate) fn check_duration(value: &str) -> Result<(), String> {
    IsoDuration::parse(value)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_the_scheduler_reads_them() {
        for ok in ["PT8S", "PT1H30M", "P1D", "P1Y2M3DT4H5M6S", "PT0.5S", "P2W"] {
            assert!(check_duration(ok).is_ok(), "{ok}");
        }
        for bad in [
            "8s", "P", "PT", "", "1 hour", "PTXS", "PT1.5M", "P1DT", "-PT5S",
        ] {
            let e = check_duration(bad).expect_err(bad);
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }
}
