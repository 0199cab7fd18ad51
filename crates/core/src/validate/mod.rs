//! Component validation (to be written).
