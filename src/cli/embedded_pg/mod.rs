//! A private PostgreSQL cluster for `vnext up`, so a development run needs no
//! server set up beforehand.
//!
//! `database.embedded` decides: `true` always uses one, `false` never, and
//! `"auto"` (the default) uses one when `database.url` was not given (neither
//! file nor environment) and the default server cannot be used: nothing
//! answers there, or it wants a password. A configured `database.url` is never
//! second-guessed. Only `vnext up` calls this; the services run in production
//! (`vnext app`, `vnext execution`, `vnext init`) always use `database.url`.

mod binaries;
mod cluster;
mod os_user;

use std::time::Duration;

use sqlx::{ConnectOptions, Connection};
use sqlx::postgres::PgConnectOptions;
use vnext_init::config::{Config, Embedded};

pub use cluster::Cluster;
use cluster::Options;

/// Starts the private cluster when the configuration calls for one, and points
/// `config.database.url` at it. `fresh` wipes the cluster first.
///
/// # Errors
/// Why the cluster could not be started (with what to install when PostgreSQL
/// is missing).
pub async fn prepare(config: &mut Config, fresh: bool) -> Result<Option<Cluster>, String> {
    let reason = match config.database.embedded {
        Embedded::Off => None,
        Embedded::On => {
            if config.is_set("database.url") {
                eprintln!("warning: database.embedded = true: database.url is not used");
            }
            Some("database.embedded = true".to_string())
        }
        Embedded::Auto if config.is_set("database.url") => None,
        Embedded::Auto => default_server_unusable(&config.database.url).await,
    };
    let Some(reason) = reason else {
        if fresh {
            eprintln!("warning: --fresh wipes the private PostgreSQL cluster only, and this run uses database.url: nothing was wiped");
        }
        return Ok(None);
    };
    println!("vnext up: {reason}: starting a private PostgreSQL cluster");
    let options = Options {
        data_dir: config.runtime.data_dir.clone(),
        postgres_bin: config.database.postgres_bin.clone(),
        os_user: config.database.embedded_os_user.clone(),
        fresh,
    };
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&options))
        .await
        .map_err(|e| format!("starting the private PostgreSQL cluster: {e}"))?
        .map_err(|e| match config.database.embedded {
            Embedded::Auto => format!("{e}\n  (it was needed because {reason}; or set database.url to a server you run)"),
            _ => e,
        })?;
    for note in &cluster.notes {
        println!("  {note}");
    }
    println!("  data: {} (kept between runs; `vnext up --fresh` starts it over)", cluster.dir().display());
    println!("  port: 127.0.0.1:{} (domain roles, by password); log: {}", cluster.port(), cluster.log_file().display());
    println!("  psql '{}'", cluster.url());
    config.database.url = cluster.url();
    Ok(Some(cluster))
}

/// Why the default `database.url` cannot be used, or `None` when it can (or
/// fails for a reason the usual connection error explains better).
async fn default_server_unusable(url: &str) -> Option<String> {
    let options: PgConnectOptions = url.parse().ok()?;
    let (host, port, user) = (options.get_host().to_string(), options.get_port(), options.get_username().to_string());
    match tokio::time::timeout(Duration::from_secs(5), options.connect()).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            None
        }
        Err(_) => Some(format!("database.url is not set and PostgreSQL at {host}:{port} does not answer within 5 s")),
        Ok(Err(sqlx::Error::Io(_))) => Some(format!("database.url is not set and nothing answers at {host}:{port}")),
        Ok(Err(e)) if e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c.starts_with("28")) => {
            Some(format!("database.url is not set and PostgreSQL at {host}:{port} does not let `{user}` in without a password"))
        }
        Ok(Err(_)) => None,
    }
}
