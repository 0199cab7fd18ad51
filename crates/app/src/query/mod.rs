//! Read queries over flow schemas: everything the API answers without running
//! the pipeline.
//!
//! Layout:
//! - [`scope`]: resolving `{domain}/{workflow}` to a pool and a flow schema
//!   (404 for unknown domains and workflows).
//! - [`instance`]: one instance by id or key.
//! - [`list`] with [`filter`] and [`sort`]: filtered, sorted, paged lists.
//! - [`history`]: transition history with the task runs of each transition
//!   (rows shaped by `store::history`).
//! - [`data`]: instance data now or at a past data version.
//! - [`functions`]: the `state`, `view`, `schema` and `catalog` functions, which
//!   read the pinned workflow definition.
//! - [`incidents`]: what went wrong, newest first.
//!
//! Every statement binds its values; the only text spliced into SQL is a flow
//! schema name that passed [`vnext_core::ident`] validation, always quoted.

pub mod data;
pub mod filter;
pub mod functions;
pub mod history;
pub mod incidents;
pub mod instance;
pub mod list;
pub mod scope;
pub mod sort;

pub use scope::FlowScope;
