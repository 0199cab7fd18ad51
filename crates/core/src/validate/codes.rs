//! The stable diagnostic codes. Clients may match on them; they never change
//! meaning. Messages may be reworded; codes may not.

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal;)+) => {
        $($(#[$doc])* pub const $name: &str = $code;)+
        /// Every code, in declaration order.
        pub const ALL: &[&str] = &[$($code),+];
    };
}

codes! {
    /// The file is not JSON at all.
    JSON_SYNTAX = "json.syntax";
    /// The document does not fit the typed component model (wrong type, unknown enum code, missing field).
    COMPONENT_PARSE = "component.parse";
    /// A file named explicitly for validation is JSON but not a component (neither `flow` nor `attributes`).
    COMPONENT_NOT_A_COMPONENT = "component.not-a-component";
    /// A member the typed model does not know (a warning; an error when publishing strictly).
    COMPONENT_UNKNOWN_FIELD = "component.unknown-field";
    /// Two files of one package define the same component version.
    PACKAGE_DUPLICATE_COMPONENT = "package.duplicate-component";

    /// An envelope field (`key`, `version`, `domain`, `flow`, `attributes`) is absent.
    ENVELOPE_MISSING_FIELD = "envelope.missing-field";
    /// An envelope field has the wrong JSON type.
    ENVELOPE_WRONG_TYPE = "envelope.wrong-type";
    /// `key` does not match `^[a-z0-9-]+$`.
    ENVELOPE_KEY_INVALID = "envelope.key.invalid";
    /// `domain` does not match `^[a-z0-9-]+$`.
    ENVELOPE_DOMAIN_INVALID = "envelope.domain.invalid";
    /// `version` is not `MAJOR.MINOR.PATCH[-label.N]`.
    ENVELOPE_VERSION_INVALID = "envelope.version.invalid";
    /// `flowVersion` is absent or not `MAJOR.MINOR.PATCH[-label.N]`.
    ENVELOPE_FLOW_VERSION_INVALID = "envelope.flow-version.invalid";
    /// `flow` names no component flow (`sys-flows`, `sys-tasks`, ...).
    ENVELOPE_FLOW_UNKNOWN = "envelope.flow.unknown";
    /// `tags` is absent or empty.
    ENVELOPE_TAGS_MISSING = "envelope.tags.missing";
    /// A tag is not a non-empty string.
    ENVELOPE_TAGS_INVALID = "envelope.tags.invalid";

    /// The workflow `type` is not `C`, `F`, `S` or `P`.
    WORKFLOW_TYPE_INVALID = "workflow.type.invalid";
    /// Two states share a key.
    WORKFLOW_STATE_DUPLICATE_KEY = "workflow.state.duplicate-key";
    /// A state key does not match `^[a-z0-9-]+$`.
    WORKFLOW_STATE_INVALID_KEY = "workflow.state.invalid-key";
    /// More than one state has `stateType: 1`.
    WORKFLOW_STATE_MULTIPLE_INITIAL = "workflow.state.multiple-initial";
    /// A state has more than one default automatic transition (`triggerKind: 10`).
    WORKFLOW_STATE_MULTIPLE_DEFAULTS = "workflow.state.multiple-defaults";
    /// A final state has outgoing transitions.
    WORKFLOW_STATE_FINAL_HAS_TRANSITIONS = "workflow.state.final-has-transitions";
    /// A SubFlow state has no `subFlow`.
    WORKFLOW_STATE_SUBFLOW_MISSING = "workflow.state.subflow-missing";
    /// The start transition does not target a defined state.
    WORKFLOW_START_UNKNOWN_TARGET = "workflow.start.unknown-target";
    /// The start transition is not manual (`triggerType: 0`).
    WORKFLOW_START_TRIGGER_TYPE = "workflow.start.trigger-type";
    /// Two transitions of one state share a key.
    WORKFLOW_TRANSITION_DUPLICATE_KEY = "workflow.transition.duplicate-key";
    /// A transition key does not match `^[a-z0-9-]+$`.
    WORKFLOW_TRANSITION_INVALID_KEY = "workflow.transition.invalid-key";
    /// A transition targets a state that does not exist.
    WORKFLOW_TRANSITION_UNKNOWN_TARGET = "workflow.transition.unknown-target";
    /// An automatic transition that is not the default has no `rule`.
    WORKFLOW_TRANSITION_MISSING_RULE = "workflow.transition.missing-rule";
    /// A scheduled transition has no `timer`.
    WORKFLOW_TRANSITION_MISSING_TIMER = "workflow.transition.missing-timer";
    /// Two shared transitions share a key.
    WORKFLOW_SHARED_DUPLICATE_KEY = "workflow.shared.duplicate-key";
    /// A shared transition is automatic (only 0 manual, 2 scheduled, 3 event are allowed).
    WORKFLOW_SHARED_TRIGGER_TYPE = "workflow.shared.trigger-type";
    /// `availableIn` names a state that does not exist.
    WORKFLOW_AVAILABLE_IN_UNKNOWN_STATE = "workflow.available-in.unknown-state";
    /// `updateData` does not target `$self`.
    WORKFLOW_UPDATE_DATA_TARGET = "workflow.update-data.target-not-self";
    /// The workflow timeout targets a state that does not exist.
    WORKFLOW_TIMEOUT_UNKNOWN_TARGET = "workflow.timeout.unknown-target";
    /// A task entry's `order` is below 1.
    WORKFLOW_TASK_ORDER_INVALID = "workflow.task-entry.order-invalid";

    /// A declarative timer names none of `duration`, `cron`, `at`.
    TIMER_NO_SCHEDULE = "timer.no-schedule";
    /// A declarative timer names more than one of `duration`, `cron`, `at`.
    TIMER_AMBIGUOUS = "timer.ambiguous";
    /// A duration is not ISO-8601 (`PT8S`, `P1D`).
    TIMER_DURATION_INVALID = "timer.duration.invalid";
    /// A duration is longer than [`crate::validate::MAX_DURATION_YEARS`] years (`P9999Y`).
    TIMER_DURATION_TOO_LONG = "timer.duration.too-long";
    /// A cron expression does not parse.
    TIMER_CRON_INVALID = "timer.cron.invalid";
    /// A cron expression has no fire time within [`crate::validate::CRON_HORIZON_YEARS`] years (`0 0 30 2 *`).
    TIMER_CRON_NEVER_FIRES = "timer.cron.never-fires";
    /// An `at` instant is not RFC 3339.
    TIMER_AT_INVALID = "timer.at.invalid";
    /// A timezone is not a known IANA zone.
    TIMER_TIMEZONE_UNKNOWN = "timer.timezone.unknown";
    /// A timezone is given without a cron schedule, where it means nothing.
    TIMER_TIMEZONE_WITHOUT_CRON = "timer.timezone.without-cron";

    /// An error rule with action Retry has no `retryPolicy`.
    ERROR_BOUNDARY_RETRY_POLICY_MISSING = "error-boundary.retry-policy-missing";
    /// A retry delay is not a positive ISO-8601 duration, or `maxDelay` is below `initialDelay`.
    ERROR_BOUNDARY_DELAY_INVALID = "error-boundary.delay.invalid";
    /// A retry policy's `backoffType` or `backoffMultiplier` is out of range.
    ERROR_BOUNDARY_RETRY_POLICY_INVALID = "error-boundary.retry-policy-invalid";

    /// An explicit reference lacks `key`, `domain`, `flow` or `version`.
    REFERENCE_INCOMPLETE = "reference.incomplete";
    /// A reference names a component by `id`, which cannot be resolved; use `key`.
    REFERENCE_BY_ID = "reference.by-id-unsupported";
    /// A reference points at a component of the wrong flow (a view where a task belongs).
    REFERENCE_WRONG_FLOW = "reference.wrong-flow";
    /// A reference's version is not `1.2.3`, `latest`, `1` or `1.2`.
    REFERENCE_VERSION_INVALID = "reference.version.invalid";
    /// No known component matches the reference.
    REFERENCE_UNRESOLVED = "reference.unresolved";
    /// A short `{ref: path}` reference names no file of the package.
    REFERENCE_FILE_NOT_FOUND = "reference.file.not-found";
    /// A short `{ref: path}` reference used outside a package, where no files exist.
    REFERENCE_FILE_OUTSIDE_PACKAGE = "reference.file.outside-package";

    /// A script is C# (`.csx` location or C# source); rhai is required.
    SCRIPT_CSHARP = "script.csharp";
    /// A script's code is missing, not valid base64, or not UTF-8.
    SCRIPT_DECODE = "script.decode";
    /// A script uses encoding `REF` (shared C# mappings), which this runtime does not run.
    SCRIPT_REF_UNSUPPORTED = "script.ref-unsupported";
    /// A script is global (`type: G`), a built-in this runtime does not provide.
    SCRIPT_GLOBAL_UNSUPPORTED = "script.global-unsupported";
    /// A script does not parse as rhai.
    SCRIPT_SYNTAX = "script.syntax";
    /// A script lacks the hook function its position requires (`fn handler(ctx)`, ...).
    SCRIPT_MISSING_FUNCTION = "script.missing-function";

    /// The task type is one this runtime does not run.
    TASK_TYPE_UNSUPPORTED = "task.type.unsupported";
    /// The task `config` is not an object, or a field has the wrong type.
    TASK_CONFIG_INVALID = "task.config.invalid";
    /// The task `config` lacks a field its type requires.
    TASK_CONFIG_MISSING_FIELD = "task.config.missing-field";

    /// A `sys-schemas` component's JSON Schema does not compile.
    SCHEMA_COMPILE = "schema.compile";
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_unique_and_dotted() {
        let mut seen = std::collections::HashSet::new();
        for code in super::ALL {
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(code.contains('.'), "code {code} has no category");
            assert!(
                code.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '-'),
                "{code}"
            );
        }
    }
}
