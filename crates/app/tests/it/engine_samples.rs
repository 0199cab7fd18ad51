//! The sample package (`flows/demo`) driven through the engine: each workflow
//! from start to its final states, both outcomes of every rule and the defaults.

use crate::engine_support;

use std::path::Path;

use engine_support::*;
use serde_json::{json, Value};
use vnext_app::engine::{EngineError, InstanceSnapshot, InstanceStatus};
use vnext_core::traits::TaskResponse;

async fn demo() -> TestEnv {
    let env = TestEnv::build("demo", |_| {}).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows/demo");
    vnext_init::package::publish_folder(&env.dbs, &dir, |_| {}).await.expect("publish flows/demo");
    env
}

async fn go(env: &TestEnv, flow: &str, s: &InstanceSnapshot, t: &str, body: Value) -> InstanceSnapshot {
    match env.engine.transition(env.transition_req(flow, s.id, t, body)).await {
        Ok(o) => done(o),
        Err(e) => panic!("{flow}: {t} in {}: {e}", s.current_state),
    }
}

#[tokio::test]
async fn customer_onboarding() {
    let env = demo().await;
    let f = "customer-onboarding";
    let applicant = json!({"applicant": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
        "birthDate": "1990-12-10", "country": "GB"}, "product": "current-account"});
    // Rule: score 100 ⇒ kyc-passed ⇒ account-setup ⇒ onboarded.
    let s = env.start(f, applicant.clone()).await;
    assert_eq!(s.current_state, "application-received");
    let s = go(&env, f, &s, "submit-documents", json!({"documents": {"idDocument": "passport", "proofOfAddress": true, "selfieMatch": 0.93}})).await;
    assert_eq!((s.current_state.as_str(), s.status), ("onboarded", InstanceStatus::Completed));
    assert_eq!(s.data["kyc"]["score"], json!(100));
    assert!(s.data["account"]["number"].as_str().unwrap().starts_with("DEMO-"));
    // Default: score 40 ⇒ manual-review, then approve / reject.
    let s = env.start(f, applicant.clone()).await;
    let s = go(&env, f, &s, "submit-documents", json!({"documents": {"idDocument": "national-id"}})).await;
    assert_eq!(s.current_state, "manual-review");
    let s = go(&env, f, &s, "approve-application", json!({"reviewer": "rita", "note": "checked"})).await;
    assert_eq!(s.current_state, "onboarded");
    let s = env.start(f, applicant.clone()).await;
    let s = go(&env, f, &s, "submit-documents", json!({"documents": {"idDocument": "national-id"}})).await;
    let s = go(&env, f, &s, "reject-application", json!({"reviewer": "rita", "reason": "no proof"})).await;
    assert_eq!((s.current_state.as_str(), s.status), ("rejected", InstanceStatus::Completed));
    // Shared withdraw.
    let s = env.start(f, applicant.clone()).await;
    let s = go(&env, f, &s, "withdraw", json!({"reason": "changed my mind"})).await;
    assert_eq!(s.current_state, "withdrawn");
    // Start payload errors point at the offending member.
    let mut bad = applicant.clone();
    bad["applicant"].as_object_mut().unwrap().remove("email");
    match env.engine.start(env.start_req(f, bad)).await {
        Err(EngineError::InvalidPayload { errors, .. }) => assert!(errors.iter().any(|e| e.pointer == "/applicant"), "{errors:?}"),
        other => panic!("{other:?}"),
    }
    env.cleanup().await;
}

#[tokio::test]
async fn payment_processing() {
    let env = demo().await;
    let f = "payment-processing";
    env.executor.set(|_| Box::pin(async { TaskResponse { status_code: Some(200), is_success: true, data: json!({"acknowledgement": "A1"}), ..Default::default() } }));
    let s = env.start(f, json!({"merchantId": "coffee-corner", "amount": 12500, "currency": "EUR", "method": "card",
        "notifyUrl": "http://127.0.0.1:9/callback"})).await;
    assert_eq!(s.current_state, "awaiting-confirmation");
    assert_eq!(s.data["fees"], json!({"basisPoints": 290, "fixed": 30, "amount": 393, "net": 12107}));
    let expire: i64 = env.scalar("SELECT count(*) FROM sys_queues.jobs WHERE instance_id = $1 AND transition_key = 'expire' AND status = 'pending'", s.id).await;
    assert_eq!(expire, 1);
    let s = go(&env, f, &s, "confirm", json!({"authorizationCode": "AUTH42"})).await;
    assert_eq!((s.current_state.as_str(), s.status), ("settled", InstanceStatus::Completed));
    assert_eq!(s.data["notification"]["delivered"], json!(true));
    let call = env.executor.calls.lock().unwrap().last().cloned().unwrap();
    assert_eq!(call.config["url"], json!("http://127.0.0.1:9/callback"));
    let cancelled: i64 = env.scalar("SELECT count(*) FROM sys_queues.jobs WHERE instance_id = $1 AND status = 'cancelled'", s.id).await;
    assert_eq!(cancelled, 1, "leaving awaiting-confirmation cancels the expiry timer");
    // No notifyUrl: settles through the default.
    let s = env.start(f, json!({"merchantId": "m", "amount": 990, "currency": "EUR", "method": "transfer"})).await;
    let s = go(&env, f, &s, "confirm", json!({"authorizationCode": "AUTH01"})).await;
    assert_eq!(s.current_state, "settled");
    // Rules on amount: review, decline.
    let s = env.start(f, json!({"merchantId": "m", "amount": 2500000, "currency": "EUR", "method": "transfer"})).await;
    assert_eq!(s.current_state, "risk-review");
    let s = go(&env, f, &s, "approve-risk", json!({"reviewer": "rob"})).await;
    assert_eq!(s.current_state, "awaiting-confirmation");
    let s = env.start(f, json!({"merchantId": "m", "amount": 9000000, "currency": "EUR", "method": "transfer"})).await;
    assert_eq!((s.current_state.as_str(), s.status), ("declined", InstanceStatus::Completed));
    env.cleanup().await;
}

#[tokio::test]
async fn document_approval() {
    let env = demo().await;
    let f = "document-approval";
    let s = env.start(f, json!({"title": "Supplier contract 2027", "documentType": "contract", "author": "dora"})).await;
    assert_eq!(s.current_state, "draft");
    let s = go(&env, f, &s, "update-details", json!({"summary": "Adds the 2027 price list"})).await;
    assert_eq!((s.current_state.as_str(), s.data["summary"].as_str()), ("draft", Some("Adds the 2027 price list")));
    let s = go(&env, f, &s, "submit-for-review", json!({})).await;
    assert_eq!(s.current_state, "in-review");
    assert_eq!(s.data["review"]["requiredApprovals"], json!(2));
    let s = go(&env, f, &s, "add-comment", json!({"author": "bob", "text": "Clause 4 needs a date"})).await;
    assert_eq!(s.current_state, "in-review");
    let s = go(&env, f, &s, "approve", json!({"reviewer": "alice"})).await;
    assert_eq!(s.current_state, "in-review", "one of two approvals: back through the default");
    let s = go(&env, f, &s, "approve", json!({"reviewer": "bob", "note": "fine now"})).await;
    assert_eq!(s.current_state, "approved");
    let err = env.engine.transition(env.transition_req(f, s.id, "update-details", json!({"summary": "x"}))).await.unwrap_err();
    assert!(matches!(err, EngineError::NotAvailable { .. }), "{err:?}");
    let s = go(&env, f, &s, "publish", json!({"channel": "supplier-portal"})).await;
    assert_eq!((s.current_state.as_str(), s.status), ("published", InstanceStatus::Completed));

    let s = env.start(f, json!({"title": "Memo", "documentType": "memo", "author": "dora"})).await;
    let s = go(&env, f, &s, "cancel", json!({"reason": "superseded", "requestedBy": "dora"})).await;
    assert_eq!((s.current_state.as_str(), s.status), ("cancelled", InstanceStatus::Completed));
    let s = env.start(f, json!({"title": "Memo", "documentType": "memo", "author": "dora"})).await;
    let s = go(&env, f, &s, "submit-for-review", json!({})).await;
    let s = go(&env, f, &s, "request-changes", json!({"reviewer": "bob", "reason": "typos"})).await;
    assert_eq!(s.current_state, "draft");
    let s = go(&env, f, &s, "submit-for-review", json!({})).await;
    let s = go(&env, f, &s, "approve", json!({"reviewer": "bob"})).await;
    assert_eq!(s.current_state, "approved");
    let s = go(&env, f, &s, "archive", json!({})).await;
    assert_eq!((s.current_state.as_str(), s.status), ("archived", InstanceStatus::Completed));
    env.cleanup().await;
}
