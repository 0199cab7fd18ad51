//! The engine's door to the script host: every mapping, rule and timer call
//! of the pipeline goes through [`Scripts`], which keeps each compiled script
//! with the location errors should name.

use std::time::Duration;

use serde_json::Value;
use vnext_core::model::ScriptCode;
use vnext_core::schedule::Schedule;
use vnext_core::script::{CompiledScript, ScriptError, ScriptHost, ScriptLimits};

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

/// The sandboxed script host with the configured limits.
pub struct Scripts {
    host: ScriptHost,
}

impl Scripts {
    /// A host whose operation and time limits come from the runtime configuration;
    /// the other limits keep the host's defaults.
    pub fn new(max_operations: u64, timeout: Duration) -> Scripts {
        Scripts { host: ScriptHost::with_limits(ScriptLimits { max_operations, timeout, ..ScriptLimits::default() }) }
    }

    /// Decodes and parses a script.
    ///
    /// # Errors
    /// Decoding errors (C#, bad base64, REF) and syntax errors with line and column.
    pub fn compile(&self, code: &ScriptCode, fallback_location: &str) -> Result<Script, ScriptError> {
        let compiled = self.host.compile(code)?;
        Ok(Script { compiled, location: code.location.clone().unwrap_or_else(|| fallback_location.to_string()) })
    }

    /// Calls a mapping function: a map, or `None` for nothing.
    ///
    /// # Errors
    /// As [`ScriptHost::call_map`].
    pub fn call_map(&self, script: &Script, name: &str, ctx: &Value) -> Result<Option<Value>, ScriptError> {
        Ok(self.host.call_map(&script.compiled, name, ctx)?.map(Value::Object))
    }

    /// Calls a rule.
    ///
    /// # Errors
    /// As [`ScriptHost::call_bool`].
    pub fn call_bool(&self, script: &Script, name: &str, ctx: &Value) -> Result<bool, ScriptError> {
        self.host.call_bool(&script.compiled, name, ctx)
    }

    /// Calls a timer script.
    ///
    /// # Errors
    /// As [`ScriptHost::call_timer`].
    pub fn call_timer(&self, script: &Script, name: &str, ctx: &Value) -> Result<Schedule, ScriptError> {
        self.host.call_timer(&script.compiled, name, ctx)
    }
}
