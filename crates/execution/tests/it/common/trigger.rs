//! A `TransitionTrigger` for tests: records every call and settles the job the
//! way the app does, by marking it done in its own transaction (`Applied`), or
//! answering `Stale` when the job was no longer running. Answers can be
//! scripted per job to exercise busy, stale and failure handling.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use futures::future::BoxFuture;
use sqlx::PgPool;
use uuid::Uuid;
use vnext_core::traits::{TransitionTrigger, TriggerError, TriggerOutcome, TriggerRequest};

/// A scripted answer, used instead of running the "transition".
#[derive(Debug, Clone)]
pub enum Scripted {
    Outcome(TriggerOutcome),
    Error { retryable: bool },
}

pub struct RecordingTrigger {
    pool: PgPool,
    pub calls: Mutex<Vec<TriggerRequest>>,
    script: Mutex<HashMap<Uuid, VecDeque<Scripted>>>,
}

impl RecordingTrigger {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, calls: Mutex::default(), script: Mutex::default() }
    }

    /// The next answers for `job`, in order; afterwards it is applied normally.
    pub fn script(&self, job: Uuid, answers: impl IntoIterator<Item = Scripted>) {
        self.script.lock().unwrap().entry(job).or_default().extend(answers);
    }

    pub fn calls(&self) -> Vec<TriggerRequest> {
        self.calls.lock().unwrap().clone()
    }

    pub fn calls_per_job(&self) -> HashMap<Uuid, usize> {
        let mut out = HashMap::new();
        for c in self.calls.lock().unwrap().iter() {
            *out.entry(c.job_id).or_default() += 1;
        }
        out
    }

    async fn run(&self, request: TriggerRequest) -> Result<TriggerOutcome, TriggerError> {
        let job = request.job_id;
        self.calls.lock().unwrap().push(request);
        let scripted = self.script.lock().unwrap().get_mut(&job).and_then(VecDeque::pop_front);
        match scripted {
            Some(Scripted::Outcome(o)) => Ok(o),
            Some(Scripted::Error { retryable }) => {
                Err(TriggerError { message: format!("scripted failure of job {job}"), retryable })
            }
            None => {
                // What the app's pipeline does: settle the job in the transaction
                // that commits the transition.
                let mut tx = self.pool.begin().await.map_err(|e| TriggerError { message: e.to_string(), retryable: true })?;
                let done = sqlx::query(
                    "UPDATE sys_queues.jobs SET status = 'done', finished_at = now() WHERE id = $1 AND status = 'running'",
                )
                .bind(job)
                .execute(&mut *tx)
                .await
                .map_err(|e| TriggerError { message: e.to_string(), retryable: true })?;
                if done.rows_affected() == 0 {
                    return Ok(TriggerOutcome::Stale);
                }
                tx.commit().await.map_err(|e| TriggerError { message: e.to_string(), retryable: true })?;
                Ok(TriggerOutcome::Applied)
            }
        }
    }
}

impl TransitionTrigger for RecordingTrigger {
    fn trigger(&self, request: TriggerRequest) -> BoxFuture<'_, Result<TriggerOutcome, TriggerError>> {
        Box::pin(self.run(request))
    }
}
