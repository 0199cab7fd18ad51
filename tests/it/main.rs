//! Integration tests of the vnext binary and the whole workspace.
//!
//! One test binary: every former test file is a module here, next to the
//! support modules they share, so the crate links once instead of once per file.

mod api_support;
mod e2e_support;
mod private_pg;

mod api_samples;
mod api_services;
mod api_up;
mod bench_tiny;
mod chaos_outage;
mod cli_client;
mod cli_diagram;
mod cli_keys;
mod cli_validate;
mod e2e_execution_kill;
mod e2e_functions;
mod e2e_http_tasks;
mod e2e_idempotency;
mod e2e_redaction;
mod e2e_secret_search;
mod e2e_timers;
mod e2e_timers_two_executions;
mod publish_warnings;
mod samples_conform;
mod up_embedded;
