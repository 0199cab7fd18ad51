//! A task executor whose behaviour each test scripts; it records every call.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde_json::json;
use vnext_core::traits::{TaskExecutor, TaskInvocation, TaskResponse};

type Handler = dyn Fn(TaskInvocation) -> BoxFuture<'static, TaskResponse> + Send + Sync;

/// Answers 200 `{"echo": <task config>}` until [`FakeExecutor::set`] scripts
/// another answer; clones share the script and the recorded calls.
#[derive(Clone)]
pub struct FakeExecutor {
    handler: Arc<Mutex<Arc<Handler>>>,
    pub calls: Arc<Mutex<Vec<TaskInvocation>>>,
}

impl Default for FakeExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeExecutor {
    pub fn new() -> FakeExecutor {
        let ok: Arc<Handler> = Arc::new(|inv: TaskInvocation| {
            Box::pin(async move {
                TaskResponse { status_code: Some(200), is_success: true, data: json!({"echo": inv.config}), ..Default::default() }
            })
        });
        FakeExecutor { handler: Arc::new(Mutex::new(ok)), calls: Arc::default() }
    }

    pub fn set(&self, f: impl Fn(TaskInvocation) -> BoxFuture<'static, TaskResponse> + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(f);
    }
}

impl TaskExecutor for FakeExecutor {
    fn execute(&self, invocation: TaskInvocation) -> BoxFuture<'_, TaskResponse> {
        self.calls.lock().unwrap().push(invocation.clone());
        let h = self.handler.lock().unwrap().clone();
        h(invocation)
    }
}
