//! Publish-time checks beyond the shape of a component: cron schedules that
//! can never fire and durations beyond any sane wait.

mod validate_support;

use serde_json::json;
use validate_support::*;

const TIMER: &str = "/attributes/states/1/transitions/2/timer";

#[test]
fn crons_that_never_fire_are_refused() {
    let mut w = workflow();
    for never in ["0 0 30 2 *", "0 0 31 4 *", "0 0 0 30 2 ? *", "0 0 0 1 1 ? 2001"] {
        set(&mut w, TIMER, json!({ "cron": never }));
        let d = assert_only(&check(&w), "timer.cron.never-fires", &format!("{TIMER}/cron"));
        assert!(d.message.contains(never) && d.message.contains("8 years"), "{d}");
    }
    // Rare but real: 29 February, the 31st of the months that have one, a
    // date or a weekday (standard cron reads both as either), a zone.
    for fires in ["0 0 29 2 *", "0 12 31 * *", "0 0 30 2 1", "*/5 * * * *"] {
        set(&mut w, TIMER, json!({ "cron": fires }));
        assert_clean(&check(&w));
    }
    set(&mut w, TIMER, json!({ "cron": "0 9 29 2 *", "timezone": "Europe/Istanbul" }));
    assert_clean(&check(&w));
}

#[test]
fn durations_beyond_ten_years_are_refused() {
    let mut w = workflow();
    for long in ["P9999Y", "P11Y", "P10Y1M", "P130M", "P3700D", "P600W", "PT100000H"] {
        set(&mut w, TIMER, json!({ "duration": long }));
        let d = assert_only(&check(&w), "timer.duration.too-long", &format!("{TIMER}/duration"));
        assert!(d.message.contains(long) && d.message.contains("10 years"), "{d}");
    }
    for fine in ["P10Y", "P3652D", "PT8S"] {
        set(&mut w, TIMER, json!({ "duration": fine }));
        assert_clean(&check(&w));
    }
    // The workflow timeout too.
    let mut w = workflow();
    set(&mut w, "/attributes/timeout/timer/duration", json!("P9999Y"));
    assert_only(&check(&w), "timer.duration.too-long", "/attributes/timeout/timer/duration");
}
