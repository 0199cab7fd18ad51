//! Integration tests of vnext-execution.
//!
//! One test binary: every former test file is a module here, next to the
//! support modules they share, so the crate links once instead of once per file.

mod common;

mod connections;
mod domains;
mod egress;
mod http_task;
mod http_trigger;
mod instance_tasks;
mod invoke_api;
mod outbox_relay;
mod scheduler;
mod scheduler_load;
mod service;
