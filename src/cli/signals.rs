//! Shutdown on signals, shared by every long-running subcommand.

use tokio_util::sync::CancellationToken;

/// First Ctrl-C or SIGTERM: cancel `token` (graceful shutdown, `draining` says of
/// what). Second: exit at once.
pub fn spawn_signal_handler(token: CancellationToken, draining: &'static str) {
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("shutting down: finishing {draining} in flight (signal again to exit at once)");
        token.cancel();
        wait_for_signal().await;
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
