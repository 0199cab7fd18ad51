//! A thin REST client for the runtime's public API.

use serde_json::{Value, json};

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("an HTTP client with default TLS settings builds");
        Client { http, base: base.trim_end_matches('/').to_string() }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        let resp = req.send().await.map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| format!("reading response: {e}"))?;
        if !status.is_success() {
            return Err(format!("{status}: {body}"));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&body).map_err(|e| format!("response is not JSON ({e}): {body}"))
    }

    /// Publishes one component; an identical re-publish is fine.
    pub async fn publish(&self, component: &Value) -> Result<(), String> {
        let url = format!("{}/api/v1/definitions/publish", self.base);
        self.send(self.http.post(url).json(component)).await.map(|_| ())
    }

    /// Starts an instance synchronously and returns its id.
    pub async fn start(&self, domain: &str, flow: &str, key: Option<&str>, attributes: &Value) -> Result<String, String> {
        let url = format!("{}/api/v1/{domain}/workflows/{flow}/instances/start?sync=true", self.base);
        let mut body = json!({ "attributes": attributes });
        if let Some(key) = key {
            body["key"] = json!(key);
        }
        let v = self.send(self.http.post(url).json(&body)).await?;
        v.get("id").and_then(Value::as_str).map(str::to_string).ok_or_else(|| format!("start answered without an id: {v}"))
    }

    /// Runs a transition synchronously and returns the instance envelope.
    pub async fn transition(&self, domain: &str, flow: &str, instance: &str, transition: &str, attributes: &Value) -> Result<Value, String> {
        let url = format!(
            "{}/api/v1/{domain}/workflows/{flow}/instances/{instance}/transitions/{transition}?sync=true",
            self.base
        );
        self.send(self.http.patch(url).json(&json!({ "attributes": attributes }))).await
    }

    /// Reads an instance envelope.
    pub async fn get(&self, domain: &str, flow: &str, instance: &str) -> Result<Value, String> {
        let url = format!("{}/api/v1/{domain}/workflows/{flow}/instances/{instance}", self.base);
        self.send(self.http.get(url)).await
    }
}
