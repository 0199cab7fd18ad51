//! Scenario 4: a domain with many flow schemas, started with nothing pending and
//! with one new flow migration to apply to every schema.

use std::time::Instant;

use futures::StreamExt;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_init::db::Databases;
use vnext_init::flow_schema::{ensure_flow_schema, migrate_flow_schemas, migrate_flow_schemas_with};
use vnext_init::migrate::{Migration, MigrationSet, Migrations};

use super::components as c;
use super::scenarios::Ctx;

pub struct Figures {
    pub create_s: f64,
    pub startup_idle_s: f64,
    pub startup_migrate_s: f64,
    pub migrated: usize,
}

/// Creates `n` flow schemas in `domain`, then times the start-up migration pass.
///
/// # Errors
/// Set-up failures, as text.
pub async fn measure(ctx: &Ctx, domain: &str, n: usize) -> Result<Figures, String> {
    // Publishing provisions the domain (database, role, system schemas).
    ctx.client.publish(&c::loop_flow(domain, "bench-flow-seed")).await?;
    let dbs = Databases::connect(&ctx.config).await.map_err(|e| e.to_string())?;
    let name = DomainName::new(domain).map_err(|e| e.to_string())?;
    let pool = dbs.domain(&name).await.map_err(|e| e.to_string())?;

    let t = Instant::now();
    let results: Vec<Result<(), String>> = futures::stream::iter(0..n)
        .map(|i| {
            let pool = pool.clone();
            async move {
                let key = FlowKey::new(&format!("bench-flow-{i}")).map_err(|e| e.to_string())?;
                ensure_flow_schema(&pool, &key).await.map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(format!("creating flow schemas: {e}"));
    }
    let create_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let idle = migrate_flow_schemas(&pool, &name).await.map_err(|e| e.to_string())?;
    let startup_idle_s = t.elapsed().as_secs_f64();
    if let Some(f) = idle.failures().next() {
        return Err(format!("start-up pass failed on {}: {:?}", f.schema, f.error));
    }

    let next = Migrations::embedded().latest(MigrationSet::Flow) + 1;
    let upgraded = Migrations::embedded().with(Migration::new(
        MigrationSet::Flow,
        next,
        "bench_marker",
        "CREATE TABLE bench_marker (id integer PRIMARY KEY); CREATE INDEX bench_marker_idx ON instances (modified_at);",
    ));
    let t = Instant::now();
    let report = migrate_flow_schemas_with(&pool, &name, &upgraded).await.map_err(|e| e.to_string())?;
    let startup_migrate_s = t.elapsed().as_secs_f64();
    let migrated = report
        .schemas
        .iter()
        .filter(|s| s.flow_key != "bench-flow-seed")
        .filter(|s| s.error.is_none() && s.applied.iter().any(|a| a.version == next))
        .count();
    pool.close().await;
    Ok(Figures { create_s, startup_idle_s, startup_migrate_s, migrated })
}
