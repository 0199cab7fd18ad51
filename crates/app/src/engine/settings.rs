//! What the engine takes from the configuration, read once when it is built.

use std::time::Duration;

use vnext_core::script::ScriptLimits;
use vnext_init::config::Config;

/// The engine's settings (`runtime` section).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// How long a busy instance's lease lasts while a task does external I/O
    /// (and past its due time, a retry job's hold on its instance).
    pub lease: chrono::Duration,
    /// Longest chain of automatic (and boundary) transitions after one request.
    pub max_auto_chain_depth: u32,
    /// The limits of one script call (operations, time, sizes, memory).
    pub script_limits: ScriptLimits,
    /// Threads that run scripts.
    pub script_threads: usize,
    /// Script calls of one domain running or waiting for a thread at once.
    pub script_domain_concurrency: usize,
    /// At most how long a call waits for its domain's turn and a thread.
    pub script_queue_timeout: Duration,
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
        let script_threads = match r.script_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
            n => n as usize,
        };
        let script_domain_concurrency = match r.script_domain_concurrency {
            0 => (script_threads / 2).max(1),
            n => n as usize,
        };
        EngineSettings {
            lease: chrono::Duration::seconds(i64::try_from(r.lease_seconds).unwrap_or(i64::MAX / 1000)),
            max_auto_chain_depth: r.max_auto_chain_depth,
            script_limits: ScriptLimits {
                max_operations: r.script_max_operations,
                timeout: Duration::from_millis(r.script_timeout_ms),
                max_string_size: r.script_max_string_bytes,
                max_array_size: r.script_max_array_items,
                max_map_size: r.script_max_map_items,
                max_memory: usize::try_from(r.script_max_memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX),
                ..ScriptLimits::default()
            },
            script_threads,
            script_domain_concurrency,
            script_queue_timeout: Duration::from_millis(r.script_queue_timeout_ms),
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
