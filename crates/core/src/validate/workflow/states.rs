//! States: unique keys, one initial state at most, final states lead nowhere,
//! subflow states name their child.

use std::collections::{HashMap, HashSet};

use super::transitions::{self, Site};
use crate::model::{ComponentKind, StateType, Workflow};
use crate::validate::checker::Checker;
use crate::validate::codes;
use crate::validate::diagnostic::Ptr;
use crate::validate::envelope::is_name;
use crate::validate::scripts::Hook;

pub(super) fn check(c: &mut Checker<'_>, at: &Ptr, w: &Workflow, keys: &HashSet<&str>) {
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    let mut initial: Option<&str> = None;
    for (i, state) in w.states.iter().enumerate() {
        let here = at.idx(i);
        let name = format!("state `{}`", state.key);
        if !is_name(&state.key) {
            c.report(
                &here.key("key"),
                codes::WORKFLOW_STATE_INVALID_KEY,
                format!(
                    "state key `{}` must match ^[a-z0-9-]+$ (lower-case letters, digits, dashes)",
                    state.key
                ),
            );
        }
        if let Some(first) = first_index.get(state.key.as_str()) {
            c.report(&here.key("key"), codes::WORKFLOW_STATE_DUPLICATE_KEY, format!(
                "state key `{}` is already used by state #{} (/attributes/states/{first}); state keys must be unique",
                state.key,
                first + 1
            ));
        } else {
            first_index.insert(&state.key, i);
        }
        if state.state_type == StateType::Initial {
            if let Some(first) = initial {
                c.report(&here.key("stateType"), codes::WORKFLOW_STATE_MULTIPLE_INITIAL, format!(
                    "state `{}` is a second initial state (stateType 1) after `{first}`; a workflow has at most one",
                    state.key
                ));
            } else {
                initial = Some(&state.key);
            }
        }
        if state.state_type == StateType::Final && !state.transitions.is_empty() {
            c.report(&here.key("transitions"), codes::WORKFLOW_STATE_FINAL_HAS_TRANSITIONS, format!(
                "final state `{}` has {} transition(s); a final state completes the instance, so it has none",
                state.key,
                state.transitions.len()
            ));
        }
        match (&state.sub_flow, state.state_type) {
            (None, StateType::SubFlow) => c.report(&here, codes::WORKFLOW_STATE_SUBFLOW_MISSING, format!(
                "subflow state `{}` (stateType 4) has no `subFlow`; add {{\"type\": \"S\", \"process\": reference, \"mapping\": script}}",
                state.key
            )),
            (None, _) => {}
            (Some(sub), _) => {
                let sub_at = here.key("subFlow");
                c.reference(&sub_at.key("process"), &sub.process, ComponentKind::Workflow, "subflow process");
                if let Some(mapping) = &sub.mapping {
                    c.script(&sub_at.key("mapping"), mapping, Hook::SubFlowMapping, &format!("subflow mapping of {name}"));
                }
            }
        }

        let mut seen: Vec<&str> = Vec::new();
        let mut default: Option<&str> = None;
        for (j, t) in state.transitions.iter().enumerate() {
            let t_at = here.key("transitions").idx(j);
            if seen.contains(&t.key.as_str()) {
                c.report(&t_at.key("key"), codes::WORKFLOW_TRANSITION_DUPLICATE_KEY, format!(
                    "transition key `{}` is used twice in state `{}`; transition keys must be unique within a state",
                    t.key, state.key
                ));
            }
            seen.push(&t.key);
            if t.is_default_auto() {
                if let Some(first) = default {
                    c.report(&t_at.key("triggerKind"), codes::WORKFLOW_STATE_MULTIPLE_DEFAULTS, format!(
                        "transition `{}` is a second default (triggerKind 10) in state `{}` after `{first}`; a state has at most one",
                        t.key, state.key
                    ));
                } else {
                    default = Some(&t.key);
                }
            }
            transitions::check(c, &t_at, t, Site::State(&state.key), keys);
        }
        c.task_entries(
            &here.key("onEntries"),
            &state.on_entries,
            &format!("onEntries of {name}"),
        );
        c.task_entries(
            &here.key("onExits"),
            &state.on_exits,
            &format!("onExits of {name}"),
        );
        if let Some(view) = &state.view {
            c.view_binding(&here.key("view"), view, &name);
        }
        if let Some(boundary) = &state.error_boundary {
            c.error_boundary(&here.key("errorBoundary"), boundary, &name);
        }
    }
}
