//! Integration tests of vnext-init.
//!
//! One test binary: every former test file is a module here, next to the
//! support modules they share, so the crate links once instead of once per file.

mod common;

mod components;
mod flow_schema;
mod isolation;
mod migrations;
mod names;
mod package;
mod provision;
mod queues;
