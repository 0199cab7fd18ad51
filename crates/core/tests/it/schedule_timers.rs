//! Timer forms (declarative and script-returned) and their fire times.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde_json::json;
use vnext_core::model::{DeclarativeTimer, Timer};
use vnext_core::schedule::{IsoDuration, Schedule, ScheduleError};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn declarative(value: serde_json::Value) -> DeclarativeTimer {
    match serde_json::from_value::<Timer>(value).unwrap() {
        Timer::Declarative(d) => d,
        Timer::Script(s) => panic!("parsed as a script: {s:?}"),
    }
}

#[test]
fn declarative_forms() {
    let armed = utc("2025-01-31T10:00:00Z");
    let s = Schedule::from_declarative(&declarative(json!({"duration": "PT8S"}))).unwrap();
    assert_eq!(s, Schedule::Duration(TimeDelta::seconds(8)));
    assert_eq!(s.next_fire(armed).unwrap(), utc("2025-01-31T10:00:08Z"));

    let s = Schedule::from_declarative(&declarative(json!({"cron": "0 9 * * *", "timezone": "Europe/Istanbul"}))).unwrap();
    assert_eq!(s, Schedule::Cron { expr: "0 9 * * *".into(), timezone: Tz::Europe__Istanbul });
    assert_eq!(s.next_fire(armed).unwrap(), utc("2025-02-01T06:00:00Z"));

    let s = Schedule::from_declarative(&declarative(json!({"at": "2025-02-01T12:00:00+03:00"}))).unwrap();
    assert_eq!(s, Schedule::At(utc("2025-02-01T09:00:00Z")));
    assert_eq!(s.next_fire(armed).unwrap(), utc("2025-02-01T09:00:00Z"));
}

#[test]
fn declarative_shape_errors() {
    for (timer, needle) in [
        (DeclarativeTimer::default(), "set one of `duration`, `cron` or `at`"),
        (
            DeclarativeTimer { duration: Some("PT8S".into()), cron: Some("* * * * *".into()), ..Default::default() },
            "not `duration` and `cron`",
        ),
        (
            DeclarativeTimer { duration: Some("PT8S".into()), timezone: Some("UTC".into()), ..Default::default() },
            "`timezone` is only allowed together with `cron`",
        ),
        (DeclarativeTimer { duration: Some("8s".into()), ..Default::default() }, "`8s` is not an ISO-8601 duration"),
        (DeclarativeTimer { at: Some("tomorrow".into()), ..Default::default() }, "`tomorrow` is not an RFC 3339 instant"),
        (
            DeclarativeTimer { cron: Some("0 9 * * *".into()), timezone: Some("Europe/Atlantis".into()), ..Default::default() },
            "`Europe/Atlantis` is not an IANA time zone",
        ),
    ] {
        let err = Schedule::from_declarative(&timer).expect_err(needle).to_string();
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn script_value_forms() {
    let armed = utc("2025-01-31T10:00:00Z");
    let cases = [
        (json!({"duration": "PT0.5S"}), utc("2025-01-31T10:00:00.500Z")),
        (json!({"duration": "P1D"}), utc("2025-02-01T10:00:00Z")),
        (json!({"duration": "P1M"}), utc("2025-02-28T10:00:00Z")),
        (json!({"cron": "0 9 * * *"}), utc("2025-02-01T09:00:00Z")),
        (json!({"cron": "0 9 * * *", "timezone": "America/New_York"}), utc("2025-01-31T14:00:00Z")),
        (json!({"cron": "0 9 * * *", "timezone": null}), utc("2025-02-01T09:00:00Z")),
        (json!({"at": "2025-03-01T00:00:00Z"}), utc("2025-03-01T00:00:00Z")),
        (json!({"immediate": true}), armed),
    ];
    for (value, expected) in cases {
        let schedule = Schedule::from_script_value(&value).unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(schedule.next_fire(armed).unwrap(), expected, "{value}");
    }
    assert_eq!(
        Schedule::from_script_value(&json!({"duration": "P1Y2M"})).unwrap(),
        Schedule::Calendar(IsoDuration { years: 1, months: 2, exact: TimeDelta::zero() })
    );
}

#[test]
fn script_value_errors_are_precise() {
    for (value, needle) in [
        (json!("PT8S"), "expected a map such as #{duration: \"PT8S\"}, got the string \"PT8S\""),
        (json!(null), "got nothing (unit)"),
        (json!(8), "got the number 8"),
        (json!({}), "the map is empty"),
        (json!({"duration": "PT8S", "at": "2025-01-01T00:00:00Z"}), "not `duration` and `at`"),
        (json!({"durration": "PT8S"}), "unknown key `durration`"),
        (json!({"duration": 8}), "`duration` must be a string, got the number 8"),
        (json!({"cron": ["0 9 * * *"]}), "`cron` must be a string, got an array"),
        (json!({"immediate": false}), "`immediate` must be true, got the boolean false"),
        (json!({"duration": "PT8S", "timezone": "UTC"}), "`timezone` is only allowed together with `cron`"),
        (json!({"cron": "0 9 * * *", "timezone": 3}), "`timezone` must be a string"),
        (json!({"duration": "soon"}), "`soon` is not an ISO-8601 duration"),
        (json!({"cron": "every day"}), "`every day` is not a valid cron expression"),
        (json!({"at": "2025-01-01 00:00"}), "`2025-01-01 00:00` is not an RFC 3339 instant"),
    ] {
        let err = Schedule::from_script_value(&value).expect_err(needle).to_string();
        assert!(err.contains(needle), "{value}: {err}");
    }
}

#[test]
fn past_instants_and_immediate_fire_at_arming() {
    let armed = utc("2025-01-31T10:00:00Z");
    assert_eq!(Schedule::At(utc("2020-01-01T00:00:00Z")).next_fire(armed).unwrap(), armed);
    assert_eq!(Schedule::Immediate.next_fire(armed).unwrap(), armed);
    assert_eq!(Schedule::Duration(TimeDelta::zero()).next_fire(armed).unwrap(), armed);
}

#[test]
fn overflow_is_an_error_not_a_panic() {
    let err = Schedule::Duration(TimeDelta::MAX).next_fire(utc("2025-01-31T10:00:00Z")).unwrap_err();
    assert!(matches!(err, ScheduleError::OutOfRange { .. }), "{err}");
    let huge = Schedule::from_duration("P999999999Y").unwrap();
    assert!(matches!(huge.next_fire(utc("2025-01-31T10:00:00Z")), Err(ScheduleError::OutOfRange { .. })));
    // A hand-built cron schedule with a bad expression reports it.
    let bad = Schedule::Cron { expr: "nope".into(), timezone: Tz::UTC };
    assert!(matches!(bad.next_fire(utc("2025-01-31T10:00:00Z")), Err(ScheduleError::BadCron { .. })));
}
