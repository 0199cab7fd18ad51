//! The outbox relay: delivers `sys_queues.outbox` of every active domain to
//! NATS JetStream, and prunes the outbox by retention.
//!
//! Each round claims a batch per domain and marks it sent only after the
//! broker's acknowledgement (see [`publish`]). Without a broker configured
//! (`events.nats_url` empty) the relay only prunes, and says so once at start.
//! Behaviour and configuration are documented in `docs/events.md`.

pub mod publish;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, Context};
use tokio_util::sync::CancellationToken;
use vnext_init::config::events::EventsConfig;

use crate::scheduler::DomainSource;

/// How often the retention purge and the backlog metrics run per domain.
const UPKEEP_EVERY: Duration = Duration::from_secs(30);
/// How long JetStream remembers message ids for deduplication.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// Why the relay could not reach its broker.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot connect to the event broker: {0}")]
    Connect(String),
    #[error("cannot create or read the event stream `{stream}`: {message}")]
    Stream { stream: String, message: String },
}

/// Publishes the outbox of every domain a [`DomainSource`] lists.
pub struct OutboxRelay {
    source: Arc<dyn DomainSource>,
    config: EventsConfig,
    broker: Option<Context>,
    last_upkeep: Option<Instant>,
}

impl OutboxRelay {
    /// Connects to the configured broker (if any) and makes sure the stream
    /// exists, capturing `<subject_prefix>.>`.
    ///
    /// # Errors
    /// [`RelayError`] when a broker is configured but unreachable.
    pub async fn connect(source: Arc<dyn DomainSource>, config: EventsConfig) -> Result<Self, RelayError> {
        let broker = match config.broker() {
            None => {
                tracing::info!(
                    retention_hours = config.retention_hours,
                    "no event broker configured (events.nats_url): the outbox is kept and pruned by retention, nothing is published"
                );
                None
            }
            Some(url) => {
                let client = async_nats::connect(url).await.map_err(|e| RelayError::Connect(e.to_string()))?;
                let js = jetstream::new(client);
                let stream = jetstream::stream::Config {
                    name: config.stream.clone(),
                    subjects: vec![format!("{}.>", config.subject_prefix)],
                    duplicate_window: DUPLICATE_WINDOW,
                    ..Default::default()
                };
                js.get_or_create_stream(stream)
                    .await
                    .map_err(|e| RelayError::Stream { stream: config.stream.clone(), message: e.to_string() })?;
                tracing::info!(stream = %config.stream, subjects = %format!("{}.>", config.subject_prefix), "outbox relay publishing to JetStream");
                Some(js)
            }
        };
        Ok(Self { source, config, broker, last_upkeep: None })
    }

    /// Whether rows are published (a broker is configured).
    pub fn publishes(&self) -> bool {
        self.broker.is_some()
    }

    /// One pass over every domain: publishes until each domain's outbox is
    /// drained (or a round fails), then runs the upkeep if it is due. Returns
    /// the rows published.
    pub async fn tick(&mut self) -> usize {
        let domains = match self.source.domains().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay cannot list domains");
                return 0;
            }
        };
        let upkeep = self.last_upkeep.is_none_or(|t| t.elapsed() >= UPKEEP_EVERY);
        let mut total = 0;
        for domain in &domains {
            let pool = match self.source.pool(domain).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(domain = %domain, error = %e, "outbox relay cannot reach the domain");
                    continue;
                }
            };
            let name = domain.to_string();
            if let Some(js) = &self.broker {
                loop {
                    match publish::round(&pool, js, &name, &self.config.subject_prefix, self.config.relay_batch).await {
                        Ok(r) => {
                            total += r.published;
                            vnext_telemetry::metrics::events_published(&name, r.published as u64);
                            if r.published == 0 || r.published < r.claimed || r.claimed < self.config.relay_batch as usize {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(domain = %name, error = %e, "outbox relay round failed");
                            break;
                        }
                    }
                }
            }
            if upkeep {
                self.upkeep(&pool, &name).await;
            }
        }
        if upkeep {
            self.last_upkeep = Some(Instant::now());
        }
        total
    }

    async fn upkeep(&self, pool: &sqlx::PgPool, domain: &str) {
        let hours = i64::try_from(self.config.retention_hours).unwrap_or(i64::MAX / 3_600_000);
        let before = chrono::Utc::now() - chrono::Duration::hours(hours);
        match publish::purge(pool, before, self.broker.is_some()).await {
            Ok(n) if n > 0 => tracing::info!(domain, rows = n, "outbox rows past retention deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(domain, error = %e, "cannot prune the outbox"),
        }
        match publish::backlog(pool).await {
            Ok((unsent, age)) => vnext_telemetry::metrics::outbox(domain, unsent as f64, age),
            Err(e) => tracing::warn!(domain, error = %e, "cannot measure the outbox"),
        }
    }

    /// Runs passes until `shutdown` fires, sleeping `relay_poll_ms` after a
    /// pass that published nothing.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.config.relay_poll_ms);
        while !shutdown.is_cancelled() {
            let published = self.tick().await;
            if published == 0 {
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
}
