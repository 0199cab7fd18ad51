//! Publish-time checks beyond the shape of a component: cron schedules that
//! can never fire and durations beyond any sane wait.

use crate::validate_support;

use serde_json::json;
use validate_support::*;
use vnext_core::validate::{looks_like_component, unknown_fields};

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

#[test]
fn unknown_fields_are_warnings_with_pointers() {
    let mut w = workflow();
    set(&mut w, "/attributes/states/1/colour", json!("blue"));
    set(&mut w, "/attributes/states/1/transitions/2/triggerTyp", json!(2));
    set(&mut w, "/attributes/extra", json!({"any": 1}));
    // Not an error: validation stays clean.
    assert_clean(&check(&w));
    let warnings = unknown_fields(&w);
    let mut found: Vec<(&str, &str)> = warnings.iter().map(|d| (d.code, d.pointer.as_str())).collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("component.unknown-field", "/attributes/extra"),
            ("component.unknown-field", "/attributes/states/1/colour"),
            ("component.unknown-field", "/attributes/states/1/transitions/2/triggerTyp"),
        ],
        "{warnings:#?}"
    );
    assert!(warnings[0].message.contains('`'), "{}", warnings[0]);
    // Empty values and free-form parts (task configs) are not reported.
    let mut w = workflow();
    set(&mut w, "/attributes/states/1/notes", json!(null));
    assert!(unknown_fields(&w).is_empty());
    let mut t = http_task();
    set(&mut t, "/attributes/config/anything", json!("goes"));
    assert!(unknown_fields(&t).is_empty());
    // The fixture package has none.
    for (path, component) in package() {
        assert!(unknown_fields(&component).is_empty(), "{path}: {:#?}", unknown_fields(&component));
    }
}

/// The reference vNext samples carry no field the model does not know
/// (`$VNEXT_REFERENCE_DIR`, by default `shared/reference/vnext` beside the
/// workspace; skipped when absent).
#[test]
fn reference_samples_have_no_unknown_fields() {
    let dir = std::env::var_os("VNEXT_REFERENCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/vnext"));
    if !dir.join("samples").is_dir() {
        eprintln!("notice: reference folder {} not found; skipped", dir.display());
        return;
    }
    let mut stack = vec![dir.join("samples")];
    let mut components = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&path).unwrap()) else { continue };
            if !looks_like_component(&value) {
                continue;
            }
            components += 1;
            let warnings = unknown_fields(&value);
            assert!(warnings.is_empty(), "{}: {warnings:#?}", path.display());
        }
    }
    assert!(components > 0);
}
