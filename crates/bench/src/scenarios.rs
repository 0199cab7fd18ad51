//! The seven scenarios of the performance budget.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, PgPool};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use vnext_init::config::Config;

use super::client::Client;
use super::components as c;
use super::load::{self, Stop};
use super::stats::{Summary, median};
use super::{Args, Budget, Launch, ScenarioReport, Size, raw, run_time};

pub const ALL: [(u8, &str); 7] = [
    (1, "manual"),
    (2, "auto-chain"),
    (3, "first-start"),
    (4, "many-flows"),
    (5, "timers"),
    (6, "http-tasks"),
    (7, "idle"),
];

/// What every scenario shares: the API client, configuration and a pool on the
/// server's administrative database.
pub struct Ctx {
    pub client: Client,
    pub config: Config,
    /// The server's administrative database (`database.url` as configured).
    pub control: PgPool,
    pub size: Size,
    pub clients: usize,
    pub stop: Stop,
    /// Database prefix of the domains this run creates.
    pub prefix: String,
    /// Set when this process started the runtime (and may clean up after it).
    in_process: Option<CancellationToken>,
}

impl Ctx {
    pub async fn prepare(args: &Args, config_path: Option<std::path::PathBuf>, launch: Launch) -> Result<Ctx, String> {
        let mut config = Config::load(config_path.as_deref()).map_err(|e| e.to_string())?;
        let control = PgPoolOptions::new()
            .max_connections(4)
            .connect(&config.database.url)
            .await
            .map_err(|e| format!("cannot reach PostgreSQL at {}: {e}", config.database.url))?;
        let prefix = args.prefix.clone();
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(format!("--prefix `{prefix}`: lower-case letters, digits and `_` only"));
        }
        let (base, in_process) = match &args.url {
            Some(url) => (url.clone(), None),
            None => {
                drop_bench_databases(&control, &prefix).await;
                // A control database of its own: no other runtime on this server
                // serves (or even sees) the benchmark's domains, and this one
                // serves only them.
                let control_db = format!("{prefix}control");
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{control_db}\"")))
                    .execute(&control)
                    .await
                    .map_err(|e| format!("cannot create the benchmark's control database {control_db}: {e}"))?;
                config.database.url = with_database(&config.database.url, &control_db);
                config.database.database_prefix = prefix.clone();
                // Scenarios use one domain after another: let each one's idle
                // connections go quickly so the server's connection limit holds.
                config.database.connection_idle_seconds = 5;
                config.app.listen = "127.0.0.1:0".into();
                config.execution.listen = "127.0.0.1:0".into();
                let flows = std::env::temp_dir().join(format!("vnext-bench-empty-{}", std::process::id()));
                std::fs::create_dir_all(&flows).map_err(|e| e.to_string())?;
                config.runtime.flows_dir = flows;
                let shutdown = CancellationToken::new();
                let addr = launch(config.clone(), shutdown.clone()).await?;
                (format!("http://{addr}"), Some(shutdown))
            }
        };
        Ok(Ctx {
            client: Client::new(&base),
            config,
            control,
            size: args.size,
            clients: args.clients.max(1),
            stop: run_time(args),
            prefix,
            in_process,
        })
    }

    /// Stops an in-process runtime and drops the benchmark's databases.
    pub async fn finish(self) {
        if let Some(shutdown) = self.in_process {
            shutdown.cancel();
            // Give pools a moment to close before their databases are dropped.
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop_bench_databases(&self.control, &self.prefix).await;
        }
    }

    fn full(&self) -> bool {
        self.size == Size::Full
    }

    /// A direct pool on a domain's database (as the server's admin user).
    async fn domain_pool(&self, domain: &str, connections: u32) -> Result<PgPool, String> {
        let url = self.domain_url(domain);
        PgPoolOptions::new().max_connections(connections).connect(&url).await.map_err(|e| format!("cannot connect to {domain}: {e}"))
    }

    /// The URL of a domain's database with the admin credentials.
    fn domain_url(&self, domain: &str) -> String {
        let db = format!("{}{}", self.config.database.database_prefix, domain.replace('-', "_"));
        with_database(&self.config.database.url, &db)
    }

    /// Waits (up to 15 s) until no idle pooled connection is left on the
    /// benchmark's databases, so one scenario's connections do not count
    /// against the next one's. Listeners (`LISTEN`) stay and are not waited for.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let pattern = format!("{}%", self.prefix.replace('_', "\\_"));
        while Instant::now() < deadline {
            let idle: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE $1 AND backend_type = 'client backend' \
                 AND state = 'idle' AND query NOT ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
            )
            .bind(&pattern)
            .fetch_one(&self.control)
            .await
            .unwrap_or(0);
            if idle == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Replaces the database of a postgres URL.
fn with_database(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// Drops every database and role named with `prefix` (the domains, their
/// roles and the benchmark's control database).
async fn drop_bench_databases(admin: &PgPool, prefix: &str) {
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    let dbs: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(&pattern)
        .fetch_all(admin)
        .await
        .unwrap_or_default();
    for db in dbs {
        let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))).execute(admin).await;
    }
    let roles: Vec<String> = sqlx::query_scalar("SELECT rolname FROM pg_roles WHERE rolname LIKE $1")
        .bind(&pattern)
        .fetch_all(admin)
        .await
        .unwrap_or_default();
    for role in roles {
        let _ = sqlx::query(AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{role}\""))).execute(admin).await;
    }
}

pub async fn run(ctx: &Ctx, id: u8) -> Result<ScenarioReport, String> {
    match id {
        1 => manual(ctx).await,
        2 => auto_chain(ctx).await,
        3 => first_start(ctx).await,
        4 => many_flows(ctx).await,
        5 => timers(ctx).await,
        6 => http_tasks(ctx).await,
        7 => idle(ctx).await,
        other => Err(format!("no scenario {other}")),
    }
}

/// Starts one instance per client and returns their ids.
async fn start_many(ctx: &Ctx, domain: &str, flow: &str, n: usize, attributes: impl Fn(usize) -> Value) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(ctx.client.start(domain, flow, None, &attributes(i)).await?);
    }
    Ok(ids)
}

/// A loop instance and the state it rests in (false: `ping`, true: `pong`).
struct LoopInstance {
    id: String,
    at_pong: std::sync::atomic::AtomicBool,
}

fn loop_instances(ids: Vec<String>) -> Arc<Vec<LoopInstance>> {
    Arc::new(ids.into_iter().map(|id| LoopInstance { id, at_pong: false.into() }).collect())
}

/// Drives the two-state loop with one client per instance. Each client sends the
/// transition its instance's state offers, whatever the previous run left.
async fn drive_loop(ctx: &Ctx, domain: &str, flow: &str, instances: Arc<Vec<LoopInstance>>, stop: Stop, body: Value) -> Summary {
    let client = ctx.client.clone();
    let (domain, flow) = (domain.to_string(), flow.to_string());
    let body = Arc::new(body);
    load::run(instances.len(), stop, move |who, _| {
        let (client, instances, domain, flow, body) = (client.clone(), instances.clone(), domain.clone(), flow.clone(), body.clone());
        async move {
            let instance = &instances[who];
            let at_pong = instance.at_pong.load(Ordering::Relaxed);
            let t = if at_pong { "to-ping" } else { "to-pong" };
            client.transition(&domain, &flow, &instance.id, t, &body).await?;
            instance.at_pong.store(!at_pong, Ordering::Relaxed);
            Ok(())
        }
    })
    .await
}

async fn manual(ctx: &Ctx) -> Result<ScenarioReport, String> {
    let mut r = ScenarioReport::new(1, "manual");
    let (domain, flow) = ("bench-manual", "bench-loop");
    ctx.client.publish(&c::loop_flow(domain, flow)).await?;
    let ids = loop_instances(start_many(ctx, domain, flow, ctx.clients, |i| json!({ "client": i })).await?);
    let body = c::payload(1024, 1);
    // Warm-up: one round trip per instance in each direction.
    drive_loop(ctx, domain, flow, ids.clone(), Stop::Count(ids.len() * 2), body.clone()).await;
    let engine = drive_loop(ctx, domain, flow, ids.clone(), ctx.stop, body.clone()).await;
    let raw = raw::run(&ctx.domain_url(domain), ctx.clients, ctx.stop, body).await?;
    let ratio = engine.throughput_per_s / raw.throughput_per_s.max(1e-9);
    r.put("engine", &engine);
    r.put("raw_sql", &raw);
    r.put("ratio_engine_over_raw", (ratio * 1000.0).round() / 1000.0);
    if engine.errors > 0 {
        r.notes.push(format!("{} engine requests failed (busy answers count as failures)", engine.errors));
    }
    if ctx.full() {
        r.budget = Some(Budget { rule: "ratio engine/raw >= 0.6".into(), measured: format!("{ratio:.2}"), met: ratio >= 0.6 });
    }
    if let Some(rss) = resident_mb() {
        r.put("resident_memory_mb_after_run", rss);
    }
    // Memory budget: the process after this run with 100 domains touched.
    if ctx.full() && ctx.in_process.is_some() {
        let touched = touch_domains(ctx, 100).await;
        match touched {
            Ok(()) => {
                if let Some(rss) = resident_mb() {
                    r.put("resident_memory_mb_100_domains", rss);
                    r.notes.push(format!(
                        "memory budget (<= 300 MB with 100 domains touched): {rss:.0} MB, {}",
                        if rss <= 300.0 { "met" } else { "MISSED" }
                    ));
                }
            }
            Err(e) => r.notes.push(format!("memory budget: touching 100 domains failed: {e}")),
        }
    }
    Ok(r)
}

/// Publishes a workflow into `n` new domains and starts one instance in each.
async fn touch_domains(ctx: &Ctx, n: usize) -> Result<(), String> {
    for i in 0..n {
        let d = format!("bench-mem-{i}");
        ctx.client.publish(&c::loop_flow(&d, "bench-mem")).await.map_err(|e| format!("domain {d}: {e}"))?;
        ctx.client.start(&d, "bench-mem", None, &json!({})).await.map_err(|e| format!("domain {d}: {e}"))?;
    }
    Ok(())
}

async fn auto_chain(ctx: &Ctx) -> Result<ScenarioReport, String> {
    let mut r = ScenarioReport::new(2, "auto-chain");
    let domain = "bench-chain";
    ctx.client.publish(&c::script_task(domain, "bench-step")).await?;
    ctx.client.publish(&c::chain_flow(domain, "bench-chain", "bench-step")).await?;
    let client = ctx.client.clone();
    let op = move |_who: usize, i: usize| {
        let client = client.clone();
        async move {
            let id = client.start(domain, "bench-chain", None, &json!({ "amount": 1000 + i })).await?;
            let _ = id;
            Ok(())
        }
    };
    let _warm = load::run(1, Stop::Count(20), op.clone()).await;
    let single_count = if ctx.full() { 2000 } else { 10 };
    let single = load::run(1, Stop::Count(single_count), op.clone()).await;
    let many = load::run(ctx.clients, ctx.stop, op).await;
    // Check the chain really ran to its final state.
    let last = ctx.client.start(domain, "bench-chain", Some(&format!("check-{}", uuid::Uuid::new_v4())), &json!({ "amount": 500 })).await?;
    let inst = ctx.client.get(domain, "bench-chain", &last).await?;
    let state = inst.pointer("/metadata/currentState").and_then(Value::as_str).unwrap_or("").to_string();
    r.put("final_state_of_a_check_instance", &state);
    if state != "approved" {
        r.notes.push(format!("the chain ended in `{state}`, expected `approved`"));
    }
    r.put("one_client", &single);
    r.put(&format!("{}_clients", ctx.clients), &many);
    if ctx.full() {
        r.budget = Some(Budget {
            rule: "p50 <= 3 ms and p99 <= 15 ms at 1 client".into(),
            measured: format!("p50 {:.2} ms, p99 {:.2} ms", single.p50_ms, single.p99_ms),
            met: single.p50_ms <= 3.0 && single.p99_ms <= 15.0,
        });
    }
    Ok(r)
}

async fn first_start(ctx: &Ctx) -> Result<ScenarioReport, String> {
    let mut r = ScenarioReport::new(3, "first-start");
    let domain = "bench-first";
    let rounds = if ctx.full() { 9 } else { 2 };
    let mut samples = Vec::new();
    // A first publish provisions the domain; it is not part of the measurement.
    ctx.client.publish(&c::loop_flow(domain, "bench-first-warm")).await?;
    ctx.client.start(domain, "bench-first-warm", None, &json!({})).await?;
    for i in 0..rounds {
        let flow = format!("bench-first-{i}");
        ctx.client.publish(&c::loop_flow(domain, &flow)).await?;
        let t = Instant::now();
        ctx.client.start(domain, &flow, None, &json!({})).await?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let m = median(&mut samples);
    r.put("first_start_ms_median", (m * 100.0).round() / 100.0);
    r.put("first_start_ms_all", &samples);
    if ctx.full() {
        r.budget = Some(Budget { rule: "first start <= 60 ms".into(), measured: format!("{m:.1} ms"), met: m <= 60.0 });
    }
    Ok(r)
}

async fn many_flows(ctx: &Ctx) -> Result<ScenarioReport, String> {
    let mut r = ScenarioReport::new(4, "many-flows");
    let n = if ctx.full() { 1000 } else { 5 };
    let figures = super::many_flows::measure(ctx, "bench-flows", n).await?;
    r.put("flow_schemas", n);
    r.put("create_all_s", figures.create_s);
    r.put("startup_nothing_pending_s", figures.startup_idle_s);
    r.put("startup_one_new_migration_s", figures.startup_migrate_s);
    r.put("migrated_schemas", figures.migrated);
    if figures.migrated != n {
        r.notes.push(format!("only {} of {n} schemas received the new migration", figures.migrated));
    }
    if ctx.full() {
        r.budget = Some(Budget {
            rule: "startup <= 3 s idle, <= 60 s with one migration".into(),
            measured: format!("{:.2} s / {:.1} s", figures.startup_idle_s, figures.startup_migrate_s),
            met: figures.startup_idle_s <= 3.0 && figures.startup_migrate_s <= 60.0 && figures.migrated == n,
        });
    }
    Ok(r)
}

async fn timers(ctx: &Ctx) -> Result<ScenarioReport, String> {
    let mut r = ScenarioReport::new(5, "timers");
    let (domain, flow) = ("bench-timers", "bench-timer");
    let n: usize = if ctx.full() { 10_000 } else { 20 };
    ctx.client.publish(&c::timer_flow(domain, flow)).await?;
    // Warm-up and a measure of how fast instances are created: timers already
    // due, so they fire at once (and are not counted below).
    let past = json!({ "fireAt": "2000-01-01T00:00:00Z" });
    let client = ctx.client.clone();
    let probe = load::run(ctx.clients, Stop::Count(ctx.clients * 4), move |_, _| {
        let (client, past) = (client.clone(), past.clone());
        async move { client.start(domain, flow, None, &past).await.map(|_| ()) }
    })
    .await;
    // Leave enough time to create every instance before they fall due: the
    // probe's rate, with a wide margin (creation competes with the warm-up fires).
    let rate = probe.throughput_per_s.max(20.0);
    let lead = Duration::from_secs_f64((n as f64 / (rate * 0.5)).max(3.0) + 2.0);
    let fire_at = chrono::Utc::now() + chrono::Duration::from_std(lead).unwrap_or_default();
    let fire_at_text = fire_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let client = ctx.client.clone();
    let at = fire_at_text.clone();
    let creation = load::run(ctx.clients, Stop::Count(n), move |_, _| {
        let (client, at) = (client.clone(), at.clone());
        async move { client.start(domain, flow, None, &json!({ "fireAt": at })).await.map(|_| ()) }
    })
    .await;
    r.put("created", &creation);
    let created_at = chrono::Utc::now();
    if created_at > fire_at {
        r.notes.push(format!("creating {n} instances took past their due time by {} ms", (created_at - fire_at).num_milliseconds()));
    }
    let pool = ctx.domain_pool(domain, 2).await?;
    let schema = flow.replace('-', "_");
    let deadline = Instant::now() + lead + Duration::from_secs(if ctx.full() { 120 } else { 30 });
    let completed_sql = format!("SELECT count(*) FROM \"{schema}\".instances WHERE status = 'C' AND data->>'fireAt' = $1");
    let mut done: i64 = 0;
    while Instant::now() < deadline {
        done = sqlx::query_scalar(AssertSqlSafe(completed_sql.as_str()))
            .bind(&fire_at_text)
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?;
        if done as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Lateness of every fire of this batch (seconds after the due time), and
    // instances fired more than once.
    let (first_s, p50_s, p99_s, last_s, fires, duplicates): (Option<f64>, Option<f64>, Option<f64>, Option<f64>, i64, i64) =
        sqlx::query_as(AssertSqlSafe(format!(
            "WITH f AS (SELECT t.instance_id, extract(epoch FROM t.finished_at - $1::timestamptz)::float8 AS late
                          FROM \"{schema}\".transitions t JOIN \"{schema}\".instances i ON i.id = t.instance_id
                         WHERE t.transition_key = 'fire' AND i.data->>'fireAt' = $2)
             SELECT min(late), percentile_cont(0.5) WITHIN GROUP (ORDER BY late), percentile_cont(0.99) WITHIN GROUP (ORDER BY late),
                    max(late), count(*), (SELECT count(*) FROM (SELECT instance_id FROM f GROUP BY instance_id HAVING count(*) > 1) d)
               FROM f"
        )))
        .bind(fire_at)
        .bind(&fire_at_text)
        .fetch_one(&pool)
        .await
        .map_err(|e| e.to_string())?;
    pool.close().await;
    let round = |v: Option<f64>| v.map(|x| (x * 1000.0).round() / 1000.0);
    let lost = n as i64 - done;
    let spread_s = last_s.unwrap_or(f64::NAN);
    r.put("timers", n);
    r.put("fired", done);
    r.put("fire_transitions", fires);
    r.put("lost", lost);
    r.put("duplicated", duplicates);
    r.put("first_fired_after_due_s", round(first_s));
    r.put("p50_fired_after_due_s", round(p50_s));
    r.put("p99_fired_after_due_s", round(p99_s));
    r.put("last_fired_after_due_s", round(last_s));
    if first_s.is_some_and(|f| f < 0.0) {
        r.notes.push("a timer fired before its due time".into());
    }
    if ctx.full() {
        r.budget = Some(Budget {
            rule: "all fired within 5 s of due, none lost or duplicated".into(),
            measured: format!("{spread_s:.2} s, {lost} lost, {duplicates} duplicated"),
            met: spread_s <= 5.0 && lost == 0 && duplicates == 0,
        });
    }
    Ok(r)
}

async fn http_tasks(ctx: &Ctx) -> Result<ScenarioReport, String> {
    let mut r = ScenarioReport::new(6, "http-tasks");
    let domain = "bench-http";
    let (addr, server) = super::target::start().await?;
    ctx.client.publish(&c::http_task(domain, "bench-call")).await?;
    ctx.client.publish(&c::http_loop_flow(domain, "bench-http-loop", "bench-call")).await?;
    ctx.client.publish(&c::loop_flow(domain, "bench-plain-loop")).await?;
    let target = format!("http://{addr}/hook");
    let body = c::payload(1024, 6);
    let http_ids = loop_instances(start_many(ctx, domain, "bench-http-loop", ctx.clients, |_| json!({ "target": target })).await?);
    let plain_ids = loop_instances(start_many(ctx, domain, "bench-plain-loop", ctx.clients, |_| json!({})).await?);
    drive_loop(ctx, domain, "bench-http-loop", http_ids.clone(), Stop::Count(http_ids.len() * 2), body.clone()).await;
    drive_loop(ctx, domain, "bench-plain-loop", plain_ids.clone(), Stop::Count(plain_ids.len() * 2), body.clone()).await;
    let plain = drive_loop(ctx, domain, "bench-plain-loop", plain_ids, ctx.stop, body.clone()).await;
    let http = drive_loop(ctx, domain, "bench-http-loop", http_ids, ctx.stop, body).await;
    server.cancel();
    r.put("plain_transitions", &plain);
    r.put("with_http_task", &http);
    r.put("http_over_plain_throughput", ((http.throughput_per_s / plain.throughput_per_s.max(1e-9)) * 1000.0).round() / 1000.0);
    r.notes.push("half of the loop's transitions call the HTTP endpoint (to-pong); to-ping is plain".into());
    Ok(r)
}

async fn idle(ctx: &Ctx) -> Result<ScenarioReport, String> {
    let mut r = ScenarioReport::new(7, "idle");
    let domains = 10;
    for i in 0..domains {
        let domain = format!("bench-idle-{i}");
        ctx.client.publish(&c::loop_flow(&domain, "bench-idle")).await?;
        ctx.client.start(&domain, "bench-idle", None, &json!({})).await?;
    }
    let window = if ctx.full() { Duration::from_secs(10) } else { Duration::from_secs(2) };
    // Let start-up work settle before measuring: the scheduler picks new
    // domains up within its refresh period, and the set-up's pooled
    // connections close after connection_idle_seconds.
    let settle = Duration::from_secs(if ctx.full() { ctx.config.execution.idle_poll_seconds.max(1) + ctx.config.database.connection_idle_seconds + 1 } else { 2 });
    tokio::time::sleep(settle).await;
    let pattern = format!("{}bench\\_idle\\_%", ctx.config.database.database_prefix.replace('_', "\\_"));
    let before = xacts(&ctx.control, &pattern).await?;
    tokio::time::sleep(window).await;
    let after = xacts(&ctx.control, &pattern).await?;
    let per_s = (after - before) as f64 / window.as_secs_f64();
    r.put("domains", domains);
    r.put("transactions_per_s_all_domains", (per_s * 100.0).round() / 100.0);
    r.notes.push("counts commits and rollbacks of the idle domains' databases (pg_stat_database)".into());
    if ctx.full() {
        r.budget = Some(Budget { rule: "<= 10 transactions/s".into(), measured: format!("{per_s:.1}/s"), met: per_s <= 10.0 });
    }
    Ok(r)
}

async fn xacts(control: &PgPool, pattern: &str) -> Result<i64, String> {
    let mut conn = control.acquire().await.map_err(|e| e.to_string())?;
    sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut *conn).await.map_err(|e| e.to_string())?;
    sqlx::query_scalar("SELECT COALESCE(sum(xact_commit + xact_rollback), 0)::bigint FROM pg_stat_database WHERE datname LIKE $1")
        .bind(pattern)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| e.to_string())
}

/// Resident memory of this process in MB (Linux).
fn resident_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

