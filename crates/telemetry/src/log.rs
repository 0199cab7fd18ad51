//! Log output: `tracing` events on stderr as text or as JSON lines, and,
//! with the `otlp` cargo feature, the same spans exported as OpenTelemetry
//! traces over OTLP/HTTP.
//!
//! Text carries colour codes only when stderr is a terminal, so files and
//! log collectors get plain lines. JSON writes one object per line with the
//! event's fields and the fields of the spans it happened in (the request's
//! `request_id`, the run's domain, workflow and instance). `RUST_LOG` filters
//! both (default given by the caller).
//!
//! What is logged is chosen at the call sites: request bodies, instance data
//! and secrets never are; failures name their domain, workflow, instance,
//! transition, error code and trace id.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where traces go (`[telemetry]`); nothing is exported by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traces {
    /// OTLP/HTTP endpoint of a collector (`http://127.0.0.1:4318`); `None`: off.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

/// Keeps the trace exporter running; dropping it sends what is buffered.
#[must_use = "dropping the guard stops the trace exporter"]
#[derive(Default)]
pub struct Guard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the process-wide subscriber writing to stderr, exporting traces
/// as `traces` says; a second call changes nothing (tests and embedding
/// programs may have installed one already).
pub fn init(format: Format, default_filter: &str, traces: &Traces) -> Guard {
    let colour = std::io::stderr().is_terminal();
    install(format, default_filter, std::io::stderr, colour, traces)
}

/// Like [`init`] without traces, writing to `writer` (tests read what was
/// logged), with colour codes in text only when `colour`.
pub fn init_with_writer<W>(format: Format, default_filter: &str, writer: W, colour: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    drop(install(format, default_filter, writer, colour, &Traces::default()));
}

fn install<W>(format: Format, default_filter: &str, writer: W, colour: bool, traces: &Traces) -> Guard
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (text, json) = match format {
        Format::Text => (Some(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(colour)), None),
        Format::Json => {
            (None, Some(tracing_subscriber::fmt::layer().with_writer(writer).json().with_current_span(true).with_span_list(true)))
        }
    };
    let (otel, guard, problem) = otlp_layer(traces);
    // The OTLP layer sits on the registry itself; the filter applies to every layer.
    let installed = tracing_subscriber::registry().with(otel).with(filter).with(text).with(json).try_init().is_ok();
    if installed && let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
    guard
}

#[cfg(feature = "otlp")]
type OtelLayer = tracing_opentelemetry::OpenTelemetryLayer<tracing_subscriber::Registry, opentelemetry_sdk::trace::Tracer>;

/// The OTLP layer when an endpoint is configured (and the exporter builds).
#[cfg(feature = "otlp")]
fn otlp_layer(traces: &Traces) -> (Option<OtelLayer>, Guard, Option<String>) {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;

    let Some(endpoint) = traces.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) else {
        return (None, Guard::default(), None);
    };
    let endpoint = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(&endpoint).build() {
        Ok(e) => e,
        Err(e) => return (None, Guard::default(), Some(format!("traces are not exported: the OTLP exporter for {endpoint} failed: {e}"))),
    };
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(traces.service_name.clone()).build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("vnext"));
    (Some(layer), Guard { provider: Some(provider) }, None)
}

/// Without the `otlp` feature nothing is exported; a configured endpoint is
/// reported once.
#[cfg(not(feature = "otlp"))]
fn otlp_layer(traces: &Traces) -> (Option<tracing_subscriber::layer::Identity>, Guard, Option<String>) {
    let problem = traces.otlp_endpoint.as_deref().filter(|e| !e.is_empty()).map(|e| {
        format!("telemetry.otlp_endpoint is {e}, but this build exports no traces: build with `cargo build --release --features otlp`")
    });
    (None, Guard::default(), problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_endpoint_exports_nothing_and_says_nothing() {
        let (layer, _guard, problem) = otlp_layer(&Traces::default());
        assert!(layer.is_none() && problem.is_none());
    }

    #[cfg(not(feature = "otlp"))]
    #[test]
    fn an_endpoint_in_a_build_without_the_exporter_is_reported() {
        let traces = Traces { otlp_endpoint: Some("http://127.0.0.1:4318".into()), service_name: "vnext".into() };
        let (layer, _guard, problem) = otlp_layer(&traces);
        assert!(layer.is_none());
        assert!(problem.is_some_and(|p| p.contains("--features otlp") && p.contains("127.0.0.1:4318")));
    }
}
