//! What each sample script computes, run with sample contexts shaped like the
//! runtime's `ctx` (body, headers, query, instance, transition, response,
//! responses, runtime). The scripts are read from their `src/*.rhai` files, which
//! `embedded_scripts_equal_their_source_files` proves equal to the embedded code.
//!
//! The engine here carries the same explicit limits as the runtime's script host,
//! so a script that needs deeper nesting than the runtime allows fails here too.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{files_with_extension, flows_dir};

const NOW: &str = "2026-11-22T10:00:00Z";
const INSTANCE_ID: &str = "0192f8a4-6b1c-7c3e-9a55-3f0d2b7e4c11";

/// What a script call should return.
enum Expect {
    /// The result contains at least these fields with these values (recursively).
    Subset(Value),
    /// A rule's answer.
    Bool(bool),
    /// A timer script's answer: `#{duration: ...}` that the runtime's schedule
    /// parser accepts.
    Duration(&'static str),
}

/// One script call: `workflow/src/<script>.rhai`, the function, the context.
struct Case {
    name: &'static str,
    script: &'static str,
    function: &'static str,
    ctx: Value,
    expect: Expect,
}

/// A context with the given instance data; `with` fills body, response, ...
fn ctx(state: &str, data: Value) -> Value {
    json!({
        "body": {},
        "headers": {},
        "query": {},
        "instance": {"id": INSTANCE_ID, "key": "case-1", "flow": "sample", "domain": "demo",
                     "state": state, "status": "A", "data": data},
        "transition": {"key": "", "from": state, "to": state, "trigger": "manual"},
        "response": null,
        "responses": {},
        "runtime": {"domain": "demo", "now": NOW}
    })
}

fn with(mut ctx: Value, field: &str, value: Value) -> Value {
    ctx[field] = value;
    ctx
}

fn applicant(birth_date: &str, country: &str) -> Value {
    json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "birthDate": birth_date, "country": country})
}

fn cases() -> Vec<Case> {
    use Expect::{Bool, Duration, Subset};
    let onboarding = |docs: Value, applicant: Value| json!({"applicant": applicant, "product": "current-account", "documents": docs});
    let all_docs = json!({"idDocument": "passport", "proofOfAddress": true, "selfieMatch": 0.93});
    let payment = |amount: i64, method: &str| json!({"merchantId": "coffee-corner", "amount": amount, "currency": "EUR", "method": method});
    let captured = json!({
        "merchantId": "coffee-corner", "amount": 12500, "currency": "EUR", "method": "card",
        "notifyUrl": "http://127.0.0.1:9000/callback",
        "fees": {"basisPoints": 290, "fixed": 30, "amount": 393, "net": 12107},
        "confirmation": {"authorizationCode": "AUTH42", "confirmedAt": NOW}
    });
    let contract = |approvals: Value| json!({
        "title": "Supplier contract", "documentType": "contract", "author": "dora",
        "review": {"round": 1, "requiredApprovals": 2, "submittedAt": NOW}, "approvals": approvals
    });
    let alice = json!({"reviewer": "alice", "note": "", "approvedAt": NOW});
    vec![
        // customer-onboarding
        Case { name: "all documents score 100", script: "customer-onboarding/src/kyc-score.rhai", function: "output",
            ctx: ctx("kyc-check", onboarding(all_docs.clone(), applicant("1990-12-10", "GB"))),
            expect: Subset(json!({"kyc": {"score": 100, "flags": [], "checkedAt": NOW}})) },
        Case { name: "an identity document alone scores 40", script: "customer-onboarding/src/kyc-score.rhai", function: "output",
            ctx: ctx("kyc-check", onboarding(json!({"idDocument": "passport"}), applicant("1990-12-10", "GB"))),
            expect: Subset(json!({"kyc": {"score": 40, "flags": ["missing-proof-of-address", "weak-selfie-match"]}})) },
        Case { name: "a selfie match of exactly 1 counts (integer in JSON)", script: "customer-onboarding/src/kyc-score.rhai", function: "output",
            ctx: ctx("kyc-check", onboarding(json!({"idDocument": "passport", "selfieMatch": 1}), applicant("1990-12-10", "GB"))),
            expect: Subset(json!({"kyc": {"score": 70}})) },
        Case { name: "high-risk country loses 50", script: "customer-onboarding/src/kyc-score.rhai", function: "output",
            ctx: ctx("kyc-check", onboarding(all_docs.clone(), applicant("1990-12-10", "KP"))),
            expect: Subset(json!({"kyc": {"score": 50, "flags": ["high-risk-country"]}})) },
        Case { name: "under 18 (birthday tomorrow) scores 0", script: "customer-onboarding/src/kyc-score.rhai", function: "output",
            ctx: ctx("kyc-check", onboarding(all_docs.clone(), applicant("2008-11-23", "GB"))),
            expect: Subset(json!({"kyc": {"score": 0, "flags": ["under-age"]}})) },
        Case { name: "18 today is of age", script: "customer-onboarding/src/kyc-score.rhai", function: "output",
            ctx: ctx("kyc-check", onboarding(all_docs.clone(), applicant("2008-11-22", "GB"))),
            expect: Subset(json!({"kyc": {"score": 100}})) },
        Case { name: "score 70 passes", script: "customer-onboarding/src/kyc-passed.rhai", function: "handler",
            ctx: ctx("kyc-check", json!({"kyc": {"score": 70}})), expect: Bool(true) },
        Case { name: "score 69 does not pass", script: "customer-onboarding/src/kyc-passed.rhai", function: "handler",
            ctx: ctx("kyc-check", json!({"kyc": {"score": 69}})), expect: Bool(false) },
        Case { name: "no score does not pass", script: "customer-onboarding/src/kyc-passed.rhai", function: "handler",
            ctx: ctx("kyc-check", json!({})), expect: Bool(false) },
        Case { name: "documents are stamped", script: "customer-onboarding/src/submit-documents.rhai", function: "handler",
            ctx: with(ctx("application-received", json!({})), "body", json!({"documents": {"idDocument": "passport"}})),
            expect: Subset(json!({"documents": {"idDocument": "passport", "submittedAt": NOW}})) },
        Case { name: "approval is recorded", script: "customer-onboarding/src/approve-application.rhai", function: "handler",
            ctx: with(ctx("manual-review", json!({})), "body", json!({"reviewer": "rita"})),
            expect: Subset(json!({"review": {"decision": "approved", "reviewer": "rita", "note": "", "decidedAt": NOW}})) },
        Case { name: "rejection is recorded", script: "customer-onboarding/src/reject-application.rhai", function: "handler",
            ctx: with(ctx("manual-review", json!({})), "body", json!({"reviewer": "rita", "reason": "fake id"})),
            expect: Subset(json!({"review": {"decision": "rejected", "reviewer": "rita", "reason": "fake id"}})) },
        Case { name: "withdrawal without a reason", script: "customer-onboarding/src/withdraw.rhai", function: "handler",
            ctx: ctx("application-received", json!({})),
            expect: Subset(json!({"withdrawal": {"reason": "", "withdrawnAt": NOW}})) },
        Case { name: "account number comes from the instance id", script: "customer-onboarding/src/open-account.rhai", function: "output",
            ctx: ctx("account-setup", json!({"product": "savings-account"})),
            expect: Subset(json!({"account": {"number": "DEMO-0192F8A4", "product": "savings-account", "openedAt": NOW}})) },
        // payment-processing
        Case { name: "card fee is 2.9 % + 30", script: "payment-processing/src/calculate-fees.rhai", function: "output",
            ctx: ctx("created", payment(12500, "card")),
            expect: Subset(json!({"fees": {"basisPoints": 290, "fixed": 30, "amount": 393, "net": 12107}})) },
        Case { name: "transfer fee has a minimum of 50", script: "payment-processing/src/calculate-fees.rhai", function: "output",
            ctx: ctx("created", payment(1000, "transfer")),
            expect: Subset(json!({"fees": {"amount": 50, "net": 950}})) },
        Case { name: "transfer fee is 0.8 %", script: "payment-processing/src/calculate-fees.rhai", function: "output",
            ctx: ctx("created", payment(1_000_000, "transfer")),
            expect: Subset(json!({"fees": {"basisPoints": 80, "fixed": 0, "amount": 8000}})) },
        Case { name: "over 50,000.00 is declined", script: "payment-processing/src/over-limit.rhai", function: "handler",
            ctx: ctx("created", payment(5_000_001, "card")), expect: Bool(true) },
        Case { name: "50,000.00 is not over the limit", script: "payment-processing/src/over-limit.rhai", function: "handler",
            ctx: ctx("created", payment(5_000_000, "card")), expect: Bool(false) },
        Case { name: "10,000.00 needs a review", script: "payment-processing/src/review-required.rhai", function: "handler",
            ctx: ctx("created", payment(1_000_000, "card")), expect: Bool(true) },
        Case { name: "9,999.99 needs no review", script: "payment-processing/src/review-required.rhai", function: "handler",
            ctx: ctx("created", payment(999_999, "card")), expect: Bool(false) },
        Case { name: "risk approval is recorded", script: "payment-processing/src/approve-risk.rhai", function: "handler",
            ctx: with(ctx("risk-review", json!({})), "body", json!({"reviewer": "rob", "note": "known customer"})),
            expect: Subset(json!({"risk": {"decision": "approved", "reviewer": "rob", "note": "known customer"}})) },
        Case { name: "risk decline is recorded", script: "payment-processing/src/decline-risk.rhai", function: "handler",
            ctx: with(ctx("risk-review", json!({})), "body", json!({"reviewer": "rob", "reason": "card reported stolen"})),
            expect: Subset(json!({"risk": {"decision": "declined", "reason": "card reported stolen"}})) },
        Case { name: "confirmation window defaults to 30 minutes", script: "payment-processing/src/confirmation-window.rhai", function: "handler",
            ctx: ctx("awaiting-confirmation", payment(100, "card")), expect: Duration("PT30M") },
        Case { name: "confirmation window from the start payload", script: "payment-processing/src/confirmation-window.rhai", function: "handler",
            ctx: ctx("awaiting-confirmation", json!({"amount": 100, "confirmationWindow": "PT2S"})),
            expect: Duration("PT2S") },
        Case { name: "confirmation window in hours and minutes", script: "payment-processing/src/confirmation-window.rhai", function: "handler",
            ctx: ctx("awaiting-confirmation", json!({"amount": 100, "confirmationWindow": "PT1H30M"})),
            expect: Duration("PT1H30M") },
        Case { name: "confirmation is recorded", script: "payment-processing/src/confirm.rhai", function: "handler",
            ctx: with(ctx("awaiting-confirmation", json!({})), "body", json!({"authorizationCode": "AUTH42"})),
            expect: Subset(json!({"confirmation": {"authorizationCode": "AUTH42", "confirmedAt": NOW}})) },
        Case { name: "a notifyUrl asks for a notification", script: "payment-processing/src/notify-requested.rhai", function: "handler",
            ctx: ctx("captured", captured.clone()), expect: Bool(true) },
        Case { name: "no notifyUrl, no notification", script: "payment-processing/src/notify-requested.rhai", function: "handler",
            ctx: ctx("captured", payment(100, "card")), expect: Bool(false) },
        Case { name: "an empty notifyUrl, no notification", script: "payment-processing/src/notify-requested.rhai", function: "handler",
            ctx: ctx("captured", json!({"notifyUrl": ""})), expect: Bool(false) },
        Case { name: "the merchant request goes to notifyUrl", script: "payment-processing/src/notify-merchant.rhai", function: "input",
            ctx: ctx("notifying-merchant", captured.clone()),
            expect: Subset(json!({
                "url": "http://127.0.0.1:9000/callback",
                "headers": {"x-payment-id": INSTANCE_ID},
                "body": {"event": "payment.captured", "paymentId": INSTANCE_ID, "reference": "case-1", "merchantId": "coffee-corner",
                         "amount": 12500, "currency": "EUR", "fee": 393, "net": 12107, "authorizationCode": "AUTH42"}})) },
        Case { name: "the merchant's answer is recorded", script: "payment-processing/src/notify-merchant.rhai", function: "output",
            ctx: with(ctx("notifying-merchant", captured.clone()), "response",
                json!({"status_code": 202, "is_success": true, "data": {"acknowledgement": "ack-7"}, "headers": {}, "error": null})),
            expect: Subset(json!({"notification": {"delivered": true, "statusCode": 202, "acknowledgement": "ack-7", "notifiedAt": NOW}})) },
        Case { name: "a text answer is recorded without acknowledgement", script: "payment-processing/src/notify-merchant.rhai", function: "output",
            ctx: with(ctx("notifying-merchant", captured.clone()), "response",
                json!({"status_code": 200, "is_success": true, "data": "ok", "headers": {}, "error": null})),
            expect: Subset(json!({"notification": {"delivered": true, "statusCode": 200}})) },
        // document-approval
        Case { name: "first round of a contract needs two approvals", script: "document-approval/src/prepare-review.rhai", function: "output",
            ctx: ctx("draft", json!({"documentType": "contract"})),
            expect: Subset(json!({"review": {"round": 1, "requiredApprovals": 2, "submittedAt": NOW}, "approvals": []})) },
        Case { name: "a resubmitted memo opens round two and needs one approval", script: "document-approval/src/prepare-review.rhai", function: "output",
            ctx: ctx("draft", json!({"documentType": "memo", "review": {"round": 1, "requiredApprovals": 1}, "approvals": [alice.clone()]})),
            expect: Subset(json!({"review": {"round": 2, "requiredApprovals": 1}, "approvals": []})) },
        Case { name: "an approval is appended", script: "document-approval/src/approve.rhai", function: "handler",
            ctx: with(ctx("in-review", contract(json!([alice.clone()]))), "body", json!({"reviewer": "bob", "note": "fine"})),
            expect: Subset(json!({"approvals": [alice.clone(), {"reviewer": "bob", "note": "fine", "approvedAt": NOW}]})) },
        Case { name: "a second approval by the same reviewer changes nothing", script: "document-approval/src/approve.rhai", function: "handler",
            ctx: with(ctx("in-review", contract(json!([alice.clone()]))), "body", json!({"reviewer": "alice"})),
            expect: Subset(json!({"approvals": [alice.clone()]})) },
        Case { name: "one of two approvals is not enough", script: "document-approval/src/fully-approved.rhai", function: "handler",
            ctx: ctx("approval-check", contract(json!([alice.clone()]))), expect: Bool(false) },
        Case { name: "two of two approvals are enough", script: "document-approval/src/fully-approved.rhai", function: "handler",
            ctx: ctx("approval-check", contract(json!([alice.clone(), {"reviewer": "bob"}]))), expect: Bool(true) },
        Case { name: "change requests accumulate", script: "document-approval/src/request-changes.rhai", function: "handler",
            ctx: with(ctx("in-review", json!({"review": {"round": 2}, "changeRequests": [{"reviewer": "bob", "reason": "typo", "round": 1}]})),
                "body", json!({"reviewer": "carol", "reason": "missing annex"})),
            expect: Subset(json!({"changeRequests": [{"reviewer": "bob", "reason": "typo", "round": 1},
                {"reviewer": "carol", "reason": "missing annex", "round": 2, "requestedAt": NOW}]})) },
        Case { name: "rejection is recorded", script: "document-approval/src/reject.rhai", function: "handler",
            ctx: with(ctx("in-review", json!({})), "body", json!({"reviewer": "carol", "reason": "out of scope"})),
            expect: Subset(json!({"rejection": {"reviewer": "carol", "reason": "out of scope", "rejectedAt": NOW}})) },
        Case { name: "publishing defaults to the intranet", script: "document-approval/src/publish.rhai", function: "handler",
            ctx: ctx("approved", json!({})), expect: Subset(json!({"publication": {"channel": "intranet", "publishedAt": NOW}})) },
        Case { name: "comments accumulate with the state they were made in", script: "document-approval/src/add-comment.rhai", function: "handler",
            ctx: with(ctx("in-review", json!({"comments": [{"author": "a", "text": "x"}]})), "body", json!({"author": "bob", "text": "Clause 4?"})),
            expect: Subset(json!({"comments": [{"author": "a", "text": "x"}, {"author": "bob", "text": "Clause 4?", "state": "in-review", "at": NOW}]})) },
        Case { name: "cancellation is recorded", script: "document-approval/src/cancel.rhai", function: "handler",
            ctx: with(ctx("draft", json!({})), "body", json!({"reason": "superseded", "requestedBy": "dora"})),
            expect: Subset(json!({"cancellation": {"reason": "superseded", "requestedBy": "dora", "cancelledAt": NOW}})) },
    ]
}

fn engine() -> rhai::Engine {
    let mut engine = rhai::Engine::new();
    engine.set_max_expr_depths(128, 64);
    engine.set_max_call_levels(64);
    engine.set_max_operations(1_000_000);
    engine
}

fn script_path(script: &str) -> PathBuf {
    flows_dir().join("demo/Workflows").join(script)
}

fn run(engine: &rhai::Engine, case: &Case) -> Result<Value, String> {
    let path = script_path(case.script);
    let source = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ast = engine.compile(&source).map_err(|e| format!("does not compile: {e}"))?;
    let ctx = rhai::serde::to_dynamic(&case.ctx).map_err(|e| e.to_string())?;
    let result: rhai::Dynamic = engine
        .call_fn(&mut rhai::Scope::new(), &ast, case.function, (ctx,))
        .map_err(|e| format!("fn {}: {e}", case.function))?;
    rhai::serde::from_dynamic(&result).map_err(|e| format!("result is not JSON: {e}"))
}

/// True when every field of `expected` is in `actual` with the same value;
/// arrays must match element by element.
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (Value::Array(a), Value::Array(e)) => a.len() == e.len() && a.iter().zip(e).all(|(av, ev)| contains(av, ev)),
        (Value::Number(a), Value::Number(e)) => a.as_f64() == e.as_f64(),
        _ => actual == expected,
    }
}

#[test]
fn every_script_behaves_as_documented() {
    let engine = engine();
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let outcome = run(&engine, case);
        let ok = match (&outcome, &case.expect) {
            (Ok(Value::Bool(got)), Expect::Bool(want)) => got == want,
            (Ok(got), Expect::Subset(want)) => got.is_object() && contains(got, want),
            (Ok(got), Expect::Duration(want)) => {
                *got == json!({"duration": want}) && vnext_core::schedule::Schedule::from_script_value(got).is_ok()
            }
            _ => false,
        };
        if !ok {
            let want = match &case.expect {
                Expect::Bool(b) => b.to_string(),
                Expect::Subset(v) => format!("at least {v}"),
                Expect::Duration(d) => format!("a schedule of {d}"),
            };
            failures.push(format!("{} `{}`: expected {want}, got {outcome:?}", case.script, case.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn every_script_has_a_behaviour_case() {
    let covered: BTreeSet<PathBuf> = cases().iter().map(|c| script_path(c.script)).collect();
    let missing: Vec<String> = files_with_extension(&flows_dir(), "rhai")
        .into_iter()
        .filter(|p| !covered.contains(p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "scripts without a case in cases(): {missing:?}");
}
