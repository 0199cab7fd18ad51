//! The vNext component format as typed Rust values.
//!
//! Every component file is an [`Envelope`] whose `attributes` depend on the component
//! flow (`sys-flows`, `sys-tasks`, ...). Parsing is lenient where the vNext files are
//! (most optional fields may be `null`); strictness lives in [`crate::validate`].
//! The typed model is what the runtime acts on; the original JSON text is stored
//! next to it, so fields we do not act on are never lost.

mod common;
mod envelope;
mod task;
mod workflow;
mod others;

pub use common::*;
pub use envelope::*;
pub use others::*;
pub use task::*;
pub use workflow::*;
