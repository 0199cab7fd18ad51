//! Integration tests of vnext-app.
//!
//! One test binary: every former test file is a module here, next to the
//! support modules they share, so the crate links once instead of once per file.

mod api_support;
mod engine_support;

mod api_audit;
mod api_answers;
mod api_auth;
mod api_identity;
mod api_roles;
mod api_definitions;
mod api_diagram;
mod api_discovery;
mod api_errors;
mod api_instances;
mod api_limits;
mod api_openapi;
mod api_queries;
mod api_schemathesis;
mod api_telemetry;
mod engine_boundaries;
mod engine_gates;
mod engine_hot_path;
mod engine_lifecycle;
mod engine_lost_runs;
mod engine_pipeline;
mod engine_samples;
mod engine_scripts;
mod engine_subflow;
mod engine_tasks_timers;
mod wire_client;
mod wire_contract;
