//! What the engine takes from the configuration, read once when it is built.

use std::time::Duration;

use vnext_init::config::Config;

/// The engine's settings (`runtime` section).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// How long a busy instance's lease lasts while a task does external I/O
    /// (and past its due time, a retry job's hold on its instance).
    pub lease: chrono::Duration,
    /// Longest chain of automatic (and boundary) transitions after one request.
    pub max_auto_chain_depth: u32,
    /// rhai operations one script call may run.
    pub script_max_operations: u64,
    /// Wall-clock limit of one script call.
    pub script_timeout: Duration,
    /// At most how long cached definitions go unchecked.
    pub definitions_recheck: Duration,
    /// Header and query parameter names masked in stored history, task runs
    /// and incidents.
    pub redaction: vnext_core::redact::RedactionConfig,
    /// Seals the request headers and query that jobs keep (key derived
    /// from `execution.shared_secret`).
    pub sealer: vnext_init::queue::Sealer,
}

impl EngineSettings {
    pub fn from_config(config: &Config) -> EngineSettings {
        let r = &config.runtime;
        EngineSettings {
            lease: chrono::Duration::seconds(i64::try_from(r.lease_seconds).unwrap_or(i64::MAX / 1000)),
            max_auto_chain_depth: r.max_auto_chain_depth,
            script_max_operations: r.script_max_operations,
            script_timeout: Duration::from_millis(r.script_timeout_ms),
            definitions_recheck: Duration::from_millis(r.definitions_recheck_ms),
            redaction: config.redaction.clone(),
            sealer: vnext_init::queue::Sealer::new(&config.execution.shared_secret),
        }
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings::from_config(&Config::default())
    }
}
