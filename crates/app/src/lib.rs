//! Orchestration: the REST API, instance lifecycle and the transition pipeline.
