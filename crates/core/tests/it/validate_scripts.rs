//! Script rules: decoding, C# refusal, rhai compilation, and the hook function
//! each position requires.

use crate::validate_support;

use serde_json::json;
use validate_support::*;

const RULE: &str = "/attributes/states/0/transitions/1/rule";
const TASK_MAPPING: &str = "/attributes/states/0/transitions/0/onExecutionTasks/0/mapping";
const TRANSITION_MAPPING: &str = "/attributes/startTransition/mapping";

const CSHARP: &str = "using System.Threading.Tasks;\nusing BBT.Workflow.Scripting;\n\npublic class ApproveRule : IConditionMapping\n{\n    public Task<bool> Handler(ScriptContext context) => Task.FromResult(true);\n}\n";

#[test]
fn a_csx_script_is_reported_as_csharp_with_component_pointer_and_file() {
    let mut w = workflow();
    set(
        &mut w,
        RULE,
        json!({"location": "./src/ApproveRule.csx", "code": b64(CSHARP)}),
    );
    let d = assert_only(&check(&w), "script.csharp", RULE);
    for part in [
        "sys-flows/order@1.0.0",
        RULE,
        "./src/ApproveRule.csx",
        "rhai",
        "fn handler(ctx)",
    ] {
        assert!(
            d.message.contains(part),
            "message lacks {part}: {}",
            d.message
        );
    }
    assert_eq!(d.component.as_deref(), Some("sys-flows/order@1.0.0"));
}

#[test]
fn csharp_source_is_recognised_whatever_the_location_says() {
    let mut w = workflow();
    set(
        &mut w,
        RULE,
        json!({"location": "./src/approve.rhai", "code": b64(CSHARP)}),
    );
    let d = assert_only(&check(&w), "script.csharp", RULE);
    assert!(d.message.contains("./src/approve.rhai"));
    set(
        &mut w,
        RULE,
        json!({"location": "./src/approve.rhai", "code": CSHARP, "encoding": "NAT"}),
    );
    assert_only(&check(&w), "script.csharp", RULE);
}

#[test]
fn plain_text_rhai_is_accepted() {
    let mut w = workflow();
    set(
        &mut w,
        RULE,
        json!({"location": "./src/rule.rhai", "code": "fn handler(ctx) { true }", "encoding": "NAT"}),
    );
    assert_clean(&check(&w));
}

#[test]
fn scripts_must_decode() {
    let mut w = workflow();
    set(
        &mut w,
        RULE,
        json!({"location": "./src/rule.rhai", "code": "not base64 at all!"}),
    );
    let d = assert_only(&check(&w), "script.decode", &format!("{RULE}/code"));
    assert!(
        d.message.contains("base64") && d.message.contains("./src/rule.rhai"),
        "{}",
        d.message
    );
    set(&mut w, RULE, json!({"location": "./src/rule.rhai"}));
    let d = assert_only(&check(&w), "script.decode", RULE);
    assert!(d.message.contains("missing"));
}

#[test]
fn scripts_must_compile_as_rhai() {
    let mut w = workflow();
    set(
        &mut w,
        RULE,
        rhai("rule", "fn handler(ctx) {\n  let x = ;\n}"),
    );
    let d = assert_only(&check(&w), "script.syntax", RULE);
    assert!(d.message.contains("line 2"), "{}", d.message);
}

#[test]
fn rules_define_handler() {
    let mut w = workflow();
    set(&mut w, RULE, rhai("rule", "fn condition(ctx) { true }"));
    let d = assert_only(&check(&w), "script.missing-function", RULE);
    assert!(
        d.message.contains("fn handler(ctx)") && d.message.contains("`auto-approve`"),
        "{}",
        d.message
    );
    // Two parameters is not the hook either.
    set(
        &mut w,
        RULE,
        rhai("rule", "fn handler(ctx, extra) { true }"),
    );
    assert_only(&check(&w), "script.missing-function", RULE);
}

#[test]
fn transition_mappings_define_handler() {
    let mut w = workflow();
    set(
        &mut w,
        TRANSITION_MAPPING,
        rhai("map", "fn input(ctx) { ctx.body }"),
    );
    assert_only(&check(&w), "script.missing-function", TRANSITION_MAPPING);
    set(
        &mut w,
        TRANSITION_MAPPING,
        rhai("map", "fn handler(ctx) { ctx.body }"),
    );
    assert_clean(&check(&w));
}

#[test]
fn task_mappings_define_input_or_output() {
    let mut w = workflow();
    set(&mut w, TASK_MAPPING, rhai("map", "fn handler(ctx) { #{} }"));
    let d = assert_only(&check(&w), "script.missing-function", TASK_MAPPING);
    assert!(d.message.contains("fn input(ctx)") && d.message.contains("fn output(ctx)"));
    set(&mut w, TASK_MAPPING, rhai("map", "fn input(ctx) { #{} }"));
    assert_clean(&check(&w));
    set(&mut w, TASK_MAPPING, rhai("map", "fn output(ctx) { #{} }"));
    assert_clean(&check(&w));
    // A task entry without a mapping needs no script.
    remove(&mut w, TASK_MAPPING);
    assert_clean(&check(&w));
}

#[test]
fn shared_csharp_mappings_are_not_supported() {
    let mut w = workflow();
    set(
        &mut w,
        RULE,
        json!({"encoding": "REF", "code": {"key": "helpers", "domain": "shop", "flow": "sys-mappings", "version": "1.0.0"}}),
    );
    assert_only(&check(&w), "script.ref-unsupported", RULE);
}

#[test]
fn global_scripts_are_not_provided() {
    let mut w = workflow();
    set(
        &mut w,
        TASK_MAPPING,
        json!({"type": "G", "location": "notification"}),
    );
    assert_only(&check(&w), "script.global-unsupported", TASK_MAPPING);
    set(
        &mut w,
        TASK_MAPPING,
        json!({"type": "G", "location": "./src/GlobalMapping.csx"}),
    );
    assert_only(&check(&w), "script.csharp", TASK_MAPPING);
}

#[test]
fn positions_without_a_hook_only_need_to_compile() {
    let mut f = function_component();
    set(
        &mut f,
        "/attributes/output",
        rhai("out", "fn anything(ctx) { ctx }"),
    );
    assert_clean(&check(&f));
    set(
        &mut f,
        "/attributes/output",
        rhai("out", "fn anything(ctx) { ctx "),
    );
    assert_only(&check(&f), "script.syntax", "/attributes/output");
}

#[test]
fn function_and_extension_task_mappings_are_checked() {
    let mut f = function_component();
    set(
        &mut f,
        "/attributes/task/mapping",
        json!({"location": "./src/F.csx", "code": b64(CSHARP)}),
    );
    assert_only(&check(&f), "script.csharp", "/attributes/task/mapping");
    let mut e = extension_component();
    set(
        &mut e,
        "/attributes/task/mapping",
        rhai("ext", "fn handler(ctx) { 1 }"),
    );
    assert_only(
        &check(&e),
        "script.missing-function",
        "/attributes/task/mapping",
    );
}
