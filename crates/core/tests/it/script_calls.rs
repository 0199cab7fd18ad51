//! Calling script functions: JSON in and out, typed results, the ctx contract,
//! helpers and error reporting.

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use vnext_core::model::{ScriptCode, ScriptEncoding, TriggerType};
use vnext_core::schedule::Schedule;
use vnext_core::script::{
    CompiledScript, InstanceContext, ResponseContext, RuntimeContext, ScriptContext, ScriptError, ScriptHost,
    TransitionContext,
};
use vnext_core::traits::{TaskError, TaskResponse};

fn compile(host: &ScriptHost, source: &str) -> CompiledScript {
    host.compile_source(source).unwrap_or_else(|e| panic!("{e}\n{source}"))
}

fn context() -> ScriptContext {
    let mut headers = serde_json::Map::new();
    headers.insert("X-Correlation-Id".into(), json!("c-42"));
    headers.insert("Authorization".into(), json!("Bearer t"));
    let failed = TaskResponse {
        status_code: Some(503),
        is_success: false,
        data: Value::Null,
        headers: serde_json::Map::new(),
        duration_ms: 12.0,
        error: Some(TaskError::new("Task:503", "unavailable", true)),
    };
    ScriptContext {
        body: json!({"amount": 1500, "rate": 0.25, "tags": ["a", "b"], "customer": {"name": "Ada"}}),
        headers,
        query: serde_json::Map::from_iter([("lang".to_string(), json!("tr"))]),
        instance: InstanceContext {
            id: Uuid::from_u128(7),
            key: Some("loan-1".into()),
            flow: "loan".into(),
            domain: "bank".into(),
            state: "draft".into(),
            status: "A".into(),
            data: json!({"limit": 1000}),
        },
        transition: Some(TransitionContext {
            key: "submit".into(),
            from: Some("draft".into()),
            to: Some("review".into()),
            trigger: TriggerType::Manual,
        }),
        response: Some(ResponseContext {
            status_code: Some(200),
            is_success: true,
            data: json!({"score": 720}),
            headers: serde_json::Map::from_iter([("Content-Type".to_string(), json!("application/json"))]),
            error: None,
        }),
        responses: BTreeMap::from([("scoring".to_string(), ResponseContext::from(&failed))]),
        runtime: RuntimeContext { domain: "bank".into(), now: Utc.with_ymd_and_hms(2025, 1, 31, 9, 0, 0).unwrap() },
    }
}

#[test]
fn every_ctx_field_is_readable() {
    let host = ScriptHost::new();
    let script = compile(
        &host,
        r#"
        fn output(ctx) {
            #{
                amount: ctx.body.amount,
                name: ctx.body.customer.name,
                correlation: ctx.headers["x-correlation-id"],
                auth: ctx.headers.authorization,
                lang: ctx.query.lang,
                instance: [ctx.instance.id, ctx.instance.key, ctx.instance.flow, ctx.instance.domain,
                           ctx.instance.state, ctx.instance.status, ctx.instance.data.limit],
                transition: [ctx.transition.key, ctx.transition.from, ctx.transition.to, ctx.transition.trigger],
                response: [ctx.response.status_code, ctx.response.is_success, ctx.response.data.score,
                           ctx.response.headers["content-type"], ctx.response.error],
                earlier: [ctx.responses.scoring.status_code, ctx.responses.scoring.error.code],
                runtime: [ctx.runtime.domain, ctx.runtime.now],
                missing: ctx.body.nothing_here,
            }
        }
        "#,
    );
    let out = host.call_map(&script, "output", &context().to_value()).unwrap().unwrap();
    assert_eq!(
        Value::Object(out),
        json!({
            "amount": 1500,
            "name": "Ada",
            "correlation": "c-42",
            "auth": "Bearer t",
            "lang": "tr",
            "instance": ["00000000-0000-0000-0000-000000000007", "loan-1", "loan", "bank", "draft", "A", 1000],
            "transition": ["submit", "draft", "review", "manual"],
            "response": [200, true, 720, "application/json", null],
            "earlier": [503, "Task:503"],
            "runtime": ["bank", "2025-01-31T09:00:00Z"],
            "missing": null,
        })
    );
}

#[test]
fn absent_parts_read_as_unit() {
    let host = ScriptHost::new();
    let script = compile(
        &host,
        r#"
        fn output(ctx) {
            #{
                status: ctx.response?.status_code ?? 0,
                has_response: ctx.response != (),
                from: ctx.transition?.from,
            }
        }
        "#,
    );
    let ctx = ScriptContext { response: None, transition: None, ..context() };
    assert_eq!(
        host.call(&script, "output", &ctx.to_value()).unwrap(),
        json!({"status": 0, "has_response": false, "from": null})
    );
    assert_eq!(
        host.call(&script, "output", &context().to_value()).unwrap(),
        json!({"status": 200, "has_response": true, "from": "draft"})
    );
}

#[test]
fn json_round_trips_unchanged() {
    let host = ScriptHost::new();
    let script = compile(&host, "fn echo(ctx) { ctx }");
    let value = json!({
        "int": 42, "negative": -7, "big": 9_007_199_254_740_993_i64, "float": 1.5, "whole_float": 2.0,
        "text": "ünïcödé", "yes": true, "nothing": null, "list": [1, 2.5, "x", null, {"k": []}],
        "nested": {"zeta": 1, "alpha": {"b": 2, "a": 1}},
    });
    assert_eq!(host.call(&script, "echo", &value).unwrap(), value);
    // Integers stay integers and floats stay floats on the way out.
    let out = host.call(&script, "echo", &json!({"i": 3, "f": 3.0})).unwrap();
    assert!(out["i"].is_i64());
    assert!(out["f"].is_f64());
}

#[test]
fn arithmetic_keeps_integer_and_float_types() {
    let host = ScriptHost::new();
    let script = compile(&host, "fn output(ctx) { #{ sum: ctx.body.amount + 1, scaled: ctx.body.amount * ctx.body.rate } }");
    let out = host.call(&script, "output", &context().to_value()).unwrap();
    assert_eq!(out, json!({"sum": 1501, "scaled": 375.0}));
    assert!(out["sum"].is_i64() && out["scaled"].is_f64());
}

#[test]
fn ctx_is_the_scripts_own_copy() {
    let host = ScriptHost::new();
    let script = compile(
        &host,
        r#"
        fn output(ctx) {
            ctx.body.amount = 0;
            ctx.instance.data.limit = -1;
            ctx.injected = true;
            #{ seen: ctx.body.amount }
        }
        fn check(ctx) { #{ amount: ctx.body.amount, injected: ctx.injected } }
        "#,
    );
    let ctx = context().to_value();
    let before = ctx.clone();
    let out = host.call(&script, "output", &ctx).unwrap();
    assert_eq!(out, json!({"seen": 0}));
    assert_eq!(ctx, before);
    // A second call sees the original values, not the first call's changes.
    assert_eq!(host.call(&script, "check", &ctx).unwrap(), json!({"amount": 1500, "injected": null}));
}

#[test]
fn call_map_accepts_a_map_or_nothing() {
    let host = ScriptHost::new();
    let script = compile(
        &host,
        r#"
        fn some(ctx) { #{ approved: ctx.body.amount > ctx.instance.data.limit } }
        fn none(ctx) { if ctx.body.amount > 0 { return; } #{ x: 1 } }
        fn list(ctx) { [1, 2] }
        fn text(ctx) { "approved" }
        "#,
    );
    let ctx = context().to_value();
    assert_eq!(host.call_map(&script, "some", &ctx).unwrap(), Some(json!({"approved": true}).as_object().unwrap().clone()));
    assert_eq!(host.call_map(&script, "none", &ctx).unwrap(), None);
    assert_eq!(
        host.call_map(&script, "list", &ctx).unwrap_err(),
        ScriptError::BadReturn { expected: "a map (#{...}) or nothing".into(), got: "an array".into() }
    );
    assert_eq!(
        host.call_map(&script, "text", &ctx).unwrap_err().to_string(),
        "script returned the string \"approved\", expected a map (#{...}) or nothing"
    );
}

#[test]
fn call_bool_for_rules() {
    let host = ScriptHost::new();
    let script = compile(
        &host,
        r#"
        fn handler(ctx) { ctx.body.amount > ctx.instance.data.limit }
        fn low(ctx) { ctx.body.amount < 10 }
        fn maybe(ctx) { 1 }
        fn nothing(ctx) { }
        "#,
    );
    let ctx = context().to_value();
    assert!(host.call_bool(&script, "handler", &ctx).unwrap());
    assert!(!host.call_bool(&script, "low", &ctx).unwrap());
    assert_eq!(
        host.call_bool(&script, "maybe", &ctx).unwrap_err(),
        ScriptError::BadReturn { expected: "a boolean (true or false)".into(), got: "the integer 1".into() }
    );
    assert!(matches!(host.call_bool(&script, "nothing", &ctx), Err(ScriptError::BadReturn { got, .. }) if got == "nothing (unit)"));
}

#[test]
fn call_timer_for_timer_scripts() {
    let host = ScriptHost::new();
    let script = compile(
        &host,
        r#"
        fn handler(ctx) {
            if ctx.body.amount > 1000 { #{ duration: "PT8S" } } else { #{ immediate: true } }
        }
        fn daily(ctx) { #{ cron: "0 9 * * *", timezone: "Europe/Istanbul" } }
        fn tomorrow(ctx) { #{ at: add_duration(ctx.runtime.now, "P1D") } }
        fn broken(ctx) { #{ duration: 8 } }
        fn words(ctx) { "in a while" }
        "#,
    );
    let ctx = context().to_value();
    assert_eq!(host.call_timer(&script, "handler", &ctx).unwrap(), Schedule::Duration(TimeDelta::seconds(8)));
    assert_eq!(
        host.call_timer(&script, "daily", &ctx).unwrap(),
        Schedule::Cron { expr: "0 9 * * *".into(), timezone: chrono_tz::Tz::Europe__Istanbul }
    );
    assert_eq!(
        host.call_timer(&script, "tomorrow", &ctx).unwrap(),
        Schedule::At(Utc.with_ymd_and_hms(2025, 2, 1, 9, 0, 0).unwrap())
    );
    let err = host.call_timer(&script, "broken", &ctx).unwrap_err().to_string();
    assert!(err.contains("`duration` must be a string, got the number 8") && err.contains("#{immediate: true}"), "{err}");
    let err = host.call_timer(&script, "words", &ctx).unwrap_err().to_string();
    assert!(err.contains("expected a map such as"), "{err}");
}

#[test]
fn missing_functions_are_reported_by_name() {
    let host = ScriptHost::new();
    let script = compile(&host, "fn input(ctx) { #{} }\nfn helper() { 1 }");
    assert!(script.has_function("input"));
    assert!(!script.has_function("helper"), "only one-parameter functions are hooks");
    let ctx = context().to_value();
    assert_eq!(host.call(&script, "output", &ctx).unwrap_err(), ScriptError::MissingFunction("output".into()));
    assert_eq!(host.call(&script, "helper", &ctx).unwrap_err().to_string(), "script does not define `fn helper(ctx)`");
}

#[test]
fn runtime_errors_carry_line_and_column() {
    let host = ScriptHost::new();
    let script = compile(
        &host,
        "fn output(ctx) {\n    let x = 1;\n    x + undefined_function(ctx)\n}\n\nfn deep(ctx) {\n    step(ctx)\n}\nfn step(ctx) {\n    throw \"no luck\";\n}\n",
    );
    let ctx = context().to_value();
    match host.call(&script, "output", &ctx).unwrap_err() {
        ScriptError::Runtime(message) => {
            assert!(message.contains("Function not found: undefined_function"), "{message}");
            assert!(message.contains("line 3, column 9 in fn output"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match host.call(&script, "deep", &ctx).unwrap_err() {
        ScriptError::Runtime(message) => {
            assert!(message.contains("no luck"), "{message}");
            assert!(message.contains("line 10, column 5 in fn deep → fn step"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let host = ScriptHost::new();
    let err = host.compile_source("fn output(ctx) {\n  let a = ;\n}").unwrap_err();
    assert!(matches!(err, ScriptError::Syntax { line: 2, .. }), "{err:?}");
    // Undeclared variables are caught when compiling.
    let err = host.compile_source("fn output(ctx) { #{ a: ctxx.body } }").unwrap_err();
    assert!(matches!(&err, ScriptError::Syntax { message, line: 1, .. } if message.contains("ctxx")), "{err:?}");
}

#[test]
fn compile_from_the_script_code_envelope() {
    use base64::Engine as _;
    let host = ScriptHost::new();
    let source = "fn handler(ctx) { ctx.body.amount > 1000 }";
    let b64 = ScriptCode {
        kind: None,
        code: Some(json!(base64::engine::general_purpose::STANDARD.encode(source))),
        location: Some("./src/big-amount.rhai".into()),
        encoding: ScriptEncoding::B64,
    };
    let script = host.compile(&b64).unwrap();
    assert!(host.call_bool(&script, "handler", &context().to_value()).unwrap());
}

#[test]
fn helpers_for_authors() {
    let host = ScriptHost::new();
    let script = compile(
        &host,
        r#"
        fn output(ctx) {
            let parsed = parse_json(`{"a": [1, 2.5, null], "b": {"c": true}}`);
            #{
                parsed: parsed,
                list: parse_json("[1, 2]"),
                scalar: parse_json("7"),
                json_map: to_json(#{ n: 1 }),
                json_list: to_json([1, "two", ()]),
                json_unit: to_json(()),
                json_escaped: to_json(#{ s: "a\x01b" }),
                empty: [is_empty(()), is_empty(""), is_empty([]), is_empty(#{}), is_empty("x"), is_empty(ctx.body.none)],
                later: add_duration("2025-01-31T09:00:00+03:00", "P1M"),
                coalesced: ctx.body.none ?? "fallback",
            }
        }
        fn bad_json(ctx) { parse_json("{oops") }
        fn bad_instant(ctx) { add_duration("yesterday", "P1D") }
        "#,
    );
    let ctx = context().to_value();
    assert_eq!(
        host.call(&script, "output", &ctx).unwrap(),
        json!({
            "parsed": {"a": [1, 2.5, null], "b": {"c": true}},
            "list": [1, 2],
            "scalar": 7,
            "json_map": "{\"n\":1}",
            "json_list": "[1,\"two\",null]",
            "json_unit": "null",
            "json_escaped": "{\"s\":\"a\\u0001b\"}",
            "empty": [true, true, true, true, false, true],
            "later": "2025-02-28T06:00:00Z",
            "coalesced": "fallback",
        })
    );
    let err = host.call(&script, "bad_json", &ctx).unwrap_err().to_string();
    assert!(err.contains("parse_json: not valid JSON"), "{err}");
    let err = host.call(&script, "bad_instant", &ctx).unwrap_err().to_string();
    assert!(err.contains("`yesterday` is not an RFC 3339 instant"), "{err}");
}

#[test]
fn results_that_are_not_json_are_refused() {
    let host = ScriptHost::new();
    let script = compile(&host, "fn output(ctx) { #{ f: Fn(\"output\") } }");
    let err = host.call(&script, "output", &context().to_value()).unwrap_err();
    assert!(matches!(&err, ScriptError::BadReturn { expected, .. } if expected.contains("JSON")), "{err:?}");
}
