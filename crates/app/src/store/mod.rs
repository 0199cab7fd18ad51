//! Reads and writes of a flow schema's tables, always inside a caller's transaction.
