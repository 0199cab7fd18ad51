//! Scripts on a pool of script threads: the deadline holds to within a few
//! milliseconds, library calls that build large values are bounded, and a
//! call's memory budget stops what its closures build.

use std::time::Duration;

use serde_json::{Value, json};
use vnext_core::script::{ScriptError, ScriptHost, ScriptLimits, ScriptOutput, ScriptPool};

/// Runs `fn output(ctx)` on a pool thread, as a service does.
fn on_pool(host: &ScriptHost, source: &str) -> Result<ScriptOutput, ScriptError> {
    let pool = ScriptPool::new(1).unwrap();
    let script = host.compile_source(source).unwrap_or_else(|e| panic!("{e}\n{source}"));
    let call = host.prepare(&script, "output", json!({"body": {}}))?;
    pool.run(move || call.run())?
}

fn limit_message(host: &ScriptHost, source: &str) -> String {
    match on_pool(host, source) {
        Err(ScriptError::Limit(message)) => message,
        other => panic!("{source}: expected a limit error, got {other:?}"),
    }
}

/// The `N` of "(stopped after N ms)" in a deadline error.
fn stopped_after(message: &str) -> u64 {
    let rest = message.split("stopped after ").nth(1).unwrap_or_else(|| panic!("no elapsed time in {message}"));
    rest.split(" ms").next().unwrap().parse().unwrap_or_else(|_| panic!("{message}"))
}

fn host(limits: ScriptLimits) -> ScriptHost {
    ScriptHost::with_limits(limits)
}

/// Bytes of string data `s` ends with: `1 << doublings`.
fn big_string(doublings: u32) -> String {
    format!("let s = \"x\"; for i in 0..{doublings} {{ s += s; }}")
}

#[test]
fn a_call_on_the_pool_reports_its_time() {
    let host = ScriptHost::new();
    let out = on_pool(&host, "fn output(ctx) { #{ n: 1 + 1 } }").unwrap();
    assert!(out.elapsed < Duration::from_secs(1), "{:?}", out.elapsed);
    assert_eq!(out.into_map().unwrap().unwrap()["n"], json!(2));
    let script = host.compile_source("fn output(ctx) { 1 }").unwrap();
    let err = host.prepare(&script, "input", json!({})).unwrap_err();
    assert_eq!(err, ScriptError::MissingFunction("input".into()));
}

#[test]
fn the_wall_clock_limit_holds_within_ten_percent() {
    // Measured on the script's thread from the moment it picked the call up, as the
    // error reports it: a loaded test machine can delay the reply, not the stop.
    let limits = ScriptLimits { max_operations: 0, timeout: Duration::from_millis(1000), ..ScriptLimits::default() };
    let host = host(limits);
    let heavy = format!("fn output(ctx) {{ {} loop {{ let t = s + s; }} }}", big_string(21));
    for source in ["fn output(ctx) { loop { } }", "fn output(ctx) { let i = 0; loop { i += 1; } }", heavy.as_str()] {
        let message = limit_message(&host, source);
        assert!(message.contains("ran longer than the 1000 ms allowed"), "{source}: {message}");
        let ms = stopped_after(&message);
        assert!((1000..=1100).contains(&ms), "{source}: stopped after {ms} ms");
    }
}

#[test]
fn splits_count_their_parts_before_building_them() {
    let host = host(ScriptLimits { max_operations: 0, timeout: Duration::from_secs(60), ..ScriptLimits::default() });
    // One MiB of text, a million one-character parts: over the 100,000 elements allowed.
    for call in [
        "s.split(\"\")",
        "s.split_rev(\"\")",
        "s.to_chars()",
        "s.replace(\"x\", \"x \"); s.split()",
        "s.split(\"\", 200000)",
    ] {
        let source = format!("fn output(ctx) {{ {} let parts = {{ {call} }}; parts.len() }}", big_string(20));
        let message = limit_message(&host, &source);
        assert!(message.contains("Size of array exceeds the size allowed"), "{call}: {message}");
    }
    // Otherwise they split as the standard functions do.
    let out = on_pool(
        &host,
        r#"fn output(ctx) {
            let s = "a,b,,c";
            [s.split(","), s.split(',', 2), s.split_rev(","), s.split_rev(',', 2), "a b  c".split(),
             "".split(","), "abc".split("-"), "héllo".to_chars().len(), "ab".split("")]
        }"#,
    )
    .unwrap()
    .into_json()
    .unwrap();
    assert_eq!(
        out,
        json!([
            ["a", "b", "", "c"],
            ["a", "b,,c"],
            ["c", "", "b", "a"],
            ["c", "a,b,"],
            ["a", "b", "c"],
            [""],
            ["abc"],
            5,
            ["", "a", "b", ""]
        ])
    );
}

#[test]
fn parse_json_counts_before_parsing() {
    let host = host(ScriptLimits { max_operations: 0, timeout: Duration::from_secs(60), ..ScriptLimits::default() });
    let array = "fn output(ctx) { let t = \"0,\"; for i in 0..18 { t += t; } parse_json(\"[\" + t + \"0]\").len() }";
    assert!(limit_message(&host, array).contains("Size of array"));
    let map = "fn output(ctx) { let t = \"\\\"k\\\":1,\"; for i in 0..17 { t += t; } parse_json(\"{\" + t + \"\\\"z\\\":0}\") }";
    assert!(limit_message(&host, map).contains("Size of map"));
    // Commas and brackets inside strings are text, not elements.
    let text = "fn output(ctx) { let t = \",[{\"; for i in 0..17 { t += t; } parse_json(to_json([t, 1, 2])).len() }";
    assert_eq!(on_pool(&host, text).unwrap().into_json().unwrap(), json!(3));
}

#[cfg(target_os = "linux")]
#[test]
fn what_closures_build_is_bounded_by_the_memory_budget() {
    // Each element stays under the size limits; together they would take gigabytes
    // before the call returned and rhai measured the result.
    let host = host(ScriptLimits { max_operations: 0, timeout: Duration::from_secs(120), ..ScriptLimits::default() });
    let s = big_string(20);
    for build in [
        "let a = []; a.pad(5000, 0); a.map(|x| s + s).len()",
        "let a = []; a.pad(5000, 0); a.for_each(|| this = s + s); 0",
        "let a = []; a.pad(5000, 0); a.filter(|| { this = s + s; true }).len()",
    ] {
        let source = format!("fn output(ctx) {{ {s} {build} }}");
        let message = limit_message(&host, &source);
        assert!(message.contains("used more than the 64 MiB of memory allowed"), "{build}: {message}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn memory_used_and_freed_again_stays_within_the_budget() {
    // The budget counts memory a call makes resident; values dropped and rebuilt
    // reuse the memory they freed.
    let host = host(ScriptLimits { max_operations: 0, timeout: Duration::from_secs(120), ..ScriptLimits::default() });
    let source = format!(
        "fn output(ctx) {{ {} let n = 0; for i in 0..300 {{ let t = s + s; n += t.len(); }} n }}",
        big_string(20)
    );
    let out = on_pool(&host, &source).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.into_json().unwrap(), json!(300 * 2 * 1024 * 1024));
}

#[test]
fn without_a_budget_only_the_size_limits_apply() {
    let host = host(ScriptLimits { max_memory: 0, ..ScriptLimits::default() });
    let source = format!("fn output(ctx) {{ {} let a = []; a.pad(20, 0); a.map(|x| s + s).len() }}", big_string(20));
    // 20 strings of 2 MiB: 40 MiB in one array, refused by the string limit when the call returns.
    assert!(limit_message(&host, &source).contains("Length of string"));
    let _: Value = on_pool(&host, "fn output(ctx) { 1 }").unwrap().into_json().unwrap();
}
