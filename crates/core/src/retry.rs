//! Retry and backoff math (filled in with the script host).
