//! The three requests: start, transition and retry, each either run now
//! (`sync`) or recorded as an async job and answered at once.

use std::sync::Arc;

use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine::{self, Caller, TransitionKind};
use vnext_core::model::Transition;

use super::context::RequestData;
use super::definitions::CompiledFlow;
use vnext_init::queue::{self, First, JobBody};

use super::error::gate_error;
use super::run::{Origin, Run, Scope};
use super::writes::async_job;
use super::{
    Engine, EngineError, InstanceRef, InstanceStatus, Outcome, PayloadError, RetryRequest, StartRequest, TransitionRequest,
};
use crate::store::{self, InstanceRow, Lease, LockError, NewInstance, Records, WriteMode};

/// `executionType` on a transition overrides the request's `sync`.
fn effective_sync(requested: bool, t: &Transition) -> bool {
    match t.execution_type.as_deref() {
        Some("S") => true,
        Some("A") => false,
        _ => requested,
    }
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

/// What the gate decided for a transition request.
enum Gate {
    /// Run it on this instance (`sync`, the transition's configured key).
    Run { def: Arc<CompiledFlow>, sync: bool, key: String },
    /// The instance is parked on a subflow: the request goes to the child.
    Forward { correlation: Uuid },
}

impl Engine {
    pub(crate) async fn pool(&self, domain: &DomainName) -> Result<PgPool, EngineError> {
        self.inner.databases.domain(domain).await.map_err(|e| match e {
            super::DbError::UnknownDomain(d) => EngineError::UnknownDomain(d),
            other => EngineError::from_init(&format!("domain `{domain}`"), other.into()),
        })
    }

    async fn ensure_schema(&self, pool: &PgPool, domain: &DomainName, flow: &FlowKey) -> Result<(), EngineError> {
        self.inner.ensure_schema(pool, domain, flow).await
    }

    /// Locks an instance for a request and checks it can take one.
    async fn lock_instance(
        &self,
        pool: &PgPool,
        flow: &FlowKey,
        r: &InstanceRef,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, InstanceRow), EngineError> {
        let unknown = || EngineError::UnknownInstance { flow: flow.to_string(), instance: instance_name(r) };
        let mut tx = vnext_init::db::begin(pool).await?;
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
        let def = {
            let mut conn = vnext_init::db::acquire(&pool).await?;
            self.inner.definitions.select(&mut conn, &req.domain, &req.flow, req.version.as_deref()).await?
        };
        if !req.roles.may_run(&def.workflow.start_transition, None) {
            return Err(EngineError::RoleDenied { transition: def.workflow.start_transition.key.clone(), state: None });
        }
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
        let row = InstanceRow::new(NewInstance {
            flow_version: def.version.clone(),
            start_state: machine::start_position(wf).to_string(),
            key: req.key.clone(),
            tags: req.tags.clone(),
            parent: None,
            now,
        });
        let data = RequestData::new(req.attributes, req.headers, req.query);
        if !effective_sync(req.sync, &wf.start_transition) {
            validate_payload(&def, "/startTransition", &wf.start_transition.key, &data.body)?;
            return self.accept_start(&pool, &req.domain, &req.flow, row, &data, &wf.start_transition.key).await;
        }
        let scope = Scope { eng: self.inner.clone(), domain: req.domain, flow: req.flow, def, pool };
        Run::start(scope, row, data).run().await.map(Outcome::Done)
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
        let row = row.leased(&lease, now);
        let mut tx = vnext_init::db::begin(pool).await?;
        if !store::apply(&mut tx, flow, WriteMode::Insert, &row, &Records::default()).await? {
            drop(tx);
            let key = row.key.clone().unwrap_or_default();
            let existing = store::instances::find(pool, flow, &InstanceRef::Key(key)).await?;
            let existing = existing.ok_or_else(|| EngineError::Internal("instance key conflict without an instance".into()))?;
            return Ok(Outcome::Accepted { id: existing.id, status: existing.status() });
        }
        let job = async_job(flow, row.id, start_key, &data.job_body(&First::Start, &self.inner.settings.sealer), now).with_id(job_id);
        queue::enqueue(&mut tx, &job).await?;
        tx.commit().await?;
        self.after_accept(domain);
        Ok(Outcome::Accepted { id: row.id, status: InstanceStatus::Busy })
    }

    fn lease(&self, transition: &str, job_id: Uuid) -> Lease {
        Lease {
            token: Uuid::new_v4(),
            until: self.inner.clock.now() + self.inner.settings.lease,
            transition: transition.to_string(),
            job_id: Some(job_id),
            request: None,
            step: None,
        }
    }

    pub(crate) async fn do_transition(&self, req: TransitionRequest) -> Result<Outcome, EngineError> {
        let pool = self.pool(&req.domain).await?;
        let (mut tx, mut row) = self.lock_instance(&pool, &req.flow, &req.instance).await?;
        let gate = match self.gate(&mut tx, &row, &req).await {
            Ok(g) => g,
            Err(e) => {
                // Release the row now, not when the connection is next used.
                tx.rollback().await?;
                return Err(e);
            }
        };
        let (def, sync, key) = match gate {
            Gate::Run { def, sync, key } => (def, sync, key),
            Gate::Forward { correlation } => {
                tx.rollback().await?;
                return self.forward(&pool, req, row.id, correlation).await;
            }
        };
        if let Some(k) = req.key.as_deref().filter(|k| !k.is_empty())
            && row.key.is_none()
        {
            match store::instances::set_key_if_empty(&mut tx, &req.flow, row.id, k).await {
                Ok(_) => row.key = Some(k.to_string()),
                Err(e) => {
                    tx.rollback().await?;
                    return Err(if store::is_unique_violation(&e) {
                        EngineError::KeyTaken { flow: req.flow.to_string(), key: k.to_string() }
                    } else {
                        e.into()
                    });
                }
            }
        }
        let data = RequestData::new(req.attributes, req.headers, req.query);
        let first = First::Named { key: req.transition.clone(), caller: Caller::Client };
        if !sync {
            return self.accept(tx, &req.domain, &req.flow, &row, &key, &data.job_body(&first, &self.inner.settings.sealer)).await;
        }
        let scope = Scope { eng: self.inner.clone(), domain: req.domain, flow: req.flow, def, pool };
        Run::request(scope, tx, row, data, Origin::Api, first).run().await.map(Outcome::Done)
    }

    /// Whether a transition may run on a locked instance, and where.
    ///
    /// A busy instance takes no transition, with two exceptions. A parent
    /// parked on a subflow runs `cancel`, `exit` and `updateData` itself and
    /// forwards anything else to its child. An instance held busy only by a
    /// job that has not started (an accepted async request, a retry waiting
    /// for its time) takes `cancel` and `exit`, which cancel that job in the
    /// same transaction. An instance whose lease is held by a run in flight
    /// stays busy: the run is doing external I/O and writes its outcome next.
    async fn gate(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        row: &InstanceRow,
        req: &TransitionRequest,
    ) -> Result<Gate, EngineError> {
        let status = row.status();
        if status.is_finished() {
            return Err(EngineError::Finished { instance: instance_name(&req.instance), status: status.code().to_string() });
        }
        let def = self.inner.definitions.get(tx, &req.domain, &req.flow, &row.flow_version).await?;
        let resolved = machine::resolve(&def.workflow, &row.current_state, &req.transition, Caller::Client);
        let kind = resolved.as_ref().ok().map(|r| r.kind);
        if status == InstanceStatus::Busy {
            let own = matches!(kind, Some(TransitionKind::Cancel | TransitionKind::Exit | TransitionKind::UpdateData));
            if row.parked() {
                if !own && let Some(correlation) = row.parked_on {
                    return Ok(Gate::Forward { correlation });
                }
            } else if !(kind.is_some_and(TransitionKind::ends_instance) && release_pending_job(tx, row).await?) {
                return Err(EngineError::Busy { instance: instance_name(&req.instance) });
            }
        }
        let r = resolved.map_err(gate_error)?;
        if !req.roles.may_run(r.transition, Some(&row.current_state)) {
            return Err(EngineError::RoleDenied { transition: r.transition.key.clone(), state: Some(row.current_state.clone()) });
        }
        let sync = effective_sync(req.sync, r.transition);
        let (path, key) = (r.path.clone(), r.transition.key.clone());
        if !sync {
            let body = &req.attributes;
            validate_payload(&def, &path, &key, body)?;
        }
        Ok(Gate::Run { def, sync, key })
    }

    /// Runs a transition sent to a parked parent on its active child. The
    /// answer is the parent as it is afterwards (resumed, if the child
    /// completed and the parent could resume right away).
    async fn forward(&self, pool: &PgPool, req: TransitionRequest, parent: Uuid, correlation: Uuid) -> Result<Outcome, EngineError> {
        let corr = crate::store::correlations::find(pool, &req.flow, correlation)
            .await?
            .ok_or_else(|| EngineError::Internal(format!("instance {parent} is parked on correlation {correlation}, which is missing")))?;
        let internal = |e: vnext_core::ident::IdentError| EngineError::Internal(format!("correlation {correlation}: {e}"));
        let child = TransitionRequest {
            domain: DomainName::new(&corr.child_domain).map_err(internal)?,
            flow: FlowKey::new(&corr.child_flow).map_err(internal)?,
            instance: InstanceRef::Id(corr.child_instance_id),
            ..req.clone()
        };
        match Box::pin(self.do_transition(child)).await? {
            Outcome::Accepted { .. } => Ok(Outcome::Accepted { id: parent, status: InstanceStatus::Busy }),
            Outcome::Done(_) => store::load_snapshot(pool, &req.domain, &req.flow, &InstanceRef::Id(parent))
                .await?
                .map(Outcome::Done)
                .ok_or_else(|| EngineError::UnknownInstance { flow: req.flow.to_string(), instance: parent.to_string() }),
        }
    }

    /// Marks a locked instance busy for an async job and records the job.
    async fn accept(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        domain: &DomainName,
        flow: &FlowKey,
        row: &InstanceRow,
        transition: &str,
        body: &JobBody,
    ) -> Result<Outcome, EngineError> {
        let now = self.inner.clock.now();
        let job_id = Uuid::now_v7();
        let lease = self.lease(transition, job_id);
        store::instances::write_lease(&mut tx, flow, row.id, &lease, now).await?;
        let job = async_job(flow, row.id, transition, body, now).with_id(job_id).armed_in(&row.current_state);
        queue::enqueue(&mut tx, &job).await?;
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
            let def = self.inner.definitions.get(&mut tx, &req.domain, &req.flow, &row.flow_version).await?;
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
        let request = request.as_ref().map(JobBody::from_value).unwrap_or_default().opened(&self.inner.settings.sealer);
        let (data, first) = (RequestData::from_job(&request), request.first_or(key.as_deref().unwrap_or_default()));
        if !req.sync {
            let transition = key.unwrap_or_default();
            return self.accept(tx, &req.domain, &req.flow, &row, &transition, &data.job_body(&first, &self.inner.settings.sealer)).await;
        }
        let scope = Scope { eng: self.inner.clone(), domain: req.domain, flow: req.flow, def, pool };
        Run::request(scope, tx, row, data, Origin::Retry, first).run().await.map(Outcome::Done)
    }
}

/// Cancels the not yet started job that holds a busy instance (its lease names
/// it), inside the caller's transaction. False when there is no such job or it
/// is already running.
async fn release_pending_job(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>, row: &InstanceRow) -> Result<bool, EngineError> {
    let Some(job) = row.lease_job_id else { return Ok(false) };
    Ok(queue::cancel_if_pending(tx, job).await?)
}
