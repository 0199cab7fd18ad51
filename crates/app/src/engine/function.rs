//! Running custom functions (`sys-functions`).
//!
//! A call runs the function's task entries group by group (entries of one
//! `order` at once, orders ascending): each entry's `input` mapping patches its
//! task's config, the task runs through the executor (a script task's work is
//! its mappings), and the entry's `output` mapping merges into the function's
//! result. The function's own `output` script (`fn output(ctx)`, reading
//! `ctx.responses`) then shapes the answer; without one the merged result is
//! the answer, or the last task's body when no output mapping ran. Functions only read: the instance's data is never written.
//!
//! A failed task ends the call (no error boundary applies: the caller sees the
//! task's error and may call again). Answers of a function with `cache` are
//! kept in this process for `ttlInSeconds`; see docs/api.md, "Custom functions".

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Map, Value, json};
use uuid::Uuid;
use vnext_core::ident::DomainName;
use vnext_core::merge::deep_merge;
use vnext_core::model::{Function, TaskType};
use vnext_core::script::{InstanceContext, ResponseContext, RuntimeContext, ScriptContext};
use vnext_core::traits::{TaskError, TaskInvocation, TaskResponse};

use super::definitions::{CompiledFunction, FunctionTask};
use super::{Engine, EngineError, InstanceSnapshot, PayloadError};

/// Most answers kept at once; past it expired ones go, then all.
const CACHE_CAPACITY: usize = 10_000;

/// One call of a function.
pub struct FunctionCall {
    pub domain: DomainName,
    /// The function's key and definition.
    pub key: String,
    pub function: Function,
    /// The instance a function of scope F or I is called on; `None` for scope D.
    pub instance: Option<InstanceSnapshot>,
    pub verb: String,
    /// The request body (`{}` for GET and DELETE).
    pub body: Value,
    pub headers: Map<String, Value>,
    pub query: Map<String, Value>,
}

/// Why a call has no answer.
#[derive(Debug)]
pub enum FunctionError {
    /// The request body fails `inputSchema`.
    InvalidInput(Vec<PayloadError>),
    /// A task failed; its error as the executor classified it.
    TaskFailed { task: String, error: TaskError, status_code: Option<u16> },
    /// The answer fails `outputSchema`: the function's definition is at fault.
    InvalidOutput(Vec<PayloadError>),
    Engine(EngineError),
}

impl From<EngineError> for FunctionError {
    fn from(e: EngineError) -> Self {
        FunctionError::Engine(e)
    }
}

struct Cached {
    expires: Option<Instant>,
    answer: Value,
}

static ANSWERS: LazyLock<Mutex<HashMap<String, Cached>>> = LazyLock::new(Mutex::default);

impl FunctionCall {
    /// The answer-cache key: the function, where it was called, the verb and
    /// the request (or the definition's fixed `cache.key`).
    fn cache_key(&self, fixed: Option<&str>) -> String {
        let place = match &self.instance {
            Some(i) => format!("{}/{}", i.flow, i.id),
            None => "-".to_string(),
        };
        let request = match fixed {
            Some(k) => format!("key:{k}"),
            None => json!({ "body": self.body, "query": self.query }).to_string(),
        };
        format!("{}/{place}/{}/{}/{request}", self.domain, self.key, self.verb)
    }

    fn instance_context(&self) -> InstanceContext {
        match &self.instance {
            Some(i) => InstanceContext {
                id: i.id,
                key: i.key.clone(),
                flow: i.flow.clone(),
                domain: i.domain.clone(),
                state: i.current_state.clone(),
                status: i.status.code().to_string(),
                data: i.data.clone(),
            },
            None => InstanceContext {
                id: Uuid::nil(),
                key: None,
                flow: String::new(),
                domain: self.domain.to_string(),
                state: String::new(),
                status: String::new(),
                data: json!({}),
            },
        }
    }
}

impl Engine {
    /// Runs a function and returns its answer (`{data}`, or the last task's
    /// data as it came for `rawResponse`).
    ///
    /// # Errors
    /// See [`FunctionError`].
    pub async fn call_function(&self, call: FunctionCall) -> Result<Value, FunctionError> {
        let cache = call.function.cache.clone();
        let cache_key = cache.as_ref().map(|c| call.cache_key(c.key.as_deref()));
        if let Some(key) = &cache_key
            && let Some(answer) = cached(key)
        {
            return Ok(answer);
        }
        let pool = self.pool(&call.domain).await?;
        let mut conn = vnext_init::db::acquire(&pool).await.map_err(EngineError::from)?;
        let compiled = self.inner.definitions.compile_function(&mut conn, &call.domain, &call.key, &call.function).await?;
        drop(conn);
        if let Some(schema) = &compiled.input_schema {
            let errors = schema.errors(&call.body);
            if !errors.is_empty() {
                return Err(FunctionError::InvalidInput(errors));
            }
        }
        let answer = self.run_function(&call, &compiled).await?;
        if let Some(schema) = &compiled.output_schema {
            let errors = schema.errors(&answer);
            if !errors.is_empty() {
                return Err(FunctionError::InvalidOutput(errors));
            }
        }
        let answer = if call.function.raw_response { answer } else { json!({ "data": answer }) };
        if let (Some(key), Some(c)) = (cache_key, cache) {
            let ttl = c.ttl_in_seconds.filter(|s| *s > 0).map(|s| Duration::from_secs(s.unsigned_abs()));
            remember(key, ttl, answer.clone());
        }
        Ok(answer)
    }

    async fn run_function(&self, call: &FunctionCall, f: &CompiledFunction) -> Result<Value, FunctionError> {
        let domain = call.domain.as_str();
        let mut result = json!({});
        let mut responses: BTreeMap<String, ResponseContext> = BTreeMap::new();
        let mut last: Option<Value> = None;
        let mut mapped = false;
        let ctx = |response: Option<ResponseContext>, responses: &BTreeMap<String, ResponseContext>| {
            ScriptContext {
                body: call.body.clone(),
                headers: call.headers.clone(),
                query: call.query.clone(),
                instance: call.instance_context(),
                transition: None,
                response,
                responses: responses.clone(),
                runtime: RuntimeContext { domain: domain.to_string(), now: self.inner.clock.now() },
            }
            .to_value()
        };
        for group in f.tasks.chunk_by(|a, b| a.order == b.order) {
            let mut prepared = Vec::with_capacity(group.len());
            for t in group {
                let patch = match &t.entry.mapping {
                    Some(m) if m.has_function("input") => {
                        self.inner.scripts.call_map(domain, m, "input", ctx(None, &responses)).await?
                    }
                    _ => None,
                };
                let mut config = t.entry.task.config.clone();
                if let Some(p) = &patch {
                    deep_merge(&mut config, p.clone());
                }
                prepared.push((t, config, patch));
            }
            let calls = prepared.iter().map(|(t, config, patch)| self.run_function_task(call, t, config.clone(), patch.clone()));
            let results = join_all(calls).await;
            for ((t, _, _), response) in prepared.iter().zip(results) {
                let task_key = t.variable_key.clone().unwrap_or_else(|| t.entry.task.key.clone());
                if !response.is_success {
                    let error = response.error.clone().unwrap_or_else(|| {
                        TaskError::new("Task:failed", format!("task `{}` reported failure", t.entry.task.key), false)
                    });
                    return Err(FunctionError::TaskFailed { task: t.entry.task.key.clone(), error, status_code: response.status_code });
                }
                let rv = ResponseContext::from(&response);
                if let Some(m) = &t.entry.mapping
                    && m.has_function("output")
                    && let Some(patch) = self.inner.scripts.call_map(domain, m, "output", ctx(Some(rv.clone()), &responses)).await?
                {
                    deep_merge(&mut result, patch);
                    mapped = true;
                }
                last = Some(response.data.clone());
                responses.insert(task_key, rv);
            }
        }
        if call.function.raw_response {
            return Ok(last.unwrap_or(result));
        }
        if let Some(script) = &f.output
            && script.has_function("output")
        {
            return Ok(self.inner.scripts.call_map(domain, script, "output", ctx(None, &responses)).await?.unwrap_or_else(|| json!({})));
        }
        // Nothing shaped the answer: the last task's body is it.
        Ok(if mapped { result } else { last.unwrap_or(result) })
    }

    async fn run_function_task(&self, call: &FunctionCall, t: &FunctionTask, config: Value, patch: Option<Value>) -> TaskResponse {
        let task = &t.entry.task;
        if task.task_type == TaskType::Script {
            // A script task's work is its mappings: nothing leaves the process.
            return TaskResponse { is_success: true, data: patch.unwrap_or_else(|| json!({})), ..TaskResponse::default() };
        }
        let invocation = TaskInvocation {
            domain: call.domain.to_string(),
            flow: call.instance.as_ref().map(|i| i.flow.clone()).unwrap_or_default(),
            instance_id: call.instance.as_ref().map_or(Uuid::nil(), |i| i.id),
            instance_key: call.instance.as_ref().and_then(|i| i.key.clone()),
            task_key: task.key.clone(),
            task_version: task.version.clone(),
            task_type: task.task_type,
            config,
            // A function call is a read: nothing to deduplicate.
            idempotency_key: None,
        };
        self.inner.executor.execute(invocation).await
    }
}

fn cached(key: &str) -> Option<Value> {
    let mut answers = ANSWERS.lock().expect("function answers");
    match answers.get(key) {
        Some(c) if c.expires.is_none_or(|at| at > Instant::now()) => Some(c.answer.clone()),
        Some(_) => {
            answers.remove(key);
            None
        }
        None => None,
    }
}

fn remember(key: String, ttl: Option<Duration>, answer: Value) {
    let mut answers = ANSWERS.lock().expect("function answers");
    if answers.len() >= CACHE_CAPACITY {
        let now = Instant::now();
        answers.retain(|_, c| c.expires.is_none_or(|at| at > now));
        if answers.len() >= CACHE_CAPACITY {
            answers.clear();
        }
    }
    answers.insert(key, Cached { expires: ttl.map(|t| Instant::now() + t), answer });
}
