//! The component store: immutable versions, byte-exact readback, selection.

use crate::common;

use common::{TestEnv, component, SCRIPT_TASK};
use vnext_core::model::ComponentKind;
use vnext_core::version::VersionSelector;
use vnext_init::InitError;
use vnext_init::components::{self, PublishOutcome};
use vnext_init::provision::provision_domain;

async fn setup(env: &TestEnv) -> sqlx::PgPool {
    let domain = env.domain("store");
    provision_domain(&env.dbs, &domain).await.unwrap();
    env.dbs.domain(&domain).await.unwrap()
}

#[tokio::test]
async fn same_content_twice_is_unchanged_and_other_content_is_a_conflict() {
    let env = TestEnv::new().await;
    let pool = setup(&env).await;
    let task = component("sys-tasks", "store", "reserve", "1.0.0", SCRIPT_TASK);
    assert_eq!(components::publish(&pool, &task).await.unwrap(), PublishOutcome::Created);
    assert_eq!(components::publish(&pool, &task).await.unwrap(), PublishOutcome::Unchanged);

    // Only reformatted: the same JSON value, so unchanged, and the first text stays.
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&task).unwrap()).unwrap();
    assert_eq!(components::publish(&pool, &pretty).await.unwrap(), PublishOutcome::Unchanged);

    let other = component("sys-tasks", "store", "reserve", "1.0.0", r#"{"type": "7", "config": {"changed": true}}"#);
    let err = components::publish(&pool, &other).await.unwrap_err();
    match err {
        InitError::Conflict { kind, key, version } => {
            assert_eq!((kind, key.as_str(), version.as_str()), (ComponentKind::Task, "reserve", "1.0.0"));
        }
        other => panic!("expected Conflict, got {other}"),
    }
    let stored = components::fetch(&pool, ComponentKind::Task, "reserve", &VersionSelector::Latest).await.unwrap().unwrap();
    assert_eq!(stored.raw, task, "the conflicting publish changed nothing");
    assert_eq!(components::versions(&pool, ComponentKind::Task, "reserve").await.unwrap(), ["1.0.0"]);
}

#[tokio::test]
async fn content_reads_back_byte_for_byte() {
    let env = TestEnv::new().await;
    let pool = setup(&env).await;
    // Odd spacing, key order, escapes, non-ASCII and big numbers survive as sent.
    let raw = "{ \"version\":\"1.0.0\",\n\t\"key\" : \"odd-format\", \"domain\":\"store\", \"flow\":\"sys-schemas\", \"tags\":[\"t\"],\n  \"attributes\": {\"type\":\"workflow\", \"schema\": {\"type\": \"object\", \"title\": \"\\u00e7ay \\\"ok\\\" ğüş\", \"maximum\": 1.50, \"big\": 12345678901234567890}, \"z\": 1, \"a\": 2}\n}\n";
    assert_eq!(components::publish(&pool, raw).await.unwrap(), PublishOutcome::Created);
    let stored = components::fetch(&pool, ComponentKind::Schema, "odd-format", &VersionSelector::parse("1.0.0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.raw, raw);
    assert_eq!(stored.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw.as_bytes())));
    assert_eq!(stored.domain, "store");
    assert_eq!(stored.kind, ComponentKind::Schema);
    let keys: Vec<&String> = stored.content["attributes"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["type", "schema", "z", "a"], "key order is kept");
}

#[tokio::test]
async fn version_selectors_pick_the_highest_match() {
    let env = TestEnv::new().await;
    let pool = setup(&env).await;
    for v in ["1.0.0", "1.2.0", "1.10.1", "2.0.0-rc.1", "2.0.0", "2.1.0-beta.1"] {
        components::publish(&pool, &component("sys-tasks", "store", "pick", v, SCRIPT_TASK)).await.unwrap();
    }
    let pick = |s: &'static str| {
        let pool = pool.clone();
        async move {
            components::fetch(&pool, ComponentKind::Task, "pick", &VersionSelector::parse(s).unwrap())
                .await
                .unwrap()
                .map(|c| c.version)
        }
    };
    assert_eq!(pick("latest").await.as_deref(), Some("2.1.0-beta.1"));
    assert_eq!(pick("1").await.as_deref(), Some("1.10.1"));
    assert_eq!(pick("1.2").await.as_deref(), Some("1.2.0"));
    assert_eq!(pick("2.0").await.as_deref(), Some("2.0.0"));
    assert_eq!(pick("2.0.0-rc.1").await.as_deref(), Some("2.0.0-rc.1"));
    assert_eq!(pick("1.0.0").await.as_deref(), Some("1.0.0"));
    assert_eq!(pick("3").await, None);
    assert_eq!(
        components::versions(&pool, ComponentKind::Task, "pick").await.unwrap(),
        ["1.0.0", "1.2.0", "1.10.1", "2.0.0-rc.1", "2.0.0", "2.1.0-beta.1"]
    );
    assert!(components::fetch(&pool, ComponentKind::Task, "absent", &VersionSelector::Latest).await.unwrap().is_none());
}

#[tokio::test]
async fn a_publish_raises_the_revision_on_commit_only() {
    let env = TestEnv::new().await;
    let pool = setup(&env).await;
    let start = components::publish_revision(&pool).await.unwrap();

    let task = component("sys-tasks", "store", "notify-me", "1.0.0", SCRIPT_TASK);
    components::publish(&pool, &task).await.unwrap();
    assert_eq!(components::publish_revision(&pool).await.unwrap(), start + 1);

    // An unchanged publish raises nothing; a rolled-back one neither, and while
    // it is open others still read the committed revision.
    components::publish(&pool, &task).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    components::publish_in(&mut tx, &component("sys-tasks", "store", "rolled-back", "1.0.0", SCRIPT_TASK)).await.unwrap();
    assert_eq!(components::publish_revision(&pool).await.unwrap(), start + 1);
    tx.rollback().await.unwrap();
    assert_eq!(components::publish_revision(&pool).await.unwrap(), start + 1);
    components::publish(&pool, &component("sys-tasks", "store", "marker", "1.0.0", SCRIPT_TASK)).await.unwrap();
    assert_eq!(components::publish_revision(&pool).await.unwrap(), start + 2);
    let rolled: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_tasks.components WHERE key = 'rolled-back'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rolled, 0);
}

#[tokio::test]
async fn malformed_documents_are_refused_with_the_reason() {
    let env = TestEnv::new().await;
    let pool = setup(&env).await;
    for (raw, expected) in [
        ("{not json", "not valid JSON"),
        (r#"{"key": "a", "version": "1.0.0", "domain": "store", "attributes": {}}"#, "`flow`"),
        (r#"{"key": "a", "version": "one", "domain": "store", "flow": "sys-tasks", "attributes": {}}"#, "semantic version"),
        (r#"{"key": "a", "version": "1.0.0", "domain": "store", "flow": "sys-mappings", "attributes": {}}"#, "sys-mappings"),
    ] {
        let err = components::publish(&pool, raw).await.unwrap_err();
        assert!(matches!(err, InitError::InvalidComponent(_)), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
}
