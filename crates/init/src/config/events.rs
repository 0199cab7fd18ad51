//! `[events]`: where the outbox is delivered and how long sent rows are kept.
//!
//! The execution service's outbox relay reads it; see `docs/events.md`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// NATS server the relay publishes to (`nats://127.0.0.1:4222`). Empty: no
    /// broker; the outbox is kept and pruned by retention only.
    pub nats_url: String,
    /// JetStream stream the relay creates if missing and publishes into.
    pub stream: String,
    /// First subject token: events go to `<prefix>.<domain>.<workflow>.<event>`.
    pub subject_prefix: String,
    /// Rows one relay round claims and publishes per domain, at most.
    pub relay_batch: u32,
    /// Without work, look for unsent rows at least this often.
    pub relay_poll_ms: u64,
    /// Sent rows older than this are deleted; unsent rows are never deleted
    /// while a broker is configured. Without a broker every row counts as sent
    /// at its creation, so the outbox stays bounded.
    pub retention_hours: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            nats_url: String::new(),
            stream: "VNEXT_EVENTS".into(),
            subject_prefix: "vnext".into(),
            relay_batch: 500,
            relay_poll_ms: 500,
            retention_hours: 72,
        }
    }
}

impl EventsConfig {
    /// Whether a broker is configured.
    pub fn broker(&self) -> Option<&str> {
        let url = self.nats_url.trim();
        (!url.is_empty()).then_some(url)
    }
}
