//! The rhai script host (to be written).
