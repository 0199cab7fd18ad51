//! Pieces several component kinds share: task entries, error boundaries and
//! view bindings.

use super::checker::Checker;
use super::codes;
use super::diagnostic::Ptr;
use super::scripts::Hook;
use crate::model::{
    ComponentKind, ErrorAction, ErrorBoundary, RetryPolicySpec, TaskEntry, ViewBinding,
};
use crate::retry::{RetryPolicy, RetryPolicyError};

impl Checker<'_> {
    /// A task run from `onEntries`, `onExits`, `onExecutionTasks` or a function/extension.
    pub(crate) fn task_entry(&mut self, pointer: &Ptr, entry: &TaskEntry, what: &str) {
        if entry.order < 1 {
            self.report(&pointer.key("order"), codes::WORKFLOW_TASK_ORDER_INVALID, format!(
                "{what} has order {}; orders start at 1 (same order runs concurrently, orders run ascending)",
                entry.order
            ));
        }
        self.reference(
            &pointer.key("task"),
            &entry.task,
            ComponentKind::Task,
            "task",
        );
        if let Some(mapping) = &entry.mapping {
            self.script(
                &pointer.key("mapping"),
                mapping,
                Hook::TaskMapping,
                &format!("mapping of {what}"),
            );
        }
        if let Some(boundary) = &entry.error_boundary {
            self.error_boundary(&pointer.key("errorBoundary"), boundary, what);
        }
    }

    pub(crate) fn task_entries(&mut self, pointer: &Ptr, entries: &[TaskEntry], what: &str) {
        for (i, entry) in entries.iter().enumerate() {
            self.task_entry(
                &pointer.idx(i),
                entry,
                &format!("task #{} in {what}", i + 1),
            );
        }
    }

    pub(crate) fn error_boundary(&mut self, pointer: &Ptr, boundary: &ErrorBoundary, what: &str) {
        for (i, rule) in boundary.on_error.iter().enumerate() {
            let at = pointer.key("onError").idx(i);
            match &rule.retry_policy {
                None if rule.action == ErrorAction::Retry => self.report(&at, codes::ERROR_BOUNDARY_RETRY_POLICY_MISSING, format!(
                    "error rule #{} of {what} retries but has no `retryPolicy`; add {{\"initialDelay\": \"PT5S\", \"maxRetries\": 3}}",
                    i + 1
                )),
                None => {}
                Some(policy) => self.retry_policy(&at.key("retryPolicy"), policy, &format!("error rule #{} of {what}", i + 1)),
            }
        }
    }

    /// Checks a retry policy the way the runtime reads it ([`RetryPolicy::from_spec`]).
    fn retry_policy(&mut self, at: &Ptr, policy: &RetryPolicySpec, what: &str) {
        let Err(e) = RetryPolicy::from_spec(policy) else {
            return;
        };
        let (field, code) = match &e {
            RetryPolicyError::Duration { field, .. } => {
                (*field, codes::ERROR_BOUNDARY_DELAY_INVALID)
            }
            RetryPolicyError::ZeroInitialDelay(_) => {
                ("initialDelay", codes::ERROR_BOUNDARY_DELAY_INVALID)
            }
            RetryPolicyError::MaxDelayBelowInitial { .. } => {
                ("maxDelay", codes::ERROR_BOUNDARY_DELAY_INVALID)
            }
            RetryPolicyError::Multiplier(_) => (
                "backoffMultiplier",
                codes::ERROR_BOUNDARY_RETRY_POLICY_INVALID,
            ),
            RetryPolicyError::BackoffType(_) => {
                ("backoffType", codes::ERROR_BOUNDARY_RETRY_POLICY_INVALID)
            }
        };
        self.report(&at.key(field), code, format!("{what}: {e}"));
    }

    pub(crate) fn view_binding(&mut self, pointer: &Ptr, binding: &ViewBinding, what: &str) {
        match binding {
            ViewBinding::Plain(view) => self.reference(
                &pointer.key("view"),
                &view.view,
                ComponentKind::View,
                "view",
            ),
            ViewBinding::Rules { rules, default } => {
                for (i, rule) in rules.iter().enumerate() {
                    let at = pointer.key("rules").idx(i);
                    self.script(
                        &at.key("rule"),
                        &rule.rule,
                        Hook::Handler,
                        &format!("view rule #{} of {what}", i + 1),
                    );
                    self.reference(&at.key("view"), &rule.view, ComponentKind::View, "view");
                }
                if let Some(default) = default {
                    self.reference(
                        &pointer.key("default").key("view"),
                        &default.view,
                        ComponentKind::View,
                        "view",
                    );
                }
            }
        }
    }
}
