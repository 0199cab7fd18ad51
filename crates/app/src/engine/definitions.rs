//! Compiled definitions per domain: a workflow version with its scripts,
//! JSON Schemas and task definitions resolved, cached by (domain, key, version).
//!
//! A flow is compiled the first time an instance of that version needs it;
//! after that a transition touches no component table. A publish through this
//! process drops the domain at once ([`DefinitionCache::invalidate`]); one
//! through any other process raises the domain's publish revision, which a
//! domain in use compares at most once per `runtime.definitions_recheck_ms`
//! (one indexed single-row read; idle domains cost nothing, and no connection
//! is held per domain).
//!
//! Loading runs on the caller's connection, inside its transaction when it
//! holds one: a request that has locked its instance never waits for a second
//! pooled connection, so a full pool cannot deadlock on itself.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgConnection;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine;
use vnext_core::model::{
    Component, ComponentKind, Envelope, ErrorBoundary, Function, Reference, ScriptCode, TaskEntry, TaskType, Timer, Transition,
    Workflow,
};
use vnext_core::version::VersionSelector;

use super::error::PayloadError;
use vnext_init::components;
use super::scripts::{Script, Scripts};
use super::EngineError;

/// A task definition as an entry runs it.
#[derive(Debug, Clone)]
pub struct TaskDef {
    pub key: String,
    pub version: String,
    pub task_type: TaskType,
    pub config: Value,
}

/// A task entry with its task resolved and its mapping compiled.
#[derive(Debug, Clone)]
pub struct CompiledEntry {
    pub task: Arc<TaskDef>,
    pub mapping: Option<Script>,
    /// The entry's own error boundary (lease recovery reads it by path).
    pub boundary: Option<ErrorBoundary>,
}

/// A compiled JSON Schema and the component it came from.
pub struct CompiledSchema {
    pub key: String,
    validator: jsonschema::Validator,
}

impl CompiledSchema {
    /// Every error, each with the JSON pointer of the offending value.
    pub fn errors(&self, value: &Value) -> Vec<PayloadError> {
        self.validator
            .iter_errors(value)
            .map(|e| PayloadError { pointer: e.instance_path().as_str().to_string(), message: e.to_string() })
            .collect()
    }
}

/// One workflow version, ready to run.
pub struct CompiledFlow {
    pub domain: String,
    pub key: String,
    pub version: String,
    pub workflow: Workflow,
    /// The workflow timeout as a `$timeout` transition.
    pub timeout: Option<Transition>,
    /// Scripts by site: `<transition path>/mapping`, `/rule`, `/timer`, and
    /// `/states/<i>/subFlow/mapping`.
    scripts: HashMap<String, Script>,
    /// Payload schemas by transition path.
    schemas: HashMap<String, Arc<CompiledSchema>>,
    /// Validates all instance data after every hop.
    pub master_schema: Option<Arc<CompiledSchema>>,
    /// Task entries by path (`/states/1/onEntries/0`).
    entries: HashMap<String, CompiledEntry>,
}

impl CompiledFlow {
    pub fn script(&self, site: &str) -> Option<&Script> {
        self.scripts.get(site)
    }

    pub fn schema(&self, transition_path: &str) -> Option<&CompiledSchema> {
        self.schemas.get(transition_path).map(Arc::as_ref)
    }

    /// # Errors
    /// [`EngineError::Internal`] when the path was not compiled (a bug).
    pub fn entry(&self, path: &str) -> Result<&CompiledEntry, EngineError> {
        self.entries.get(path).ok_or_else(|| EngineError::Internal(format!("task entry {path} was not compiled")))
    }

    /// Any task with external I/O in this flow? Used to skip lease checks.
    pub fn has_io_tasks(&self) -> bool {
        self.entries.values().any(|e| e.task.task_type != TaskType::Script)
    }
}

#[derive(Default)]
struct DomainDefs {
    flows: HashMap<(String, String), Arc<CompiledFlow>>,
    /// `(flow, selector)` → version, for starts that name no exact version.
    selected: HashMap<(String, String), String>,
    /// The publish revision read before anything here was loaded, and when it
    /// was last compared with the database.
    revision: i64,
    checked: Option<Instant>,
}

/// Cache of compiled workflows per domain. Cheap to clone.
#[derive(Clone)]
pub struct DefinitionCache {
    domains: Arc<RwLock<HashMap<String, DomainDefs>>>,
    scripts: Arc<Scripts>,
    /// How stale a domain's definitions may get after another process publishes.
    recheck: Duration,
}

impl DefinitionCache {
    pub(crate) fn new(scripts: Arc<Scripts>, recheck: Duration) -> Self {
        Self { domains: Arc::default(), scripts, recheck }
    }

    /// Drops everything cached, for every domain.
    pub fn invalidate_all(&self) {
        self.domains.write().expect("definition cache").clear();
    }

    /// Drops everything cached for a domain.
    pub fn invalidate(&self, domain: &DomainName) {
        self.domains.write().expect("definition cache").remove(domain.ident());
    }

    /// Compares the domain's publish revision when the last comparison is older
    /// than `recheck`, and drops the domain's definitions when it moved. The
    /// revision is read before anything is loaded, so a publish racing with a
    /// load is seen at the next comparison at the latest.
    async fn freshen(&self, conn: &mut PgConnection, domain: &DomainName) -> Result<(), EngineError> {
        let due = match self.domains.read().expect("definition cache").get(domain.ident()) {
            Some(d) => d.checked.is_none_or(|t| t.elapsed() >= self.recheck),
            None => true,
        };
        if !due {
            return Ok(());
        }
        let revision = components::publish_revision(&mut *conn)
            .await
            .map_err(|e| EngineError::from_init(&format!("checking domain `{domain}` for new publishes"), e))?;
        let mut map = self.domains.write().expect("definition cache");
        let d = map.entry(domain.ident().to_string()).or_default();
        // Never compared (entries made by a load racing with `invalidate`) or
        // moved: what is cached may predate a publish.
        if d.checked.is_none() || d.revision != revision {
            *d = DomainDefs::default();
        }
        d.revision = revision;
        d.checked = Some(Instant::now());
        Ok(())
    }

    /// The version a start with this selector runs (`None` = latest).
    ///
    /// # Errors
    /// [`EngineError::UnknownFlow`] when nothing published matches.
    pub async fn select(
        &self,
        conn: &mut PgConnection,
        domain: &DomainName,
        flow: &FlowKey,
        selector: Option<&str>,
    ) -> Result<Arc<CompiledFlow>, EngineError> {
        self.freshen(conn, domain).await?;
        let sel_text = selector.unwrap_or("latest").to_string();
        let cached = {
            let map = self.domains.read().expect("definition cache");
            map.get(domain.ident()).and_then(|d| {
                let v = d.selected.get(&(flow.as_str().to_string(), sel_text.clone()))?;
                d.flows.get(&(flow.as_str().to_string(), v.clone())).cloned()
            })
        };
        if let Some(f) = cached {
            return Ok(f);
        }
        let unknown = || EngineError::UnknownFlow { flow: flow.to_string(), version: selector.map(str::to_string) };
        let sel = VersionSelector::parse(&sel_text).ok_or_else(unknown)?;
        let stored = components::fetch_in(&mut *conn, ComponentKind::Workflow, flow.as_str(), &sel)
            .await
            .map_err(|e| EngineError::from_init(&format!("loading workflow `{flow}`"), e))?
            .ok_or_else(unknown)?;
        let version = stored.version.clone();
        let compiled = match self.cached(domain, flow, &version) {
            Some(c) => c,
            None => self.insert(domain, self.compile(conn, domain, stored.content).await?),
        };
        self.domains
            .write()
            .expect("definition cache")
            .entry(domain.ident().to_string())
            .or_default()
            .selected
            .insert((flow.as_str().to_string(), sel_text), version);
        Ok(compiled)
    }

    /// An exact version (an instance's pinned one).
    ///
    /// # Errors
    /// [`EngineError::UnknownFlow`] when that version is not published.
    pub async fn get(
        &self,
        conn: &mut PgConnection,
        domain: &DomainName,
        flow: &FlowKey,
        version: &str,
    ) -> Result<Arc<CompiledFlow>, EngineError> {
        self.freshen(conn, domain).await?;
        if let Some(c) = self.cached(domain, flow, version) {
            return Ok(c);
        }
        let unknown = || EngineError::UnknownFlow { flow: flow.to_string(), version: Some(version.to_string()) };
        let sel = VersionSelector::parse(version).ok_or_else(unknown)?;
        let stored = components::fetch_in(&mut *conn, ComponentKind::Workflow, flow.as_str(), &sel)
            .await
            .map_err(|e| EngineError::from_init(&format!("loading workflow `{flow}`"), e))?
            .filter(|s| s.version == version)
            .ok_or_else(unknown)?;
        Ok(self.insert(domain, self.compile(conn, domain, stored.content).await?))
    }

    fn cached(&self, domain: &DomainName, flow: &FlowKey, version: &str) -> Option<Arc<CompiledFlow>> {
        let map = self.domains.read().expect("definition cache");
        map.get(domain.ident())?.flows.get(&(flow.as_str().to_string(), version.to_string())).cloned()
    }

    fn insert(&self, domain: &DomainName, flow: CompiledFlow) -> Arc<CompiledFlow> {
        let flow = Arc::new(flow);
        let mut map = self.domains.write().expect("definition cache");
        let d = map.entry(domain.ident().to_string()).or_default();
        d.flows.entry((flow.key.clone(), flow.version.clone())).or_insert(flow).clone()
    }

    async fn compile(&self, conn: &mut PgConnection, domain: &DomainName, content: Value) -> Result<CompiledFlow, EngineError> {
        let env: Envelope<Workflow> = match Component::from_json(&content) {
            Ok(Component::Workflow(w)) => *w,
            Ok(other) => return Err(definition(format!("`{}` is not a workflow", other.identity().0))),
            Err(e) => return Err(definition(format!("stored workflow does not parse: {e}"))),
        };
        let mut c = Compiler { conn, domain, scripts: &self.scripts, tasks: HashMap::new(), schema_docs: HashMap::new() };
        let wf = &env.attributes;
        let timeout = machine::timeout_transition(wf);
        let mut out = CompiledFlow {
            domain: domain.to_string(),
            key: env.key.clone(),
            version: env.version.clone(),
            workflow: wf.clone(),
            timeout: timeout.clone(),
            scripts: HashMap::new(),
            schemas: HashMap::new(),
            master_schema: None,
            entries: HashMap::new(),
        };
        let mut transitions: Vec<(String, &Transition)> = vec![("/startTransition".into(), &wf.start_transition)];
        for (si, s) in wf.states.iter().enumerate() {
            for (ti, t) in s.transitions.iter().enumerate() {
                transitions.push((format!("/states/{si}/transitions/{ti}"), t));
            }
        }
        for (i, t) in wf.shared_transitions.iter().enumerate() {
            transitions.push((format!("/sharedTransitions/{i}"), t));
        }
        for (path, t) in [("/cancel", &wf.cancel), ("/exit", &wf.exit), ("/updateData", &wf.update_data), ("/timeout", &timeout)] {
            if let Some(t) = t {
                transitions.push((path.into(), t));
            }
        }
        for (path, t) in transitions {
            if let Some(m) = &t.mapping {
                out.scripts.insert(format!("{path}/mapping"), c.script(m, &format!("{path}/mapping"))?);
            }
            if let Some(r) = &t.rule {
                out.scripts.insert(format!("{path}/rule"), c.script(r, &format!("{path}/rule"))?);
            }
            if let Some(Timer::Script(s)) = &t.timer {
                out.scripts.insert(format!("{path}/timer"), c.script(s, &format!("{path}/timer"))?);
            }
            if let Some(r) = &t.schema {
                out.schemas.insert(path.clone(), c.schema(r, &format!("{path}/schema")).await?);
            }
            c.entries(&mut out.entries, &t.on_execution_tasks, &format!("{path}/onExecutionTasks")).await?;
        }
        for (si, s) in wf.states.iter().enumerate() {
            if let Some(m) = s.sub_flow.as_ref().and_then(|sf| sf.mapping.as_ref()).filter(|m| !m.is_global() && m.code.is_some()) {
                let site = format!("/states/{si}/subFlow/mapping");
                out.scripts.insert(site.clone(), c.script(m, &site)?);
            }
            c.entries(&mut out.entries, &s.on_entries, &format!("/states/{si}/onEntries")).await?;
            c.entries(&mut out.entries, &s.on_exits, &format!("/states/{si}/onExits")).await?;
        }
        if let Some(r) = &wf.schema {
            out.master_schema = Some(c.schema(r, "/schema").await?);
        }
        Ok(out)
    }
}

impl DefinitionCache {
    /// Compiles a function's task entries, scripts and schemas. Not cached:
    /// the answer cache (see `function`) spares repeated calls where it matters.
    ///
    /// # Errors
    /// [`EngineError::Definition`] or [`EngineError::Script`] naming the site
    /// that does not compile.
    pub(crate) async fn compile_function(
        &self,
        conn: &mut PgConnection,
        domain: &DomainName,
        key: &str,
        function: &Function,
    ) -> Result<CompiledFunction, EngineError> {
        let mut c = Compiler { conn, domain, scripts: &self.scripts, tasks: HashMap::new(), schema_docs: HashMap::new() };
        let (list, base): (Vec<TaskEntry>, &str) = if function.on_execution_tasks.is_empty() {
            (function.task.iter().cloned().collect(), "/attributes/task")
        } else {
            (function.on_execution_tasks.clone(), "/attributes/onExecutionTasks")
        };
        let mut compiled = HashMap::new();
        c.entries(&mut compiled, &list, base).await?;
        let mut tasks = Vec::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let path = format!("{base}/{i}");
            let entry = compiled.remove(&path).ok_or_else(|| EngineError::Internal(format!("function entry {path} was not compiled")))?;
            tasks.push(FunctionTask { order: e.order, variable_key: e.variable_key.clone(), entry });
        }
        // Groups run by ascending order; the sort is stable, so definition order holds within one.
        tasks.sort_by_key(|t| t.order);
        let output = match &function.output {
            Some(m) if m.code.is_some() => Some(c.script(m, "/attributes/output")?),
            _ => None,
        };
        let schema = |doc: &Option<Value>, site: &str| -> Result<Option<CompiledSchema>, EngineError> {
            doc.as_ref()
                .map(|d| {
                    jsonschema::validator_for(d)
                        .map(|validator| CompiledSchema { key: format!("{key}{site}"), validator })
                        .map_err(|e| definition(format!("function `{key}` {site} is not a valid JSON Schema: {e}")))
                })
                .transpose()
        };
        Ok(CompiledFunction {
            input_schema: schema(&function.input_schema, "/attributes/inputSchema")?,
            output_schema: schema(&function.output_schema, "/attributes/outputSchema")?,
            tasks,
            output,
        })
    }
}

/// One task entry of a function, compiled.
pub struct FunctionTask {
    pub order: i64,
    pub variable_key: Option<String>,
    pub entry: CompiledEntry,
}

/// A function ready to run.
pub struct CompiledFunction {
    /// By ascending `order`.
    pub tasks: Vec<FunctionTask>,
    /// `fn output(ctx)` of `output`: the answer built from `ctx.responses`.
    pub output: Option<Script>,
    pub input_schema: Option<CompiledSchema>,
    pub output_schema: Option<CompiledSchema>,
}

fn definition(message: String) -> EngineError {
    EngineError::Definition { message }
}

/// `(key, selector)` of a reference; the short file form names its key by file stem.
fn reference_key(r: &Reference) -> (String, String) {
    match r {
        Reference::Explicit(e) => (e.key.clone().or_else(|| e.id.clone()).unwrap_or_default(), e.version.clone()),
        Reference::File { path } => {
            let file = path.rsplit('/').next().unwrap_or(path);
            (file.trim_end_matches(".json").to_string(), String::new())
        }
    }
}

struct Compiler<'a> {
    conn: &'a mut PgConnection,
    domain: &'a DomainName,
    scripts: &'a Scripts,
    tasks: HashMap<(String, String), Arc<TaskDef>>,
    schema_docs: HashMap<(String, String), Arc<CompiledSchema>>,
}

impl Compiler<'_> {
    fn script(&self, code: &ScriptCode, site: &str) -> Result<Script, EngineError> {
        self.scripts.compile(code, site).map_err(|e| EngineError::Script {
            location: code.location.clone().unwrap_or_else(|| site.to_string()),
            message: e.to_string(),
        })
    }

    async fn fetch(&mut self, kind: ComponentKind, r: &Reference, site: &str) -> Result<components::StoredComponent, EngineError> {
        let (key, sel_text) = reference_key(r);
        let sel = VersionSelector::parse(&sel_text)
            .ok_or_else(|| definition(format!("{site}: `{sel_text}` is not a version selector")))?;
        components::fetch_in(&mut *self.conn, kind, &key, &sel)
            .await
            .map_err(|e| EngineError::from_init(&format!("loading {kind} `{key}`"), e))?
            .ok_or_else(|| {
                definition(format!(
                    "{site} references {kind} `{key}` version `{}`, which is not published in domain `{}`",
                    if sel_text.is_empty() { "latest" } else { &sel_text },
                    self.domain
                ))
            })
    }

    async fn schema(&mut self, r: &Reference, site: &str) -> Result<Arc<CompiledSchema>, EngineError> {
        let id = reference_key(r);
        if let Some(s) = self.schema_docs.get(&id) {
            return Ok(s.clone());
        }
        let stored = self.fetch(ComponentKind::Schema, r, site).await?;
        let doc = stored
            .content
            .pointer("/attributes/schema")
            .ok_or_else(|| definition(format!("schema `{}` has no attributes.schema", stored.key)))?;
        let validator = jsonschema::validator_for(doc)
            .map_err(|e| definition(format!("schema `{}` ({site}) is not a valid JSON Schema: {e}", stored.key)))?;
        let compiled = Arc::new(CompiledSchema { key: stored.key.clone(), validator });
        self.schema_docs.insert(id, compiled.clone());
        Ok(compiled)
    }

    async fn task(&mut self, r: &Reference, site: &str) -> Result<Arc<TaskDef>, EngineError> {
        let id = reference_key(r);
        if let Some(t) = self.tasks.get(&id) {
            return Ok(t.clone());
        }
        let stored = self.fetch(ComponentKind::Task, r, site).await?;
        let task = match Component::from_json(&stored.content) {
            Ok(Component::Task(t)) => t,
            _ => return Err(definition(format!("task `{}` does not parse", stored.key))),
        };
        let tt = task.attributes.task_type;
        if !tt.is_supported() {
            return Err(definition(format!(
                "{site}: task `{}` has type {} ({}), which this runtime does not execute",
                stored.key,
                tt.code(),
                tt.name()
            )));
        }
        let def = Arc::new(TaskDef { key: stored.key, version: stored.version, task_type: tt, config: task.attributes.config });
        self.tasks.insert(id, def.clone());
        Ok(def)
    }

    async fn entries(&mut self, out: &mut HashMap<String, CompiledEntry>, list: &[TaskEntry], base: &str) -> Result<(), EngineError> {
        for (i, e) in list.iter().enumerate() {
            let path = format!("{base}/{i}");
            let task = self.task(&e.task, &path).await?;
            let mapping = match &e.mapping {
                Some(m) if !m.is_global() && m.code.is_some() => Some(self.script(m, &format!("{path}/mapping"))?),
                _ => None,
            };
            out.insert(path, CompiledEntry { task, mapping, boundary: e.error_boundary.clone() });
        }
        Ok(())
    }
}
