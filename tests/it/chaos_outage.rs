//! Failures that must not lose a client's work, with the services as
//! processes (`vnext init`, `vnext app`, `vnext execution`) on a PostgreSQL
//! cluster of the test's own (`private_pg`), so the server can be restarted
//! and stopped under load.
//!
//! - PostgreSQL restarted (fast) and stopped for a moment under load: clients
//!   see 2xx, 409 busy-like answers or 503 `service.unavailable`, never 500;
//!   an HTTP task whose answer arrives while the server is down is written
//!   once it is back (no lease recovery, no retry).
//! - The chaos run, at small size: mixed load (manual transitions with
//!   bodies, an HTTP task with a retry policy, a script task, a timer) while
//!   the app and the execution service are killed with SIGKILL and restarted
//!   and PostgreSQL is restarted; then nothing is lost (every accepted start
//!   and transition is in its instance), nothing applied twice (each
//!   transition once in history, one idempotency key per instance's call),
//!   nothing stuck busy, nothing faulted.

use crate::e2e_support;
use crate::private_pg::PrivatePg;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use e2e_support::*;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::sync::Notify;

const D: &str = "chaos";
/// A payment of this amount is held at the target until released.
const HOLD: i64 = 999;

// ---------------------------------------------------------------------------
// The payment provider the HTTP task calls

/// `POST /charge`: records the call's `Idempotency-Key` per instance, answers
/// `{"charged": <amount>}` after 300 ms (long enough to be cut off), or, for
/// [`HOLD`], once released.
#[derive(Clone, Default)]
struct Provider {
    keys: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    in_flight: Arc<AtomicUsize>,
    arrived: Arc<Notify>,
    release: Arc<Notify>,
}

impl Provider {
    async fn start(&self) -> String {
        let app = axum::Router::new().route("/charge", axum::routing::post(charge)).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// Waits until at least one call is being answered (at most `within`).
    async fn wait_in_flight(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let arrived = self.arrived.notified();
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }

    /// Distinct idempotency keys and calls, per instance.
    fn per_instance(&self) -> BTreeMap<String, (usize, usize)> {
        let keys = self.keys.lock().unwrap();
        keys.iter().map(|(i, ks)| (i.clone(), (ks.iter().collect::<BTreeSet<_>>().len(), ks.len()))).collect()
    }
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn charge(State(p): State<Provider>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    let instance = body["instance"].as_str().unwrap_or("?").to_string();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    p.keys.lock().unwrap().entry(instance).or_default().push(key);
    p.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlight(p.in_flight.clone());
    let release = p.release.notified();
    p.arrived.notify_waiters();
    if body["amount"] == HOLD {
        release.await;
    } else {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    axum::Json(json!({ "charged": body["amount"] }))
}

// ---------------------------------------------------------------------------
// The workflow

/// `begin` → `placed` –`pay` (body `amount`)→ `paying`, whose HTTP task
/// charges the provider (retry policy: every 0.5 s, 30 times) –(default)→
/// `paid`, whose script task scores the order –(timer, 1 s)→ `settled`
/// –`ship` (body `tracking`)→ `shipped`.
fn components(provider: &str) -> Vec<Value> {
    let charge_task = http_task(D, "charge", json!({ "url": format!("{provider}/charge"), "method": "POST", "body": {}, "timeoutSeconds": 20 }));
    let score_task = component(D, "sys-tasks", "score", json!({ "type": "7", "config": {} }));
    let mut paying = state("paying", 2, json!([automatic_default("charged", "paid")]));
    paying["onEntries"] = json!([{
        "order": 1, "task": reference(D, "sys-tasks", "charge"),
        "mapping": script("./src/charge.rhai", r#"
fn input(ctx) { #{ body: #{ instance: ctx.instance.id, amount: ctx.instance.data.amount } } }
fn output(ctx) { #{ receipt: ctx.response.data } }
"#),
        "errorBoundary": { "onError": [{ "action": 1,
            "retryPolicy": { "initialDelay": "PT0.5S", "maxRetries": 30, "backoffType": 0, "useJitter": false } }] }
    }]);
    let mut paid = state("paid", 2, json!([scheduled("settle", "settled", json!({ "duration": "PT1S" }))]));
    paid["onEntries"] = json!([{
        "order": 1, "task": reference(D, "sys-tasks", "score"),
        "mapping": script("./src/score.rhai", "fn output(ctx) { #{ score: ctx.instance.data.amount * 2 } }")
    }]);
    let states = json!([
        state("placed", 1, json!([manual("pay", "paying")])),
        paying,
        paid,
        state("settled", 2, json!([manual("ship", "shipped")])),
        final_state("shipped"),
    ]);
    vec![charge_task, score_task, workflow(D, "order", "placed", states, json!({}))]
}

// ---------------------------------------------------------------------------
// Clients

/// Every answer the clients got: status code, or 0 for no answer (the app was down).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<BTreeMap<u16, usize>>>);

impl Seen {
    fn record(&self, status: u16) {
        *self.0.lock().unwrap().entry(status).or_default() += 1;
    }

    fn counts(&self) -> BTreeMap<u16, usize> {
        self.0.lock().unwrap().clone()
    }

    /// Answers a client must never get: anything but 2xx, 409, 429, 503 (and no answer while the app is down).
    fn forbidden(&self) -> Vec<(u16, usize)> {
        self.counts().into_iter().filter(|(s, _)| !matches!(s, 0 | 200..=299 | 409 | 429 | 503)).collect()
    }
}

async fn call(seen: &Seen, request: reqwest::RequestBuilder) -> Option<(u16, Value)> {
    match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            seen.record(status);
            let text = r.text().await.unwrap_or_default();
            Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
        }
        Err(_) => {
            seen.record(0);
            None
        }
    }
}

const PAUSE: Duration = Duration::from_millis(150);

/// Starts instance `key` (idempotent by key) until an answer says it exists; its URL.
async fn start_order(client: &reqwest::Client, seen: &Seen, api: &str, key: &str, deadline: Instant) -> String {
    loop {
        let body = json!({ "key": key, "attributes": { "customer": key } });
        if let Some((200 | 201, v)) = call(seen, client.post(format!("{api}/start?sync=true")).json(&body)).await {
            return format!("{api}/{}", v["id"].as_str().unwrap());
        }
        assert!(Instant::now() < deadline, "{key} never started");
        tokio::time::sleep(PAUSE).await;
    }
}

/// Runs `transition` (offered in `from`) with `body` until the instance is
/// in one of `after` (also when an answer was lost but the transition was applied).
async fn ensure(client: &reqwest::Client, seen: &Seen, url: &str, (from, transition): (&str, &str), body: Value, after: &[&str], deadline: Instant) {
    loop {
        assert!(Instant::now() < deadline, "{url}: `{transition}` never reached {after:?}");
        match call(seen, client.get(url)).await {
            Some((200, v)) if after.contains(&at(&v).0) => return,
            Some((200, v)) if at(&v) == (from, "A") => {
                let request = client.patch(format!("{url}/transitions/{transition}?sync=true")).json(&json!({ "attributes": body }));
                if let Some((200, _)) = call(seen, request).await {
                    continue;
                }
            }
            _ => {}
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// One order's whole life, as a client drives it.
async fn lifecycle(client: reqwest::Client, seen: Seen, api: String, n: i64, deadline: Instant) -> String {
    let url = start_order(&client, &seen, &api, &format!("order-{n}"), deadline).await;
    ensure(&client, &seen, &url, ("placed", "pay"), json!({ "amount": 10 + n }), &["paying", "paid", "settled", "shipped"], deadline).await;
    ensure(&client, &seen, &url, ("settled", "ship"), json!({ "tracking": format!("T-{n}") }), &["shipped"], deadline).await;
    url
}

async fn domain_db(pg: &PrivatePg, prefix: &str) -> PgConnection {
    PgConnection::connect(&pg.url(&format!("{prefix}{D}"))).await.expect("the domain database")
}

/// The services on `pg` with the settings every test here uses, plus `extra`.
async fn services(pg: &PrivatePg, components: &[Value], extra: &[(&str, &str)]) -> Services {
    let url = pg.url("postgres");
    let mut env: Vec<(&str, &str)> = vec![
        ("VNEXT_DATABASE__URL", url.as_str()),
        // A request that finds no connection answers 503 within a second.
        ("VNEXT_DATABASE__ACQUIRE_TIMEOUT_SECONDS", "1"),
        ("VNEXT_EXECUTION__IDLE_POLL_SECONDS", "1"),
        ("VNEXT_EXECUTION__JOB_LOCK_SECONDS", "3"),
    ];
    env.extend_from_slice(extra);
    Services::start(components, &env).await
}

// ---------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_and_stopped_under_load_answers_503_never_500() {
    let pg = tokio::task::block_in_place(PrivatePg::start);
    let provider = Provider::default();
    let base = provider.start().await;
    // The default 60 s lease: whatever finishes here was not lease recovery.
    let mut s = services(&pg, &components(&base), &[]).await;
    tokio::task::block_in_place(|| s.spawn_execution(true));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let api = instances_url(&s.app_url, D, "order");
    let seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(60);

    // A payment whose provider answers only while the server is down (the
    // timer of `paid` may have moved it on to `settled` since).
    let held = start_order(&client, &seen, &api, "held", deadline).await;
    let request = client.patch(format!("{held}/transitions/pay?sync=true")).json(&json!({ "attributes": { "amount": HOLD } }));
    let paying = tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
    assert!(provider.wait_in_flight(Duration::from_secs(20)).await, "the held payment reached the provider\n{}", s.logs());

    // Load: starts, reads and payments, until told to stop.
    let stop = Arc::new(Notify::new());
    let load: Vec<_> = (0..6)
        .map(|c| {
            let (client, seen, api, stop) = (client.clone(), seen.clone(), api.clone(), stop.clone());
            tokio::spawn(async move {
                let stopped = stop.notified();
                tokio::pin!(stopped);
                for n in 0.. {
                    let body = json!({ "key": format!("load-{c}-{n}"), "attributes": {} });
                    let step = async {
                        if let Some((200, v)) = call(&seen, client.post(format!("{api}/start?sync=true")).json(&body)).await {
                            let url = format!("{api}/{}", v["id"].as_str().unwrap_or_default());
                            call(&seen, client.get(&url)).await;
                            let pay = json!({ "attributes": { "amount": n } });
                            call(&seen, client.patch(format!("{url}/transitions/pay?sync=true")).json(&pay)).await;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    };
                    tokio::select! {
                        _ = &mut stopped => return,
                        _ = step => {}
                    }
                }
            })
        })
        .collect();

    // And reads, which never wait on a call in flight.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (client, seen, held, api, stop) = (client.clone(), seen.clone(), held.clone(), api.clone(), stop.clone());
            tokio::spawn(async move {
                let stopped = stop.notified();
                tokio::pin!(stopped);
                loop {
                    let step = async {
                        call(&seen, client.get(&held)).await;
                        call(&seen, client.get(format!("{api}?pageSize=5"))).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    };
                    tokio::select! {
                        _ = &mut stopped => return,
                        _ = step => {}
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| pg.restart());
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The server goes away; meanwhile the provider answers the held payment.
    tokio::task::block_in_place(|| pg.stop());
    provider.release.notify_waiters();
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| pg.resume());
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.notify_waiters();
    for l in load.into_iter().chain(readers) {
        l.await.unwrap();
    }

    // The held payment was written once the server was back: answered 200, applied once, attempt 1.
    let status = tokio::time::timeout(Duration::from_secs(45), paying).await.expect("answered").unwrap().expect("an answer");
    assert_eq!(status, 200, "{}", s.logs());
    let (_, v) = send(client.get(&held)).await;
    assert!(["paid", "settled"].contains(&at(&v).0), "{v}");
    assert_eq!(v["attributes"]["receipt"], json!({ "charged": HOLD }), "{v}");
    let id = held.rsplit('/').next().unwrap();
    let mut db = domain_db(&pg, &s.prefix.0).await;
    let runs: Vec<(i32, String)> = sqlx::query_as(
        "SELECT attempt, status FROM \"order\".task_runs WHERE instance_id = $1::uuid AND task_key = 'charge' ORDER BY started_at",
    )
    .bind(id)
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(runs, vec![(1, "succeeded".to_string())], "no lost attempt, no retry");
    let origins: Vec<(String, String)> =
        sqlx::query_as("SELECT transition_key, origin FROM \"order\".transitions WHERE instance_id = $1::uuid AND transition_key = 'pay'")
            .bind(id)
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(origins, vec![("pay".to_string(), "api".to_string())]);

    let counts = seen.counts();
    eprintln!("answers during the restart and the stop: {counts:?}");
    assert!(seen.forbidden().is_empty(), "answers other than 2xx, 409, 429, 503: {counts:?}\n{}", s.logs());
    assert_eq!(counts.get(&0), None, "the app never went away: every request had an answer");
    assert!(counts.get(&503).copied().unwrap_or(0) > 0, "requests while the server was stopped are 503: {counts:?}");
    drop(db);
    s.executions.clear();
    s.app = None;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_kill_app_and_execution_and_restart_postgres_loses_and_duplicates_nothing() {
    const ORDERS: i64 = 16;
    let t0 = Instant::now();
    let pg = tokio::task::block_in_place(PrivatePg::start);
    let provider = Provider::default();
    let base = provider.start().await;
    let mut s = services(&pg, &components(&base), &[("VNEXT_RUNTIME__LEASE_SECONDS", "2")]).await;
    tokio::task::block_in_place(|| s.spawn_execution(true));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let api = instances_url(&s.app_url, D, "order");
    let seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(75);

    let clients: Vec<_> =
        (0..ORDERS).map(|n| tokio::spawn(lifecycle(client.clone(), seen.clone(), api.clone(), n, deadline))).collect();

    // The app dies with payments in flight, then the execution service, then PostgreSQL restarts.
    assert!(provider.wait_in_flight(Duration::from_secs(30)).await, "payments reached the provider\n{}", s.logs());
    s.kill_app();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| s.spawn_app());
    let _ = provider.wait_in_flight(Duration::from_secs(5)).await;
    s.kill_execution(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| s.spawn_execution(true));
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| pg.restart());

    let mut urls = Vec::new();
    for c in clients {
        urls.push(c.await.unwrap_or_else(|e| panic!("{e}\n{}", s.logs())));
    }

    // Nothing lost: every order reached its end with every body it was sent.
    let mut ids = BTreeSet::new();
    for (n, url) in urls.iter().enumerate() {
        let (status, v) = send(client.get(url)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(at(&v), ("shipped", "C"), "{v}");
        let a = &v["attributes"];
        let amount = 10 + n as i64;
        assert_eq!((a["amount"].as_i64(), a["tracking"].as_str()), (Some(amount), Some(format!("T-{n}").as_str())), "{v}");
        assert_eq!((a["receipt"]["charged"].as_i64(), a["score"].as_i64()), (Some(amount), Some(2 * amount)), "{v}");
        // Nothing applied twice.
        let (_, history) = send(client.get(format!("{url}/transitions"))).await;
        let mut hops: BTreeMap<String, usize> = BTreeMap::new();
        for t in history["transitions"].as_array().unwrap() {
            *hops.entry(t["transitionId"].as_str().unwrap().to_string()).or_default() += 1;
        }
        let expected: BTreeMap<String, usize> = ["begin", "pay", "charged", "settle", "ship"].iter().map(|k| (k.to_string(), 1)).collect();
        assert_eq!(hops, expected, "{history}");
        ids.insert(v["id"].as_str().unwrap().to_string());
    }
    // One idempotency key per order's payment, however often it was sent.
    let calls = provider.per_instance();
    assert_eq!(calls.keys().cloned().collect::<BTreeSet<_>>(), ids, "every order's payment reached the provider");
    for (id, (keys, _)) in &calls {
        assert_eq!(*keys, 1, "instance {id}: one payment, one key: {calls:?}");
    }
    // Nothing stuck busy, nothing faulted, no order started twice.
    let mut db = domain_db(&pg, &s.prefix.0).await;
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status::text, count(*) FROM \"order\".instances GROUP BY 1 ORDER BY 1").fetch_all(&mut db).await.unwrap();
    assert_eq!(by_status, vec![("C".to_string(), ORDERS)]);
    let incidents: i64 = sqlx::query_scalar("SELECT count(*) FROM \"order\".incidents").fetch_one(&mut db).await.unwrap();
    assert_eq!(incidents, 0);

    let counts = seen.counts();
    let lost: i64 = sqlx::query_scalar("SELECT count(*) FROM \"order\".task_runs WHERE error->>'code' = 'Lease:expired'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let retried: usize = calls.values().map(|(_, n)| n - 1).sum();
    eprintln!(
        "chaos: {ORDERS} orders in {:.1} s; answers {counts:?}; calls repeated {retried}; lost attempts recovered {lost}",
        t0.elapsed().as_secs_f64()
    );
    assert!(seen.forbidden().is_empty(), "answers other than 2xx, 409, 429, 503: {counts:?}\n{}", s.logs());
    drop(db);
    s.executions.clear();
    s.app = None;
}
