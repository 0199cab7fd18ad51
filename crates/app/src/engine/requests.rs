//! The three requests: start, transition and retry, each either run now
//! (`sync`) or recorded as an async job and answered at once.

use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine::{self, Caller};
use vnext_core::model::Transition;
use vnext_core::version::INITIAL_DATA_VERSION;

use super::context::RequestData;
use super::definitions::CompiledFlow;
use vnext_init::{flow_schema, queues};
use super::run::{gate_error, First, Hold, Origin, Run, RunSpec};
use super::{
    Engine, EngineError, InstanceRef, InstanceStatus, Outcome, PayloadError, RetryRequest, StartRequest, TransitionRequest,
};
use crate::store::{self, InstanceRow, InstanceWrite, Lease, LockError, Records, WriteMode};

/// `executionType` on a transition overrides the request's `sync`.
fn effective_sync(requested: bool, t: &Transition) -> bool {
    match t.execution_type.as_deref() {
        Some("S") => true,
        Some("A") => false,
        _ => requested,
    }
}

/// The body of an async job: everything the run needs later.
pub(crate) fn job_body(req: &RequestData, first: &First) -> Value {
    json!({"attributes": req.body, "headers": req.headers, "query": req.query, "first": first.to_value()})
}

/// Reads a job body written by [`job_body`].
pub(crate) fn from_job_body(body: &Value, fallback_key: &str) -> (RequestData, First) {
    let map = |k: &str| body.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
    let req = RequestData::new(body.get("attributes").cloned().unwrap_or(Value::Null), map("headers"), map("query"));
    let first = First::from_value(body.get("first").unwrap_or(&Value::Null), fallback_key);
    (req, first)
}

fn validate_payload(def: &CompiledFlow, path: &str, key: &str, body: &Value) -> Result<(), EngineError> {
    if let Some(schema) = def.schema(path) {
        let payload = if body.is_null() { json!({}) } else { body.clone() };
        let errors = schema.errors(&payload);
        if !errors.is_empty() {
            return Err(EngineError::InvalidPayload { transition: key.to_string(), errors });
        }
    }
    if !body.is_null() && !body.is_object() {
        return Err(EngineError::InvalidPayload {
            transition: key.to_string(),
            errors: vec![PayloadError { pointer: String::new(), message: "attributes must be a JSON object".into() }],
        });
    }
    Ok(())
}

fn instance_name(r: &InstanceRef) -> String {
    r.to_string()
}

impl Engine {
    pub(crate) async fn pool(&self, domain: &DomainName) -> Result<PgPool, EngineError> {
        self.inner.databases.domain(domain).await.map_err(|e| match e {
            super::DbError::UnknownDomain(d) => EngineError::UnknownDomain(d),
            other => EngineError::Internal(format!("domain `{domain}`: {other}")),
        })
    }

    async fn ensure_schema(&self, pool: &PgPool, domain: &DomainName, flow: &FlowKey) -> Result<(), EngineError> {
        let id = (domain.ident().to_string(), flow.ident().to_string());
        if self.inner.ensured.lock().expect("ensured schemas").contains(&id) {
            return Ok(());
        }
        flow_schema::ensure_flow_schema(pool, flow)
            .await
            .map_err(|e| EngineError::Internal(format!("creating the schema of workflow `{flow}`: {e}")))?;
        self.inner.ensured.lock().expect("ensured schemas").insert(id);
        Ok(())
    }

    /// Locks an instance for a request and checks it can take one.
    async fn lock_instance(
        &self,
        pool: &PgPool,
        flow: &FlowKey,
        r: &InstanceRef,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, InstanceRow), EngineError> {
        let unknown = || EngineError::UnknownInstance { flow: flow.to_string(), instance: instance_name(r) };
        let mut tx = pool.begin().await?;
        let row = match store::instances::lock(&mut tx, flow, r).await {
            Ok(Some(row)) => row,
            Ok(None) => return Err(unknown()),
            Err(LockError::Busy) => return Err(EngineError::Busy { instance: instance_name(r) }),
            Err(LockError::Db(e)) if store::is_missing_schema(&e) => return Err(unknown()),
            Err(LockError::Db(e)) => return Err(e.into()),
        };
        Ok((tx, row))
    }

    pub(crate) async fn do_start(&self, req: StartRequest) -> Result<Outcome, EngineError> {
        let pool = self.pool(&req.domain).await?;
        let def = self.inner.definitions.select(&pool, &req.domain, &req.flow, req.version.as_deref()).await?;
        self.ensure_schema(&pool, &req.domain, &req.flow).await?;
        if let Some(key) = &req.key
            && let Some(row) = store::instances::find(&pool, &req.flow, &InstanceRef::Key(key.clone())).await?
        {
            return Ok(if req.sync {
                Outcome::Done(row.snapshot(&req.domain, &req.flow))
            } else {
                Outcome::Accepted { id: row.id, status: row.status() }
            });
        }
        let now = self.inner.clock.now();
        let wf = &def.workflow;
        let row = InstanceRow {
            id: Uuid::now_v7(),
            key: req.key.clone(),
            flow_version: def.version.clone(),
            status: "A".into(),
            current_state: machine::start_position(wf).to_string(),
            data: json!({}),
            data_version: INITIAL_DATA_VERSION.to_string(),
            data_version_no: 0,
            etag: Uuid::new_v4().simple().to_string(),
            tags: req.tags.clone(),
            has_incident: false,
            created_at: now,
            modified_at: now,
            completed_at: None,
            lease_token: None,
            lease_until: None,
            lease_transition: None,
            lease_job_id: None,
        };
        let data = RequestData::new(req.attributes, req.headers, req.query);
        if !effective_sync(req.sync, &wf.start_transition) {
            validate_payload(&def, "/startTransition", &wf.start_transition.key, &data.body)?;
            return self.accept_start(&pool, &req.domain, &req.flow, row, &data, &wf.start_transition.key).await;
        }
        let run = Run::new(RunSpec {
            eng: self.inner.clone(),
            domain: req.domain,
            flow: req.flow,
            def,
            pool,
            hold: Hold::Fresh,
            row,
            fresh: true,
            req: data,
            origin: Origin::Api,
            first: First::Start,
            job_id: None,
        });
        run.run().await.map(Outcome::Done)
    }

    /// Creates the instance busy, owned by an async job that runs its start.
    async fn accept_start(
        &self,
        pool: &PgPool,
        domain: &DomainName,
        flow: &FlowKey,
        row: InstanceRow,
        data: &RequestData,
        start_key: &str,
    ) -> Result<Outcome, EngineError> {
        let now = self.inner.clock.now();
        let job_id = Uuid::now_v7();
        let lease = self.lease(start_key, job_id);
        let write = InstanceWrite {
            id: row.id,
            key: row.key.as_deref(),
            flow_version: &row.flow_version,
            status: InstanceStatus::Busy,
            current_state: &row.current_state,
            data: &row.data,
            data_version: &row.data_version,
            data_version_no: row.data_version_no,
            etag: &row.etag,
            tags: &row.tags,
            has_incident: false,
            completed_at: None,
            now,
            lease: Some(&lease),
        };
        let mut tx = pool.begin().await?;
        if !store::apply(&mut tx, flow, WriteMode::Insert, &write, &Records::default()).await? {
            drop(tx);
            let key = row.key.clone().unwrap_or_default();
            let existing = store::instances::find(pool, flow, &InstanceRef::Key(key)).await?;
            let existing = existing.ok_or_else(|| EngineError::Internal("instance key conflict without an instance".into()))?;
            return Ok(Outcome::Accepted { id: existing.id, status: existing.status() });
        }
        let job = async_job(job_id, flow, row.id, start_key, None, job_body(data, &First::Start), now);
        queues::enqueue(&mut tx, &job).await?;
        tx.commit().await?;
        self.after_accept(domain);
        Ok(Outcome::Accepted { id: row.id, status: InstanceStatus::Busy })
    }

    fn lease(&self, transition: &str, job_id: Uuid) -> Lease {
        let secs = self.inner.databases.config().runtime.lease_seconds as i64;
        Lease {
            token: Uuid::new_v4(),
            until: self.inner.clock.now() + chrono::Duration::seconds(secs),
            transition: transition.to_string(),
            job_id: Some(job_id),
        }
    }

    pub(crate) async fn do_transition(&self, req: TransitionRequest) -> Result<Outcome, EngineError> {
        let pool = self.pool(&req.domain).await?;
        let (tx, row) = self.lock_instance(&pool, &req.flow, &req.instance).await?;
        let data = RequestData::new(req.attributes, req.headers, req.query);
        let first = First::Named { key: req.transition.clone(), caller: Caller::Client };
        let checked = async {
            match row.status() {
                InstanceStatus::Busy => return Err(EngineError::Busy { instance: instance_name(&req.instance) }),
                s if s.is_finished() => {
                    return Err(EngineError::Finished { instance: instance_name(&req.instance), status: s.code().to_string() });
                }
                _ => {}
            }
            let def = self.inner.definitions.get(&pool, &req.domain, &req.flow, &row.flow_version).await?;
            let r = machine::resolve(&def.workflow, &row.current_state, &req.transition, Caller::Client).map_err(gate_error)?;
            let sync = effective_sync(req.sync, r.transition);
            let (path, key) = (r.path.clone(), r.transition.key.clone());
            if !sync {
                validate_payload(&def, &path, &key, &data.body)?;
            }
            Ok((def, sync, key))
        }
        .await;
        let (def, sync, key) = match checked {
            Ok(c) => c,
            Err(e) => {
                // Release the row now, not when the connection is next used.
                tx.rollback().await?;
                return Err(e);
            }
        };
        if !sync {
            return self.accept(tx, &req.domain, &req.flow, &row, &key, job_body(&data, &first)).await;
        }
        let run = Run::new(RunSpec {
            eng: self.inner.clone(),
            domain: req.domain,
            flow: req.flow,
            def,
            pool,
            hold: Hold::Locked(tx),
            row,
            fresh: false,
            req: data,
            origin: Origin::Api,
            first,
            job_id: None,
        });
        run.run().await.map(Outcome::Done)
    }

    /// Marks a locked instance busy for an async job and records the job.
    async fn accept(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        domain: &DomainName,
        flow: &FlowKey,
        row: &InstanceRow,
        transition: &str,
        body: Value,
    ) -> Result<Outcome, EngineError> {
        let now = self.inner.clock.now();
        let job_id = Uuid::now_v7();
        let lease = self.lease(transition, job_id);
        store::instances::write_lease(&mut tx, flow, row.id, &lease, now).await?;
        let job = async_job(job_id, flow, row.id, transition, Some(row.current_state.clone()), body, now);
        queues::enqueue(&mut tx, &job).await?;
        tx.commit().await?;
        self.after_accept(domain);
        Ok(Outcome::Accepted { id: row.id, status: InstanceStatus::Busy })
    }

    pub(crate) async fn do_retry(&self, req: RetryRequest) -> Result<Outcome, EngineError> {
        let pool = self.pool(&req.domain).await?;
        let (mut tx, row) = self.lock_instance(&pool, &req.flow, &req.instance).await?;
        let checked = async {
            match row.status() {
                InstanceStatus::Faulted => {}
                InstanceStatus::Busy => return Err(EngineError::Busy { instance: instance_name(&req.instance) }),
                _ => return Err(EngineError::NotFaulted { instance: instance_name(&req.instance) }),
            }
            let sql = format!(
                "SELECT transition_key, request FROM {}.incidents WHERE instance_id = $1 AND NOT resolved \
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                req.flow.quoted()
            );
            let incident: Option<(Option<String>, Option<Value>)> =
                sqlx::query_as(AssertSqlSafe(sql)).bind(row.id).fetch_optional(&mut *tx).await?;
            let def = self.inner.definitions.get(&pool, &req.domain, &req.flow, &row.flow_version).await?;
            Ok((incident.unwrap_or_default(), def))
        }
        .await;
        let ((key, request), def) = match checked {
            Ok(c) => c,
            Err(e) => {
                tx.rollback().await?;
                return Err(e);
            }
        };
        let (data, first) = from_job_body(request.as_ref().unwrap_or(&Value::Null), key.as_deref().unwrap_or_default());
        if !req.sync {
            let transition = key.unwrap_or_default();
            return self.accept(tx, &req.domain, &req.flow, &row, &transition, job_body(&data, &first)).await;
        }
        let fresh_start = first == First::Start;
        let mut run = Run::new(RunSpec {
            eng: self.inner.clone(),
            domain: req.domain,
            flow: req.flow,
            def,
            pool,
            hold: Hold::Locked(tx),
            row,
            fresh: false,
            req: data,
            origin: Origin::Retry,
            first,
            job_id: None,
        });
        run.arm_timeout = fresh_start;
        run.run().await.map(Outcome::Done)
    }
}

pub(crate) fn async_job(
    id: Uuid,
    flow: &FlowKey,
    instance_id: Uuid,
    transition: &str,
    armed_state: Option<String>,
    body: Value,
    now: chrono::DateTime<chrono::Utc>,
) -> queues::NewJob {
    queues::NewJob {
        id,
        kind: queues::JobKind::Async,
        flow: flow.as_str().to_string(),
        instance_id,
        transition_key: transition.to_string(),
        armed_state,
        body: Some(body),
        due_at: now,
    }
}
