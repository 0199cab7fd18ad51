//! Cron timers: field forms, time zones, and daylight-saving changes with
//! concrete instants (the arming instant is injected; no clock is read).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use vnext_core::schedule::{Schedule, ScheduleError};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn next(expr: &str, tz: &str, armed_at: &str) -> DateTime<Utc> {
    Schedule::cron(expr, Some(tz)).unwrap().next_fire(utc(armed_at)).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// Successive fire times, re-arming at each fire time as a runtime does.
fn sequence(expr: &str, tz: &str, armed_at: &str, n: usize) -> Vec<String> {
    let schedule = Schedule::cron(expr, Some(tz)).unwrap();
    let mut at = utc(armed_at);
    (0..n)
        .map(|_| {
            at = schedule.next_fire(at).unwrap();
            at.to_rfc3339()
        })
        .collect()
}

#[test]
fn five_field_expression_in_a_fixed_offset_zone() {
    // Istanbul is UTC+3 all year.
    assert_eq!(next("0 9 * * *", "Europe/Istanbul", "2025-01-31T05:00:00Z"), utc("2025-01-31T06:00:00Z"));
    assert_eq!(next("0 9 * * *", "Europe/Istanbul", "2025-01-31T06:00:00Z"), utc("2025-02-01T06:00:00Z"));
    // Default zone is UTC.
    let s = Schedule::cron("0 9 * * *", None).unwrap();
    assert_eq!(s, Schedule::Cron { expr: "0 9 * * *".into(), timezone: Tz::UTC });
    assert_eq!(s.next_fire(utc("2025-01-31T05:00:00Z")).unwrap(), utc("2025-01-31T09:00:00Z"));
}

#[test]
fn fire_time_is_strictly_after_arming() {
    assert_eq!(next("*/5 * * * *", "UTC", "2025-01-01T10:05:00Z"), utc("2025-01-01T10:10:00Z"));
    assert_eq!(next("*/5 * * * *", "UTC", "2025-01-01T10:04:59.900Z"), utc("2025-01-01T10:05:00Z"));
}

#[test]
fn standard_day_of_week_numbering() {
    // 2025-01-04 is a Saturday.
    let sat = "2025-01-04T12:00:00Z";
    assert_eq!(next("0 9 * * 1-5", "UTC", sat), utc("2025-01-06T09:00:00Z")); // Monday
    assert_eq!(next("0 9 * * 0", "UTC", sat), utc("2025-01-05T09:00:00Z")); // Sunday
    assert_eq!(next("0 9 * * 7", "UTC", sat), utc("2025-01-05T09:00:00Z")); // Sunday again
    assert_eq!(next("0 9 * * FRI", "UTC", sat), utc("2025-01-10T09:00:00Z"));
    assert_eq!(next("0 9 * * 6", "UTC", "2025-01-03T12:00:00Z"), utc("2025-01-04T09:00:00Z")); // Saturday
}

#[test]
fn day_of_month_or_day_of_week_as_in_standard_cron() {
    // The 15th, or any Friday. 2025-06-01 is a Sunday; 2025-06-06 a Friday;
    // 2025-06-15 a Sunday.
    assert_eq!(next("0 9 15 * 5", "UTC", "2025-06-01T00:00:00Z"), utc("2025-06-06T09:00:00Z"));
    assert_eq!(next("0 9 15 * 5", "UTC", "2025-06-14T00:00:00Z"), utc("2025-06-15T09:00:00Z"));
    // With only one of them restricted, only that one counts.
    assert_eq!(next("0 9 15 * *", "UTC", "2025-06-01T00:00:00Z"), utc("2025-06-15T09:00:00Z"));
}

#[test]
fn six_and_seven_field_and_shorthand_forms() {
    assert_eq!(next("*/10 * * * * *", "UTC", "2025-01-01T12:00:05Z"), utc("2025-01-01T12:00:10Z"));
    // Quartz-style day of week in the 6-field form: 2 = Monday.
    assert_eq!(next("0 0 9 * * 2", "UTC", "2025-01-04T12:00:00Z"), utc("2025-01-06T09:00:00Z"));
    assert_eq!(next("0 0 9 1 1 * 2027", "UTC", "2025-01-04T12:00:00Z"), utc("2027-01-01T09:00:00Z"));
    assert_eq!(next("@hourly", "UTC", "2025-01-01T10:15:00Z"), utc("2025-01-01T11:00:00Z"));
    assert_eq!(next("@daily", "Europe/Istanbul", "2025-01-01T10:15:00Z"), utc("2025-01-01T21:00:00Z"));
    assert_eq!(next("@weekly", "UTC", "2025-01-01T10:15:00Z"), utc("2025-01-05T00:00:00Z")); // Sunday
}

#[test]
fn a_past_year_never_fires() {
    let err = Schedule::cron("0 0 9 1 1 * 2020", None).unwrap().next_fire(utc("2025-01-01T00:00:00Z")).unwrap_err();
    assert!(matches!(err, ScheduleError::NeverFires { .. }), "{err}");
}

#[test]
fn malformed_expressions_and_zones_are_refused() {
    for (expr, needle) in [
        ("", "empty"),
        ("* * *", "3 fields"),
        ("61 * * * *", "61"),
        ("0 25 * * *", "25"),
        ("0 9 * * 8", "not a day of the week"),
        ("0 9 * * 5-1", "backwards"),
        ("@fortnightly", "unknown shorthand"),
        ("a b c d e", "not a valid cron expression"),
    ] {
        let err = Schedule::cron(expr, None).expect_err(expr);
        assert!(matches!(err, ScheduleError::BadCron { .. }), "{expr}: {err:?}");
        assert!(err.to_string().contains(needle), "{expr}: {err}");
    }
    let err = Schedule::cron("0 9 * * *", Some("Mars/Olympus")).unwrap_err();
    assert_eq!(err, ScheduleError::BadTimezone("Mars/Olympus".into()));
}

// Europe/Berlin 2025: clocks jump 02:00 CET → 03:00 CEST on 30 March (01:00 UTC)
// and fall back 03:00 CEST → 02:00 CET on 26 October (01:00 UTC).

#[test]
fn what_the_cron_crate_alone_does_in_berlin() {
    // Kept as a record of the crate's behaviour, which this module corrects.
    let tz = Tz::Europe__Berlin;
    let daily = cron::Schedule::from_str("0 30 2 * * *").unwrap();
    let spring = tz.with_ymd_and_hms(2025, 3, 29, 12, 0, 0).unwrap();
    let fires: Vec<_> = daily.after(&spring).take(1).map(|t| t.with_timezone(&Utc)).collect();
    // The nonexistent 02:30 on 30 March is skipped altogether.
    assert_eq!(fires, vec![utc("2025-03-31T00:30:00Z")]);

    let autumn = tz.with_ymd_and_hms(2025, 10, 25, 12, 0, 0).unwrap();
    let fires: Vec<_> = daily.after(&autumn).take(2).map(|t| t.with_timezone(&Utc)).collect();
    // The repeated 02:30 on 26 October comes out twice.
    assert_eq!(fires, vec![utc("2025-10-26T00:30:00Z"), utc("2025-10-26T01:30:00Z")]);
}

#[test]
fn daily_job_in_the_spring_forward_gap_fires_once_right_after_the_jump() {
    // 02:30 does not exist on 30 March: it fires at 03:00 CEST (01:00 UTC), once.
    assert_eq!(
        sequence("30 2 * * *", "Europe/Berlin", "2025-03-29T12:00:00Z", 3),
        vec!["2025-03-30T01:00:00+00:00", "2025-03-31T00:30:00+00:00", "2025-04-01T00:30:00+00:00"]
    );
    // The day before it is 02:30 CET (01:30 UTC).
    assert_eq!(next("30 2 * * *", "Europe/Berlin", "2025-03-28T12:00:00Z"), utc("2025-03-29T01:30:00Z"));
}

#[test]
fn daily_job_in_the_repeated_hour_fires_only_at_the_first_occurrence() {
    assert_eq!(
        sequence("30 2 * * *", "Europe/Berlin", "2025-10-25T12:00:00Z", 2),
        vec!["2025-10-26T00:30:00+00:00", "2025-10-27T01:30:00+00:00"]
    );
    // Armed during the second pass of the hour (02:10 CET = 01:10 UTC), after the
    // first 02:30 already happened: the next fire is the next day.
    assert_eq!(next("30 2 * * *", "Europe/Berlin", "2025-10-26T01:10:00Z"), utc("2025-10-27T01:30:00Z"));
    // Armed during the first pass, before 02:30 CEST.
    assert_eq!(next("30 2 * * *", "Europe/Berlin", "2025-10-26T00:10:00Z"), utc("2025-10-26T00:30:00Z"));
}

#[test]
fn interval_job_follows_real_time_across_fall_back() {
    // Every 30 minutes keeps firing every 30 real minutes through the repeated hour.
    assert_eq!(
        sequence("*/30 * * * *", "Europe/Berlin", "2025-10-25T23:45:00Z", 6),
        vec![
            "2025-10-26T00:00:00+00:00", // 02:00 CEST
            "2025-10-26T00:30:00+00:00", // 02:30 CEST
            "2025-10-26T01:00:00+00:00", // 02:00 CET
            "2025-10-26T01:30:00+00:00", // 02:30 CET
            "2025-10-26T02:00:00+00:00", // 03:00 CET
            "2025-10-26T02:30:00+00:00",
        ]
    );
    // Armed in the second pass, the first-pass times are not revisited.
    assert_eq!(next("*/30 * * * *", "Europe/Berlin", "2025-10-26T01:10:00Z"), utc("2025-10-26T01:30:00Z"));
}

#[test]
fn interval_job_skips_the_spring_forward_gap() {
    assert_eq!(
        sequence("*/30 * * * *", "Europe/Berlin", "2025-03-30T00:15:00Z", 3),
        vec![
            "2025-03-30T00:30:00+00:00", // 01:30 CET
            "2025-03-30T01:00:00+00:00", // 03:00 CEST: 02:00 and 02:30 do not exist
            "2025-03-30T01:30:00+00:00",
        ]
    );
    // Hourly at :30 stays one real hour apart.
    assert_eq!(
        sequence("30 * * * *", "Europe/Berlin", "2025-03-30T00:00:00Z", 2),
        vec!["2025-03-30T00:30:00+00:00", "2025-03-30T01:30:00+00:00"]
    );
}

#[test]
fn new_york_daylight_saving_changes() {
    // 2025-03-09: 02:00 EST → 03:00 EDT (07:00 UTC). 02:15 daily fires at 03:00 EDT.
    assert_eq!(
        sequence("15 2 * * *", "America/New_York", "2025-03-08T12:00:00Z", 3),
        vec!["2025-03-09T07:00:00+00:00", "2025-03-10T06:15:00+00:00", "2025-03-11T06:15:00+00:00"]
    );
    // 2025-11-02: 02:00 EDT → 01:00 EST (06:00 UTC). 01:30 daily fires at 01:30 EDT only.
    assert_eq!(
        sequence("30 1 * * *", "America/New_York", "2025-11-01T12:00:00Z", 2),
        vec!["2025-11-02T05:30:00+00:00", "2025-11-03T06:30:00+00:00"]
    );
    // 09:00 on weekdays keeps 09:00 local on both sides of the change.
    assert_eq!(
        sequence("0 9 * * 1-5", "America/New_York", "2025-03-06T15:00:00Z", 3),
        vec!["2025-03-07T14:00:00+00:00", "2025-03-10T13:00:00+00:00", "2025-03-11T13:00:00+00:00"]
    );
}
