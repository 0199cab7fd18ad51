//! Every metric the runtime records, the recorder and the exposition.
//!
//! The `metrics` facade is process-wide by design: call sites record through
//! it wherever they are, and one recorder, installed once ([`install`]), keeps
//! the values and renders them as Prometheus text ([`render`]). Each replica
//! is scraped on its own; a value is what this process saw since it started.
//! Nothing here reads the database: gauges that describe the database are
//! set by their owners (the pool sizes right before rendering, the waiting
//! callers as they wait, the open incidents by the scheduler's census).
//!
//! Names and labels are documented in `docs/api.md` (Metrics). Values of
//! `domain` and `workflow` are names that were published; requests naming an
//! unknown domain or workflow are counted under `unknown`, so clients cannot
//! grow the label set.

use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets, in seconds, for every duration and lag.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The label value of a domain or workflow a request named that does not exist.
pub const UNKNOWN: &str = "unknown";

struct Installed {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the process-wide recorder the first time it is called (later calls
/// return the same one). When another recorder was installed first (a
/// program embedding the runtime with its own), metrics still render, empty.
fn installed() -> &'static Installed {
    INSTALLED.get_or_init(|| {
        let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).expect("the bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed elsewhere; /metrics shows only what it does not take");
        }
        describe();
        let process = metrics_process::Collector::default();
        process.describe();
        Installed { handle, process }
    })
}

/// Installs the recorder. Services call it at start so that everything they
/// record from then on is kept; recording before it is a no-op.
pub fn install() {
    installed();
}

/// The Prometheus text exposition (format 0.0.4) of everything recorded, with
/// the process metrics read now.
pub fn render() -> String {
    let installed = installed();
    installed.process.collect();
    installed.handle.run_upkeep();
    installed.handle.render()
}

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by method, route template and status.");
    describe_histogram!(HTTP_REQUEST_DURATION, Unit::Seconds, "Time to answer HTTP requests, by method and route template.");
    describe_counter!(TRANSITIONS, "Starts, transitions and retries (requests and jobs), by domain, workflow, kind and outcome.");
    describe_histogram!(TRANSITION_DURATION, Unit::Seconds, "Time a start, transition or retry took, with its automatic chain and tasks.");
    describe_counter!(FAULTS, "Instances that faulted, by domain, workflow and error code.");
    describe_counter!(INCIDENTS_OPENED, "Incidents written (one per fault), by domain and workflow.");
    describe_counter!(INCIDENTS_RESOLVED, "Instances whose open incidents were resolved (a retry or a later transition succeeded).");
    describe_counter!(HTTP_TASK_ATTEMPTS, "HTTP task attempts, by status class (2xx..5xx, timeout, error, refused).");
    describe_histogram!(HTTP_TASK_DURATION, Unit::Seconds, "Time of one HTTP task attempt, by status class.");
    describe_counter!(JOBS, "Jobs fired by the scheduler, by domain, kind and outcome.");
    describe_histogram!(JOB_LAG, Unit::Seconds, "From a job's due time to its firing, by kind.");
    describe_counter!(TIMERS_FIRED, "Timer jobs whose transition ran, by domain.");
    describe_counter!(LEASE_RECOVERIES, "Expired leases taken over, by domain, workflow and what recovery did.");
    describe_gauge!(OUTBOX_UNSENT, "Outbox rows of a domain not yet acknowledged by the broker.");
    describe_gauge!(OUTBOX_OLDEST_UNSENT_AGE, Unit::Seconds, "Age of a domain's oldest unsent outbox row (0 when none).");
    describe_counter!(EVENTS_PUBLISHED, "Outbox events acknowledged by the broker, by domain.");
    describe_gauge!(POOL_CONNECTIONS, "Connections of a domain's pool, by state (in_use, idle) and the pool's maximum (max).");
    describe_gauge!(POOL_WAITING, "Callers waiting for a connection of a domain's pool right now.");
    describe_histogram!(POOL_ACQUIRE, Unit::Seconds, "Time a caller waited for a connection of a domain's pool.");
    describe_gauge!(INCIDENTS_OPEN, "Unresolved incidents, by domain and workflow, as counted by the scheduler's last census.");
}

const HTTP_REQUESTS: &str = "vnext_http_requests_total";
const HTTP_REQUEST_DURATION: &str = "vnext_http_request_duration_seconds";
const TRANSITIONS: &str = "vnext_transitions_total";
const TRANSITION_DURATION: &str = "vnext_transition_duration_seconds";
const FAULTS: &str = "vnext_faults_total";
const INCIDENTS_OPENED: &str = "vnext_incidents_opened_total";
const INCIDENTS_RESOLVED: &str = "vnext_incidents_resolved_total";
const HTTP_TASK_ATTEMPTS: &str = "vnext_http_task_attempts_total";
const HTTP_TASK_DURATION: &str = "vnext_http_task_duration_seconds";
const JOBS: &str = "vnext_jobs_total";
const JOB_LAG: &str = "vnext_job_lag_seconds";
const TIMERS_FIRED: &str = "vnext_timers_fired_total";
const LEASE_RECOVERIES: &str = "vnext_lease_recoveries_total";
const POOL_CONNECTIONS: &str = "vnext_pool_connections";
const POOL_WAITING: &str = "vnext_pool_waiting";
const POOL_ACQUIRE: &str = "vnext_pool_acquire_seconds";
const INCIDENTS_OPEN: &str = "vnext_incidents_open";
const OUTBOX_UNSENT: &str = "vnext_outbox_unsent";
const OUTBOX_OLDEST_UNSENT_AGE: &str = "vnext_outbox_oldest_unsent_age_seconds";
const EVENTS_PUBLISHED: &str = "vnext_events_published_total";

/// One answered HTTP request. `method` is a standard method or `OTHER`,
/// `route` a route template or `unmatched`.
pub fn http_request(method: &'static str, route: String, status: u16, seconds: f64) {
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status.to_string()).increment(1);
    histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route).record(seconds);
}

/// Where a start, transition or retry ran, for [`transition`].
#[derive(Debug, Clone, Copy)]
pub struct Flow<'a> {
    pub domain: &'a str,
    pub workflow: &'a str,
}

/// A start, transition or retry ended. `kind`: `start`, `transition`,
/// `retry` (requests) or a job's kind (`timer`, `async`, ...); `outcome`:
/// how the instance rests (`completed`, `faulted`, `active`, `busy`,
/// `passive`), `accepted` (runs as a job), or the error kind of a refusal.
pub fn transition(flow: Flow<'_>, kind: &'static str, outcome: &'static str, seconds: f64) {
    let (domain, workflow) = (flow.domain.to_string(), flow.workflow.to_string());
    counter!(TRANSITIONS, "domain" => domain.clone(), "workflow" => workflow.clone(), "kind" => kind, "outcome" => outcome).increment(1);
    histogram!(TRANSITION_DURATION, "domain" => domain, "workflow" => workflow, "kind" => kind).record(seconds);
}

/// An instance faulted with an incident carrying `code`.
pub fn fault(flow: Flow<'_>, code: &str) {
    let (domain, workflow) = (flow.domain.to_string(), flow.workflow.to_string());
    counter!(FAULTS, "domain" => domain.clone(), "workflow" => workflow.clone(), "code" => code.to_string()).increment(1);
    counter!(INCIDENTS_OPENED, "domain" => domain, "workflow" => workflow).increment(1);
}

/// The open incidents of an instance were resolved.
pub fn incidents_resolved(flow: Flow<'_>) {
    counter!(INCIDENTS_RESOLVED, "domain" => flow.domain.to_string(), "workflow" => flow.workflow.to_string()).increment(1);
}

/// The status class of an HTTP task attempt: `2xx` .. `5xx` for an answer,
/// otherwise what stopped it (`timeout`, `refused` by egress rules, `error`).
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) | None => "error",
    }
}

/// One HTTP task attempt ended with `class` (see [`status_class`]).
pub fn http_task_attempt(class: &'static str, seconds: f64) {
    counter!(HTTP_TASK_ATTEMPTS, "status_class" => class).increment(1);
    histogram!(HTTP_TASK_DURATION, "status_class" => class).record(seconds);
}

/// The scheduler fired a job of `kind` that was due `lag_seconds` ago, and it
/// ended with `outcome` (`applied`, `stale`, `busy`, `retried`, `failed`).
pub fn job(domain: &str, kind: &'static str, outcome: &'static str, lag_seconds: f64) {
    counter!(JOBS, "domain" => domain.to_string(), "kind" => kind, "outcome" => outcome).increment(1);
    histogram!(JOB_LAG, "kind" => kind).record(lag_seconds.max(0.0));
    if kind == "timer" && outcome == "applied" {
        counter!(TIMERS_FIRED, "domain" => domain.to_string()).increment(1);
    }
}

/// An expired lease was taken over; `verdict` is what recovery did (`rerun`,
/// `divert`, `retry`, `fault`).
pub fn lease_recovery(flow: Flow<'_>, verdict: &'static str) {
    counter!(LEASE_RECOVERIES, "domain" => flow.domain.to_string(), "workflow" => flow.workflow.to_string(), "verdict" => verdict)
        .increment(1);
}

/// The state of one domain's pool, set right before rendering.
pub fn pool(domain: &str, in_use: usize, idle: usize, max: u32) {
    #[allow(clippy::cast_precision_loss)]
    let (in_use, idle, max) = (in_use as f64, idle as f64, f64::from(max));
    gauge!(POOL_CONNECTIONS, "domain" => domain.to_string(), "state" => "in_use").set(in_use);
    gauge!(POOL_CONNECTIONS, "domain" => domain.to_string(), "state" => "idle").set(idle);
    gauge!(POOL_CONNECTIONS, "domain" => domain.to_string(), "state" => "max").set(max);
}

/// A caller waiting for a connection of `domain`'s pool: counted in the
/// waiting gauge from [`PoolWait::start`] until it is dropped, which also
/// records how long it waited (dropped on success, error or cancellation).
pub struct PoolWait {
    domain: String,
    started: std::time::Instant,
}

impl PoolWait {
    pub fn start(domain: &str) -> PoolWait {
        gauge!(POOL_WAITING, "domain" => domain.to_string()).increment(1.0);
        PoolWait { domain: domain.to_string(), started: std::time::Instant::now() }
    }
}

impl Drop for PoolWait {
    fn drop(&mut self) {
        gauge!(POOL_WAITING, "domain" => self.domain.clone()).decrement(1.0);
        histogram!(POOL_ACQUIRE, "domain" => self.domain.clone()).record(self.started.elapsed().as_secs_f64());
    }
}

/// The unresolved incidents of one workflow, counted from its tables.
pub fn incidents_open(flow: Flow<'_>, open: i64) {
    #[allow(clippy::cast_precision_loss)]
    gauge!(INCIDENTS_OPEN, "domain" => flow.domain.to_string(), "workflow" => flow.workflow.to_string()).set(open as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(Some(404)), "4xx");
        assert_eq!(status_class(None), "error");
    }

    #[test]
    fn recorded_values_render_as_prometheus_text() {
        install();
        http_request("GET", "/unit-test-route".into(), 200, 0.003);
        job("unit_test_domain", "timer", "applied", 0.2);
        let text = render();
        assert!(text.contains(r#"vnext_http_requests_total{method="GET",route="/unit-test-route",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"vnext_timers_fired_total{domain="unit_test_domain"} 1"#), "{text}");
        assert!(text.contains(r#"vnext_job_lag_seconds_bucket{kind="timer",le="0.25"}"#), "{text}");
    }
}

/// The outbox of one domain as the relay last saw it.
pub fn outbox(domain: &str, unsent: f64, oldest_unsent_age_seconds: f64) {
    gauge!(OUTBOX_UNSENT, "domain" => domain.to_string()).set(unsent);
    gauge!(OUTBOX_OLDEST_UNSENT_AGE, "domain" => domain.to_string()).set(oldest_unsent_age_seconds);
}

/// Outbox events the broker acknowledged.
pub fn events_published(domain: &str, count: u64) {
    counter!(EVENTS_PUBLISHED, "domain" => domain.to_string()).increment(count);
}
