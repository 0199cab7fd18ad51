//! The two [`TaskExecutor`]s the app can hold.
//!
//! - [`LocalExecutor`] runs tasks in this process (`vnext up`, and the execution
//!   service behind its invoke endpoint).
//! - [`RemoteExecutor`] hands each task to an execution service over HTTP
//!   (`POST {execution.url}/api/v1/execution/invoke/{type}/{key}`), for when app
//!   and execution run as separate processes.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use tracing::Instrument;
use vnext_core::model::TaskType;
use vnext_core::traits::{TaskError, TaskExecutor, TaskInvocation, TaskResponse};
use vnext_init::config::Config;

use crate::tasks::egress::{EgressGuard, OwnEndpoints};
use crate::tasks::http::HttpTaskRunner;
use crate::tasks::instance::InstanceTaskRunner;
use crate::tasks::{self, HttpClients};

/// Runs tasks in-process, dispatching on the task type.
#[derive(Clone)]
pub struct LocalExecutor {
    http: HttpTaskRunner,
    instance: InstanceTaskRunner,
}

impl LocalExecutor {
    /// `app_url` is where instance tasks reach the app's REST API. HTTP tasks
    /// may call public hosts only; [`LocalExecutor::with_egress`] sets other rules.
    ///
    /// # Errors
    /// A message when `app_url` is not an http(s) URL.
    pub fn new(clients: HttpClients, app_url: &str) -> Result<Self, String> {
        Ok(Self { http: HttpTaskRunner::new(EgressGuard::public_only()), instance: InstanceTaskRunner::new(clients, app_url)? })
    }

    /// The same executor with HTTP tasks under `guard`.
    #[must_use]
    pub fn with_egress(mut self, guard: EgressGuard) -> Self {
        self.http = HttpTaskRunner::new(guard);
        self
    }

    /// The executor `vnext up` uses: instance tasks reach the app at
    /// `app.url`; HTTP tasks follow `[egress]` as a development run (loopback
    /// allowed by `"auto"` when the API listens on a loopback address), never
    /// reaching the runtime's own ports.
    ///
    /// # Errors
    /// A message when `app.url` is not an http(s) URL or `[egress]` has an
    /// entry that cannot be read.
    pub fn from_config(config: &Config, clients: HttpClients) -> Result<Self, String> {
        let guard = EgressGuard::from_config(config, true, OwnEndpoints::from_config(config))?;
        Ok(Self::new(clients, &config.app.url)?.with_egress(guard))
    }

    /// Runs one task to completion.
    pub async fn run(&self, invocation: &TaskInvocation) -> TaskResponse {
        let started = Instant::now();
        let span = tracing::info_span!(
            "task",
            domain = %invocation.domain,
            flow = %invocation.flow,
            instance = %invocation.instance_id,
            task = %invocation.task_key,
            task_type = invocation.task_type.name(),
        );
        self.dispatch(invocation, started).instrument(span).await
    }

    async fn dispatch(&self, invocation: &TaskInvocation, started: Instant) -> TaskResponse {
        match invocation.task_type {
            TaskType::Http => self.http.run(&invocation.domain, &invocation.config, invocation.idempotency_key.as_deref()).await,
            TaskType::Start | TaskType::DirectTrigger | TaskType::GetInstanceData | TaskType::GetInstance => {
                self.instance.run(invocation.task_type, &invocation.domain, &invocation.config).await
            }
            TaskType::Script => tasks::failed(
                tasks::config_error(format!(
                    "script task `{}` runs in the app's pipeline, not in the execution service",
                    invocation.task_key
                )),
                started,
            ),
            other => tasks::failed(
                tasks::config_error(format!(
                    "task `{}` has type {} ({}), which this runtime does not execute",
                    invocation.task_key,
                    other.code(),
                    other.name()
                )),
                started,
            ),
        }
    }
}

impl TaskExecutor for LocalExecutor {
    fn execute(&self, invocation: TaskInvocation) -> BoxFuture<'_, TaskResponse> {
        Box::pin(async move { self.run(&invocation).await })
    }
}

/// Extra time the remote call gets over the task's own timeout, so the task's
/// timeout fires first and reports what timed out.
const REMOTE_MARGIN: Duration = Duration::from_secs(5);

/// Sends tasks to an execution service's invoke endpoint.
#[derive(Clone)]
pub struct RemoteExecutor {
    client: reqwest::Client,
    base: Url,
    secret: String,
}

impl RemoteExecutor {
    /// `execution_url` is where the execution service listens (config
    /// `execution.url`); `shared_secret` is presented as a bearer token.
    ///
    /// # Errors
    /// A message when `execution_url` is not an http(s) URL.
    pub fn new(clients: &HttpClients, execution_url: &str, shared_secret: &str) -> Result<Self, String> {
        let base = Url::parse(execution_url).map_err(|e| format!("execution.url `{execution_url}` is not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(format!("execution.url `{execution_url}` must be an http or https base URL"));
        }
        Ok(Self { client: clients.get(true).clone(), base, secret: shared_secret.to_string() })
    }

    /// The executor `vnext app` uses when the execution service runs apart:
    /// `execution.url` with `execution.shared_secret`.
    ///
    /// # Errors
    /// A message when `execution.url` is not an http(s) URL.
    pub fn from_config(config: &Config, clients: &HttpClients) -> Result<Self, String> {
        Self::new(clients, &config.execution.url, &config.execution.shared_secret)
    }

    fn invoke_url(&self, invocation: &TaskInvocation) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend([
                "api",
                "v1",
                "execution",
                "invoke",
                invocation.task_type.name(),
                invocation.task_key.as_str(),
            ]);
        }
        url
    }

    async fn call(&self, invocation: TaskInvocation) -> TaskResponse {
        let started = Instant::now();
        let url = self.invoke_url(&invocation);
        let what = format!("execution service call {}", tasks::display_url(&url));
        let timeout = task_timeout(&invocation.config) + REMOTE_MARGIN;
        let sent = self
            .client
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.secret))
            .json(&invocation)
            .timeout(timeout)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return tasks::failed(tasks::transport_error(&what, &e, timeout), started),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return tasks::failed(tasks::transport_error(&what, &e, timeout), started),
        };
        if status.is_success() {
            return match serde_json::from_slice::<TaskResponse>(&bytes) {
                Ok(r) => r,
                Err(e) => tasks::failed(
                    TaskError::new("Task:execution", format!("{what} answered something that is not a task response: {e}"), true),
                    started,
                ),
            };
        }
        let detail = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        // A rejected secret or a malformed request is a deployment problem that
        // the same call will hit again; anything else may pass on retry.
        let retryable = !matches!(status.as_u16(), 400 | 401 | 403 | 404 | 413 | 422);
        tasks::failed(
            TaskError::new("Task:execution", format!("{what} answered {status}: {detail}"), retryable),
            started,
        )
    }
}

impl TaskExecutor for RemoteExecutor {
    fn execute(&self, invocation: TaskInvocation) -> BoxFuture<'_, TaskResponse> {
        Box::pin(self.call(invocation))
    }
}

/// The task's own `timeoutSeconds`, or the HTTP task default.
fn task_timeout(config: &Value) -> Duration {
    config
        .get("timeoutSeconds")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s.min(tasks::http::MAX_TIMEOUT_SECONDS)))
        .unwrap_or(tasks::http::DEFAULT_TIMEOUT)
}
