//! Everything that shapes databases: configuration, the control database and its
//! domain registry, domain databases and their roles, the migration runner, flow
//! schemas created on first start, and the component store that publishing writes.
//!
//! Layout:
//! - [`config`]: the typed configuration (defaults → `vnext.toml` → `VNEXT_*`).
//! - [`db`]: the control pool and lazily created, idle-evicted per-domain pools.
//! - [`migrate`]: embedded numbered SQL, applied per schema with checksummed history.
//! - [`provision`]: the control schema and each domain's database, role and system schemas.
//! - [`flow_schema`]: a schema per workflow, created on first start, migrated on upgrade.
//! - [`components`]: the store of immutable component versions.
//! - [`package`]: loading a component folder and publishing it in dependency order.
//! - [`bootstrap`]: `vnext init`: provision every domain, migrate every flow schema, publish.
//! - [`keys`]: API keys (hashed secrets, scopes, grants) in the control database.
//! - [`queue`]: the durable job queue: every statement on `sys_queues.jobs`,
//!   job kinds and statuses, and the body the app stores in a job.
//! - [`audit`]: rows of the append-only audit logs (per domain and in the control database).
//! - [`error`]: [`InitError`], what every fallible function here returns.

pub mod audit;
pub mod bootstrap;
pub mod components;
pub mod config;
pub mod db;
pub mod error;
pub mod flow_schema;
pub mod keys;
pub mod migrate;
pub mod package;
pub mod provision;
pub mod queue;
pub mod unavailable;

pub use error::InitError;
