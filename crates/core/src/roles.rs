//! The workflow model's role checks: transition `roles` (who may run a
//! transition) and `queryRoles` (who may read an instance), decided without I/O.
//!
//! A list of grants (`[{"role": "approver", "grant": "allow"}, …]`) is read the
//! vNext way: a `deny` that names one of the caller's roles wins; otherwise an
//! `allow` that names one of them allows; otherwise the caller is denied
//! ("default DENY when no match"). An absent or empty list restricts nothing.
//!
//! Where lists apply:
//! - a transition's own `roles`, and, for a shared or well-known transition
//!   offered through an `availableIn` entry `{state, roles}`, that entry's
//!   roles as well (both must allow);
//! - reads: the current state's `queryRoles` when it has a non-empty list,
//!   else the workflow's `queryRoles`.
//!
//! Role names are compared exactly. vNext's pseudo-roles (`$InstanceStarter`,
//! `$PreviousUser`, …) and dynamic roles (`$user.…`) are not evaluated: no
//! caller carries a role starting with `$`, so such a grant never matches.

use std::collections::BTreeSet;

use crate::model::{AvailableIn, RoleGrant, Transition, Workflow};

/// The roles a request is made with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Roles {
    /// Role checks do not apply: the system itself (timers, retries), an admin
    /// identity, or a development run without authentication.
    #[default]
    Unrestricted,
    /// An identity with these roles (possibly none).
    Of(BTreeSet<String>),
}

impl Roles {
    /// An identity's roles. Names starting with `$` are dropped: they are the
    /// model's pseudo-roles, which no caller may claim.
    pub fn of<I, S>(roles: I) -> Roles
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Roles::Of(
            roles
                .into_iter()
                .map(|r| r.as_ref().trim().to_string())
                .filter(|r| !r.is_empty() && !r.starts_with('$'))
                .collect(),
        )
    }

    pub fn is_unrestricted(&self) -> bool {
        matches!(self, Roles::Unrestricted)
    }

    /// Whether `grants` let this caller through; see the module docs.
    pub fn allowed_by(&self, grants: Option<&[RoleGrant]>) -> bool {
        let Roles::Of(mine) = self else { return true };
        let Some(grants) = grants.filter(|g| !g.is_empty()) else { return true };
        let granted = |word: &str| {
            grants.iter().any(|g| g.grant.trim().eq_ignore_ascii_case(word) && mine.contains(g.role.trim()))
        };
        !granted("deny") && granted("allow")
    }

    /// Whether this caller may run `transition` while the instance is in
    /// `state` (`None` for a start: there is no `availableIn` to consult).
    pub fn may_run(&self, transition: &Transition, state: Option<&str>) -> bool {
        if !self.allowed_by(transition.roles.as_deref()) {
            return false;
        }
        let Some(state) = state else { return true };
        transition.available_in.iter().all(|entry| match entry {
            AvailableIn::Entry { state: s, roles } if s == state => self.allowed_by(roles.as_deref()),
            _ => true,
        })
    }

    /// Whether this caller may read an instance of `workflow` in `state`.
    pub fn may_read(&self, workflow: &Workflow, state: &str) -> bool {
        if self.is_unrestricted() {
            return true;
        }
        let state_roles = workflow.state(state).and_then(|s| s.query_roles.as_deref()).filter(|g| !g.is_empty());
        self.allowed_by(state_roles.or(workflow.query_roles.as_deref()))
    }

    /// The states of `workflow` this caller may read, or `None` when it may
    /// read every one (the common case, which needs no filter).
    pub fn readable_states(&self, workflow: &Workflow) -> Option<Vec<String>> {
        let readable: Vec<String> = workflow.states.iter().filter(|s| self.may_read(workflow, &s.key)).map(|s| s.key.clone()).collect();
        (readable.len() < workflow.states.len()).then_some(readable)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn grants(v: serde_json::Value) -> Vec<RoleGrant> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn deny_wins_allow_admits_no_match_denies_and_nothing_restricts_nothing() {
        let g = grants(json!([{"role": "clerk", "grant": "allow"}, {"role": "intern", "grant": "deny"}]));
        assert!(Roles::of(["clerk"]).allowed_by(Some(&g)));
        assert!(!Roles::of(["clerk", "intern"]).allowed_by(Some(&g)), "deny wins");
        assert!(!Roles::of(["auditor"]).allowed_by(Some(&g)), "no match denies");
        assert!(!Roles::of(Vec::<String>::new()).allowed_by(Some(&g)));
        assert!(Roles::of(["auditor"]).allowed_by(None));
        assert!(Roles::of(["auditor"]).allowed_by(Some(&[])));
        assert!(Roles::Unrestricted.allowed_by(Some(&g)));
        let only_deny = grants(json!([{"role": "intern", "grant": "DENY"}]));
        assert!(!Roles::of(["clerk"]).allowed_by(Some(&only_deny)), "a list with no allow admits nobody");
    }

    #[test]
    fn pseudo_roles_cannot_be_claimed() {
        let g = grants(json!([{"role": "$InstanceStarter", "grant": "allow"}]));
        assert!(!Roles::of(["$InstanceStarter"]).allowed_by(Some(&g)));
        assert_eq!(Roles::of([" a ", "", "$x"]), Roles::Of(["a".to_string()].into()));
    }

    fn workflow() -> Workflow {
        serde_json::from_value(json!({
            "type": "F",
            "labels": [],
            "startTransition": {"key": "start", "target": "draft", "triggerType": 0, "versionStrategy": "Minor",
                                "roles": [{"role": "clerk", "grant": "allow"}]},
            "queryRoles": [{"role": "clerk", "grant": "allow"}, {"role": "auditor", "grant": "allow"}],
            "states": [
                {"key": "draft", "stateType": 1, "versionStrategy": "Minor"},
                {"key": "secret", "stateType": 2, "versionStrategy": "Minor",
                 "queryRoles": [{"role": "auditor", "grant": "allow"}]},
                {"key": "done", "stateType": 3, "versionStrategy": "Minor"}
            ],
            "sharedTransitions": [{"key": "note", "target": "$self", "triggerType": 0, "versionStrategy": "Minor",
                "roles": [{"role": "clerk", "grant": "allow"}, {"role": "auditor", "grant": "allow"}],
                "availableIn": ["draft", {"state": "secret", "roles": [{"role": "auditor", "grant": "allow"}]}]}]
        }))
        .unwrap()
    }

    #[test]
    fn available_in_entries_narrow_a_transition_in_their_state() {
        let wf = workflow();
        let note = &wf.shared_transitions[0];
        let clerk = Roles::of(["clerk"]);
        assert!(clerk.may_run(note, Some("draft")));
        assert!(!clerk.may_run(note, Some("secret")));
        assert!(Roles::of(["auditor"]).may_run(note, Some("secret")));
        assert!(clerk.may_run(&wf.start_transition, None));
        assert!(!Roles::of(["auditor"]).may_run(&wf.start_transition, None));
    }

    #[test]
    fn a_state_s_query_roles_replace_the_workflow_s() {
        let wf = workflow();
        let clerk = Roles::of(["clerk"]);
        assert!(clerk.may_read(&wf, "draft"));
        assert!(!clerk.may_read(&wf, "secret"));
        assert!(Roles::of(["auditor"]).may_read(&wf, "secret"));
        assert!(!Roles::of(["guest"]).may_read(&wf, "done"));
        assert_eq!(clerk.readable_states(&wf), Some(vec!["draft".to_string(), "done".to_string()]));
        assert_eq!(Roles::of(["auditor"]).readable_states(&wf), None);
        assert_eq!(Roles::Unrestricted.readable_states(&wf), None);
    }
}
