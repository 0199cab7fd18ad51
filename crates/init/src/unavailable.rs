//! Which database errors mean "the database is not there right now" rather
//! than "this request or this code is wrong": the one classifier every layer
//! uses to answer 503 `service.unavailable` (and to retry, where a layer
//! retries) instead of 500.
//!
//! Unavailable:
//! - no connection: I/O errors (refused, reset, broken pipe, unexpected end of
//!   stream), TLS failures, a pool that timed out waiting for a connection or
//!   was closed, a connection worker that died;
//! - SQLSTATE class `08` (connection exception), class `53` (insufficient
//!   resources: too many connections, out of memory, disk full), class `58`
//!   `58030` (I/O error on the server);
//! - operator intervention: `57P01` admin shutdown (a restart or fast stop
//!   ends every session with "terminating connection due to administrator
//!   command"), `57P02` crash shutdown, `57P03` cannot connect now (starting
//!   up, shutting down, in recovery), `57P05` idle session timeout;
//! - `25006` read-only transaction: the server is a standby (a failover in
//!   progress).
//!
//! Everything else (constraint violations, syntax, serialization failures,
//! a cancelled statement) is not an outage: the caller decides.

/// True when `e` says the database is unreachable or cannot serve right now;
/// the same request may succeed once it is back.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|code| is_unavailable_sqlstate(&code)),
        _ => false,
    }
}

/// True for the SQLSTATE codes listed in the module docs.
pub fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03" | "57P05" | "58030" | "25006")
}

#[cfg(test)]
mod tests {
    use vnext_testkit::db::server_error as db;

    use super::*;

    #[test]
    fn a_server_going_away_is_unavailable() {
        for code in [
            "57P01", // terminating connection due to administrator command
            "57P02", "57P03", "57P05", "08000", "08003", "08006", "08001", "08004", "08P01", "53000", "53100", "53200", "53300",
            "53400", "58030", "25006",
        ] {
            assert!(is_unavailable(&db(code)), "{code}");
        }
        for io in [std::io::ErrorKind::ConnectionRefused, std::io::ErrorKind::ConnectionReset, std::io::ErrorKind::BrokenPipe, std::io::ErrorKind::UnexpectedEof] {
            assert!(is_unavailable(&sqlx::Error::Io(io.into())), "{io:?}");
        }
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed, sqlx::Error::WorkerCrashed, sqlx::Error::Tls("handshake".into())] {
            assert!(is_unavailable(&e), "{e}");
        }
    }

    #[test]
    fn a_wrong_request_or_a_bug_is_not() {
        for code in ["23505", "23503", "42P01", "42601", "40001", "40P01", "57014", "55P03", "22P02", "XX000", "28P01", "3D000"] {
            assert!(!is_unavailable(&db(code)), "{code}");
        }
        for e in [sqlx::Error::RowNotFound, sqlx::Error::Protocol("unexpected message".into()), sqlx::Error::ColumnNotFound("x".into())] {
            assert!(!is_unavailable(&e), "{e}");
        }
    }
}
