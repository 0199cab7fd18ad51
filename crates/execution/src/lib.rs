//! Execution: the tasks that touch the outside world, the invoke API, and the
//! durable job scheduler.
//!
//! Layout:
//! - [`tasks`]: the HTTP task and the instance tasks (Start, DirectTrigger,
//!   GetInstanceData, GetInstance), with their config checks and error codes.
//! - [`executor`]: [`LocalExecutor`] (in-process) and [`RemoteExecutor`] (over
//!   the invoke API), the two `TaskExecutor`s the app can hold.
//! - [`api`]: the invoke endpoint, `/health` and `/ready`.
//!
//! Nothing here reads a domain's instance tables except lease recovery, which
//! only looks for expired leases in the domain it serves; instance tasks reach
//! other instances through the app's REST API.

pub mod api;
pub mod executor;
pub mod tasks;

pub use executor::{LocalExecutor, RemoteExecutor};
pub use tasks::HttpClients;
