//! The scheduler over the domain registry: every provisioned domain is served,
//! including domains provisioned while it runs, each through its own pool.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vnext_core::ident::DomainName;
use vnext_core::traits::{TransitionTrigger, TriggerError, TriggerOutcome, TriggerRequest};
use vnext_execution::{Scheduler, SchedulerConfig};
use vnext_init::db::Databases;
use vnext_init::queue::{self as queues, JobKind, NewJob};

use common::env::TestEnv;

/// Settles each job in its own domain's database, as the app would.
struct PerDomainTrigger {
    dbs: Databases,
    fired: Mutex<Vec<(String, Uuid)>>,
}

impl TransitionTrigger for PerDomainTrigger {
    fn trigger(&self, request: TriggerRequest) -> BoxFuture<'_, Result<TriggerOutcome, TriggerError>> {
        Box::pin(async move {
            let err = |e: String| TriggerError { message: e, retryable: true };
            let domain = DomainName::new(&request.domain).map_err(|e| err(e.to_string()))?;
            let pool = self.dbs.domain(&domain).await.map_err(|e| err(e.to_string()))?;
            let done = sqlx::query("UPDATE sys_queues.jobs SET status = 'done', finished_at = now() WHERE id = $1 AND status = 'running'")
                .bind(request.job_id)
                .execute(&pool)
                .await
                .map_err(|e| err(e.to_string()))?;
            self.fired.lock().unwrap().push((request.domain.clone(), request.job_id));
            Ok(if done.rows_affected() == 1 { TriggerOutcome::Applied } else { TriggerOutcome::Stale })
        })
    }
}

async fn enqueue_in(dbs: &Databases, domain: &DomainName) -> Uuid {
    let pool = dbs.domain(domain).await.unwrap();
    let job = NewJob {
        id: Uuid::new_v4(),
        kind: JobKind::Async,
        flow: "order".into(),
        instance_id: Uuid::new_v4(),
        transition_key: "approve".into(),
        armed_state: Some("review".into()),
        body: None,
        due_at: Utc::now(),
    };
    let mut conn = pool.acquire().await.unwrap();
    queues::enqueue(&mut conn, &job).await.unwrap();
    job.id
}

async fn wait_for(trigger: &PerDomainTrigger, job: Uuid) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if trigger.fired.lock().unwrap().iter().any(|(_, j)| *j == job) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn serves_every_registered_domain_including_new_ones() {
    let env = TestEnv::new().await;
    let alpha = env.provision("alpha").await;
    let trigger = Arc::new(PerDomainTrigger { dbs: env.dbs.clone(), fired: Mutex::default() });
    let config = SchedulerConfig {
        worker_id: "registry-worker".into(),
        domain_refresh: Duration::from_millis(200),
        ..SchedulerConfig::from_config(&env.config)
    };
    let scheduler = Scheduler::new(Arc::new(env.dbs.clone()), trigger.clone(), config);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(scheduler.run(shutdown.clone()));

    let a = enqueue_in(&env.dbs, &alpha).await;
    assert!(wait_for(&trigger, a).await, "job of domain alpha did not fire");

    // A domain provisioned while the scheduler runs is picked up.
    let beta = env.provision("beta-payments").await;
    let b = enqueue_in(&env.dbs, &beta).await;
    assert!(wait_for(&trigger, b).await, "job of the new domain did not fire");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), running).await.expect("stops").unwrap();
    let fired = trigger.fired.lock().unwrap().clone();
    assert_eq!(fired, vec![(alpha.to_string(), a), (beta.to_string(), b)]);
}
