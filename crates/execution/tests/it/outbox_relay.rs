//! The outbox relay against real PostgreSQL and a real NATS JetStream: every
//! row published once, with CloudEvents headers, marked after the ack; a relay
//! aborted mid-batch leaves nothing lost and nothing doubled.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vnext_execution::outbox::OutboxRelay;
use vnext_execution::scheduler::StaticDomains;
use vnext_init::config::events::EventsConfig;

use common::db::TestDomain;

const NATS: &str = "nats://127.0.0.1:4222";

/// A stream and subject prefix of this test only.
fn events_config(batch: u32) -> EventsConfig {
    let tag = Uuid::new_v4().simple().to_string();
    EventsConfig {
        nats_url: NATS.into(),
        stream: format!("T_{tag}"),
        subject_prefix: format!("t{tag}"),
        relay_batch: batch,
        relay_poll_ms: 20,
        ..EventsConfig::default()
    }
}

async fn write_events(pool: &PgPool, instances: &[Uuid], per_instance: usize) {
    for n in 0..per_instance {
        for id in instances {
            sqlx::query("INSERT INTO sys_queues.outbox (flow, instance_id, event_type, payload) VALUES ('loan', $1, 'instance.state-changed', $2)")
                .bind(id)
                .bind(json!({"n": n, "instance": id}))
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn stream_messages(config: &EventsConfig) -> u64 {
    let js = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    let mut stream = js.get_stream(&config.stream).await.unwrap();
    stream.info().await.unwrap().state.messages
}

async fn delete_stream(config: &EventsConfig) {
    let js = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    let _ = js.delete_stream(&config.stream).await;
}

async fn unsent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sys_queues.outbox WHERE published_at IS NULL").fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn relay_publishes_each_row_once_with_cloud_event_headers_in_instance_order() {
    let domain = TestDomain::create("outbox_once").await;
    let config = events_config(500);
    let instance = Uuid::new_v4();
    write_events(&domain.pool, &[instance], 3).await;
    let source = Arc::new(StaticDomains::single(domain.name.clone(), domain.pool.clone()));
    let mut relay = OutboxRelay::connect(source, config.clone()).await.unwrap();
    assert_eq!(relay.tick().await, 3);
    assert_eq!(relay.tick().await, 0, "a sent row is not sent again");
    assert_eq!(unsent(&domain.pool).await, 0);
    assert_eq!(stream_messages(&config).await, 3);

    let js = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    let stream = js.get_stream(&config.stream).await.unwrap();
    let first_row: i64 = sqlx::query_scalar("SELECT min(id) FROM sys_queues.outbox").fetch_one(&domain.pool).await.unwrap();
    for seq in 1..=3u64 {
        let message = stream.get_raw_message(seq).await.unwrap();
        let expected_subject = format!("{}.{}.loan.instance.state-changed", config.subject_prefix, domain.name);
        assert_eq!(message.subject.as_str(), expected_subject);
        let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
        let id = format!("{}:outbox:{}", domain.name, first_row + seq as i64 - 1);
        assert_eq!(header("Nats-Msg-Id").as_deref(), Some(id.as_str()));
        assert_eq!(header("ce-id").as_deref(), Some(id.as_str()));
        assert_eq!(header("ce-specversion").as_deref(), Some("1.0"));
        assert_eq!(header("ce-type").as_deref(), Some("instance.state-changed"));
        assert_eq!(header("ce-subject"), Some(instance.to_string()));
        assert!(header("ce-time").is_some_and(|t| chrono::DateTime::parse_from_rfc3339(&t).is_ok()));
        let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(body["n"], json!(seq - 1), "commit order per instance");
    }
    delete_stream(&config).await;
}

#[tokio::test]
async fn relay_aborted_mid_batch_loses_nothing_and_doubles_nothing() {
    let domain = TestDomain::create("outbox_abort").await;
    let config = events_config(40);
    let instances: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    write_events(&domain.pool, &instances, 100).await;
    let source = Arc::new(StaticDomains::single(domain.name.clone(), domain.pool.clone()));
    let relay = OutboxRelay::connect(source.clone(), config.clone()).await.unwrap();
    let first = tokio::spawn(relay.run(CancellationToken::new()));
    // Abort once some but not all rows are sent: the aborted round's rows
    // may be in the stream without being marked.
    let started = common_wait(&domain.pool, |left| left < 400).await;
    first.abort();
    let _ = first.await;
    assert!(started, "the first relay published something");

    let mut second = OutboxRelay::connect(source, config.clone()).await.unwrap();
    second.tick().await;
    assert_eq!(unsent(&domain.pool).await, 0, "every row sent");
    assert_eq!(stream_messages(&config).await, 400, "every event once in the stream");
    delete_stream(&config).await;
}

#[tokio::test]
async fn without_a_broker_the_relay_publishes_nothing_and_prunes_by_age() {
    let domain = TestDomain::create("outbox_nobroker").await;
    write_events(&domain.pool, &[Uuid::new_v4()], 2).await;
    sqlx::query("UPDATE sys_queues.outbox SET created_at = now() - interval '3 hours' WHERE id = (SELECT min(id) FROM sys_queues.outbox)")
        .execute(&domain.pool)
        .await
        .unwrap();
    let config = EventsConfig { retention_hours: 2, ..EventsConfig::default() };
    let source = Arc::new(StaticDomains::single(domain.name.clone(), domain.pool.clone()));
    let mut relay = OutboxRelay::connect(source, config).await.unwrap();
    assert!(!relay.publishes());
    assert_eq!(relay.tick().await, 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_queues.outbox").fetch_one(&domain.pool).await.unwrap();
    assert_eq!(left, 1, "the row past retention is gone, the recent one kept");
}

/// Polls the unsent count until `done` holds (at most 20 s).
async fn common_wait(pool: &PgPool, done: impl Fn(i64) -> bool) -> bool {
    for _ in 0..2000 {
        if done(unsent(pool).await) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
