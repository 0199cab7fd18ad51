//! Functions and extensions: the tasks they run, and their scripts.

use super::checker::Checker;
use super::diagnostic::Ptr;
use super::scripts::Hook;
use crate::model::{Envelope, Extension, Function};

pub(crate) fn check_function(c: &mut Checker<'_>, function: &Envelope<Function>) {
    let attributes = Ptr::root().key("attributes");
    let f = &function.attributes;
    if let Some(task) = &f.task {
        c.task_entry(&attributes.key("task"), task, "the function's task");
    }
    c.task_entries(
        &attributes.key("onExecutionTasks"),
        &f.on_execution_tasks,
        "onExecutionTasks of the function",
    );
    if let Some(output) = &f.output {
        c.script(
            &attributes.key("output"),
            output,
            Hook::Compile,
            "output mapping of the function",
        );
    }
}

pub(crate) fn check_extension(c: &mut Checker<'_>, extension: &Envelope<Extension>) {
    let attributes = Ptr::root().key("attributes");
    c.task_entry(
        &attributes.key("task"),
        &extension.attributes.task,
        "the extension's task",
    );
}
