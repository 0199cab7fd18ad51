//! Workflow diagrams: one graph model built from a workflow definition, drawn
//! as Mermaid text ([`mermaid`]) or as SVG laid out by `layout-rs` ([`svg`]).
//!
//! Nodes are the states (by type; final states by sub type) plus two markers:
//! `[start]` (the start transition leaves it) and `[any]` (the source of
//! shared transitions offered everywhere, `cancel`, `exit`, `updateData` and
//! the workflow timeout). Edges are labelled `key (trigger: detail)`. With an
//! instance [`Trail`], the current state and the states and transitions the
//! instance went through are marked.

pub mod mermaid;
pub mod svg;

use vnext_core::machine::TransitionKind;
use vnext_core::model::{AvailableIn, StateType, Timer, Transition, TriggerType, Workflow};

/// The marker node the start transition leaves.
pub const START: &str = "[start]";
/// The marker node of transitions offered in every state.
pub const ANY: &str = "[any]";

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Start,
    Any,
    Initial,
    Intermediate,
    /// A final state with its sub type code (1 success, 2 error, 3 terminated, …).
    Final(Option<i64>),
    SubFlow,
    Wizard,
}

impl NodeKind {
    /// The CSS class and Mermaid class of the node.
    pub fn class(self) -> &'static str {
        match self {
            NodeKind::Start => "start",
            NodeKind::Any => "any",
            NodeKind::Initial => "initial",
            NodeKind::Intermediate => "intermediate",
            NodeKind::Final(Some(2)) => "final-error",
            NodeKind::Final(Some(3)) => "final-terminated",
            NodeKind::Final(_) => "final",
            NodeKind::SubFlow => "subflow",
            NodeKind::Wizard => "wizard",
        }
    }
}

/// Where an instance stands relative to a node or an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mark {
    #[default]
    None,
    /// Went through it.
    Visited,
    /// Stands in it now.
    Current,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub key: String,
    pub kind: NodeKind,
    pub mark: Mark,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub key: String,
    /// Which list of the definition the edge comes from.
    pub scope: TransitionKind,
    /// `manual`, `automatic`, `scheduled`, `event` (or `timeout`).
    pub trigger: &'static str,
    /// The rule, `default`, the timer or the timeout's duration, when there is one.
    pub detail: Option<String>,
    pub taken: bool,
}

impl Edge {
    /// `key (trigger: detail)` or `key (trigger)`.
    pub fn label(&self) -> String {
        match &self.detail {
            Some(detail) => format!("{} ({}: {})", self.key, self.trigger, detail),
            None => format!("{} ({})", self.key, self.trigger),
        }
    }
}

/// What an instance went through: its current state and the transitions it
/// took, oldest first, as `(transition key, from state, to state)`.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    pub current: String,
    pub steps: Vec<(String, String, Option<String>)>,
}

/// The graph of one workflow version.
#[derive(Debug, Clone)]
pub struct Diagram {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Diagram {
    /// The graph of `workflow`, unmarked.
    pub fn of(workflow: &Workflow) -> Diagram {
        let mut nodes = vec![Node { key: START.into(), kind: NodeKind::Start, mark: Mark::None }];
        nodes.extend(workflow.states.iter().map(|s| Node {
            key: s.key.clone(),
            kind: match s.state_type {
                StateType::Initial => NodeKind::Initial,
                StateType::Intermediate => NodeKind::Intermediate,
                StateType::Final => NodeKind::Final(s.sub_type),
                StateType::SubFlow => NodeKind::SubFlow,
                StateType::Wizard => NodeKind::Wizard,
            },
            mark: Mark::None,
        }));
        let mut edges = vec![edge(START, &workflow.start_transition, TransitionKind::Start)];
        for state in &workflow.states {
            edges.extend(state.transitions.iter().map(|t| edge(&state.key, t, TransitionKind::State)));
        }
        let mut any_used = false;
        for t in &workflow.shared_transitions {
            if t.available_in.is_empty() {
                any_used = true;
                edges.push(edge(ANY, t, TransitionKind::Shared));
            } else {
                edges.extend(t.available_in.iter().map(AvailableIn::state).map(|from| edge(from, t, TransitionKind::Shared)));
            }
        }
        for (t, scope) in [(&workflow.cancel, TransitionKind::Cancel), (&workflow.exit, TransitionKind::Exit), (&workflow.update_data, TransitionKind::UpdateData)] {
            if let Some(t) = t {
                any_used = true;
                edges.push(edge(ANY, t, scope));
            }
        }
        if let Some(timeout) = &workflow.timeout {
            any_used = true;
            edges.push(Edge {
                from: ANY.into(),
                to: timeout.target.clone(),
                key: timeout.key.clone(),
                scope: TransitionKind::Timeout,
                trigger: "timeout",
                detail: Some(timeout.timer.duration.clone()),
                taken: false,
            });
        }
        if any_used {
            nodes.push(Node { key: ANY.into(), kind: NodeKind::Any, mark: Mark::None });
        }
        Diagram { nodes, edges }
    }

    /// Marks the states and transitions of `trail`: visited, and the current state.
    pub fn mark(&mut self, trail: &Trail) {
        for (key, from, to) in &trail.steps {
            for node in self.nodes.iter_mut().filter(|n| n.key == *from || Some(&n.key) == to.as_ref()) {
                node.mark = Mark::Visited;
            }
            // The edge taken: the key leaving that state, else the same key
            // leaving a marker (start, or a transition offered everywhere).
            let exact = self.edges.iter().position(|e| e.key == *key && e.from == *from);
            let marker = || self.edges.iter().position(|e| e.key == *key && (e.from == ANY || e.from == START));
            if let Some(i) = exact.or_else(marker) {
                self.edges[i].taken = true;
            }
        }
        for node in self.nodes.iter_mut().filter(|n| n.key == trail.current) {
            node.mark = Mark::Current;
        }
    }

    /// The node an instance stands in, if any is marked current.
    pub fn current(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.mark == Mark::Current)
    }
}

fn edge(from: &str, t: &Transition, scope: TransitionKind) -> Edge {
    let to = if t.targets_self() { from.to_string() } else { t.target.clone() };
    let detail = match t.trigger_type {
        TriggerType::Automatic if t.is_default_auto() => Some("default".to_string()),
        TriggerType::Automatic => t.rule.as_ref().map(|_| "rule".to_string()),
        TriggerType::Scheduled => t.timer.as_ref().map(|timer| match timer {
            Timer::Declarative(d) => d.duration.clone().or_else(|| d.cron.clone()).or_else(|| d.at.clone()).unwrap_or_default(),
            Timer::Script(_) => "script".to_string(),
        }),
        TriggerType::Manual | TriggerType::Event => None,
    };
    let scope_name = match scope {
        TransitionKind::Cancel => Some("cancel"),
        TransitionKind::Exit => Some("exit"),
        TransitionKind::UpdateData => Some("updateData"),
        TransitionKind::Shared => Some("shared"),
        _ => None,
    };
    let detail = match (scope_name, detail) {
        (Some(s), Some(d)) => Some(format!("{s}, {d}")),
        (Some(s), None) => Some(s.to_string()),
        (None, d) => d,
    };
    Edge { from: from.to_string(), to, key: t.key.clone(), scope, trigger: t.trigger_type.name(), detail, taken: false }
}

/// Escapes text for XML/HTML attributes and content.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests;
