//! The sandbox: runaway scripts stop with a limit error quickly, never hang;
//! depth limits are explicit; one compiled script serves many threads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vnext_core::script::{CompiledScript, ScriptError, ScriptHost, ScriptLimits};

/// Generous bound for "quickly" on a loaded machine running debug builds.
const QUICK: Duration = Duration::from_secs(10);

fn run(host: &ScriptHost, source: &str) -> (Result<Value, ScriptError>, Duration) {
    let script = host.compile_source(source).unwrap_or_else(|e| panic!("{e}\n{source}"));
    let started = Instant::now();
    let result = host.call(&script, "output", &json!({"body": {}}));
    (result, started.elapsed())
}

fn expect_limit(host: &ScriptHost, source: &str, needle: &str) -> Duration {
    let (result, elapsed) = run(host, source);
    match result {
        Err(ScriptError::Limit(message)) => assert!(message.contains(needle), "{source}: {message}"),
        other => panic!("{source}: expected a limit error containing {needle:?}, got {other:?}"),
    }
    assert!(elapsed < QUICK, "{source}: took {elapsed:?}");
    elapsed
}

fn unlimited_operations(timeout: Duration) -> ScriptHost {
    ScriptHost::with_limits(ScriptLimits { max_operations: 0, timeout, ..ScriptLimits::default() })
}

#[test]
fn defaults_are_explicit() {
    let limits = ScriptLimits::default();
    assert_eq!(
        limits,
        ScriptLimits {
            max_operations: 5_000_000,
            timeout: Duration::from_secs(2),
            max_string_size: 4 * 1024 * 1024,
            max_array_size: 100_000,
            max_map_size: 100_000,
            max_memory: 64 * 1024 * 1024,
            max_call_levels: 64,
            max_expr_depth: 64,
        }
    );
    assert_eq!(ScriptHost::new().limits(), &limits);
}

#[test]
fn infinite_loop_stops_at_the_operation_limit() {
    // A deadline far away, so a loaded machine cannot make the clock stop the loop
    // before the operation limit does.
    let host = ScriptHost::with_limits(ScriptLimits { max_operations: 200_000, timeout: Duration::from_secs(600), ..ScriptLimits::default() });
    expect_limit(&host, "fn output(ctx) { loop { } }", "number of operations");
    expect_limit(&host, "fn output(ctx) { let i = 0; while true { i += 1; } }", "number of operations allowed (in fn output)");
}

#[test]
fn infinite_loop_stops_at_the_deadline() {
    let host = unlimited_operations(Duration::from_millis(200));
    let elapsed = expect_limit(&host, "fn output(ctx) { let i = 0; loop { i += 1; } }", "ran longer than the 200 ms allowed");
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    // The next call gets a fresh deadline.
    let (result, _) = run(&host, "fn output(ctx) { 1 + 1 }");
    assert_eq!(result.unwrap(), json!(2));
}

#[test]
fn runaway_string_growth_stops() {
    let host = unlimited_operations(Duration::from_secs(30));
    expect_limit(&host, "fn output(ctx) { let s = \"x\"; loop { s += s; } }", "Length of string exceeds the size allowed");
    expect_limit(&host, "fn output(ctx) { \"\".pad(1000000000, \"x\") }", "Length of string");
    // Each replace squares the length: checked before the new string is built.
    expect_limit(&host, "fn output(ctx) { let s = \"xx\"; loop { s.replace(\"x\", s); } }", "Length of string");
    expect_limit(&host, "fn output(ctx) { let s = \"xx\"; loop { s.replace('x', s); } }", "Length of string");
    expect_limit(&host, "fn output(ctx) { let s = \"ab\"; loop { s.replace(\"\", s); } }", "Length of string");
    // Replacing that shrinks or keeps the length still works.
    let (result, _) = run(&host, "fn output(ctx) { let s = \"a-b-c\"; s.replace(\"-\", \"\"); s.replace('a', \"A\"); s }");
    assert_eq!(result.unwrap(), json!("Abc"));
}

#[test]
fn runaway_array_and_map_growth_stops() {
    let host = unlimited_operations(Duration::from_secs(30));
    expect_limit(&host, "fn output(ctx) { let a = [1]; loop { a += a; } }", "Size of array");
    expect_limit(&host, "fn output(ctx) { let a = [1]; loop { a.append(a); } }", "Size of array");
    expect_limit(&host, "fn output(ctx) { let a = [1]; loop { a.push(a); } }", "Size of array");
    expect_limit(&host, "fn output(ctx) { let a = []; a.pad(1000000000, 0); a }", "Size of array");
    expect_limit(&host, "fn output(ctx) { blob(1000000000) }", "Size of array/BLOB");
}

#[test]
fn runaway_one_at_a_time_growth_stops() {
    // rhai re-measures a value after each change, so growing one element at a time
    // slows down long before the size limit: the operation limit or the deadline
    // stops it.
    let host = ScriptHost::new();
    for source in [
        "fn output(ctx) { let a = []; loop { a.push(\"item\"); } }",
        "fn output(ctx) { let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; } }",
        // Nesting one level per step, deeper and deeper.
        "fn output(ctx) { let m = #{a: 1}; loop { m.b = m; } }",
        "fn output(ctx) { let a = []; loop { a = [a]; } }",
    ] {
        let (result, elapsed) = run(&host, source);
        assert!(matches!(result, Err(ScriptError::Limit(_))), "{source}: {result:?}");
        assert!(elapsed < QUICK, "{source}: took {elapsed:?}");
    }
}

#[test]
fn runaway_recursion_stops() {
    let host = ScriptHost::new();
    expect_limit(&host, "fn output(ctx) { output(ctx) }", "nested function calls too deep");
    expect_limit(&host, "fn output(ctx) {\n  helper(1)\n}\nfn helper(n) { helper(n + 1) }", "too deep (runaway recursion?) (in fn output)");
}

#[test]
fn deeply_nested_data_never_overflows_the_stack() {
    // Each level adds one map entry, so the size limits allow nesting far deeper
    // than a default thread stack survives (this aborted the process before scripts
    // got a stack of their own).
    let host = unlimited_operations(Duration::from_secs(60));
    let (result, _) = run(&host, "fn output(ctx) { let m = #{}; for i in 0..4000 { m = #{ x: m }; } #{ built: true } }");
    assert_eq!(result.unwrap(), json!({"built": true}));
    // Returning it is refused: nothing that deep reaches the caller.
    expect_limit(
        &host,
        "fn output(ctx) { let m = []; for i in 0..4000 { m = [m]; } m }",
        "the result of fn output is nested deeper than 128 levels",
    );
    // 128 levels are fine.
    let (result, _) = run(&host, "fn output(ctx) { let m = 1; for i in 0..128 { m = #{ x: m }; } m }");
    let mut value = &result.unwrap();
    for _ in 0..128 {
        value = &value["x"];
    }
    assert_eq!(value, &json!(1));
}

#[test]
fn sleep_and_eval_are_not_available() {
    let host = ScriptHost::new();
    let (result, elapsed) = run(&host, "fn output(ctx) { sleep(60); 1 }");
    let err = result.unwrap_err();
    assert!(matches!(&err, ScriptError::Runtime(m) if m.contains("sleep() is not available")), "{err:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let (result, _) = run(&host, "fn output(ctx) { sleep(0.5); 1 }");
    assert!(result.is_err());
    let err = host.compile_source("fn output(ctx) { eval(\"40 + 2\") }").unwrap_err();
    assert!(matches!(&err, ScriptError::Syntax { message, .. } if message.contains("eval")), "{err:?}");
    // Printing goes nowhere and is not an error.
    let (result, _) = run(&host, "fn output(ctx) { print(\"hi\"); debug(ctx); 3 }");
    assert_eq!(result.unwrap(), json!(3));
}

/// A realistic output mapping: a map literal two levels deep inside a function.
const NESTED_MAPPING: &str = r#"
fn output(ctx) {
    return #{
        customer: #{
            address: #{ city: ctx.body.city, lines: [ctx.body.line1, ctx.body.line2] },
            contact: #{ phone: ctx.body.phone ?? "unknown" },
        },
        status: if ctx.body.city == () { "incomplete" } else { "complete" },
    };
}
"#;

#[test]
fn nested_map_literals_compile_with_explicit_depths() {
    // rhai's own debug-build defaults refuse this script.
    if cfg!(debug_assertions) {
        let err = rhai::Engine::new().compile(NESTED_MAPPING).unwrap_err();
        assert!(err.to_string().contains("exceeds maximum complexity"), "{err}");
        assert!(matches!(*err.0, rhai::ParseErrorType::ExprTooDeep), "{err:?}");
    }
    let host = ScriptHost::new();
    let script = host.compile_source(NESTED_MAPPING).unwrap();
    let out = host.call(&script, "output", &json!({"body": {"city": "Izmir", "line1": "a", "line2": "b"}})).unwrap();
    assert_eq!(
        out,
        json!({"customer": {"address": {"city": "Izmir", "lines": ["a", "b"]}, "contact": {"phone": "unknown"}}, "status": "complete"})
    );
}

#[test]
fn expressions_up_to_the_depth_limit_compile_and_run() {
    let host = ScriptHost::new();
    let nested = |n: usize| format!("fn output(ctx) {{ {}1{} }}", "(".repeat(n), ")".repeat(n));
    let deepest = (1..=64).rev().find(|n| host.compile_source(&nested(*n)).is_ok()).unwrap();
    // Each parenthesis costs two levels of the 64 (the group and the expression in it).
    assert!(deepest >= 30, "only {deepest} levels compile");
    let script = host.compile_source(&nested(deepest)).unwrap();
    assert_eq!(host.call(&script, "output", &json!({})).unwrap(), json!(1));
}

#[test]
fn expressions_deeper_than_the_limit_are_a_syntax_error() {
    let host = ScriptHost::with_limits(ScriptLimits { max_expr_depth: 20, ..ScriptLimits::default() });
    let deep = format!("fn output(ctx) {{ {}1{} }}", "(".repeat(40), ")".repeat(40));
    let err = host.compile_source(&deep).unwrap_err();
    assert!(matches!(&err, ScriptError::Syntax { message, .. } if message.contains("exceeds maximum complexity")), "{err:?}");
}

#[test]
fn large_context_data_passes_through() {
    let host = ScriptHost::new();
    let items: Vec<Value> = (0..50_000).map(|i| json!(i)).collect();
    let ctx = json!({"body": {"items": items}});
    let script = host.compile_source("fn output(ctx) { #{ n: ctx.body.items.len(), last: ctx.body.items[-1], items: ctx.body.items } }").unwrap();
    let out = host.call(&script, "output", &ctx).unwrap();
    assert_eq!(out["n"], json!(50_000));
    assert_eq!(out["last"], json!(49_999));
    assert_eq!(out["items"].as_array().unwrap().len(), 50_000);
}

#[test]
fn one_compiled_script_serves_many_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ScriptHost>();
    assert_send_sync::<CompiledScript>();

    let host = Arc::new(ScriptHost::with_limits(ScriptLimits { timeout: Duration::from_millis(300), ..ScriptLimits::default() }));
    let script = host
        .compile_source(
            r#"
            fn output(ctx) {
                let total = 0;
                for i in 0..ctx.body.n { total += i; }
                #{ worker: ctx.body.worker, total: total }
            }
            fn spin(ctx) { loop { } }
            "#,
        )
        .unwrap();
    let threads: Vec<_> = (0..8_i64)
        .map(|t| {
            let (host, script) = (Arc::clone(&host), script.clone());
            std::thread::spawn(move || {
                let mut results = Vec::new();
                for round in 0..20_i64 {
                    let n = t * 100 + round;
                    let out = host.call(&script, "output", &json!({"body": {"worker": t, "n": n}})).unwrap();
                    results.push((out, json!({"worker": t, "total": n * (n - 1) / 2})));
                }
                // A runaway call on one thread stops without disturbing the others.
                let spun = host.call(&script, "spin", &json!({}));
                (results, spun)
            })
        })
        .collect();
    for handle in threads {
        let (results, spun) = handle.join().unwrap();
        for (got, expected) in results {
            assert_eq!(got, expected);
        }
        assert!(matches!(spun, Err(ScriptError::Limit(_))), "{spun:?}");
    }
}
