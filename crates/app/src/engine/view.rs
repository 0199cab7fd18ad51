//! Rule-based view selection: the first rule whose script answers true wins,
//! else the binding's `default`.

use serde_json::{Map, json};
use vnext_core::ident::DomainName;
use vnext_core::model::{ViewBinding, ViewRef};
use vnext_core::script::{InstanceContext, RuntimeContext, ScriptContext};

use super::{Engine, EngineError, InstanceSnapshot};

impl Engine {
    /// The view a binding shows for `instance` now. Rules are `fn handler(ctx)`
    /// scripts, as transition rules, reading `ctx.instance`.
    ///
    /// # Errors
    /// [`EngineError::Script`] when a rule does not compile or fails.
    pub async fn select_view(&self, domain: &DomainName, binding: &ViewBinding, instance: &InstanceSnapshot) -> Result<Option<ViewRef>, EngineError> {
        let (rules, default) = match binding {
            ViewBinding::Plain(v) => return Ok(Some(v.clone())),
            ViewBinding::Rules { rules, default } => (rules, default),
        };
        let ctx = ScriptContext {
            body: json!({}),
            headers: Map::new(),
            query: Map::new(),
            instance: InstanceContext {
                id: instance.id,
                key: instance.key.clone(),
                flow: instance.flow.clone(),
                domain: instance.domain.clone(),
                state: instance.current_state.clone(),
                status: instance.status.code().to_string(),
                data: instance.data.clone(),
            },
            transition: None,
            response: None,
            responses: Default::default(),
            runtime: RuntimeContext { domain: domain.to_string(), now: self.inner.clock.now() },
        }
        .to_value();
        for (i, rule) in rules.iter().enumerate() {
            let site = format!("view rule {i}");
            let script = self
                .inner
                .scripts
                .compile(&rule.rule, &site)
                .map_err(|e| EngineError::Script { location: rule.rule.location.clone().unwrap_or(site), message: e.to_string() })?;
            if self.inner.scripts.call_bool(domain.as_str(), &script, "handler", ctx.clone()).await? {
                return Ok(Some(ViewRef { view: rule.view.clone(), extensions: rule.extensions.clone(), load_data: rule.load_data }));
            }
        }
        Ok(default.clone())
    }
}
