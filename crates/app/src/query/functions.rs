//! The built-in instance functions that read the pinned workflow definition:
//! `state` (what a client may do next), `view` and `schema`.
//!
//! These are reads: they never compile scripts. A rule-based view binding is
//! answered with its `default` view (rules need the pipeline's script host).

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use vnext_core::machine;
use vnext_core::model::{Component, ComponentKind, Reference, Transition, ViewBinding, ViewRef, Workflow};
use vnext_core::version::VersionSelector;
use vnext_init::components;
use vnext_init::queue::{self, JobKind};

use super::FlowScope;
use crate::engine::{InstanceSnapshot, InstanceStatus};
use crate::error::{ApiError, ErrorCode};

/// A stored component version.
#[derive(Debug, Clone)]
pub struct StoredContent {
    pub key: String,
    pub version: String,
    pub content: Value,
}

/// Reads one component by key and version selector (the highest match).
///
/// # Errors
/// 503 when the database is unreachable.
pub async fn component(pool: &PgPool, kind: ComponentKind, key: &str, selector: &VersionSelector) -> Result<Option<StoredContent>, ApiError> {
    let stored = components::fetch(pool, kind, key, selector).await.map_err(ApiError::from)?;
    Ok(stored.map(|c| StoredContent { key: c.key, version: c.version, content: c.content }))
}

/// The workflow definition an instance is pinned to.
///
/// # Errors
/// [`ErrorCode::DefinitionUnusable`] when the stored version is gone or unreadable.
pub async fn pinned_workflow(scope: &FlowScope, instance: &InstanceSnapshot) -> Result<Workflow, ApiError> {
    let selector = VersionSelector::parse(&instance.flow_version).unwrap_or(VersionSelector::Latest);
    let stored = component(&scope.pool, ComponentKind::Workflow, scope.flow.as_str(), &selector)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::DefinitionUnusable,
                format!("workflow `{}` version {} of instance `{}` is not stored", scope.flow, instance.flow_version, instance.id),
            )
        })?;
    match Component::from_json(&stored.content) {
        Ok(Component::Workflow(w)) => Ok(w.attributes),
        Ok(_) | Err(_) => Err(ApiError::new(
            ErrorCode::DefinitionUnusable,
            format!("stored workflow `{}` version {} cannot be read", scope.flow, stored.version),
        )),
    }
}

/// Resolves a reference to a component of `kind` in the instance's domain.
///
/// A file reference (`{"ref": "Views/x.json"}`) names the component by its file
/// stem, which is the key by convention of vNext packages.
///
/// # Errors
/// [`ErrorCode::DefinitionUnusable`] when the reference does not resolve.
pub async fn resolve(scope: &FlowScope, reference: &Reference, kind: ComponentKind) -> Result<StoredContent, ApiError> {
    let unusable = |what: String| ApiError::new(ErrorCode::DefinitionUnusable, what);
    let (key, selector) = match reference {
        Reference::File { path } => {
            let stem = std::path::Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            (stem.to_string(), VersionSelector::Latest)
        }
        Reference::Explicit(r) => {
            if !r.domain.is_empty() && r.domain != scope.domain.as_str() {
                return Err(unusable(format!(
                    "{kind} `{}` lives in domain `{}`; components of other domains are not served here",
                    r.key.as_deref().unwrap_or_default(),
                    r.domain
                )));
            }
            let key = r.key.clone().or_else(|| r.id.clone()).unwrap_or_default();
            let selector = VersionSelector::parse(&r.version).unwrap_or(VersionSelector::Latest);
            (key, selector)
        }
    };
    component(&scope.pool, kind, &key, &selector)
        .await?
        .ok_or_else(|| unusable(format!("the {kind} reference to `{key}` does not resolve to a published component")))
}

/// Where a transition is offered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TransitionKind {
    StateTransition,
    SharedTransition,
    Cancel,
    Exit,
    UpdateData,
    Scheduled,
    Timeout,
}

/// The transitions a client may call now, with their kind (the engine's own
/// gate, so what is listed is exactly what a request may run). Completed and
/// faulted instances offer none.
pub fn available_transitions<'w>(workflow: &'w Workflow, state: &str, status: InstanceStatus) -> Vec<(&'w Transition, TransitionKind)> {
    if matches!(status, InstanceStatus::Completed | InstanceStatus::Faulted) {
        return Vec::new();
    }
    machine::available(workflow, state)
        .into_iter()
        .filter_map(|o| {
            let kind = match o.kind {
                machine::TransitionKind::State => TransitionKind::StateTransition,
                machine::TransitionKind::Shared => TransitionKind::SharedTransition,
                machine::TransitionKind::Cancel => TransitionKind::Cancel,
                machine::TransitionKind::Exit => TransitionKind::Exit,
                machine::TransitionKind::UpdateData => TransitionKind::UpdateData,
                machine::TransitionKind::Start | machine::TransitionKind::Timeout => return None,
            };
            Some((o.transition, kind))
        })
        .collect()
}

/// Finds a transition by key anywhere in a workflow.
pub fn find_transition<'w>(workflow: &'w Workflow, key: &str) -> Option<&'w Transition> {
    std::iter::once(&workflow.start_transition)
        .chain(workflow.states.iter().flat_map(|s| s.transitions.iter()))
        .chain(workflow.shared_transitions.iter())
        .chain([&workflow.cancel, &workflow.exit, &workflow.update_data].into_iter().flatten())
        .find(|t| t.key == key)
}

/// Base path of an instance's endpoints.
pub fn instance_href(scope: &FlowScope, id: Uuid) -> String {
    format!("/api/v1/{}/workflows/{}/instances/{id}", scope.domain, scope.flow)
}

fn view_ref(binding: &ViewBinding) -> Option<&ViewRef> {
    match binding {
        ViewBinding::Plain(v) => Some(v),
        ViewBinding::Rules { default, .. } => default.as_ref(),
    }
}

/// The `functions/state` answer.
///
/// # Errors
/// See [`pinned_workflow`]; 503 when the database is unreachable.
/// Transitions the caller's `roles` do not allow are not offered.
pub async fn state_function(scope: &FlowScope, instance: &InstanceSnapshot, roles: &vnext_core::roles::Roles) -> Result<Value, ApiError> {
    let workflow = pinned_workflow(scope, instance).await?;
    let base = instance_href(scope, instance.id);
    let mut transitions = Vec::new();
    let offered = available_transitions(&workflow, &instance.current_state, instance.status);
    for (t, kind) in offered.into_iter().filter(|(t, _)| roles.may_run(t, Some(&instance.current_state))) {
        let mut entry = json!({
            "name": t.key,
            "kind": kind,
            "href": format!("{base}/transitions/{}", t.key),
            "schema": {
                "hasSchema": t.schema.is_some(),
                "href": format!("{base}/functions/schema?transition={}", t.key),
            },
            "view": {
                "hasView": t.view.is_some(),
                "href": format!("{base}/functions/view?transition={}", t.key),
            },
        });
        if let Some(a) = &t.annotations {
            entry["annotations"] = a.clone();
        }
        transitions.push(entry);
    }
    // Armed timers: the jobs table lives in sys_queues of the same database.
    let flows = [scope.flow.as_str().to_string(), scope.flow.ident().to_string()];
    let jobs = queue::armed_timers(&scope.pool, instance.id, &flows).await.map_err(ApiError::database)?;
    for job in jobs {
        let kind = if job.kind == JobKind::Timeout { TransitionKind::Timeout } else { TransitionKind::Scheduled };
        transitions.push(json!({ "name": job.transition_key, "kind": kind, "executeAtUtc": job.due_at }));
    }
    let state_view = workflow.state(&instance.current_state).and_then(|s| s.view.as_ref()).and_then(view_ref);
    Ok(json!({
        "state": instance.current_state,
        "status": instance.status.code().to_string(),
        "data": { "href": format!("{base}/functions/data") },
        "view": {
            "hasView": state_view.is_some(),
            "loadData": state_view.and_then(|v| v.load_data).unwrap_or(false),
            "href": format!("{base}/functions/view"),
        },
        "transitions": transitions,
        "eTag": instance.etag,
    }))
}

/// The `functions/view` answer: the view of the current state, or of
/// `transition` when given.
///
/// # Errors
/// [`ErrorCode::ViewNotFound`] when there is none; [`ErrorCode::TransitionNotFound`]
/// for an unknown transition; [`ErrorCode::DefinitionUnusable`] when it does not resolve.
pub async fn view_function(scope: &FlowScope, instance: &InstanceSnapshot, transition: Option<&str>) -> Result<Value, ApiError> {
    let workflow = pinned_workflow(scope, instance).await?;
    let binding = match transition {
        Some(key) => find_transition(&workflow, key).ok_or_else(|| unknown_transition(scope, key))?.view.as_ref(),
        None => workflow.state(&instance.current_state).and_then(|s| s.view.as_ref()),
    };
    let Some(view) = binding.and_then(view_ref) else {
        let place = match transition {
            Some(t) => format!("transition `{t}`"),
            None => format!("state `{}`", instance.current_state),
        };
        return Err(ApiError::new(ErrorCode::ViewNotFound, format!("{place} of workflow `{}` has no view", scope.flow)));
    };
    let stored = resolve(scope, &view.view, ComponentKind::View).await?;
    let attributes = stored.content.get("attributes").cloned().unwrap_or(Value::Null);
    let load_data = view.load_data.unwrap_or(false);
    let mut answer = json!({
        "key": stored.key,
        "version": stored.version,
        "type": attributes.get("type").cloned().unwrap_or(Value::Null),
        "content": attributes.get("content").cloned().unwrap_or(Value::Null),
        "display": attributes.get("display").cloned().unwrap_or(Value::Null),
        "loadData": load_data,
    });
    if load_data {
        answer["data"] = instance.data.clone();
    }
    Ok(answer)
}

fn unknown_transition(scope: &FlowScope, key: &str) -> ApiError {
    ApiError::new(ErrorCode::TransitionNotFound, format!("workflow `{}` defines no transition `{key}`", scope.flow))
}

/// The `functions/schema` answer: the JSON Schema of `transition`, or the
/// workflow's master schema when no transition is named.
///
/// # Errors
/// [`ErrorCode::SchemaNotFound`] when there is none; [`ErrorCode::TransitionNotFound`].
pub async fn schema_function(scope: &FlowScope, instance: &InstanceSnapshot, transition: Option<&str>) -> Result<Value, ApiError> {
    let workflow = pinned_workflow(scope, instance).await?;
    let reference = match transition {
        Some(key) => find_transition(&workflow, key).ok_or_else(|| unknown_transition(scope, key))?.schema.as_ref(),
        None => workflow.schema.as_ref(),
    };
    let Some(reference) = reference else {
        let place = match transition {
            Some(t) => format!("transition `{t}`"),
            None => "the workflow".to_string(),
        };
        return Err(ApiError::new(ErrorCode::SchemaNotFound, format!("{place} of workflow `{}` has no schema", scope.flow)));
    };
    let stored = resolve(scope, reference, ComponentKind::Schema).await?;
    Ok(json!({
        "transition": transition,
        "hasSchema": true,
        "key": stored.key,
        "version": stored.version,
        "schema": stored.content.get("attributes").and_then(|a| a.get("schema")).cloned().unwrap_or(Value::Null),
    }))
}
