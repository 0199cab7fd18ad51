//! Log output: `tracing` events on stderr as text or as JSON lines.
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

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the process-wide subscriber writing to stderr; a second call
/// changes nothing (tests and embedding programs may have installed one).
pub fn init(format: Format, default_filter: &str) {
    let colour = std::io::stderr().is_terminal();
    init_with_writer(format, default_filter, std::io::stderr, colour);
}

/// Like [`init`], writing to `writer` (tests read what was logged), with colour
/// codes in text only when `colour`.
pub fn init_with_writer<W>(format: Format, default_filter: &str, writer: W, colour: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let _ = match format {
        Format::Text => builder.with_ansi(colour).try_init(),
        Format::Json => builder.json().with_current_span(true).with_span_list(true).try_init(),
    };
}
