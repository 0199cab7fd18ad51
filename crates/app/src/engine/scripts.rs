//! The engine's door to the script host: every mapping, rule and timer call
//! of the pipeline goes through [`Scripts`], which keeps each compiled script
//! with the location errors should name.
//!
//! Calls never run on an async worker. Each one waits for a slot of its
//! domain (at most `script_domain_concurrency` calls of one domain run or wait
//! for a thread at once, first come first served), then for a thread of the
//! [`ScriptPool`]; the caller awaits a one-shot reply meanwhile. Together the
//! two waits are bounded by `script_queue_timeout_ms`: past it the call fails
//! with [`EngineError::ScriptsBusy`] (503 `script.busy`, retryable) without
//! having run. The script's own limits (time, operations, memory) start when a
//! thread picks it up, so waiting never counts against a script. See
//! docs/engine.md, "Scripts".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use vnext_core::model::ScriptCode;
use vnext_core::schedule::Schedule;
use vnext_core::script::{CompiledScript, ScriptError, ScriptHost, ScriptOutput, ScriptPool};

use super::error::{EngineError, script_error};
use super::settings::EngineSettings;

/// A compiled script and where it came from.
#[derive(Debug, Clone)]
pub struct Script {
    compiled: CompiledScript,
    /// `./src/approve.rhai`, or the definition path when the script names no file.
    pub location: String,
}

impl Script {
    /// True when the script defines `fn name(ctx)`.
    pub fn has_function(&self, name: &str) -> bool {
        self.compiled.has_function(name)
    }
}

/// The sandboxed script host with the configured limits, its threads and the
/// per-domain slots.
pub struct Scripts {
    host: ScriptHost,
    pool: ScriptPool,
    per_domain: usize,
    queue_timeout: Duration,
    /// One semaphore per domain that ran a script; domains are few (each has a
    /// database), so entries are kept.
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Why a call did not get to run in time.
struct Busy {
    waited: Duration,
}

impl Scripts {
    /// A host with the configured limits and its pool of script threads.
    ///
    /// # Panics
    /// When the operating system refuses to start the script threads at all.
    pub fn new(settings: &EngineSettings) -> Scripts {
        let pool = ScriptPool::new(settings.script_threads).expect("cannot start the script threads");
        Scripts {
            host: ScriptHost::with_limits(settings.script_limits.clone()),
            pool,
            per_domain: settings.script_domain_concurrency,
            queue_timeout: settings.script_queue_timeout,
            slots: Mutex::default(),
        }
    }

    /// Decodes and parses a script.
    ///
    /// # Errors
    /// Decoding errors (C#, bad base64, REF) and syntax errors with line and column.
    pub fn compile(&self, code: &ScriptCode, fallback_location: &str) -> Result<Script, ScriptError> {
        let compiled = self.host.compile(code)?;
        Ok(Script { compiled, location: code.location.clone().unwrap_or_else(|| fallback_location.to_string()) })
    }

    /// Calls a mapping function of a script of `domain`: a map, or `None` for nothing.
    ///
    /// # Errors
    /// [`EngineError::Script`] naming the script when it fails or a limit stops it;
    /// [`EngineError::ScriptsBusy`] when it could not start in time.
    pub async fn call_map(&self, domain: &str, script: &Script, name: &str, ctx: Value) -> Result<Option<Value>, EngineError> {
        let out = self.run(domain, script, name, ctx).await?;
        Ok(out.into_map().map_err(|e| script_error(&script.location, e))?.map(Value::Object))
    }

    /// Calls a rule.
    ///
    /// # Errors
    /// As [`Scripts::call_map`].
    pub async fn call_bool(&self, domain: &str, script: &Script, name: &str, ctx: Value) -> Result<bool, EngineError> {
        self.run(domain, script, name, ctx).await?.into_bool().map_err(|e| script_error(&script.location, e))
    }

    /// Calls a timer script.
    ///
    /// # Errors
    /// As [`Scripts::call_map`].
    pub async fn call_timer(&self, domain: &str, script: &Script, name: &str, ctx: Value) -> Result<Schedule, EngineError> {
        self.run(domain, script, name, ctx).await?.into_timer().map_err(|e| script_error(&script.location, e))
    }

    /// Runs the call on a script thread once its domain has a slot, and awaits it.
    async fn run(&self, domain: &str, script: &Script, name: &str, ctx: Value) -> Result<ScriptOutput, EngineError> {
        let call = self.host.prepare(&script.compiled, name, ctx).map_err(|e| script_error(&script.location, e))?;
        let asked = Instant::now();
        let busy = |waited: Duration| EngineError::ScriptsBusy { domain: domain.to_string(), waited_ms: waited.as_millis() as u64 };
        let slot = match tokio::time::timeout(self.queue_timeout, self.slots(domain).acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(EngineError::Internal("the script slots of a domain were closed".into())),
            Err(_) => return Err(busy(asked.elapsed())),
        };
        let (reply, result) = oneshot::channel();
        let queue_timeout = self.queue_timeout;
        self.pool
            .execute(move || {
                let queued = asked.elapsed();
                // A call that waited its whole allowance for a thread does not run:
                // its caller may have given up, and the thread is needed elsewhere.
                let out = if queued > queue_timeout { Err(Busy { waited: queued }) } else { Ok(call.run()) };
                release(slot);
                let _ = reply.send((queued, out));
            })
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let (queued, out) = result.await.map_err(|_| EngineError::Internal("a script thread dropped a call (a bug in the script host)".into()))?;
        let out = match out {
            Ok(out) => out,
            Err(Busy { waited }) => return Err(busy(waited)),
        };
        match &out {
            Ok(done) => tracing::debug!(domain, script = %script.location, function = name, queued_ms = queued.as_millis() as u64, ran_ms = done.elapsed.as_millis() as u64, "script call"),
            Err(e) => tracing::info!(domain, script = %script.location, function = name, queued_ms = queued.as_millis() as u64, error = %e, "script call failed"),
        }
        out.map_err(|e| script_error(&script.location, e))
    }

    /// The slots of `domain`.
    fn slots(&self, domain: &str) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().expect("script slots");
        Arc::clone(slots.entry(domain.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.per_domain))))
    }
}

/// A slot is given back on the script thread when the call ends, not when its
/// caller stops waiting: an abandoned call still holds its domain's slot while
/// it runs.
fn release(slot: OwnedSemaphorePermit) {
    drop(slot);
}
