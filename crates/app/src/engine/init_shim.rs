//! Stand-ins for the init crate's component store, job queue and flow-schema
//! API, with the planned names and signatures; each module is replaced by a
//! re-export of `vnext_init::*` when that lands. Nothing else lives here.

pub mod components {
    use sqlx::AssertSqlSafe;
    use chrono::{DateTime, Utc};
    use serde_json::Value;
    use sqlx::PgPool;
    use vnext_core::model::ComponentKind;
    use vnext_core::version::VersionSelector;

    #[derive(Debug, Clone)]
    pub struct StoredComponent {
        pub kind: ComponentKind,
        pub key: String,
        pub version: String,
        pub domain: String,
        pub content: Value,
        pub raw: String,
        pub sha256: String,
        pub published_at: DateTime<Utc>,
    }

    /// # Errors
    /// Database errors.
    pub async fn fetch(
        pool: &PgPool,
        kind: ComponentKind,
        key: &str,
        selector: &VersionSelector,
    ) -> Result<Option<StoredComponent>, sqlx::Error> {
        let sql = format!(
            "SELECT version, domain, content::text, sha256, published_at FROM {}.components WHERE key = $1",
            kind.schema()
        );
        let rows: Vec<(String, String, String, String, DateTime<Utc>)> =
            sqlx::query_as(AssertSqlSafe(sql)).bind(key).fetch_all(pool).await?;
        let Some(best) = selector.pick(rows.iter().map(|r| r.0.as_str())).map(str::to_string) else { return Ok(None) };
        let row = rows.into_iter().find(|r| r.0 == best).expect("picked from rows");
        let content = serde_json::from_str(&row.2).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(Some(StoredComponent {
            kind,
            key: key.to_string(),
            version: row.0,
            domain: row.1,
            content,
            raw: row.2,
            sha256: row.3,
            published_at: row.4,
        }))
    }
}

pub mod queues {
    use chrono::{DateTime, Utc};
    use serde_json::Value;
    use sqlx::PgConnection;
    use uuid::Uuid;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum JobKind {
        Timer,
        Timeout,
        Async,
        Retry,
        Lease,
    }

    impl JobKind {
        pub fn as_str(self) -> &'static str {
            match self {
                JobKind::Timer => "timer",
                JobKind::Timeout => "timeout",
                JobKind::Async => "async",
                JobKind::Retry => "retry",
                JobKind::Lease => "lease",
            }
        }
    }

    #[derive(Debug, Clone)]
    pub struct NewJob {
        pub id: Uuid,
        pub kind: JobKind,
        pub flow: String,
        pub instance_id: Uuid,
        pub transition_key: String,
        pub armed_state: Option<String>,
        pub body: Option<Value>,
        pub due_at: DateTime<Utc>,
    }

    /// # Errors
    /// Database errors.
    pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO sys_queues.jobs (id, kind, flow, instance_id, transition_key, armed_state, body, due_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(job.id)
        .bind(job.kind.as_str())
        .bind(&job.flow)
        .bind(job.instance_id)
        .bind(&job.transition_key)
        .bind(&job.armed_state)
        .bind(&job.body)
        .bind(job.due_at)
        .execute(&mut *conn)
        .await?;
        sqlx::query("SELECT pg_notify('vnext_jobs', $1)").bind(job.kind.as_str()).execute(&mut *conn).await?;
        Ok(())
    }

    /// # Errors
    /// Database errors.
    pub async fn cancel_for_instance(
        conn: &mut PgConnection,
        flow: &str,
        instance_id: Uuid,
        kinds: &[JobKind],
    ) -> Result<u64, sqlx::Error> {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let r = sqlx::query(
            "UPDATE sys_queues.jobs SET status = 'cancelled', finished_at = now() \
             WHERE flow = $1 AND instance_id = $2 AND status = 'pending' AND kind = ANY($3)",
        )
        .bind(flow)
        .bind(instance_id)
        .bind(&kinds)
        .execute(conn)
        .await?;
        Ok(r.rows_affected())
    }
}

pub mod flow_schema {
    use sqlx::AssertSqlSafe;
    use sqlx::PgPool;
    use vnext_core::ident::FlowKey;

    const FLOW_0001: &str = include_str!("../../../../migrations/flow/0001_instances.sql");
    const FLOW_0002: &str = include_str!("../../../../migrations/flow/0002_incident_request.sql");

    /// # Errors
    /// Database errors.
    pub async fn ensure_flow_schema(pool: &PgPool, flow: &FlowKey) -> Result<(), sqlx::Error> {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(flow.ident())
            .fetch_one(pool)
            .await?;
        if exists {
            return Ok(());
        }
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(flow.ident()).execute(&mut *tx).await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(flow.ident())
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {}", flow.quoted()))).execute(&mut *tx).await?;
            sqlx::query("SELECT set_config('search_path', $1, true)").bind(flow.quoted()).execute(&mut *tx).await?;
            sqlx::raw_sql(FLOW_0001).execute(&mut *tx).await?;
            sqlx::raw_sql(FLOW_0002).execute(&mut *tx).await?;
        }
        tx.commit().await
    }
}

/// Creates a domain database with its system schemas (tests only, until the
/// init crate provisions domains).
pub mod provision {
    use sqlx::AssertSqlSafe;
    use sqlx::postgres::PgConnectOptions;
    use sqlx::{Connection, PgConnection};

    const COMPONENTS: &str = include_str!("../../../../migrations/system/components/0001_components.sql");
    const QUEUES: &str = include_str!("../../../../migrations/system/queues/0001_jobs.sql");
    const REGISTRY: &str = include_str!("../../../../migrations/system/registry/0001_flow_schemas.sql");

    /// # Errors
    /// Database errors.
    pub async fn create_domain_database(server_url: &str, database: &str) -> Result<(), sqlx::Error> {
        let mut admin = PgConnection::connect(server_url).await?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{database}\""))).execute(&mut admin).await?;
        let opts: PgConnectOptions = server_url.parse::<PgConnectOptions>()?.database(database);
        let mut c = PgConnection::connect_with(&opts).await?;
        for schema in ["sys_flows", "sys_tasks", "sys_schemas", "sys_views", "sys_functions", "sys_extensions"] {
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}; SET search_path = {schema};"))).execute(&mut c).await?;
            sqlx::raw_sql(COMPONENTS).execute(&mut c).await?;
        }
        sqlx::raw_sql("SET search_path = sys_schemas;").execute(&mut c).await?;
        sqlx::raw_sql(REGISTRY).execute(&mut c).await?;
        sqlx::raw_sql("CREATE SCHEMA sys_queues; SET search_path = sys_queues;").execute(&mut c).await?;
        sqlx::raw_sql(QUEUES).execute(&mut c).await?;
        Ok(())
    }

    /// Stores a component as the init crate's publish would (tests only).
    ///
    /// # Errors
    /// Database errors.
    pub async fn publish(pool: &sqlx::PgPool, raw_json: &str) -> Result<(), sqlx::Error> {
        let v: serde_json::Value = serde_json::from_str(raw_json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let kind = vnext_core::model::ComponentKind::from_flow(v["flow"].as_str().unwrap_or_default())
            .ok_or_else(|| sqlx::Error::Protocol("unknown flow".into()))?;
        let version = v["version"].as_str().unwrap_or_default().to_string();
        let mut parts = version.split(['.', '-', '+']).map(|p| p.parse::<i64>().unwrap_or(0));
        let (major, minor, patch) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let sql = format!(
            "INSERT INTO {}.components (key, version, major, minor, patch, domain, content, sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::json, '') ON CONFLICT DO NOTHING",
            kind.schema()
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(v["key"].as_str().unwrap_or_default())
            .bind(&version)
            .bind(major)
            .bind(minor)
            .bind(patch)
            .bind(v["domain"].as_str().unwrap_or_default())
            .bind(raw_json)
            .execute(pool)
            .await?;
        Ok(())
    }
}
