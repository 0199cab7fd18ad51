//! The baseline: the same writes as one manual transition, issued directly.
//!
//! Each transaction updates an instance row (state, 1 KB data, modified time)
//! and appends one history row with the body, at the same concurrency as the
//! engine run. Its throughput is the ceiling the engine is compared with.

use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use super::load::{self, Stop};
use super::stats::Summary;

const SCHEMA: &str = "bench_raw";

/// Runs the baseline against `database_url` with `clients` connections.
///
/// # Errors
/// Connection or DDL failures, as text.
pub async fn run(database_url: &str, clients: usize, stop: Stop, body: Value) -> Result<Summary, String> {
    let pool = PgPoolOptions::new()
        .max_connections(clients as u32)
        .connect(database_url)
        .await
        .map_err(|e| format!("raw baseline cannot connect: {e}"))?;
    let ddl = [
        format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"),
        format!("CREATE SCHEMA {SCHEMA}"),
        format!("CREATE TABLE {SCHEMA}.instances (id uuid PRIMARY KEY, state text NOT NULL, data jsonb NOT NULL, modified_at timestamptz NOT NULL)"),
        format!("CREATE TABLE {SCHEMA}.history (id uuid PRIMARY KEY, instance_id uuid NOT NULL, from_state text, to_state text NOT NULL, body jsonb, at timestamptz NOT NULL)"),
    ];
    for stmt in &ddl {
        sqlx::query(AssertSqlSafe(stmt.as_str())).execute(&pool).await.map_err(|e| format!("raw baseline DDL: {e}"))?;
    }
    let ids: Vec<Uuid> = (0..clients).map(|_| Uuid::new_v4()).collect();
    for id in &ids {
        sqlx::query(AssertSqlSafe(format!("INSERT INTO {SCHEMA}.instances VALUES ($1, 'ping', '{{}}', now())")))
            .bind(id)
            .execute(&pool)
            .await
            .map_err(|e| format!("raw baseline seed: {e}"))?;
    }
    let update = format!("UPDATE {SCHEMA}.instances SET state = $2, data = $3, modified_at = now() WHERE id = $1");
    let insert = format!("INSERT INTO {SCHEMA}.history VALUES ($1, $2, $3, $4, $5, now())");
    let shared = std::sync::Arc::new((pool.clone(), ids, update, insert, body));
    let summary = load::run(clients, stop, move |client, i| {
        let shared = shared.clone();
        async move {
            let (pool, ids, update, insert, body) = &*shared;
            let (from, to) = if i % 2 == 0 { ("ping", "pong") } else { ("pong", "ping") };
            let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
            sqlx::query(AssertSqlSafe(update.as_str())).bind(ids[client]).bind(to).bind(body).execute(&mut *tx).await.map_err(|e| e.to_string())?;
            sqlx::query(AssertSqlSafe(insert.as_str()))
                .bind(Uuid::new_v4())
                .bind(ids[client])
                .bind(from)
                .bind(to)
                .bind(body)
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())
        }
    })
    .await;
    let _ = sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))).execute(&pool).await;
    pool.close().await;
    Ok(summary)
}
