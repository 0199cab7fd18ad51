//! Orchestration: the REST API, instance lifecycle and the transition pipeline.
//!
//! Layout:
//! - [`engine`]: the transition pipeline behind every start, transition and retry,
//!   the definition cache, and the trigger the job scheduler calls.
//! - [`store`]: SQL of the flow schemas (instance rows, history, task runs,
//!   incidents) used inside the engine's transactions.
//! - [`api`]: the REST API, one module per resource, each with its `router()`.
//! - [`query`]: read queries over flow schemas (instances, lists with filters,
//!   history, data versions, the state/view/schema functions, incidents).
//! - [`error`]: the one API error type and its `application/problem+json` form.
//! - [`server`]: the router with its layers, bound to a listener, with graceful shutdown.

pub mod engine;
pub mod store;

pub mod api;
pub mod diagram;
pub mod error;
pub mod query;
pub mod server;
