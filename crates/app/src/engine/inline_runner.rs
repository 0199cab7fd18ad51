//! In-process runs of async jobs through the same trigger the scheduler calls.
//!
//! - [`nudge`]: right after an async request commits, drains the domain's due
//!   async jobs (until the execution service's scheduler runs in every
//!   deployment; then this part and `Engine::after_accept`'s call can go).
//! - [`run_followups`]: the jobs a commit wrote for other instances (a subflow
//!   child's start, a parent's resume) run right after it, claimed like the
//!   scheduler claims them, so each still runs exactly once.

use std::time::Duration;

use serde_json::Value;
use sqlx::AssertSqlSafe;
use uuid::Uuid;
use vnext_core::ident::DomainName;
use vnext_core::traits::{TriggerOrigin, TriggerOutcome, TriggerRequest};

use super::Engine;

type Claimed = (Uuid, String, Uuid, String, Option<String>, Option<Value>, i32);

/// Starts draining `domain`'s due async jobs in the background.
pub(crate) fn nudge(engine: Engine, domain: DomainName) {
    tokio::spawn(async move {
        if let Err(e) = drain(&engine, &domain).await {
            tracing::warn!(domain = %domain, error = %e, "in-process async runner stopped");
        }
    });
}

/// Runs jobs a commit created for other instances (a child's start, a
/// parent's resume) right away, each if still pending; one that cannot run now
/// (its instance is busy) is left to the in-process runner and the scheduler.
pub(crate) async fn run_followups(engine: &Engine, domain: &DomainName, jobs: Vec<Uuid>) {
    let pool = match engine.pool(domain).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(domain = %domain, error = %e, "follow-up jobs left to the scheduler");
            return;
        }
    };
    let mut deferred = false;
    for id in jobs {
        let claimed: Result<Option<Claimed>, sqlx::Error> = sqlx::query_as(AssertSqlSafe(format!("{CLAIM} WHERE id = $1 AND status = 'pending' {RETURNING}")))
            .bind(id)
            .fetch_optional(&pool)
            .await;
        match claimed {
            Ok(Some(job)) => match Box::pin(run_claimed(engine, domain, &pool, job)).await {
                Ok(true) => {}
                Ok(false) => deferred = true,
                Err(e) => tracing::warn!(domain = %domain, job = %id, error = %e, "follow-up job failed"),
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(domain = %domain, job = %id, error = %e, "follow-up job left to the scheduler");
                deferred = true;
            }
        }
    }
    if deferred {
        nudge(engine.clone(), domain.clone());
    }
}

const CLAIM: &str = "UPDATE sys_queues.jobs SET status = 'running', locked_by = 'app-inline', \
     locked_until = now() + interval '60 seconds', attempts = attempts + 1";
const RETURNING: &str = "RETURNING id, flow, instance_id, transition_key, armed_state, body, attempts";

/// Runs one claimed async job and settles it. False: it is pending again
/// (its instance was busy).
async fn run_claimed(engine: &Engine, domain: &DomainName, pool: &sqlx::PgPool, job: Claimed) -> Result<bool, String> {
    let (id, flow, instance_id, transition, armed_state, body, attempt) = job;
    let request = TriggerRequest {
        domain: domain.to_string(),
        flow,
        instance_id,
        transition,
        origin: TriggerOrigin::Async,
        armed_state,
        body: body.unwrap_or(Value::Null),
        job_id: id,
        attempt,
    };
    let (status, error) = match engine.do_trigger(request).await {
        Ok(TriggerOutcome::Applied) => return Ok(true),
        Ok(TriggerOutcome::Stale) => ("cancelled", None),
        Ok(TriggerOutcome::Busy) => ("pending", None),
        Err(e) => ("failed", Some(e.message)),
    };
    sqlx::query(
        "UPDATE sys_queues.jobs SET status = $2, last_error = $3, locked_by = NULL, locked_until = NULL, \
         due_at = CASE WHEN $2 = 'pending' THEN now() + interval '50 milliseconds' ELSE due_at END, \
         finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .execute(pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(status != "pending")
}

async fn drain(engine: &Engine, domain: &DomainName) -> Result<(), String> {
    let pool = engine.pool(domain).await.map_err(|e| e.to_string())?;
    let mut busy_rounds = 0;
    loop {
        let job: Option<Claimed> = sqlx::query_as(AssertSqlSafe(format!(
            "{CLAIM} WHERE id = (SELECT id FROM sys_queues.jobs WHERE status = 'pending' AND kind = 'async' AND due_at <= now() \
             ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) {RETURNING}"
        )))
        .fetch_optional(&pool)
        .await
        .map_err(|e| e.to_string())?;
        let Some(job) = job else { return Ok(()) };
        if !Box::pin(run_claimed(engine, domain, &pool, job)).await? {
            busy_rounds += 1;
            if busy_rounds > 200 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
