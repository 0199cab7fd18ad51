//! The runtime's configuration: one typed struct, loaded once.
//!
//! Sources, later wins: built-in defaults → an optional TOML file (`vnext.toml`
//! in the working directory, or the path given with `--config`) → environment
//! variables `VNEXT_<SECTION>__<FIELD>` (e.g. `VNEXT_DATABASE__URL`). This is the
//! only module that reads the environment. Every field is documented in
//! `docs/configuration.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod audit;
pub mod egress;
pub mod events;
pub mod identity;
pub mod limits;
pub mod secrets;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub app: AppConfig,
    pub execution: ExecutionConfig,
    pub runtime: RuntimeConfig,
    /// Fields given by the file or the environment (`section.field`), so a
    /// caller can tell a default from a value someone chose.
    #[serde(skip)]
    set_by_user: BTreeSet<String>,
    /// Where HTTP tasks may connect.
    pub egress: egress::EgressConfig,
    /// Header and query parameter names masked in what is stored.
    pub redaction: vnext_core::redact::RedactionConfig,
    /// Trusted-header and JWT identities besides API keys.
    pub identity: identity::IdentityConfig,
    /// Quotas of the public API, per caller and per domain.
    pub limits: limits::LimitsConfig,
    /// The audit log of mutating API calls.
    pub audit: audit::AuditConfig,
    /// How log lines are written.
    pub log: LogConfig,
    /// Traces exported over OpenTelemetry (OTLP).
    pub telemetry: TelemetryConfig,
    /// Outbox delivery to a broker and its retention.
    pub events: events::EventsConfig,
}

/// `[telemetry]`: OpenTelemetry traces, off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP endpoint of a collector (`http://127.0.0.1:4318`); empty: no
    /// traces. Exported only by a build with the `otlp` cargo feature.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { otlp_endpoint: String::new(), service_name: "vnext".into() }
    }
}

/// `[log]`: the log output of every service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (colour only on a terminal) or `json` (one object per line).
    pub format: LogFormat,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where the databases are and how connections are pooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The control database (domain registry, rollout records). Domain databases
    /// are created on the same server unless the registry places them elsewhere.
    pub url: String,
    /// Domain `payments` lives in database `<prefix>payments`.
    pub database_prefix: String,
    /// Seed for each domain role's password (`<prefix><domain>` role). Change it
    /// before exposing PostgreSQL beyond trust authentication.
    pub role_secret: String,
    /// Largest pool per domain database.
    pub max_connections_per_domain: u32,
    /// Connections of the control database pool.
    pub max_control_connections: u32,
    /// A domain pool unused this long is closed.
    pub pool_idle_seconds: u64,
    /// An idle connection inside a pool is closed after this long, so a burst
    /// on one domain does not keep server connections from the others.
    pub connection_idle_seconds: u64,
    /// Connections are recycled after this long (each caches catalog entries of
    /// every schema it touched).
    pub connection_lifetime_seconds: u64,
    /// Waiting for a connection longer than this is an error.
    pub acquire_timeout_seconds: u64,
    /// Whether `vnext up` runs a private PostgreSQL cluster (see [`Embedded`]).
    pub embedded: Embedded,
    /// OS user the private cluster runs as when `vnext up` runs as root
    /// (PostgreSQL refuses to run as root).
    pub embedded_os_user: String,
    /// Folder holding `initdb`, `pg_ctl` and `postgres` for the private
    /// cluster; when unset they are looked for where PostgreSQL is usually installed.
    pub postgres_bin: Option<PathBuf>,
}

/// `database.embedded`: `true`, `false` or `"auto"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Embedded {
    /// A private cluster when `database.url` is not set and the default server
    /// cannot be used.
    #[default]
    Auto,
    /// Always a private cluster; `database.url` is ignored.
    On,
    /// Never: `database.url` is used as it is.
    Off,
}

impl Serialize for Embedded {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Embedded::Auto => serializer.serialize_str("auto"),
            Embedded::On => serializer.serialize_bool(true),
            Embedded::Off => serializer.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for Embedded {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Embedded;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Embedded, E> {
                Ok(if v { Embedded::On } else { Embedded::Off })
            }
            // The environment gives text, so "true" and "false" count too.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Embedded, E> {
                match v {
                    "auto" => Ok(Embedded::Auto),
                    "true" => Ok(Embedded::On),
                    "false" => Ok(Embedded::Off),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The orchestration service (REST API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// Address the API listens on; port 0 picks a free port.
    pub listen: String,
    /// How other services reach the app (execution fires transitions here).
    pub url: String,
    /// Requests with a larger body are answered 413.
    pub body_limit_bytes: usize,
    /// Default page size of instance lists (at most 100).
    pub default_page_size: u32,
    /// Address of the internal trigger endpoint (the execution service fires
    /// timers and jobs through it); never served on `listen`.
    pub internal_listen: String,
    /// How the execution service reaches `internal_listen`.
    pub internal_url: String,
    /// Domains one API key (or identity) may provision by publishing.
    pub max_domains_per_key: u32,
}

/// The execution service (tasks and jobs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    pub listen: String,
    /// How the app reaches the execution service when they run apart.
    pub url: String,
    /// Shared secret app and execution present to each other (`Authorization: Bearer`).
    pub shared_secret: String,
    /// Jobs claimed per round.
    pub job_batch_size: u32,
    /// Without a notification, the scheduler looks for due jobs at least this often.
    pub idle_poll_seconds: u64,
    /// A claimed job not finished within this long is claimed again.
    pub job_lock_seconds: u64,
    /// Name of this process in job locks; defaults to host and pid.
    pub worker_id: Option<String>,
    /// Transitions the scheduler fires at the same time, over all domains.
    pub concurrency: u32,
    /// Domains the scheduler listens on (one connection each) at most; the
    /// other domains are polled every `idle_poll_seconds`.
    pub max_listeners: u32,
    /// Short-lived connections the scheduler opens at the same time to poll
    /// domains it does not listen on.
    pub poll_connections: u32,
}

/// Behaviour of the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Component folder published by `vnext up` and `vnext init`.
    pub flows_dir: PathBuf,
    /// Longest chain of automatic transitions run inline after one request.
    pub max_auto_chain_depth: u32,
    /// rhai operations one script call may run before it is stopped.
    pub script_max_operations: u64,
    /// Wall-clock limit of one script call, in milliseconds, from the moment a
    /// script thread picks it up.
    pub script_timeout_ms: u64,
    /// Threads that run scripts; 0 = one per CPU core, at least 2.
    pub script_threads: u32,
    /// Script calls of one domain that may run or wait for a thread at once;
    /// 0 = half the script threads, at least 1.
    pub script_domain_concurrency: u32,
    /// At most how long a script call waits for its domain's turn and a thread,
    /// in milliseconds; then it fails with 503 `script.busy` without running.
    pub script_queue_timeout_ms: u64,
    /// Bytes of string data in one script value.
    pub script_max_string_bytes: usize,
    /// Array elements in one script value (nested arrays together).
    pub script_max_array_items: usize,
    /// Map properties in one script value (nested maps together).
    pub script_max_map_items: usize,
    /// New memory one script call may touch, in MiB (0 = only the size limits).
    pub script_max_memory_mb: u64,
    /// How long a busy instance's lease lasts while a task does external I/O.
    pub lease_seconds: u64,
    /// At most how long cached definitions of a domain in use go unchecked
    /// after another process publishes into it.
    pub definitions_recheck_ms: u64,
    /// Local state of `vnext up` (the private PostgreSQL cluster), relative to
    /// the working directory.
    pub data_dir: PathBuf,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            database_prefix: "vnext_".into(),
            role_secret: "vnext-dev-secret".into(),
            max_connections_per_domain: 16,
            max_control_connections: 4,
            pool_idle_seconds: 300,
            connection_idle_seconds: 30,
            connection_lifetime_seconds: 1800,
            acquire_timeout_seconds: 10,
            embedded: Embedded::Auto,
            embedded_os_user: "postgres".into(),
            postgres_bin: None,
        }
    }
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4201".into(),
            url: "http://127.0.0.1:4201".into(),
            body_limit_bytes: 1024 * 1024,
            default_page_size: 10,
            internal_listen: "127.0.0.1:4203".into(),
            internal_url: "http://127.0.0.1:4203".into(),
            max_domains_per_key: 20,
        }
    }
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4202".into(),
            url: "http://127.0.0.1:4202".into(),
            shared_secret: "vnext-dev-secret".into(),
            job_batch_size: 256,
            idle_poll_seconds: 5,
            job_lock_seconds: 60,
            worker_id: None,
            concurrency: 32,
            max_listeners: 32,
            poll_connections: 4,
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            flows_dir: PathBuf::from("flows"),
            max_auto_chain_depth: 50,
            script_max_operations: 1_000_000,
            script_timeout_ms: 1_000,
            script_threads: 0,
            script_domain_concurrency: 0,
            script_queue_timeout_ms: 5_000,
            script_max_string_bytes: 4 * 1024 * 1024,
            script_max_array_items: 100_000,
            script_max_map_items: 100_000,
            script_max_memory_mb: 64,
            lease_seconds: 60,
            definitions_recheck_ms: 1_000,
            data_dir: PathBuf::from(".vnext"),
        }
    }
}

/// The default config file name looked up in the working directory.
pub const DEFAULT_FILE: &str = "vnext.toml";
const ENV_PREFIX: &str = "VNEXT_";

impl Config {
    /// Loads defaults, then `file` (or `vnext.toml` if present), then the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or variable at fault.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut value = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut set_by_user = BTreeSet::new();
        let path = file.map(Path::to_path_buf).or_else(|| {
            let p = PathBuf::from(DEFAULT_FILE);
            p.exists().then_some(p)
        });
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path)
                .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            let file_value: toml::Value = toml::from_str(&text)
                .map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
            if let Some(sections) = file_value.as_table() {
                for (section, fields) in sections {
                    for field in fields.as_table().into_iter().flat_map(|t| t.keys()) {
                        set_by_user.insert(format!("{section}.{field}"));
                    }
                }
            }
            merge_toml(&mut value, file_value);
        }
        // Which variable set which field, so an error can name it.
        let mut from_env = BTreeMap::new();
        for (var, raw) in std::env::vars() {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
            let Some((section, field)) = rest.split_once("__") else { continue };
            let (section, field) = (section.to_ascii_lowercase(), field.to_ascii_lowercase());
            let table = value
                .get_mut(&section)
                .and_then(toml::Value::as_table_mut)
                .ok_or_else(|| ConfigError::Env { var: var.clone(), message: format!("unknown section `{section}`") })?;
            let parsed = parse_env_value(table.get(&field), &raw);
            set_by_user.insert(format!("{section}.{field}"));
            from_env.insert(format!("{section}.{field}"), var.clone());
            table.insert(field, parsed);
        }
        let mut config: Config =
            value.try_into().map_err(|e: toml::de::Error| blame_env(ConfigError::Invalid(e.to_string()), &from_env))?;
        config.validate().map_err(|e| blame_env(e, &from_env))?;
        config.set_by_user = set_by_user;
        Ok(config)
    }

    /// Whether the file or the environment gave `key` (`"database.url"`), as
    /// opposed to its default.
    pub fn is_set(&self, key: &str) -> bool {
        self.set_by_user.contains(key)
    }

    /// Checks relations between fields that types cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] describing the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if !self.database.url.starts_with("postgres://") && !self.database.url.starts_with("postgresql://") {
            return bad("database.url must be a postgres:// URL");
        }
        if self.database.database_prefix.is_empty()
            || !self.database.database_prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return bad("database.database_prefix may contain only a-z, 0-9 and _");
        }
        if self.database.max_connections_per_domain == 0 || self.database.max_control_connections == 0 {
            return bad("connection limits must be at least 1");
        }
        if self.app.default_page_size == 0 || self.app.default_page_size > 100 {
            return bad("app.default_page_size must be between 1 and 100");
        }
        if self.runtime.max_auto_chain_depth == 0 {
            return bad("runtime.max_auto_chain_depth must be at least 1");
        }
        if self.runtime.script_timeout_ms == 0 || self.runtime.script_queue_timeout_ms == 0 {
            return bad("runtime.script_timeout_ms and runtime.script_queue_timeout_ms must be at least 1");
        }
        if self.execution.concurrency == 0 || self.execution.poll_connections == 0 {
            return bad("execution.concurrency and execution.poll_connections must be at least 1");
        }
        if self.events.relay_batch == 0 || self.events.relay_poll_ms == 0 {
            return bad("events.relay_batch and events.relay_poll_ms must be at least 1");
        }
        if self.events.stream.is_empty() || !self.events.stream.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return bad("events.stream may contain only A-Z, a-z, 0-9, _ and -");
        }
        if self.events.subject_prefix.is_empty() || self.events.subject_prefix.contains(['*', '>', ' ']) {
            return bad("events.subject_prefix must be a non-empty subject without wildcards or spaces");
        }
        if self.execution.shared_secret.len() < 8 {
            return bad("execution.shared_secret must be at least 8 characters");
        }
        let same = self.app.internal_listen == self.app.listen && !self.app.listen.ends_with(":0");
        if self.app.internal_listen.trim().is_empty() || same {
            return bad("app.internal_listen must be an address of its own, not app.listen");
        }
        self.identity.check().map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

/// Adds to an invalid-configuration error the environment variables that set
/// the fields it names (`database.url`, or a field name the parser quotes), so
/// the reader knows where to look: the file may be right and the environment not.
fn blame_env(error: ConfigError, from_env: &BTreeMap<String, String>) -> ConfigError {
    let ConfigError::Invalid(message) = error else { return error };
    let named: Vec<&str> = from_env
        .iter()
        .filter(|(key, _)| {
            let field = key.split_once('.').map_or(key.as_str(), |(_, f)| f);
            message.contains(key.as_str()) || message.contains(&format!("`{field}`")) || message.contains(&format!("'{field}'"))
        })
        .map(|(_, var)| var.as_str())
        .collect();
    if named.is_empty() {
        return ConfigError::Invalid(message);
    }
    ConfigError::Invalid(format!("{message} (set by environment variable {})", named.join(", ")))
}

fn merge_toml(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge_toml(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Environment values are text; give them the type the default has.
fn parse_env_value(existing: Option<&toml::Value>, raw: &str) -> toml::Value {
    match existing {
        Some(toml::Value::Integer(_)) => raw.parse().map(toml::Value::Integer).unwrap_or_else(|_| raw.into()),
        Some(toml::Value::Boolean(_)) => raw.parse().map(toml::Value::Boolean).unwrap_or_else(|_| raw.into()),
        Some(toml::Value::Float(_)) => raw.parse().map(toml::Value::Float).unwrap_or_else(|_| raw.into()),
        // Lists as comma-separated text (`VNEXT_EGRESS__ALLOW_HOSTS=a.example,b.example`).
        Some(toml::Value::Array(_)) => toml::Value::Array(
            raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.to_string())).collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("vnext-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "[database]\ndatabase_prefix = \"t_\"\n[runtime]\nlease_seconds = 7\n").unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.database.database_prefix, "t_");
        assert_eq!(c.runtime.lease_seconds, 7);
        assert_eq!(c.app.body_limit_bytes, 1024 * 1024);
    }

    #[test]
    fn a_default_is_told_from_a_value_given() {
        let dir = std::env::temp_dir().join(format!("vnext-config-set-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        // The default value written out is still a value someone chose.
        std::fs::write(&path, "[database]\nurl = \"postgres://postgres@127.0.0.1:5432/postgres\"\nembedded = true\n").unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert!(c.is_set("database.url"));
        assert_eq!(c.database.embedded, Embedded::On);
        assert!(!c.is_set("database.database_prefix"));
        assert_eq!(c.runtime.data_dir, PathBuf::from(".vnext"));
        assert!(!Config::default().is_set("database.url"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn embedded_takes_true_false_or_auto() {
        for (text, expected) in [("true", Embedded::On), ("false", Embedded::Off), ("\"auto\"", Embedded::Auto), ("\"true\"", Embedded::On)] {
            let c: DatabaseConfig = toml::from_str(&format!("embedded = {text}")).unwrap();
            assert_eq!(c.embedded, expected, "{text}");
        }
        let err = toml::from_str::<DatabaseConfig>("embedded = \"sometimes\"").unwrap_err().to_string();
        assert!(err.contains("true, false or \"auto\""), "{err}");
        let written = toml::Value::try_from(Config::default()).unwrap();
        assert_eq!(written["database"]["embedded"].as_str(), Some("auto"));
    }

    #[test]
    fn an_error_names_the_environment_variable_that_set_the_field() {
        let mut from_env = BTreeMap::new();
        from_env.insert("app.default_page_size".to_string(), "VNEXT_APP__DEFAULT_PAGE_SIZE".to_string());
        from_env.insert("database.url".to_string(), "VNEXT_DATABASE__URL".to_string());
        let mut c = Config::default();
        c.app.default_page_size = 0;
        let err = blame_env(c.validate().unwrap_err(), &from_env).to_string();
        assert!(err.contains("app.default_page_size") && err.ends_with("(set by environment variable VNEXT_APP__DEFAULT_PAGE_SIZE)"), "{err}");
        // A type error from the parser names the field only.
        let mut value = toml::Value::try_from(Config::default()).unwrap();
        value["app"].as_table_mut().unwrap().insert("default_page_size".into(), toml::Value::String("many".into()));
        let parsed: Result<Config, toml::de::Error> = value.try_into();
        let err = blame_env(ConfigError::Invalid(parsed.unwrap_err().to_string()), &from_env).to_string();
        assert!(err.contains("VNEXT_APP__DEFAULT_PAGE_SIZE") && !err.contains("VNEXT_DATABASE__URL"), "{err}");
        // An error about a field the environment did not set names no variable.
        let mut c = Config::default();
        c.runtime.max_auto_chain_depth = 0;
        assert!(!blame_env(c.validate().unwrap_err(), &from_env).to_string().contains("environment"));
    }

    #[test]
    fn log_format_is_text_or_json() {
        let c: LogConfig = toml::from_str("format = \"json\"").unwrap();
        assert_eq!(c.format, LogFormat::Json);
        assert!(toml::from_str::<LogConfig>("format = \"xml\"").is_err());
        assert_eq!(Config::default().log.format, LogFormat::Text);
    }

    #[test]
    fn unknown_field_is_an_error() {
        let dir = std::env::temp_dir().join(format!("vnext-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "[database]\nurll = \"x\"\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("urll"), "{err}");
    }
}
