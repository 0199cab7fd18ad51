//! The built-in instance functions that read the pinned workflow definition:
//! `state` (what a client may do next), `view` and `schema`.
//!
//! These are reads: they never compile scripts. A rule-based view binding is
//! answered with its `default` view (rules need the pipeline's script host).

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;
use vnext_core::machine;
use vnext_core::model::{Component, ComponentKind, Reference, Transition, ViewBinding, ViewRef, Workflow};
use vnext_core::version::VersionSelector;
use vnext_init::components;
use vnext_init::queue::{self, JobKind};

use super::FlowScope;
use crate::engine::{Engine, InstanceSnapshot, InstanceStatus};
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


/// The engine's name of a state sub type code (0 none, 1 success, ...).
pub fn state_sub_type_name(code: Option<i64>) -> &'static str {
    const NAMES: [&str; 9] = ["none", "success", "error", "terminated", "suspended", "busy", "human", "cancelled", "timeout"];
    code.and_then(|c| usize::try_from(c).ok()).and_then(|c| NAMES.get(c)).copied().unwrap_or("none")
}

/// The subflow children an instance started (`correlations` of the state
/// function), oldest first.
async fn correlations(scope: &FlowScope, instance: &InstanceSnapshot) -> Result<Vec<Value>, ApiError> {
    let sql = format!(
        "SELECT id, parent_state, child_domain, child_flow, child_instance_id, kind::text, completed, outcome, created_at, completed_at \
           FROM {} WHERE parent_instance_id = $1 ORDER BY created_at, id",
        scope.table("correlations")
    );
    type Row = (Uuid, String, String, String, Uuid, String, bool, Option<String>, DateTime<Utc>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(sql)).bind(instance.id).fetch_all(&scope.pool).await.map_err(ApiError::database)?;
    Ok(rows
        .into_iter()
        .map(|(id, state, domain, flow, child, kind, completed, outcome, created_at, completed_at)| {
            let mut c = json!({
                "href": format!("/api/v1/{domain}/workflows/{flow}/instances/{child}/functions/state"),
                "correlationId": id,
                "parentState": state,
                "subFlowInstanceId": child,
                "subFlowType": kind,
                "subFlowDomain": domain,
                "subFlowName": flow,
                "isCompleted": completed,
                "createdAt": created_at,
            });
            if let Some(at) = completed_at {
                c["completedAt"] = json!(at);
            }
            if let Some(o) = outcome {
                c["terminalOutcome"] = json!(o);
            }
            c
        })
        .collect())
}

/// What a query value keeps unencoded: letters, digits and `-._~` (RFC 3986 unreserved).
pub const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `?transitionKey=` of a function link.
fn transition_query(key: &str) -> String {
    format!("transitionKey={}", utf8_percent_encode(key, QUERY_VALUE))
}

/// The `functions/state` answer, in the engine's shape.
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
        let view = t.view.as_ref().and_then(view_ref);
        let mut entry = json!({
            "name": t.key,
            "kind": kind,
            "href": format!("{base}/transitions/{}", t.key),
            "schema": {
                "hasSchema": t.schema.is_some(),
                "href": format!("{base}/functions/schema?{}", transition_query(&t.key)),
            },
            "view": {
                "hasView": view.is_some(),
                "loadData": view.and_then(|v| v.load_data).unwrap_or(false),
                "href": format!("{base}/functions/view?{}", transition_query(&t.key)),
            },
            "labels": t.labels,
            "target": { "key": t.target },
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
        let (name, kind) = if job.kind == JobKind::Timeout {
            ("$timeout".to_string(), json!("$timeout"))
        } else {
            (job.transition_key.clone(), json!(TransitionKind::Scheduled))
        };
        transitions.push(json!({
            "name": name,
            "kind": kind,
            "href": format!("{base}/transitions/{}", job.transition_key),
            "executeAtUtc": job.due_at,
        }));
    }
    let state = workflow.state(&instance.current_state);
    let state_view = state.and_then(|s| s.view.as_ref()).and_then(view_ref);
    let correlations = correlations(scope, instance).await?;
    let active: Vec<Value> = correlations.iter().filter(|c| c["isCompleted"] == json!(false)).cloned().collect();
    let mut answer = json!({
        "data": { "href": format!("{base}/functions/data") },
        "view": {
            "hasView": state_view.is_some(),
            "loadData": state_view.and_then(|v| v.load_data).unwrap_or(false),
            "href": format!("{base}/functions/view"),
        },
        "master": { "href": base },
        "state": instance.current_state,
        "stateType": state.map_or("intermediate", |s| s.state_type.name()),
        "stateSubType": state_sub_type_name(state.and_then(|s| s.sub_type)),
        "status": instance.status.code().to_string(),
        "activeCorrelations": active,
        "correlations": correlations,
        "transitions": transitions,
        "functions": { "href": format!("{base}/functions/catalog"), "hasFunctions": !workflow.functions.is_empty() },
        "incident": {
            "hasActiveIncident": instance.has_incident,
            "history": { "href": format!("{base}/incidents") },
        },
        "eTag": format!("\"{}\"", instance.etag),
        "entityEtag": format!("\"{}-{}\"", instance.id.simple(), instance.data_version_no),
    });
    if let Some(s) = state.filter(|s| !s.labels.is_empty()) {
        answer["stateLabels"] = json!(s.labels);
    }
    if instance.has_incident {
        answer["incident"]["active"] = json!({ "href": format!("{base}/incidents/active") });
    }
    Ok(answer)
}

/// The engine's name of a view type code (1 Json, 2 Html, 3 Markdown,
/// 4 DeepLink, 5 Http, 6 Urn); unknown codes are shown as their number.
pub fn view_type_name(code: &Value) -> Value {
    let name = match code.as_i64() {
        Some(1) => "Json",
        Some(2) => "Html",
        Some(3) => "Markdown",
        Some(4) => "DeepLink",
        Some(5) => "Http",
        Some(6) => "Urn",
        _ => return code.clone(),
    };
    Value::String(name.to_string())
}

/// The `functions/view` answer: the view of the current state, or of
/// `transition` when given. `type` is the type's name; `content` is parsed
/// JSON for Json and DeepLink views (a string holding JSON is parsed), else text.
///
/// # Errors
/// [`ErrorCode::ViewNotFound`] when there is none; [`ErrorCode::TransitionNotFound`]
/// for an unknown transition; [`ErrorCode::DefinitionUnusable`] when it does not resolve.
pub async fn view_function(engine: &Engine, scope: &FlowScope, instance: &InstanceSnapshot, transition: Option<&str>) -> Result<Value, ApiError> {
    let workflow = pinned_workflow(scope, instance).await?;
    let binding = match transition {
        Some(key) => find_transition(&workflow, key).ok_or_else(|| unknown_transition(scope, key))?.view.as_ref(),
        None => workflow.state(&instance.current_state).and_then(|s| s.view.as_ref()),
    };
    let selected = match binding {
        Some(b) => engine.select_view(&scope.domain, b, instance).await?,
        None => None,
    };
    let Some(view) = selected.as_ref() else {
        let place = match transition {
            Some(t) => format!("transition `{t}`"),
            None => format!("state `{}`", instance.current_state),
        };
        return Err(ApiError::new(ErrorCode::ViewNotFound, format!("{place} of workflow `{}` has no view", scope.flow)));
    };
    let stored = resolve(scope, &view.view, ComponentKind::View).await?;
    let attributes = stored.content.get("attributes").cloned().unwrap_or(Value::Null);
    let code = attributes.get("type").cloned().unwrap_or(Value::Null);
    let structured = matches!(code.as_i64(), Some(1 | 4));
    let content = match attributes.get("content").cloned().unwrap_or(Value::Null) {
        Value::String(text) if structured => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Value::String(text) => Value::String(text),
        other if structured => other,
        other => Value::String(other.to_string()),
    };
    let load_data = view.load_data.unwrap_or(false);
    let mut answer = json!({
        "key": stored.key,
        "content": content,
        "type": view_type_name(&code),
        "display": attributes.get("display").cloned().unwrap_or(Value::String(String::new())),
        "label": "",
        "version": stored.version,
        "loadData": load_data,
    });
    if let Some(renderer) = attributes.get("renderer").filter(|r| !r.is_null()) {
        answer["renderer"] = renderer.clone();
    }
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
    let attributes = stored.content.get("attributes").cloned().unwrap_or(Value::Null);
    Ok(json!({
        "key": stored.key,
        "type": attributes.get("type").cloned().unwrap_or(Value::String("schema".into())),
        "schema": attributes.get("schema").cloned().unwrap_or(Value::Null),
        "labels": attributes.get("labels").cloned().filter(|l| !l.is_null()).unwrap_or(json!([])),
        "eTag": format!("\"{}@{}\"", stored.key, stored.version),
        "transitionKey": transition,
        "version": stored.version,
    }))
}

/// The `functions/catalog` answer: the functions the workflow references.
///
/// # Errors
/// See [`pinned_workflow`].
pub async fn catalog(scope: &FlowScope, instance: &InstanceSnapshot) -> Result<Value, ApiError> {
    let workflow = pinned_workflow(scope, instance).await?;
    let base = instance_href(scope, instance.id);
    let mut functions = Vec::new();
    for reference in &workflow.functions {
        let stored = resolve(scope, reference, ComponentKind::Function).await?;
        let version = match reference {
            Reference::Explicit(r) => r.version.clone(),
            Reference::File { .. } => String::new(),
        };
        let function_scope = stored.content.pointer("/attributes/scope").cloned().unwrap_or(json!("I"));
        functions.push(json!({
            "name": stored.key,
            "version": version,
            "scope": function_scope,
            "href": format!("{base}/functions/{}", stored.key),
        }));
    }
    Ok(json!({ "functions": functions }))
}

/// Whether the workflow of `instance` references a function named `name`.
///
/// # Errors
/// See [`pinned_workflow`].
pub async fn references_function(scope: &FlowScope, instance: &InstanceSnapshot, name: &str) -> Result<bool, ApiError> {
    Ok(referenced_function(scope, instance, name).await?.is_some())
}

/// The function named `name` among those the instance's workflow references.
///
/// # Errors
/// As [`resolve`].
pub async fn referenced_function(scope: &FlowScope, instance: &InstanceSnapshot, name: &str) -> Result<Option<StoredContent>, ApiError> {
    let workflow = pinned_workflow(scope, instance).await?;
    for reference in &workflow.functions {
        let stored = resolve(scope, reference, ComponentKind::Function).await?;
        if stored.key == name {
            return Ok(Some(stored));
        }
    }
    Ok(None)
}
