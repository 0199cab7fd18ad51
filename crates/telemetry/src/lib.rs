//! Telemetry shared by the app and the execution service: one owner for the
//! metric names, the recorder, the HTTP request-tracking layer and the log
//! set-up.
//!
//! - [`metrics`]: every metric the runtime records, as functions with typed
//!   labels (call sites never spell a metric name), the process-wide recorder
//!   and the Prometheus text it renders;
//! - [`http`]: the middleware that counts and times HTTP requests by route
//!   template;
//! - [`log`]: `tracing` output as text or JSON lines on stderr.
//!
//! Label values are bounded: domain and workflow names (bounded by what is
//! published), route templates, status classes, job kinds and outcomes. No
//! instance id, key or request path ever becomes a label.

pub mod http;
pub mod log;
pub mod metrics;
