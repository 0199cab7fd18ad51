//! Orchestration: the REST API, instance lifecycle and the transition pipeline.
//!
//! Layout:
//! - [`engine`]: the transition pipeline behind every start, transition and retry,
//!   the definition cache, and the trigger the job scheduler calls.
//! - [`store`]: SQL of the flow schemas (instance rows, history, task runs,
//!   incidents) used inside the engine's transactions.

pub mod engine;
pub mod store;
