//! Error boundaries: what happens when a task fails (vNext semantics).
//!
//! [`resolve`] looks at the task's, then the state's, then the workflow's
//! `errorBoundary`; the first level with a rule matching the error decides. Within a
//! level, rules run by ascending `priority` (100 when absent; ties keep file order).
//!
//! A rule matches when both hold:
//! - `errorCodes` is empty, contains `*`, or contains a pattern matching the error's
//!   code ([`code_matches`]): `Task:503` (exact), `503` (any prefix), `5xx` / `50x`
//!   (`x` stands for a digit), `Task:5xx`, `Task:*`. Case-insensitive.
//! - `errorTypes` is empty, contains `*`, or names the error's kind
//!   ([`error_kind`]): `http`, `timeout`, `connection`, `config`, `script`, ...,
//!   ignoring case and an `Exception`/`Error` suffix (`TimeoutException` names
//!   `timeout`; a bare `Exception` names every kind).
//!
//! Actions: Abort faults the instance; Retry schedules another attempt while the
//! policy allows (`1 + maxRetries` attempts in all), then falls back to the next
//! matching rule that is not a Retry (in the same level by priority, then the outer
//! levels), and faults when there is none; Rollback and Notify run the rule's
//! transition; Ignore continues; Log continues and asks for the error to be logged.
//! A rule with `logOnly: true` only logs, whatever its action. No matching rule
//! faults the instance. The task's `retryable` flag does not override a boundary:
//! a definition that asks for retries gets them.
//!
//! A *lost* attempt ([`resolve_lost`]) is one whose outcome never came back:
//! the process running it stopped and its lease expired. Its error is
//! [`LOST_CODE`], and every Retry rule applies to it whatever its `errorCodes`
//! and `errorTypes`: the failure the call would have reported is unknown, and a
//! task that declares retries is one whose author accepts running it again.
//! The other rules match it by code (`*`, `Lease:*`, `Lease:expired`) and type
//! (`expired`) as usual.

use std::fmt;

use crate::model::{ErrorAction, ErrorBoundary, ErrorRule};
use crate::retry::RetryPolicy;
use crate::traits::TaskError;

/// `priority` of a rule that does not say.
pub const DEFAULT_PRIORITY: i64 = 100;

/// The error code of an attempt whose outcome was lost (its lease expired).
pub const LOST_CODE: &str = "Lease:expired";

/// The error a lost attempt of task `task_key` counts as.
pub fn lost_error(task_key: &str) -> TaskError {
    TaskError::new(
        LOST_CODE,
        format!("the process running task `{task_key}` stopped before its outcome was recorded; the outcome is unknown"),
        true,
    )
}

/// Where a boundary is declared. [`resolve`] takes them in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoundaryLevel {
    Task,
    State,
    Workflow,
}

impl BoundaryLevel {
    pub const ORDER: [BoundaryLevel; 3] = [BoundaryLevel::Task, BoundaryLevel::State, BoundaryLevel::Workflow];

    pub fn as_str(self) -> &'static str {
        match self {
            BoundaryLevel::Task => "task",
            BoundaryLevel::State => "state",
            BoundaryLevel::Workflow => "workflow",
        }
    }
}

/// Which rule decided: its level, its index in that level's `onError` and its
/// effective priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleOrigin {
    pub level: BoundaryLevel,
    pub index: usize,
    pub priority: i64,
}

impl fmt::Display for RuleOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-level errorBoundary.onError[{}] (priority {})", self.level.as_str(), self.index, self.priority)
    }
}

/// What to do about a failed task.
#[derive(Debug, Clone, PartialEq)]
pub enum BoundaryDecision {
    /// Fault the instance (Abort, no matching rule, retries exhausted without a
    /// fallback, or a rule that cannot be carried out). `reason` is written to the
    /// incident.
    Fault { reason: String, origin: Option<RuleOrigin> },
    /// Run the task again after `policy.delay_for(retry_number, sample)`.
    Retry { policy: RetryPolicy, retry_number: u32, origin: RuleOrigin },
    /// Run transition `key` (Rollback or Notify).
    RunTransition { key: String, action: ErrorAction, origin: RuleOrigin },
    /// Carry on as if the task had succeeded with no output (Ignore, Log, `logOnly`);
    /// `log` asks for the error to be logged.
    Continue { log: bool, origin: RuleOrigin },
}

/// Decides what happens after `error`, given the task-, state- and workflow-level
/// boundaries (in that order; `None` where a level declares none) and `attempt`,
/// the 1-based number of the attempt that just failed (0 is read as 1).
pub fn resolve(levels: [Option<&ErrorBoundary>; 3], error: &TaskError, attempt: u32) -> BoundaryDecision {
    resolve_with(levels, error, attempt, false)
}

/// As [`resolve`], for attempt `attempt` whose outcome was lost (see the module
/// docs): the error is [`lost_error`] and every Retry rule matches it.
pub fn resolve_lost(levels: [Option<&ErrorBoundary>; 3], task_key: &str, attempt: u32) -> BoundaryDecision {
    resolve_with(levels, &lost_error(task_key), attempt, true)
}

fn resolve_with(levels: [Option<&ErrorBoundary>; 3], error: &TaskError, attempt: u32, any_retry: bool) -> BoundaryDecision {
    let attempt = attempt.max(1);
    let mut exhausted: Option<RuleOrigin> = None;
    for (origin, rule) in matching_rules(levels, error, any_retry) {
        if rule.log_only == Some(true) {
            return BoundaryDecision::Continue { log: true, origin };
        }
        match rule.action {
            ErrorAction::Retry => {
                if exhausted.is_some() {
                    continue;
                }
                let Some(spec) = &rule.retry_policy else {
                    return fault(format!("{origin} is a Retry rule without a retryPolicy"), origin);
                };
                let policy = match RetryPolicy::from_spec(spec) {
                    Ok(p) => p,
                    Err(e) => return fault(format!("{origin}: {e}"), origin),
                };
                if attempt <= policy.max_retries {
                    return BoundaryDecision::Retry { policy, retry_number: attempt, origin };
                }
                exhausted = Some(origin);
            }
            ErrorAction::Abort => {
                return fault(format!("task failed with {}: {}; aborted by {origin}", error.code, error.message), origin);
            }
            action @ (ErrorAction::Rollback | ErrorAction::Notify) => {
                return match rule.transition.as_deref().map(str::trim) {
                    Some(key) if !key.is_empty() => {
                        BoundaryDecision::RunTransition { key: key.to_string(), action, origin }
                    }
                    _ => fault(format!("{origin} is a {action:?} rule without a transition"), origin),
                };
            }
            ErrorAction::Ignore => return BoundaryDecision::Continue { log: false, origin },
            ErrorAction::Log => return BoundaryDecision::Continue { log: true, origin },
        }
    }
    match exhausted {
        Some(origin) => BoundaryDecision::Fault {
            reason: format!(
                "task failed with {}: {}; retries of {origin} exhausted after {attempt} attempts",
                error.code, error.message
            ),
            origin: Some(origin),
        },
        None => BoundaryDecision::Fault {
            reason: format!("task failed with {}: {}; no error boundary handles it", error.code, error.message),
            origin: None,
        },
    }
}

fn fault(reason: String, origin: RuleOrigin) -> BoundaryDecision {
    BoundaryDecision::Fault { reason, origin: Some(origin) }
}

/// Every rule that matches `error`, in the order [`resolve`] considers them;
/// with `any_retry`, every Retry rule too.
fn matching_rules<'a>(
    levels: [Option<&'a ErrorBoundary>; 3],
    error: &TaskError,
    any_retry: bool,
) -> impl Iterator<Item = (RuleOrigin, &'a ErrorRule)> {
    let kind = error_kind(error);
    let mut out = Vec::new();
    for (level, boundary) in BoundaryLevel::ORDER.into_iter().zip(levels) {
        let Some(boundary) = boundary else { continue };
        let mut rules: Vec<(RuleOrigin, &ErrorRule)> = boundary
            .on_error
            .iter()
            .enumerate()
            .filter(|(_, rule)| (any_retry && rule.action == ErrorAction::Retry) || rule_matches(rule, &error.code, &kind))
            .map(|(index, rule)| {
                let priority = rule.priority.unwrap_or(DEFAULT_PRIORITY);
                (RuleOrigin { level, index, priority }, rule)
            })
            .collect();
        rules.sort_by_key(|(origin, _)| origin.priority);
        out.extend(rules);
    }
    out.into_iter()
}

fn rule_matches(rule: &ErrorRule, code: &str, kind: &str) -> bool {
    let codes_ok = rule.error_codes.is_empty() || rule.error_codes.iter().any(|p| code_matches(p, code));
    let types_ok = rule.error_types.is_empty() || rule.error_types.iter().any(|p| type_matches(p, kind));
    codes_ok && types_ok
}

/// True when an `errorCodes` pattern matches an error code (see the module docs).
pub fn code_matches(pattern: &str, code: &str) -> bool {
    let pattern = pattern.trim();
    if pattern.is_empty() || pattern == "*" {
        return true;
    }
    let (p_prefix, p_value) = split_code(pattern);
    let (c_prefix, c_value) = split_code(code.trim());
    if let Some(p_prefix) = p_prefix
        && p_prefix != "*"
        && !c_prefix.is_some_and(|c| c.eq_ignore_ascii_case(p_prefix))
    {
        return false;
    }
    if p_value == "*" || p_value.eq_ignore_ascii_case(c_value) {
        return true;
    }
    // `5xx`, `40x`: x stands for one digit.
    p_value.len() == c_value.len()
        && p_value.chars().any(|c| c.eq_ignore_ascii_case(&'x'))
        && p_value
            .chars()
            .zip(c_value.chars())
            .all(|(p, c)| if p.eq_ignore_ascii_case(&'x') { c.is_ascii_digit() } else { p.eq_ignore_ascii_case(&c) })
}

fn split_code(code: &str) -> (Option<&str>, &str) {
    match code.rsplit_once(':') {
        Some((prefix, value)) => (Some(prefix), value),
        None => (None, code),
    }
}

/// True when an `errorTypes` entry names `kind` (see the module docs).
pub fn type_matches(pattern: &str, kind: &str) -> bool {
    let pattern = pattern.trim();
    // A bare `Exception` / `Error` is the base of every kind.
    let wanted = normalize_type(pattern);
    pattern.is_empty() || pattern == "*" || wanted.is_empty() || wanted == normalize_type(kind)
}

fn normalize_type(name: &str) -> String {
    let lower: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    let stripped = lower.strip_suffix("exception").or_else(|| lower.strip_suffix("error")).unwrap_or(&lower);
    stripped.to_string()
}

/// The kind of a task error, from its code: `http` for an HTTP status (`Task:503`),
/// otherwise the code's last segment in lower case (`Task:timeout` → `timeout`).
pub fn error_kind(error: &TaskError) -> String {
    let (_, value) = split_code(error.code.trim());
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
        "http".to_string()
    } else {
        value.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_patterns() {
        for (pattern, code, expected) in [
            ("*", "Task:503", true),
            ("", "Task:503", true),
            ("Task:503", "Task:503", true),
            ("task:503", "Task:503", true),
            ("503", "Task:503", true),
            ("503", "503", true),
            ("Task:503", "503", false),
            ("500", "Task:503", false),
            ("5xx", "Task:503", true),
            ("5XX", "Task:599", true),
            ("50x", "Task:503", true),
            ("50x", "Task:510", false),
            ("4xx", "Task:503", false),
            ("5xx", "Task:5000", false),
            ("5xx", "Task:timeout", false),
            ("Task:5xx", "Task:503", true),
            ("Http:5xx", "Task:503", false),
            ("Task:*", "Task:timeout", true),
            ("*:503", "Other:503", true),
            ("timeout", "Task:timeout", true),
            ("Task:timeout", "Task:connection", false),
        ] {
            assert_eq!(code_matches(pattern, code), expected, "{pattern} vs {code}");
        }
    }

    #[test]
    fn kinds_and_type_patterns() {
        let kind = |code: &str| error_kind(&TaskError::new(code, "x", true));
        assert_eq!(kind("Task:503"), "http");
        assert_eq!(kind("Task:timeout"), "timeout");
        assert_eq!(kind("Task:Connection"), "connection");
        assert_eq!(kind("script"), "script");
        assert!(type_matches("TimeoutException", "timeout"));
        assert!(type_matches("timeout", "timeout"));
        assert!(type_matches("HttpError", "http"));
        assert!(type_matches("*", "config"));
        assert!(!type_matches("ValidationException", "http"));
        assert!(type_matches("Exception", "http"));
    }
}
