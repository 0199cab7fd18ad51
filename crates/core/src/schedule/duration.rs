//! ISO-8601 durations (`PT8S`, `PT0.5S`, `P1D`, `P2W`, `P1Y2M3DT4H`).
//!
//! Two ways to read one:
//! - as an exact length ([`parse_duration`], [`IsoDuration::fixed_length`]), for retry
//!   delays and anything else that needs a span without an anchor. Years count as
//!   365 days and months as 30 days there, the usual fixed-length convention
//!   (the one .NET's `XmlConvert.ToTimeSpan` uses, so vNext definitions read the same).
//! - from an instant ([`IsoDuration::add_to`]), for timers. Years and months are then
//!   calendar units added in UTC: 2025-01-31 + `P1M` is 2025-02-28 (the day is clamped
//!   to the last day of the month), 2024-02-29 + `P1Y` is 2025-02-28. Days, weeks,
//!   hours, minutes and seconds are exact (a day is 24 hours; arithmetic is in UTC,
//!   so daylight-saving changes never stretch or shrink a duration).
//!
//! Seconds may have a fraction (`PT0.5S`); precision is the millisecond (further
//! digits are dropped). Input is trimmed and read case-insensitively; signs
//! (`-PT5S`) and fractions on other units (`PT1.5H`) are refused.

use chrono::{DateTime, Months, TimeDelta, Utc};

use super::ScheduleError;

/// An ISO-8601 duration: calendar years and months, plus an exact remainder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IsoDuration {
    pub years: u32,
    pub months: u32,
    /// Weeks, days, hours, minutes, seconds and milliseconds, as an exact span.
    pub exact: TimeDelta,
}

impl IsoDuration {
    /// Parses an ISO-8601 duration.
    ///
    /// # Errors
    /// [`ScheduleError::BadDuration`] naming the input and what is wrong with it.
    pub fn parse(input: &str) -> Result<IsoDuration, ScheduleError> {
        let bad = |reason: &str| ScheduleError::BadDuration { input: input.to_string(), reason: reason.to_string() };
        let text = input.trim().to_ascii_uppercase();
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.starts_with('-') || text.starts_with('+') {
            return Err(bad("durations cannot be signed"));
        }
        if !text.starts_with('P') {
            return Err(bad("it must start with P"));
        }
        if text.ends_with('T') {
            return Err(bad("a T must be followed by hours, minutes or seconds"));
        }
        let (rest, parsed) = iso8601::parsers::parse_duration(text.as_bytes())
            .map_err(|_| bad("expected P[nY][nM][nD][T[nH][nM][n[.fff]S]] or PnW"))?;
        if !rest.is_empty() {
            let rest = String::from_utf8_lossy(rest);
            return Err(bad(&format!("unexpected `{rest}` (only seconds may have a fraction; weeks cannot be combined with other units)")));
        }
        Ok(match parsed {
            iso8601::Duration::Weeks(w) => IsoDuration { years: 0, months: 0, exact: TimeDelta::days(i64::from(w) * 7) },
            iso8601::Duration::YMDHMS { year, month, day, hour, minute, second, millisecond } => IsoDuration {
                years: year,
                months: month,
                exact: TimeDelta::days(i64::from(day))
                    + TimeDelta::hours(i64::from(hour))
                    + TimeDelta::minutes(i64::from(minute))
                    + TimeDelta::seconds(i64::from(second))
                    + TimeDelta::milliseconds(i64::from(millisecond)),
            },
        })
    }

    /// True when the duration has years or months, whose length depends on the
    /// instant it starts from.
    pub fn is_calendar(&self) -> bool {
        self.years > 0 || self.months > 0
    }

    /// True for `PT0S`, `P0D` and the like.
    pub fn is_zero(&self) -> bool {
        !self.is_calendar() && self.exact.is_zero()
    }

    /// The length with years as 365 days and months as 30 days.
    pub fn fixed_length(&self) -> TimeDelta {
        TimeDelta::days(i64::from(self.years) * 365 + i64::from(self.months) * 30) + self.exact
    }

    /// `start` plus this duration, years and months added on the UTC calendar.
    /// `None` when the result is out of chrono's range.
    pub fn add_to(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let months = u64::from(self.years) * 12 + u64::from(self.months);
        let months = Months::new(u32::try_from(months).ok()?);
        start.checked_add_months(months)?.checked_add_signed(self.exact)
    }
}

/// Parses an ISO-8601 duration into an exact span (years = 365 days, months =
/// 30 days; see the module docs).
///
/// # Errors
/// [`ScheduleError::BadDuration`] naming the input and what is wrong with it.
pub fn parse_duration(input: &str) -> Result<TimeDelta, ScheduleError> {
    IsoDuration::parse(input).map(|d| d.fixed_length())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn exact(s: &str) -> TimeDelta {
        parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn exact_units() {
        assert_eq!(exact("PT8S"), TimeDelta::seconds(8));
        assert_eq!(exact("PT0.5S"), TimeDelta::milliseconds(500));
        assert_eq!(exact("PT1,25S"), TimeDelta::milliseconds(1250));
        assert_eq!(exact("PT0.0004S"), TimeDelta::zero());
        assert_eq!(exact("PT90M"), TimeDelta::minutes(90));
        assert_eq!(exact("PT24H"), TimeDelta::hours(24));
        assert_eq!(exact("P1D"), TimeDelta::days(1));
        assert_eq!(exact("P2W"), TimeDelta::days(14));
        assert_eq!(exact("P1DT2H3M4.5S"), TimeDelta::milliseconds(((26 * 60 + 3) * 60 + 4) * 1000 + 500));
        assert_eq!(exact(" pt8s "), TimeDelta::seconds(8));
        assert_eq!(exact("PT0S"), TimeDelta::zero());
    }

    #[test]
    fn years_and_months_have_fixed_lengths_as_spans() {
        assert_eq!(exact("P1Y"), TimeDelta::days(365));
        assert_eq!(exact("P1M"), TimeDelta::days(30));
        assert_eq!(exact("P1Y2M3D"), TimeDelta::days(365 + 60 + 3));
        // `M` before `T` is months, after it minutes.
        assert_eq!(exact("PT1M"), TimeDelta::minutes(1));
    }

    #[test]
    fn calendar_arithmetic_in_utc() {
        let jan31 = Utc.with_ymd_and_hms(2025, 1, 31, 9, 0, 0).unwrap();
        let d = IsoDuration::parse("P1M").unwrap();
        assert!(d.is_calendar());
        assert_eq!(d.add_to(jan31), Some(Utc.with_ymd_and_hms(2025, 2, 28, 9, 0, 0).unwrap()));
        let leap = Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap();
        assert_eq!(IsoDuration::parse("P1Y").unwrap().add_to(leap), Some(Utc.with_ymd_and_hms(2025, 2, 28, 0, 0, 0).unwrap()));
        let start = Utc.with_ymd_and_hms(2025, 3, 15, 12, 0, 0).unwrap();
        assert_eq!(
            IsoDuration::parse("P1Y2M3DT4H").unwrap().add_to(start),
            Some(Utc.with_ymd_and_hms(2026, 5, 18, 16, 0, 0).unwrap())
        );
        // Exact units across a daylight-saving change stay exact (UTC arithmetic).
        let before_dst = Utc.with_ymd_and_hms(2025, 3, 29, 12, 0, 0).unwrap();
        assert_eq!(IsoDuration::parse("P1D").unwrap().add_to(before_dst), Some(before_dst + TimeDelta::hours(24)));
    }

    #[test]
    fn refuses_malformed_input_with_reasons() {
        for (input, needle) in [
            ("", "empty"),
            ("8S", "start with P"),
            ("P", "expected"),
            ("PT", "T must be followed"),
            ("-PT5S", "signed"),
            ("PT1.5H", "unexpected"),
            ("PT8Sxyz", "unexpected `XYZ`"),
            ("P1W2D", "weeks cannot"),
            ("PT99999999999S", "expected"),
            ("8 seconds", "start with P"),
        ] {
            let err = parse_duration(input).expect_err(input).to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(err.contains(&format!("`{input}`")), "{input}: {err}");
        }
    }
}
