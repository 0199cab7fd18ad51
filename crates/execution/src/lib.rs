//! Execution: task runners, the invoke API and the durable job scheduler.
