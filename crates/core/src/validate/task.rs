//! Task definitions: a type this runtime runs, with the config that type needs.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::checker::Checker;
use super::codes;
use super::diagnostic::Ptr;
use super::envelope::kind_of;
use crate::model::{Envelope, HttpTaskConfig, InstanceTaskConfig, Task, TaskType};

const HTTP_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub(crate) fn check(c: &mut Checker<'_>, task: &Envelope<Task>) {
    let attributes = Ptr::root().key("attributes");
    let task_type = task.attributes.task_type;
    if !task_type.is_supported() {
        c.report(
            &attributes.key("type"),
            codes::TASK_TYPE_UNSUPPORTED,
            match task_type.never_supported_because() {
                Some(why) => format!("task type \"{}\" ({}) is not run by this runtime: {why}", task_type.code(), task_type.name()),
                None => format!(
                    "task type \"{}\" ({}) is not run by this runtime; supported types: {}",
                    task_type.code(),
                    task_type.name(),
                    supported_list()
                ),
            },
        );
        return;
    }
    let config = &task.attributes.config;
    let at = attributes.key("config");
    let Some(object) = config.as_object() else {
        let found = if config.is_null() {
            "nothing".to_string()
        } else {
            kind_of(config).to_string()
        };
        c.report(
            &at,
            codes::TASK_CONFIG_INVALID,
            format!(
                "a {} task needs a `config` object ({{}} for a script task), found {found}",
                task_type.name()
            ),
        );
        return;
    };
    let required: &[&str] = match task_type {
        TaskType::Http => &["url", "method"],
        TaskType::DirectTrigger => &["domain", "flow", "transitionName"],
        TaskType::Start | TaskType::GetInstanceData | TaskType::GetInstance => &["domain", "flow"],
        _ => &[],
    };
    let mut complete = true;
    for field in required {
        match object.get(*field) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(Value::String(_)) => {
                complete = false;
                c.report(
                    &at.key(field),
                    codes::TASK_CONFIG_MISSING_FIELD,
                    format!("`{field}` of a {} task must not be empty", task_type.name()),
                );
            }
            None | Some(Value::Null) => {
                complete = false;
                c.report(
                    &at,
                    codes::TASK_CONFIG_MISSING_FIELD,
                    format!(
                        "a {} task's config needs `{field}` (required: {})",
                        task_type.name(),
                        required.join(", ")
                    ),
                );
            }
            Some(other) => {
                complete = false;
                c.report(
                    &at.key(field),
                    codes::TASK_CONFIG_INVALID,
                    format!("`{field}` must be a string, found {}", kind_of(other)),
                );
            }
        }
    }
    if !complete {
        return;
    }
    match task_type {
        TaskType::Http => {
            if typed::<HttpTaskConfig>(c, &at, config)
                && let Some(method) = object.get("method").and_then(Value::as_str)
                && !HTTP_METHODS.contains(&method.to_ascii_uppercase().as_str())
            {
                c.report(
                    &at.key("method"),
                    codes::TASK_CONFIG_INVALID,
                    format!(
                        "`{method}` is not an HTTP method; use one of {}",
                        HTTP_METHODS.join(", ")
                    ),
                );
            }
        }
        TaskType::Start
        | TaskType::DirectTrigger
        | TaskType::GetInstanceData
        | TaskType::GetInstance => {
            typed::<InstanceTaskConfig>(c, &at, config);
        }
        _ => {}
    }
}

/// Parses the config into its typed view, reporting the first mistyped field.
fn typed<T: DeserializeOwned>(c: &mut Checker<'_>, at: &Ptr, config: &Value) -> bool {
    match serde_path_to_error::deserialize::<_, T>(config) {
        Ok(_) => true,
        Err(e) => {
            let mut pointer = at.clone();
            for segment in e.path().iter() {
                pointer = match segment {
                    serde_path_to_error::Segment::Seq { index } => pointer.idx(*index),
                    serde_path_to_error::Segment::Map { key } => pointer.key(key),
                    _ => continue,
                };
            }
            c.report(
                &pointer,
                codes::TASK_CONFIG_INVALID,
                format!("task config does not fit its type: {}", e.inner()),
            );
            false
        }
    }
}

fn supported_list() -> String {
    (1..=20)
        .filter_map(|n| TaskType::from_code(&n.to_string()))
        .filter(|t| t.is_supported())
        .map(|t| format!("\"{}\" {}", t.code(), t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}
