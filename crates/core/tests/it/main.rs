//! Integration tests of vnext-core.
//!
//! One test binary: every former test file is a module here, next to the
//! support modules they share, so the crate links once instead of once per file.

mod validate_support;

mod boundary_resolve;
mod reference_samples;
mod schedule_cron;
mod schedule_timers;
mod script_calls;
mod script_limits;
mod script_pool_memory;
mod validate_baseline;
mod validate_envelope;
mod validate_package;
mod validate_publish_checks;
mod validate_references;
mod validate_scripts;
mod validate_tasks_schemas;
mod validate_workflow_states;
mod validate_workflow_transitions;
