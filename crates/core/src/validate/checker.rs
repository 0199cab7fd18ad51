//! The state one component's validation carries: where references resolve,
//! how scripts compile, and where findings go.

use serde_json::Value;

use super::catalog::Catalog;
use super::diagnostic::{Diagnostic, Ptr, Sink};
use super::package::FileIndex;
use super::{envelope, others, parse, schema, task, workflow};
use crate::model::Component;
use crate::script::ScriptHost;

pub(crate) struct Checker<'a> {
    pub(crate) catalog: &'a dyn Catalog,
    pub(crate) scripts: &'a ScriptHost,
    /// The package's files, for short `{ref: path}` references.
    pub(crate) files: Option<&'a FileIndex>,
    pub(crate) sink: Sink,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(
        catalog: &'a dyn Catalog,
        scripts: &'a ScriptHost,
        files: Option<&'a FileIndex>,
        file: Option<&str>,
    ) -> Self {
        Checker {
            catalog,
            scripts,
            files,
            sink: Sink::new(file),
        }
    }

    pub(crate) fn report(&mut self, pointer: &Ptr, code: &'static str, message: impl Into<String>) {
        self.sink.report(pointer, code, message);
    }

    /// Envelope, typed parse, then every rule of the component's kind.
    /// Returns the parsed component (even when rules failed) and the findings.
    pub(crate) fn run(mut self, value: &Value) -> (Option<Component>, Vec<Diagnostic>) {
        self.sink.component = envelope::label(value);
        let Some(parts) = envelope::read(value, &mut self.sink) else {
            return (None, self.sink.out);
        };
        envelope::check_rules(value, &parts, &mut self.sink);
        let component = parse::component(value, &parts, &mut self.sink);
        match &component {
            Some(Component::Workflow(w)) => workflow::check(&mut self, w),
            Some(Component::Task(t)) => task::check(&mut self, t),
            Some(Component::Schema(s)) => schema::check(&mut self, s),
            Some(Component::View(_)) => {}
            Some(Component::Function(f)) => others::check_function(&mut self, f),
            Some(Component::Extension(e)) => others::check_extension(&mut self, e),
            None => {}
        }
        (component, self.sink.out)
    }
}
