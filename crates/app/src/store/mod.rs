//! Reads and writes of a flow schema's tables, inside a caller's transaction.
//!
//! [`instance_row`] owns the instance row: its columns, its status codes, how
//! a new instance and the write of an existing one are built, and the
//! [`InstanceSnapshot`] both the engine and the read side answer with.
//! [`instances`] holds the statements on that row. [`history`] owns the
//! transition and task run rows, written by [`records::apply`] and read by
//! `query::history` in the same shape.
//!
//! All SQL names the flow schema through [`FlowKey::quoted`], never through
//! text from a request. The write path is one statement per request: the
//! instance row, its history rows, task runs and incidents go together in data
//! modifying CTEs (see [`records::apply`]), so a transition costs one round trip
//! on top of the row lock.
//!
//! [`FlowKey::quoted`]: vnext_core::ident::FlowKey::quoted

pub mod correlations;
pub mod history;
pub mod instance_row;
pub mod instances;
pub mod records;

pub use correlations::CorrelationRow;
pub use instance_row::{
    InstanceRef, InstanceRow, InstanceSnapshot, InstanceStatus, Lease, NewInstance, ParentLink, RowChange, UnknownCode,
};
pub use instances::{load_snapshot, LockError};
pub use history::{Origin, TaskRunRow, TaskRunStatus, TransitionRow};
pub use records::{apply, IncidentRow, OutboxEvent, Records, WriteMode};

/// True for `undefined_table` (42P01) and `invalid_schema_name` (3F000): the flow
/// schema does not exist yet, so no instance of that workflow was ever started.
pub fn is_missing_schema(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("42P01") | Some("3F000")))
}

/// True for `unique_violation` (23505).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

/// True for `lock_not_available` (55P03): `FOR UPDATE NOWAIT` found the row locked.
pub fn is_lock_not_available(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("55P03"))
}
