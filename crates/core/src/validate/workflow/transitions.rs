//! Transitions of every kind: where they lead, what fires them, and the scripts,
//! schemas, views and tasks they use.

use std::collections::HashSet;

use crate::model::{ComponentKind, SELF_TARGET, Transition, TriggerType};
use crate::validate::checker::Checker;
use crate::validate::codes;
use crate::validate::diagnostic::Ptr;
use crate::validate::envelope::is_name;
use crate::validate::scripts::Hook;

/// Where a transition is declared; the rules differ per place.
#[derive(Debug, Clone, Copy)]
pub(super) enum Site<'a> {
    Start,
    State(&'a str),
    Shared,
    Cancel,
    Exit,
    UpdateData,
}

impl Site<'_> {
    fn describe(self, key: &str) -> String {
        match self {
            Site::Start => format!("start transition `{key}`"),
            Site::State(state) => format!("transition `{key}` of state `{state}`"),
            Site::Shared => format!("shared transition `{key}`"),
            Site::Cancel => format!("cancel transition `{key}`"),
            Site::Exit => format!("exit transition `{key}`"),
            Site::UpdateData => format!("updateData transition `{key}`"),
        }
    }
}

pub(super) fn check(
    c: &mut Checker<'_>,
    at: &Ptr,
    t: &Transition,
    site: Site<'_>,
    states: &HashSet<&str>,
) {
    let name = site.describe(&t.key);
    if !is_name(&t.key) {
        c.report(
            &at.key("key"),
            codes::WORKFLOW_TRANSITION_INVALID_KEY,
            format!("{name}: key must match ^[a-z0-9-]+$ (lower-case letters, digits, dashes)"),
        );
    }
    target(c, at, t, site, states, &name);

    match (site, t.trigger_type) {
        (Site::Start, TriggerType::Manual) => {}
        (Site::Start, other) => c.report(&at.key("triggerType"), codes::WORKFLOW_START_TRIGGER_TYPE, format!(
            "{name} has triggerType {}; the start transition is manual (0)",
            i64::from(other)
        )),
        (Site::Shared, TriggerType::Automatic) => c.report(&at.key("triggerType"), codes::WORKFLOW_SHARED_TRIGGER_TYPE, format!(
            "{name} is automatic (triggerType 1); shared transitions are manual (0), scheduled (2) or event (3): move it into the states that need it"
        )),
        _ => {}
    }
    if t.trigger_type == TriggerType::Automatic && !t.is_default_auto() && t.rule.is_none() {
        c.report(at, codes::WORKFLOW_TRANSITION_MISSING_RULE, format!(
            "{name} is automatic but has no `rule`; add a rhai rule with `fn handler(ctx)` returning a bool, or mark it the state's default with \"triggerKind\": 10"
        ));
    }
    if t.trigger_type == TriggerType::Scheduled {
        match &t.timer {
            None => c.report(at, codes::WORKFLOW_TRANSITION_MISSING_TIMER, format!(
                "{name} is scheduled but has no `timer`; add e.g. {{\"duration\": \"PT8S\"}}, {{\"cron\": \"0 9 * * *\"}} or a rhai timer script"
            )),
            Some(timer) => c.timer(&at.key("timer"), timer, &name),
        }
    }
    if let Some(rule) = &t.rule {
        c.script(
            &at.key("rule"),
            rule,
            Hook::Handler,
            &format!("rule of {name}"),
        );
    }
    if let Some(mapping) = &t.mapping {
        c.script(
            &at.key("mapping"),
            mapping,
            Hook::Handler,
            &format!("mapping of {name}"),
        );
    }
    if let Some(schema) = &t.schema {
        c.reference(&at.key("schema"), schema, ComponentKind::Schema, "schema");
    }
    if let Some(view) = &t.view {
        c.view_binding(&at.key("view"), view, &name);
    }
    c.task_entries(
        &at.key("onExecutionTasks"),
        &t.on_execution_tasks,
        &format!("onExecutionTasks of {name}"),
    );
    for (i, entry) in t.available_in.iter().enumerate() {
        if !states.contains(entry.state()) {
            c.report(
                &at.key("availableIn").idx(i),
                codes::WORKFLOW_AVAILABLE_IN_UNKNOWN_STATE,
                format!(
                    "{name} is offered in `{}`, which is not a state of this workflow",
                    entry.state()
                ),
            );
        }
    }
}

fn target(
    c: &mut Checker<'_>,
    at: &Ptr,
    t: &Transition,
    site: Site<'_>,
    states: &HashSet<&str>,
    name: &str,
) {
    let pointer = at.key("target");
    let defined = states.contains(t.target.as_str());
    match site {
        Site::Start if !defined => c.report(&pointer, codes::WORKFLOW_START_UNKNOWN_TARGET, format!(
            "{name} targets `{}`, which is not a state of this workflow; the start transition must lead to a defined state",
            t.target
        )),
        Site::UpdateData if !t.targets_self() => c.report(&pointer, codes::WORKFLOW_UPDATE_DATA_TARGET, format!(
            "{name} targets `{}`; updateData only changes data and must target `{SELF_TARGET}`",
            t.target
        )),
        Site::Start | Site::UpdateData => {}
        _ if defined || t.targets_self() => {}
        _ => c.report(&pointer, codes::WORKFLOW_TRANSITION_UNKNOWN_TARGET, format!(
            "{name} targets `{}`, which is not a state of this workflow (nor `{SELF_TARGET}`)",
            t.target
        )),
    }
}
