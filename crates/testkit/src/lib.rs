//! Support shared by the integration tests of every crate (a dev-dependency
//! only): a private database prefix per test whose databases and roles are
//! dropped when the test ends ([`db`]), a scripted task executor
//! ([`FakeExecutor`]) and polling with a deadline ([`eventually`], [`poll_until`]).
//!
//! It depends on `vnext-core` alone, so every crate's tests can use it; what
//! needs a crate's own types (its configuration, its engine) stays in that
//! crate's `tests/it` support modules, built on these parts.

pub mod db;
mod executor;
mod poll;

pub use executor::FakeExecutor;
pub use poll::{eventually, poll_until};
