//! Execution: the tasks that touch the outside world, the invoke API, and the
//! durable job scheduler.
//!
//! Layout:
//! - [`tasks`]: the HTTP task and the instance tasks (Start, DirectTrigger,
//!   GetInstanceData, GetInstance), with their config checks and error codes.
//! - [`executor`]: [`LocalExecutor`] (in-process) and [`RemoteExecutor`] (over
//!   the invoke API), the two `TaskExecutor`s the app can hold.
//! - [`api`]: the invoke endpoint, `/health` and `/ready`.
//! - [`scheduler`]: the durable job scheduler over `sys_queues.jobs` (its
//!   statements are [`vnext_init::queue`]'s), with
//!   lease recovery; [`trigger`]: the `TransitionTrigger` that reaches the app
//!   over HTTP. Its "now" is a [`vnext_core::clock::Clock`].
//! - [`service`]: the invoke API and the scheduler as one service
//!   (`vnext execution`).
//!
//! Wiring, by deployment:
//! - `vnext up` (one process): the app engine holds a [`LocalExecutor`]
//!   (`LocalExecutor::from_config`), and a [`Scheduler`] over the
//!   [`vnext_init::db::Databases`] fires jobs through the engine's in-process
//!   trigger: `Scheduler::new(Arc::new(databases), engine.trigger(),
//!   SchedulerConfig::from_config(&config)).run(shutdown)`.
//! - `vnext app` + `vnext execution`: the app holds a [`RemoteExecutor`]
//!   (`RemoteExecutor::from_config`) and serves `POST /api/v1/internal/trigger`
//!   (contract in [`trigger`]); `vnext execution` runs
//!   [`service::ExecutionService`], which pairs the invoke API with a scheduler
//!   firing through [`HttpTrigger`].
//!
//! Nothing here reads a domain's instance tables except lease recovery, which
//! only looks for expired leases in the domain it serves; instance tasks reach
//! other instances through the app's REST API.

pub mod api;
pub mod executor;
pub mod outbox;
pub mod scheduler;
pub mod service;
pub mod tasks;
pub mod trigger;

pub use executor::{LocalExecutor, RemoteExecutor};
pub use scheduler::{Scheduler, SchedulerConfig};
pub use tasks::HttpClients;
pub use trigger::HttpTrigger;
