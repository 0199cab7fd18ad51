//! Workflow definitions (`sys-flows`): the state machine must be well formed
//! and everything it names must exist.

mod states;
mod transitions;

use std::collections::HashSet;

use super::checker::Checker;
use super::codes;
use super::diagnostic::Ptr;
use super::scripts::Hook;
use super::timer::check_duration;
use crate::model::{ComponentKind, Envelope, SELF_TARGET, Workflow};
use transitions::Site;

pub(crate) fn check(c: &mut Checker<'_>, workflow: &Envelope<Workflow>) {
    let at = Ptr::root().key("attributes");
    let w = &workflow.attributes;
    if !matches!(w.flow_type.as_str(), "C" | "F" | "S" | "P") {
        c.report(
            &at.key("type"),
            codes::WORKFLOW_TYPE_INVALID,
            format!(
                "workflow type `{}` is not one of C (core), F (flow), S (subflow), P (subprocess)",
                w.flow_type
            ),
        );
    }
    let keys: HashSet<&str> = w.states.iter().map(|s| s.key.as_str()).collect();
    transitions::check(
        c,
        &at.key("startTransition"),
        &w.start_transition,
        Site::Start,
        &keys,
    );
    states::check(c, &at.key("states"), w, &keys);
    let shared = at.key("sharedTransitions");
    let mut seen: Vec<&str> = Vec::new();
    for (i, t) in w.shared_transitions.iter().enumerate() {
        if seen.contains(&t.key.as_str()) {
            c.report(&shared.idx(i).key("key"), codes::WORKFLOW_SHARED_DUPLICATE_KEY, format!(
                "shared transition key `{}` is used twice; shared transition keys must be unique",
                t.key
            ));
        }
        seen.push(&t.key);
        transitions::check(c, &shared.idx(i), t, Site::Shared, &keys);
    }
    if let Some(t) = &w.cancel {
        transitions::check(c, &at.key("cancel"), t, Site::Cancel, &keys);
    }
    if let Some(t) = &w.exit {
        transitions::check(c, &at.key("exit"), t, Site::Exit, &keys);
    }
    if let Some(t) = &w.update_data {
        transitions::check(c, &at.key("updateData"), t, Site::UpdateData, &keys);
    }

    if let Some(timeout) = &w.timeout {
        let t = at.key("timeout");
        if timeout.target != SELF_TARGET && !keys.contains(timeout.target.as_str()) {
            c.report(
                &t.key("target"),
                codes::WORKFLOW_TIMEOUT_UNKNOWN_TARGET,
                format!(
                    "workflow timeout `{}` targets `{}`, which is not a state of this workflow",
                    timeout.key, timeout.target
                ),
            );
        }
        if let Err((code, e)) = check_duration(&timeout.timer.duration) {
            c.report(&t.key("timer").key("duration"), code, format!("workflow timeout `{}`: {e}", timeout.key));
        }
        if let Some(mapping) = &timeout.mapping {
            c.script(
                &t.key("mapping"),
                mapping,
                Hook::Handler,
                &format!("mapping of workflow timeout `{}`", timeout.key),
            );
        }
    }
    for (i, r) in w.functions.iter().enumerate() {
        c.reference(
            &at.key("functions").idx(i),
            r,
            ComponentKind::Function,
            "function",
        );
    }
    for (i, r) in w.extensions.iter().enumerate() {
        c.reference(
            &at.key("extensions").idx(i),
            r,
            ComponentKind::Extension,
            "extension",
        );
    }
    if let Some(schema) = &w.schema {
        c.reference(
            &at.key("schema"),
            schema,
            ComponentKind::Schema,
            "master schema",
        );
    }
    if let Some(boundary) = &w.error_boundary {
        c.error_boundary(&at.key("errorBoundary"), boundary, "the workflow");
    }
    if let Some(output) = &w.output {
        c.script(
            &at.key("output"),
            output,
            Hook::Compile,
            "output mapping of the workflow",
        );
    }
}
