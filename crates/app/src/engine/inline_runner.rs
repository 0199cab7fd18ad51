//! A small in-process runner for async jobs, used until the execution
//! service's scheduler runs them: right after an async request commits, it
//! drains the domain's due async jobs through the same trigger the scheduler
//! calls. Remove this module (and `Engine::after_accept`'s call) once the
//! scheduler runs in every deployment.

use std::time::Duration;

use serde_json::Value;
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

async fn drain(engine: &Engine, domain: &DomainName) -> Result<(), String> {
    let pool = engine.pool(domain).await.map_err(|e| e.to_string())?;
    let mut busy_rounds = 0;
    loop {
        let job: Option<Claimed> = sqlx::query_as(
            "UPDATE sys_queues.jobs SET status = 'running', locked_by = 'app-inline', \
             locked_until = now() + interval '60 seconds', attempts = attempts + 1 \
             WHERE id = (SELECT id FROM sys_queues.jobs WHERE status = 'pending' AND kind = 'async' AND due_at <= now() \
                         ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, flow, instance_id, transition_key, armed_state, body, attempts",
        )
        .fetch_optional(&pool)
        .await
        .map_err(|e| e.to_string())?;
        let Some((id, flow, instance_id, transition, armed_state, body, attempt)) = job else { return Ok(()) };
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
            Ok(TriggerOutcome::Applied) => continue,
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
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
        if status == "pending" {
            busy_rounds += 1;
            if busy_rounds > 200 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
