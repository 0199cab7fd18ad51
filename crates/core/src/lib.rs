//! The pure heart of the runtime: no database, no network, no clock read
//! (the [`clock`] seam is here so every crate shares one).
//!
//! Layout:
//! - [`model`]: the vNext component format as typed values.
//! - [`validate`]: every rule a component must satisfy, reported all at once with
//!   JSON pointers and stable codes.
//! - [`ident`]: domain and workflow names validated as database identifiers.
//! - [`script`]: the sandboxed rhai host for mappings, rules and timers.
//! - [`machine`]: which transition is available, where it leads, which tasks run
//!   in which order, which automatic transition is taken next.
//! - [`merge`], [`version`]: data merge and semantic-version bumping.
//! - [`schedule`], [`retry`]: when timers fire and how retries back off.
//! - [`traits`]: the seams between orchestration and execution; [`clock`]: the
//!   injectable "now" ([`clock::SystemClock`], [`clock::ManualClock`]).
//! - [`redact`]: secrets masked in what is stored; [`roles`]: the model's
//!   `roles` and `queryRoles` checked against a caller's roles.

pub mod boundary;
pub mod clock;
pub mod ident;
pub mod machine;
pub mod merge;
pub mod model;
pub mod redact;
pub mod retry;
pub mod roles;
pub mod schedule;
pub mod script;
pub mod traits;
pub mod validate;
pub mod version;
