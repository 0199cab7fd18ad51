//! Instance tasks: Start (11), DirectTrigger (12), GetInstanceData (13) and
//! GetInstance (19).
//!
//! They act on instances of this or another domain, and always through the
//! app's REST API (`app.url`): a domain's database is read by its own app only,
//! so crossing a domain boundary looks the same as staying inside one. The
//! answer's JSON body becomes the task's `data`.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Value, json};
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::model::{InstanceTaskConfig, TaskType};
use vnext_core::traits::{TaskError, TaskResponse};

use super::{HttpClients, config_error, display_url, elapsed_ms, failed, read_response, status_is_retryable, transport_error};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls the app's instance endpoints on behalf of instance tasks.
#[derive(Clone)]
pub struct InstanceTaskRunner {
    clients: HttpClients,
    app_url: Url,
}

/// One call to the app, derived from a task's config.
struct Call {
    method: Method,
    url: Url,
    body: Option<Value>,
    headers: HeaderMap,
    timeout: Duration,
}

impl InstanceTaskRunner {
    /// `app_url` is where the app's REST API listens (config `app.url`).
    ///
    /// # Errors
    /// A message when `app_url` is not an http(s) URL.
    pub fn new(clients: HttpClients, app_url: &str) -> Result<Self, String> {
        let app_url = Url::parse(app_url).map_err(|e| format!("app.url `{app_url}` is not a URL: {e}"))?;
        if !matches!(app_url.scheme(), "http" | "https") || app_url.cannot_be_a_base() {
            return Err(format!("app.url `{app_url}` must be an http or https base URL"));
        }
        Ok(Self { clients, app_url })
    }

    /// Runs one instance task. `domain` is the calling instance's domain, used
    /// when the config leaves `domain` empty.
    pub async fn run(&self, task_type: TaskType, domain: &str, config: &Value) -> TaskResponse {
        let started = Instant::now();
        let call = match self.prepare(task_type, domain, config) {
            Ok(c) => c,
            Err(e) => return failed(e, started),
        };
        let what = format!("{} {} ({})", call.method, display_url(&call.url), task_type.name());
        let mut request =
            self.clients.get(true).request(call.method, call.url).headers(call.headers).timeout(call.timeout);
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return failed(transport_error(&what, &e, call.timeout), started),
        };
        let read = match read_response(response).await {
            Ok(r) => r,
            Err(e) => return failed(transport_error(&what, &e, call.timeout), started),
        };
        let ok = (200..300).contains(&read.status);
        let error = (!ok).then(|| app_error(&what, read.status, &read.body));
        TaskResponse {
            status_code: Some(read.status),
            is_success: ok,
            data: read.body,
            headers: read.headers,
            duration_ms: elapsed_ms(started),
            error,
        }
    }

    fn prepare(&self, task_type: TaskType, calling_domain: &str, config: &Value) -> Result<Call, TaskError> {
        let name = task_type.name();
        let cfg: InstanceTaskConfig = serde_json::from_value(config.clone())
            .map_err(|e| config_error(format!("{name} task config is invalid: {e}")))?;
        let domain_text = if cfg.domain.trim().is_empty() { calling_domain } else { cfg.domain.trim() };
        let domain = DomainName::new(domain_text)
            .map_err(|e| config_error(format!("{name} task domain: {e}")))?;
        let flow = FlowKey::new(cfg.flow.trim()).map_err(|e| config_error(format!("{name} task flow: {e}")))?;
        let timeout = match cfg.timeout_seconds {
            None => DEFAULT_TIMEOUT,
            Some(0) => return Err(config_error(format!("{name} task timeoutSeconds must be at least 1"))),
            Some(s) => Duration::from_secs(s.min(super::http::MAX_TIMEOUT_SECONDS)),
        };
        let instance = || -> Result<String, TaskError> {
            cfg.instance_id
                .as_deref()
                .or(cfg.key.as_deref())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| config_error(format!("{name} task needs `instanceId` or `key` to find the instance")))
        };
        let base = ["api", "v1", domain.as_str(), "workflows", flow.as_str(), "instances"];
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(sync) = cfg.sync {
            query.push(("sync", sync.to_string()));
        }
        let (method, segments, body): (Method, Vec<String>, Option<Value>) = match task_type {
            TaskType::Start => {
                if let Some(v) = cfg.version.as_deref().filter(|v| !v.trim().is_empty()) {
                    query.push(("version", v.trim().to_string()));
                }
                let mut body = json!({"attributes": cfg.body.clone().unwrap_or_else(|| json!({}))});
                if let Some(key) = cfg.key.as_deref().filter(|k| !k.is_empty()) {
                    body["key"] = json!(key);
                }
                if let Some(tags) = &cfg.tags {
                    body["tags"] = json!(tags);
                }
                (Method::POST, vec!["start".into()], Some(body))
            }
            TaskType::DirectTrigger => {
                let transition = cfg
                    .transition_name
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| config_error("direct-trigger task needs `transitionName`"))?;
                let mut body = json!({"attributes": cfg.body.clone().unwrap_or_else(|| json!({}))});
                if let Some(tags) = &cfg.tags {
                    body["tags"] = json!(tags);
                }
                (Method::PATCH, vec![instance()?, "transitions".into(), transition.to_string()], Some(body))
            }
            TaskType::GetInstanceData => (Method::GET, vec![instance()?, "functions".into(), "data".into()], None),
            TaskType::GetInstance => (Method::GET, vec![instance()?], None),
            other => {
                return Err(config_error(format!("task type {} ({}) is not an instance task", other.code(), other.name())));
            }
        };
        let mut url = self.app_url.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| config_error("app.url cannot be a base URL"))?;
            path.pop_if_empty();
            path.extend(base);
            path.extend(&segments);
        }
        url.set_query(None);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut headers = HeaderMap::new();
        for (k, v) in cfg.headers.iter().flatten() {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&text)) else {
                return Err(config_error(format!("{name} task header `{k}` cannot be sent")));
            };
            headers.append(name, value);
        }
        Ok(Call { method, url, body, headers, timeout })
    }
}

/// An app answer outside 2xx as a task error. The problem document's
/// `errorCode` and `detail` go into the message; a busy instance is worth
/// retrying like any 5xx.
fn app_error(what: &str, status: u16, body: &Value) -> TaskError {
    let code = body.get("errorCode").and_then(Value::as_str).unwrap_or_default();
    let detail = body
        .get("detail")
        .or_else(|| body.get("title"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| match body {
            Value::String(s) => s.chars().take(300).collect(),
            _ => String::new(),
        });
    let mut message = format!("{what} answered {status}");
    if !code.is_empty() {
        message.push_str(&format!(" [{code}]"));
    }
    if !detail.is_empty() {
        message.push_str(&format!(": {detail}"));
    }
    let busy = status == 409 && code.to_ascii_lowercase().contains("busy");
    TaskError::new(format!("Task:{status}"), message, busy || status_is_retryable(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner() -> InstanceTaskRunner {
        InstanceTaskRunner::new(HttpClients::new(), "http://app.local:4201/base/").unwrap()
    }

    #[test]
    fn builds_paths_per_type() {
        let r = runner();
        let c = r
            .prepare(TaskType::Start, "sales", &json!({"domain": "", "flow": "order", "key": "o-1", "sync": true, "body": {"a": 1}}))
            .unwrap();
        assert_eq!(c.method, Method::POST);
        assert_eq!(c.url.as_str(), "http://app.local:4201/base/api/v1/sales/workflows/order/instances/start?sync=true");
        assert_eq!(c.body.unwrap(), json!({"attributes": {"a": 1}, "key": "o-1"}));

        let c = r
            .prepare(
                TaskType::DirectTrigger,
                "sales",
                &json!({"domain": "billing", "flow": "invoice", "key": "a b/c", "transitionName": "pay"}),
            )
            .unwrap();
        assert_eq!(c.method, Method::PATCH);
        assert_eq!(c.url.as_str(), "http://app.local:4201/base/api/v1/billing/workflows/invoice/instances/a%20b%2Fc/transitions/pay");

        let c = r.prepare(TaskType::GetInstanceData, "s", &json!({"domain": "s", "flow": "f", "instanceId": "x"})).unwrap();
        assert!(c.url.path().ends_with("/instances/x/functions/data"));
        let c = r.prepare(TaskType::GetInstance, "s", &json!({"domain": "s", "flow": "f", "key": "k"})).unwrap();
        assert!(c.url.path().ends_with("/instances/k"));
    }

    #[test]
    fn missing_parts_are_config_errors() {
        let r = runner();
        let e = |t, v: Value| r.prepare(t, "s", &v).err().unwrap();
        assert_eq!(e(TaskType::GetInstance, json!({"domain": "s", "flow": "f"})).code, "Task:config");
        assert_eq!(e(TaskType::DirectTrigger, json!({"domain": "s", "flow": "f", "key": "k"})).code, "Task:config");
        assert_eq!(e(TaskType::Start, json!({"domain": "s", "flow": "Bad Flow"})).code, "Task:config");
        assert_eq!(e(TaskType::Start, json!({"flow": "f"})).code, "Task:config");
        assert_eq!(e(TaskType::Http, json!({"domain": "s", "flow": "f"})).code, "Task:config");
    }

    #[test]
    fn busy_conflicts_are_retryable() {
        let busy = app_error("x", 409, &json!({"errorCode": "instance-busy", "detail": "busy"}));
        assert!(busy.retryable && busy.message.contains("instance-busy"));
        assert!(!app_error("x", 409, &json!({"errorCode": "transition-not-available"})).retryable);
        assert!(app_error("x", 503, &Value::Null).retryable);
    }
}
