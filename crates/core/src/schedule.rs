//! Timer schedules (filled in with the script host).
