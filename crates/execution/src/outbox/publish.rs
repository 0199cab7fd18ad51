//! One relay round over one domain's outbox: claim, publish, mark, in one
//! transaction.
//!
//! The claim is `FOR UPDATE SKIP LOCKED` inside a transaction that also holds
//! the domain's relay advisory lock, so however many relays run, one domain's
//! rows are published by one of them at a time, in id order; per instance that
//! is commit order, because an instance's writes are serialized. Rows are
//! marked sent in the same transaction, after JetStream acknowledged them: a
//! relay that dies mid-round commits nothing, and its rows are published again
//! by the next round with the same `Nats-Msg-Id`, which JetStream drops as
//! duplicates within the stream's duplicate window.

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Advisory lock key of the relay within a domain database.
const RELAY_LOCK: &str = "vnext.outbox.relay";

/// A round that could not finish; its rows stay unsent.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// One unsent outbox row.
#[derive(Debug, sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    flow: String,
    instance_id: Uuid,
    event_type: String,
    payload: Value,
    created_at: DateTime<Utc>,
}

/// What a round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows acknowledged by the broker and marked sent.
    pub published: usize,
}

/// The stable message id of a row: JetStream deduplicates on it and it is the
/// CloudEvents `id`.
pub fn message_id(domain: &str, row_id: i64) -> String {
    format!("{domain}:outbox:{row_id}")
}

/// The subject of an event: `<prefix>.<domain>.<workflow>.<event type>`.
pub fn subject(prefix: &str, domain: &str, workflow: &str, event_type: &str) -> String {
    format!("{prefix}.{domain}.{workflow}.{event_type}")
}

/// Publishes up to `batch` unsent rows of one domain. Returns without work
/// when another relay holds the domain.
pub async fn round(pool: &PgPool, js: &Context, domain: &str, prefix: &str, batch: u32) -> Result<Round, RoundError> {
    let mut tx = pool.begin().await?;
    let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
        .bind(RELAY_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !mine {
        return Ok(Round::default());
    }
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT id, flow, instance_id, event_type, payload, created_at FROM sys_queues.outbox
         WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(i64::from(batch))
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(Round::default());
    }
    // Publish the whole batch first, then collect the acknowledgements in
    // order: one round trip per batch rather than per row.
    let mut pending = Vec::with_capacity(rows.len());
    let mut failure = None;
    for row in &rows {
        let (headers, body) = cloud_event(domain, row);
        match js.publish_with_headers(subject(prefix, domain, &row.flow, &row.event_type), headers, body.into()).await {
            Ok(ack) => pending.push(ack),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let mut acked = Vec::with_capacity(pending.len());
    for (row, ack) in rows.iter().zip(pending) {
        match ack.await {
            Ok(_) => acked.push(row.id),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    sqlx::query("UPDATE sys_queues.outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY($1)")
        .bind(&acked)
        .execute(&mut *tx)
        .await?;
    if let (Some(error), Some(first_unsent)) = (&failure, rows.get(acked.len())) {
        tracing::warn!(domain, row = first_unsent.id, error = %error, "the broker did not acknowledge an outbox event; it is sent again");
        sqlx::query("UPDATE sys_queues.outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
            .bind(first_unsent.id)
            .bind(error)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Round { claimed: rows.len(), published: acked.len() })
}

/// The CloudEvents binary-mode headers and the body (the event's payload).
fn cloud_event(domain: &str, row: &OutboxRow) -> (HeaderMap, Vec<u8>) {
    let id = message_id(domain, row.id);
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    headers.insert("ce-specversion", "1.0");
    headers.insert("ce-id", id.as_str());
    headers.insert("ce-source", format!("/{domain}/workflows/{}", row.flow).as_str());
    headers.insert("ce-type", row.event_type.as_str());
    headers.insert("ce-time", row.created_at.to_rfc3339_opts(SecondsFormat::Micros, true).as_str());
    headers.insert("ce-subject", row.instance_id.to_string().as_str());
    headers.insert("content-type", "application/json");
    let body = serde_json::to_vec(&row.payload).unwrap_or_default();
    (headers, body)
}

/// Deletes rows past retention: sent ones when a broker is configured, every
/// one otherwise (nothing will ever send them). Returns how many.
pub async fn purge(pool: &PgPool, before: DateTime<Utc>, broker: bool) -> Result<u64, sqlx::Error> {
    let sql = if broker {
        "DELETE FROM sys_queues.outbox WHERE id IN (SELECT id FROM sys_queues.outbox WHERE published_at < $1 LIMIT 5000)"
    } else {
        "DELETE FROM sys_queues.outbox WHERE id IN (SELECT id FROM sys_queues.outbox WHERE created_at < $1 LIMIT 5000)"
    };
    let mut total = 0;
    loop {
        let n = sqlx::query(sql).bind(before).execute(pool).await?.rows_affected();
        total += n;
        if n < 5000 {
            return Ok(total);
        }
    }
}

/// Unsent rows and the age of the oldest, in seconds.
pub async fn backlog(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0)
         FROM sys_queues.outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await
}
