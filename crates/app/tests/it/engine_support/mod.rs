//! Test support for the engine tests: every test gets its own control database
//! and database prefix (`t<8 hex>_`), provisions the domains it needs, publishes
//! components and builds an [`Engine`] with a scripted task executor.

#![allow(dead_code)]

use std::sync::Arc;

use serde_json::{json, Map, Value};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use uuid::Uuid;
use vnext_app::engine::{
    Engine, EngineDeps, EngineSettings, InstanceRef, InstanceSnapshot, Outcome, StartRequest, SystemClock, TransitionRequest,
};
use vnext_core::ident::{DomainName, FlowKey};
use vnext_init::config::Config;
use vnext_init::db::Databases;
use vnext_testkit::db;

pub use vnext_testkit::{FakeExecutor, eventually};

pub struct TestEnv {
    pub prefix: String,
    pub config: Config,
    pub dbs: Databases,
    pub engine: Engine,
    pub executor: FakeExecutor,
    pub domain: DomainName,
    pub pool: PgPool,
    admin_url: String,
}

impl TestEnv {
    /// A fresh control database, one provisioned domain `d`, and an engine.
    pub async fn new() -> TestEnv {
        Self::with_config(|_| {}).await
    }

    pub async fn with_config(tweak: impl FnOnce(&mut Config)) -> TestEnv {
        Self::build(DOMAIN, tweak).await
    }

    /// A fresh control database with domain `domain` provisioned.
    pub async fn build(domain: &str, tweak: impl FnOnce(&mut Config)) -> TestEnv {
        let base = Config::load(None).expect("configuration");
        let prefix = db::unique_prefix();
        let admin_url = base.database.url.clone();
        let control_db = format!("{prefix}control");
        db::create_database(&admin_url, &control_db).await;
        let mut config = base;
        config.database.url = db::with_database(&admin_url, &control_db);
        config.database.database_prefix = prefix.clone();
        config.database.max_connections_per_domain = 8;
        tweak(&mut config);
        let dbs = Databases::connect(&config).await.expect("connect");
        let domain = DomainName::new(domain).unwrap();
        vnext_init::provision::provision_domain(&dbs, &domain).await.expect("provision the test domain");
        let pool = dbs.domain(&domain).await.unwrap();
        let executor = FakeExecutor::new();
        let engine = Engine::new(EngineDeps {
            databases: dbs.clone(),
            executor: Arc::new(executor.clone()),
            clock: Arc::new(SystemClock),
            settings: EngineSettings::from_config(&config),
        });
        TestEnv { prefix, config, dbs, engine, executor, domain, pool, admin_url }
    }

    /// Publishes components (JSON values) into the domain.
    pub async fn publish(&self, components: &[Value]) {
        for c in components {
            vnext_init::components::publish(&self.pool, &c.to_string()).await.unwrap();
        }
        self.engine.invalidate(&self.domain).await;
    }

    pub fn flow(&self, key: &str) -> FlowKey {
        FlowKey::new(key).unwrap()
    }

    pub fn start_req(&self, flow: &str, attributes: Value) -> StartRequest {
        StartRequest {
            domain: self.domain.clone(),
            flow: self.flow(flow),
            version: None,
            key: None,
            tags: vec![],
            attributes,
            headers: Map::new(),
            query: Map::new(),
            sync: true,
            roles: vnext_core::roles::Roles::Unrestricted,
        }
    }

    pub async fn start(&self, flow: &str, attributes: Value) -> InstanceSnapshot {
        done(self.engine.start(self.start_req(flow, attributes)).await.unwrap())
    }

    pub fn transition_req(&self, flow: &str, id: Uuid, transition: &str, attributes: Value) -> TransitionRequest {
        TransitionRequest {
            domain: self.domain.clone(),
            flow: self.flow(flow),
            instance: InstanceRef::Id(id),
            transition: transition.to_string(),
            key: None,
            attributes,
            headers: Map::new(),
            query: Map::new(),
            sync: true,
            roles: vnext_core::roles::Roles::Unrestricted,
        }
    }

    pub async fn transition(&self, flow: &str, id: Uuid, transition: &str, attributes: Value) -> InstanceSnapshot {
        done(self.engine.transition(self.transition_req(flow, id, transition, attributes)).await.unwrap())
    }

    /// An admin connection to the domain database.
    pub async fn admin_domain(&self) -> PgConnection {
        PgConnection::connect(&db::with_database(&self.admin_url, &self.dbs.database_name(&self.domain))).await.unwrap()
    }

    /// Scalar query against the domain database (separate connection).
    pub async fn scalar<T>(&self, sql: &str, id: Uuid) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        sqlx::query_scalar(AssertSqlSafe(sql.to_string())).bind(id).fetch_one(&self.pool).await.unwrap()
    }

    /// Drops what the test created (best effort).
    pub async fn cleanup(self) {
        self.pool.close().await;
        self.dbs.control().close().await;
        db::drop_prefixed(&self.admin_url, &self.prefix).await;
    }
}

pub fn done(o: Outcome) -> InstanceSnapshot {
    match o {
        Outcome::Done(s) => s,
        Outcome::Accepted { id, .. } => panic!("expected a sync result, got accepted {id}"),
    }
}

// ---------------------------------------------------------------------------
// Component builders.

pub const DOMAIN: &str = "d";

fn envelope(key: &str, version: &str, flow: &str, attributes: Value) -> Value {
    json!({"key": key, "version": version, "domain": DOMAIN, "flow": flow, "flowVersion": "1.0.0", "tags": ["test"], "attributes": attributes})
}

pub fn nat(src: &str) -> Value {
    json!({"location": "./src/inline.rhai", "code": src, "encoding": "NAT"})
}

/// A script task (type 7).
pub fn script_task(key: &str) -> Value {
    envelope(key, "1.0.0", "sys-tasks", json!({"type": "7", "config": {}}))
}

/// An HTTP task (type 6).
pub fn http_task(key: &str) -> Value {
    envelope(key, "1.0.0", "sys-tasks", json!({"type": "6", "config": {"url": "http://127.0.0.1:9/x", "method": "POST"}}))
}

pub fn schema(key: &str, schema: Value) -> Value {
    envelope(key, "1.0.0", "sys-schemas", json!({"type": "schema", "schema": schema}))
}

pub fn task_ref(key: &str) -> Value {
    json!({"key": key, "domain": DOMAIN, "flow": "sys-tasks", "version": "1.0.0"})
}

/// A task entry running script task `logger` whose output appends `name` to `data.log`.
pub fn log_entry(order: i64, name: &str) -> Value {
    json!({
        "order": order,
        "task": task_ref("logger"),
        "mapping": nat(&format!("fn output(ctx) {{ let l = ctx.instance.data.log; l.push(\"{name}\"); #{{ log: l }} }}")),
    })
}

pub fn workflow(key: &str, version: &str, attributes: Value) -> Value {
    envelope(key, version, "sys-flows", attributes)
}

pub fn label() -> Value {
    json!([{"label": "x", "language": "en"}])
}

pub fn state(key: &str, state_type: i64, transitions: Value) -> Value {
    json!({"key": key, "stateType": state_type, "versionStrategy": "None", "labels": label(), "transitions": transitions})
}

pub fn manual(key: &str, target: &str) -> Value {
    json!({"key": key, "target": target, "triggerType": 0, "versionStrategy": "Minor", "labels": label()})
}

pub fn start_transition(target: &str) -> Value {
    json!({"key": "start", "target": target, "triggerType": 0, "versionStrategy": "None", "labels": label()})
}
