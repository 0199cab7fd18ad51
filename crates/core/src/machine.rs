//! The pure state machine (filled in with the transition pipeline).
