//! Every sample workflow of `flows/` from start to its final states through
//! HTTP only: the package is published with `POST /definitions/publish`, and
//! instances are driven and read over the API, including both outcomes of
//! every rule, each default automatic transition, a timer fired by the job
//! scheduler and an HTTP task calling a local server.

use crate::api_support;

use api_support::{InProcess, merchant_endpoint, publish_samples, wait_for_state};
use serde_json::{Value, json};

struct Flow<'a> {
    rt: &'a InProcess,
    base: String,
}

impl<'a> Flow<'a> {
    fn new(rt: &'a InProcess, workflow: &str) -> Self {
        Flow { rt, base: format!("{}/api/v1/demo/workflows/{workflow}/instances", rt.base) }
    }

    async fn start(&self, attributes: Value) -> Value {
        let r = self.rt.client.post(format!("{}/start?sync=true", self.base)).json(&json!({ "attributes": attributes })).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn go(&self, instance: &Value, transition: &str, attributes: Value) -> Value {
        let id = instance["id"].as_str().unwrap();
        let r = self
            .rt
            .client
            .patch(format!("{}/{id}/transitions/{transition}?sync=true", self.base))
            .json(&json!({ "attributes": attributes }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{transition}: {body}");
        body
    }

    async fn get(&self, instance: &Value, path: &str) -> Value {
        let id = instance["id"].as_str().unwrap();
        self.rt.client.get(format!("{}/{id}{path}", self.base)).send().await.unwrap().json().await.unwrap()
    }
}

fn at(v: &Value) -> (&str, &str) {
    (v["metadata"]["currentState"].as_str().unwrap(), v["metadata"]["status"].as_str().unwrap())
}

fn offered(state: &Value) -> Vec<String> {
    state["transitions"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_onboarding_over_http() {
    let rt = InProcess::start().await;
    publish_samples(&rt).await;
    let f = Flow::new(&rt, "customer-onboarding");
    let applicant = json!({ "applicant": { "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
        "birthDate": "1990-12-10", "country": "GB" }, "product": "current-account" });

    // Rule kyc-passed holds (score 100): straight to onboarded through account-setup's default.
    let s = f.start(applicant.clone()).await;
    assert_eq!(at(&s), ("application-received", "A"));
    let state = f.get(&s, "/functions/state").await;
    assert!(offered(&state).contains(&"submit-documents".to_string()) && offered(&state).contains(&"withdraw".to_string()), "{state}");
    let s = f.go(&s, "submit-documents", json!({ "documents": { "idDocument": "passport", "proofOfAddress": true, "selfieMatch": 0.93 } })).await;
    assert_eq!(at(&s), ("onboarded", "C"));
    assert_eq!(s["attributes"]["kyc"]["score"], 100);
    assert!(s["attributes"]["account"]["number"].as_str().unwrap().starts_with("DEMO-"));
    let history = f.get(&s, "/transitions").await;
    let steps: Vec<&str> = history["transitions"].as_array().unwrap().iter().map(|t| t["transitionId"].as_str().unwrap()).collect();
    assert!(steps.contains(&"kyc-passed") && steps.contains(&"account-opened"), "{steps:?}");

    // Rule does not hold (score 40): the default kyc-needs-review, then a person decides.
    let s = f.start(applicant.clone()).await;
    let s = f.go(&s, "submit-documents", json!({ "documents": { "idDocument": "national-id" } })).await;
    assert_eq!(at(&s), ("manual-review", "A"));
    let s = f.go(&s, "approve-application", json!({ "reviewer": "rita", "note": "checked" })).await;
    assert_eq!(at(&s), ("onboarded", "C"));
    let s = f.start(applicant.clone()).await;
    let s = f.go(&s, "submit-documents", json!({ "documents": { "idDocument": "national-id" } })).await;
    let s = f.go(&s, "reject-application", json!({ "reviewer": "rita", "reason": "no proof" })).await;
    assert_eq!(at(&s), ("rejected", "C"));

    // The shared withdraw.
    let s = f.start(applicant).await;
    let s = f.go(&s, "withdraw", json!({ "reason": "changed my mind" })).await;
    assert_eq!(at(&s), ("withdrawn", "C"));

    let done: Value = rt
        .client
        .get(format!("{}?pageSize=100", f.base))
        .query(&[("filter", r#"{"status":{"eq":"C"}}"#)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["items"].as_array().map(Vec::len), Some(4), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_processing_over_http() {
    let rt = InProcess::start().await;
    publish_samples(&rt).await;
    let f = Flow::new(&rt, "payment-processing");
    let order = |extra: Value| {
        let mut v = json!({ "merchantId": "coffee-corner", "amount": 12500, "currency": "EUR", "method": "card" });
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };

    // Default auto-approve, a timer armed, then confirm; notify (rule holds) calls the merchant.
    let (hook, calls) = merchant_endpoint().await;
    let s = f.start(order(json!({ "notifyUrl": hook }))).await;
    assert_eq!(at(&s), ("awaiting-confirmation", "A"));
    assert_eq!(s["attributes"]["fees"], json!({ "basisPoints": 290, "fixed": 30, "amount": 393, "net": 12107 }));
    let state = f.get(&s, "/functions/state").await;
    let expire = state["transitions"].as_array().unwrap().iter().find(|t| t["name"] == "expire").cloned();
    assert_eq!(expire.as_ref().map(|t| t["kind"].clone()), Some(json!("scheduled")), "{state}");
    assert!(expire.unwrap()["executeAtUtc"].is_string());
    f.go(&s, "confirm", json!({ "authorizationCode": "AUTH42" })).await;
    let s = wait_for_state(&rt.client, &format!("{}/{}", f.base, s["id"].as_str().unwrap()), "settled").await;
    assert_eq!(s["attributes"]["notification"]["delivered"], true, "{s}");
    let received = calls.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["event"], "payment.captured");

    // Rule notify does not hold: the default settle.
    let s = f.start(order(json!({ "method": "transfer", "amount": 990 }))).await;
    let s = f.go(&s, "confirm", json!({ "authorizationCode": "AUTH01" })).await;
    assert_eq!(at(&s), ("settled", "C"));

    // Rules on amount: review (then approve or decline) and decline.
    let s = f.start(order(json!({ "amount": 2500000 }))).await;
    assert_eq!(at(&s), ("risk-review", "A"));
    let s = f.go(&s, "approve-risk", json!({ "reviewer": "rob" })).await;
    assert_eq!(at(&s), ("awaiting-confirmation", "A"));
    let s = f.start(order(json!({ "amount": 2500000 }))).await;
    let s = f.go(&s, "decline-risk", json!({ "reviewer": "rob", "reason": "unknown payer" })).await;
    assert_eq!(at(&s), ("declined", "C"));
    let s = f.start(order(json!({ "amount": 9000000 }))).await;
    assert_eq!(at(&s), ("declined", "C"));

    // Left unconfirmed, the timer fires and the payment expires.
    let s = f.start(order(json!({ "confirmationWindow": "PT1S" }))).await;
    let s = wait_for_state(&rt.client, &format!("{}/{}", f.base, s["id"].as_str().unwrap()), "expired").await;
    assert_eq!(s["metadata"]["status"], "C");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_approval_over_http() {
    let rt = InProcess::start().await;
    publish_samples(&rt).await;
    let f = Flow::new(&rt, "document-approval");
    let contract = json!({ "title": "Supplier contract 2027", "documentType": "contract", "author": "dora" });

    let s = f.start(contract).await;
    assert_eq!(at(&s), ("draft", "A"));
    let view = f.get(&s, "/functions/view").await;
    assert_eq!(view["key"], "document-edit", "{view}");
    let state = f.get(&s, "/functions/state").await;
    let kinds: Vec<(String, String)> = state["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["kind"].as_str().unwrap().to_string()))
        .collect();
    for expected in [("update-details", "updateData"), ("cancel", "cancel"), ("add-comment", "sharedTransition"), ("submit-for-review", "stateTransition")] {
        assert!(kinds.contains(&(expected.0.to_string(), expected.1.to_string())), "{expected:?} in {kinds:?}");
    }
    let s = f.go(&s, "update-details", json!({ "summary": "Adds the 2027 price list" })).await;
    assert_eq!(at(&s), ("draft", "A"));
    assert_eq!(s["attributes"]["summary"], "Adds the 2027 price list");
    let s = f.go(&s, "submit-for-review", json!({})).await;
    assert_eq!(at(&s), ("in-review", "A"));
    let s = f.go(&s, "add-comment", json!({ "author": "bob", "text": "Clause 4 needs a date" })).await;
    assert_eq!(at(&s), ("in-review", "A"));
    // Two approvals needed: the first goes back through the check's default.
    let s = f.go(&s, "approve", json!({ "reviewer": "alice" })).await;
    assert_eq!(at(&s), ("in-review", "A"));
    let s = f.go(&s, "approve", json!({ "reviewer": "bob", "note": "fine now" })).await;
    assert_eq!(at(&s), ("approved", "A"));
    // updateData is offered in draft only.
    let id = s["id"].as_str().unwrap();
    let r = rt.client.patch(format!("{}/{id}/transitions/update-details?sync=true", f.base)).json(&json!({ "attributes": { "summary": "x" } })).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let s = f.go(&s, "publish", json!({ "channel": "supplier-portal" })).await;
    assert_eq!(at(&s), ("published", "C"));

    let memo = json!({ "title": "Memo", "documentType": "memo", "author": "dora" });
    let s = f.start(memo.clone()).await;
    let s = f.go(&s, "cancel", json!({ "reason": "superseded", "requestedBy": "dora" })).await;
    assert_eq!(at(&s), ("cancelled", "C"));
    let s = f.start(memo).await;
    let s = f.go(&s, "submit-for-review", json!({})).await;
    let s = f.go(&s, "request-changes", json!({ "reviewer": "bob", "reason": "typos" })).await;
    assert_eq!(at(&s), ("draft", "A"));
    let s = f.go(&s, "submit-for-review", json!({})).await;
    let s = f.go(&s, "approve", json!({ "reviewer": "bob" })).await;
    assert_eq!(at(&s), ("approved", "A"));
    let s = f.go(&s, "archive", json!({})).await;
    assert_eq!(at(&s), ("archived", "C"));
}
