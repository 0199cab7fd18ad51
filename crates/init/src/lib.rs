//! Everything that shapes databases: configuration, the control database and its
//! domain registry, domain databases and their roles, the migration runner, flow
//! schemas created on first start, and the component store that publishing writes.
//!
//! Layout:
//! - [`config`]: the typed configuration (defaults → `vnext.toml` → `VNEXT_*`).

pub mod config;
