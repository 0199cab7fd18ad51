//! Test support: every test gets its own control database and database prefix
//! (`t<8 hex>_`), so tests running in parallel never see each other's domains,
//! and everything created under the prefix is dropped when the test ends.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sqlx::{Connection, PgConnection};
use vnext_core::ident::DomainName;
use vnext_init::config::Config;
use vnext_init::db::Databases;
use vnext_testkit::db::Scratch;

pub struct TestEnv {
    pub prefix: String,
    pub config: Config,
    pub dbs: Databases,
    /// The prefix's databases and roles, dropped with the environment.
    scratch: Scratch,
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        let base = Config::load(None).expect("configuration");
        let scratch = Scratch::new(&base.database.url).await;
        let prefix = scratch.prefix.clone();
        let mut config = base;
        config.database.url = scratch.control_url();
        config.database.database_prefix = prefix.clone();
        let dbs = Databases::connect(&config).await.expect("connect");
        TestEnv { prefix, config, dbs, scratch }
    }

    pub fn domain(&self, name: &str) -> DomainName {
        DomainName::new(name).unwrap()
    }

    /// An admin connection to `database` of the server.
    pub async fn admin(&self, database: &str) -> PgConnection {
        PgConnection::connect(&self.scratch.url_of(database)).await.unwrap()
    }

    /// The URL of `database` on the test server as `user`.
    pub fn url_as(&self, user: &str, password: &str, database: &str) -> String {
        let url = self.scratch.url_of(database);
        let rest = url.split_once("://").map(|(_, r)| r).unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        format!("postgres://{user}:{password}@{host}")
    }

    /// Databases and roles whose name starts with this test's prefix.
    pub async fn created_objects(&self) -> (Vec<String>, Vec<String>) {
        let mut admin = self.admin("postgres").await;
        let dbs = sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1")
            .bind(&self.prefix)
            .fetch_all(&mut admin)
            .await
            .unwrap();
        let roles = sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1")
            .bind(&self.prefix)
            .fetch_all(&mut admin)
            .await
            .unwrap();
        (dbs, roles)
    }

    /// A scratch folder for component files, removed with the environment.
    pub fn folder(&self, name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(&self.prefix).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

pub fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A minimal component of `flow` (`sys-tasks`, ...) with the given attributes.
pub fn component(flow: &str, domain: &str, key: &str, version: &str, attributes: &str) -> String {
    format!(
        r#"{{"key": "{key}", "version": "{version}", "domain": "{domain}", "flow": "{flow}", "flowVersion": "1.0.0", "tags": ["test"], "attributes": {attributes}}}"#
    )
}

pub const SCRIPT_TASK: &str = r#"{"type": "7", "config": {}}"#;
pub const SCHEMA_ATTRS: &str = r#"{"type": "workflow", "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}}"#;

/// A workflow with a start transition into `start` and a final state `done`.
pub fn workflow(domain: &str, key: &str, version: &str) -> String {
    let attributes = r#"{
        "type": "F",
        "labels": [{"label": "Test", "language": "en-US"}],
        "startTransition": {"key": "start", "target": "start", "triggerType": 0, "versionStrategy": "Minor",
                            "labels": [{"label": "Start", "language": "en-US"}]},
        "states": [
          {"key": "start", "stateType": 1, "versionStrategy": "Minor", "labels": [{"label": "Start", "language": "en-US"}],
           "transitions": [{"key": "finish", "source": "start", "target": "done", "triggerType": 0, "versionStrategy": "Minor",
                            "labels": [{"label": "Finish", "language": "en-US"}]}]},
          {"key": "done", "stateType": 3, "versionStrategy": "Minor", "labels": [{"label": "Done", "language": "en-US"}]}
        ]
    }"#;
    component("sys-flows", domain, key, version, attributes)
}

impl Drop for TestEnv {
    /// The scratch folder goes here; the databases and roles go with `scratch`.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&self.prefix));
    }
}
