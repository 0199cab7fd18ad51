//! Publishing a component folder.

use crate::common;

use common::{TestEnv, component, workflow, write, SCHEMA_ATTRS, SCRIPT_TASK};
use vnext_core::model::ComponentKind;
use vnext_core::version::VersionSelector;
use vnext_init::InitError;
use vnext_init::bootstrap::{self, InitOptions};
use vnext_init::components;
use vnext_init::package::{FileStatus, PublishProgress, load_folder, publish_folder, scan_folder};

fn sample_folder(env: &TestEnv) -> std::path::PathBuf {
    let dir = env.folder("sample");
    write(&dir, "Workflows/order.json", &workflow("shop", "order", "1.0.0"));
    write(&dir, "Tasks/reserve.json", &component("sys-tasks", "shop", "reserve", "1.0.0", SCRIPT_TASK));
    write(&dir, "Schemas/order-start.json", &component("sys-schemas", "shop", "order-start", "1.0.0", SCHEMA_ATTRS));
    write(&dir, "Views/summary.json", &component("sys-views", "shop", "summary", "1.0.0", r#"{"type": 1, "content": "{}"}"#));
    // Not components: designer layout, project config, hidden folders.
    write(&dir, "Workflows/.meta/order.diagram.json", r#"{"nodes": []}"#);
    write(&dir, "Workflows/order.diagram.json", r#"{"nodes": []}"#);
    write(&dir, "vnext.config.json", r#"{"version": "1.0.0", "domain": "shop", "paths": {}}"#);
    write(&dir, "package.json", r#"{"name": "shop"}"#);
    write(&dir, ".git/config.json", "not even json");
    dir
}

#[tokio::test]
async fn a_folder_publishes_in_dependency_order_and_again_as_unchanged() {
    let env = TestEnv::new().await;
    let dir = sample_folder(&env);
    let files = load_folder(&dir).unwrap();
    assert_eq!(
        files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        ["Schemas/order-start.json", "Tasks/reserve.json", "Views/summary.json", "Workflows/order.json"]
    );
    assert_eq!(scan_folder(&dir).unwrap().skipped, ["package.json"]);

    let mut seen: Vec<PublishProgress> = Vec::new();
    let report = publish_folder(&env.dbs, &dir, |p| seen.push(p.clone())).await.unwrap();
    assert_eq!(report.created.len(), 4);
    assert_eq!(report.domains, ["shop"]);
    let order: Vec<&str> = seen.iter().map(|p| p.component.as_deref().unwrap()).collect();
    assert_eq!(order, ["sys-schemas/order-start@1.0.0", "sys-tasks/reserve@1.0.0", "sys-views/summary@1.0.0", "sys-flows/order@1.0.0"]);
    assert!(seen.iter().all(|p| p.status == FileStatus::Created));

    let pool = env.dbs.domain(&env.domain("shop")).await.unwrap();
    let stored = components::fetch(&pool, ComponentKind::Workflow, "order", &VersionSelector::Latest).await.unwrap().unwrap();
    assert_eq!(stored.raw, std::fs::read_to_string(dir.join("Workflows/order.json")).unwrap());

    let again = publish_folder(&env.dbs, &dir, |_| {}).await.unwrap();
    assert_eq!(again.unchanged.len(), 4);
    assert!(again.created.is_empty());
}

#[tokio::test]
async fn every_failing_file_is_reported_and_nothing_is_left_half_published() {
    let env = TestEnv::new().await;
    let dir = sample_folder(&env);
    publish_folder(&env.dbs, &dir, |_| {}).await.unwrap();
    let pool = env.dbs.domain(&env.domain("shop")).await.unwrap();
    let count = |pool: sqlx::PgPool| async move {
        let mut total = 0i64;
        for kind in ComponentKind::PUBLISH_ORDER {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {}.components", kind.schema())))
                .fetch_one(&pool)
                .await
                .unwrap();
            total += n;
        }
        total
    };
    let before = count(pool.clone()).await;

    // A second folder: valid new components mixed with five kinds of failure.
    let bad = env.folder("bad");
    write(&bad, "Tasks/new-task.json", &component("sys-tasks", "shop", "new-task", "1.0.0", SCRIPT_TASK));
    write(&bad, "Workflows/order-2.json", &workflow("shop", "order", "2.0.0"));
    write(&bad, "Tasks/broken.json", "{\"key\": \"broken\", ");
    write(&bad, "Tasks/conflict.json", &component("sys-tasks", "shop", "reserve", "1.0.0", r#"{"type": "7", "config": {"x": 1}}"#));
    write(&bad, "Tasks/bad-version.json", &component("sys-tasks", "shop", "bad-version", "v1", SCRIPT_TASK));
    write(&bad, "Tasks/bad-model.json", &component("sys-tasks", "shop", "bad-model", "1.0.0", r#"{"config": {}}"#));
    write(&bad, "Tasks/dup-a.json", &component("sys-tasks", "shop", "dup", "1.0.0", SCRIPT_TASK));
    write(&bad, "Tasks/dup-b.json", &component("sys-tasks", "shop", "dup", "1.0.0", r#"{"type": "7", "config": {"other": true}}"#));

    let mut lines = Vec::new();
    let err = publish_folder(&env.dbs, &bad, |p| lines.push(p.clone())).await.unwrap_err();
    let InitError::Package(report) = err else { panic!("expected a package report, got {err}") };
    let failed: Vec<&str> = report.failures.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        failed,
        ["Tasks/bad-model.json", "Tasks/bad-version.json", "Tasks/broken.json", "Tasks/conflict.json", "Tasks/dup-b.json"],
        "{:?}",
        report.failures
    );
    let reason = |path: &str| report.failures.iter().find(|f| f.path == path).unwrap().reason.clone();
    assert!(reason("Tasks/broken.json").contains("not valid JSON"));
    assert!(reason("Tasks/bad-version.json").contains("/version"), "{}", reason("Tasks/bad-version.json"));
    assert!(reason("Tasks/bad-model.json").contains("type"), "{}", reason("Tasks/bad-model.json"));
    assert!(reason("Tasks/dup-b.json").contains("Tasks/dup-a.json"));
    // Valid files were held back, and reported as such: one line per file.
    assert_eq!(lines.len(), 8);
    assert!(report.created.is_empty());
    assert_eq!(count(pool.clone()).await, before, "nothing was written");

    assert!(reason("Tasks/conflict.json").contains("already published with different content"));
    // With the local problems fixed, the store conflict alone still stops everything.
    for f in ["Tasks/broken.json", "Tasks/bad-version.json", "Tasks/bad-model.json", "Tasks/dup-b.json"] {
        std::fs::remove_file(bad.join(f)).unwrap();
    }
    let err = publish_folder(&env.dbs, &bad, |_| {}).await.unwrap_err();
    let InitError::Package(report) = err else { panic!("expected a package report") };
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].path, "Tasks/conflict.json");
    assert!(report.failures[0].reason.contains("already published with different content"));
    assert_eq!(count(pool.clone()).await, before);

    std::fs::remove_file(bad.join("Tasks/conflict.json")).unwrap();
    let report = publish_folder(&env.dbs, &bad, |_| {}).await.unwrap();
    assert_eq!(report.created.len(), 3);
    assert_eq!(count(pool).await, before + 3);
}

#[tokio::test]
async fn init_provisions_the_folder_domains_and_publishes_them() {
    let env = TestEnv::new().await;
    let dir = env.folder("multi");
    write(&dir, "shop/Tasks/a.json", &component("sys-tasks", "shop", "a", "1.0.0", SCRIPT_TASK));
    write(&dir, "bank/Tasks/b.json", &component("sys-tasks", "bank", "b", "1.0.0", SCRIPT_TASK));
    let options = InitOptions { dir: Some(dir.clone()), ..InitOptions::default() };
    let report = bootstrap::run(&env.dbs, &options, |_| {}).await.unwrap();
    assert!(report.is_success(), "{:?}", report.problems());
    assert_eq!(report.domains.iter().map(|d| d.domain.as_str()).collect::<Vec<_>>(), ["bank", "shop"]);
    for (domain, key) in [("bank", "b"), ("shop", "a")] {
        let pool = env.dbs.domain(&env.domain(domain)).await.unwrap();
        assert!(components::fetch(&pool, ComponentKind::Task, key, &VersionSelector::Latest).await.unwrap().is_some());
    }
    // Running init again changes nothing.
    let again = bootstrap::run(&env.dbs, &options, |_| {}).await.unwrap();
    assert!(again.domains.iter().all(|d| d.provision.as_ref().unwrap().changed_nothing()));
    assert_eq!(again.publish.unwrap().unwrap().unchanged.len(), 2);

    // A missing folder given explicitly is an error naming it.
    let options = InitOptions { dir: Some(dir.join("absent")), ..InitOptions::default() };
    let err = bootstrap::run(&env.dbs, &options, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("absent"), "{err}");
}

#[tokio::test]
async fn references_resolve_against_components_already_published() {
    let env = TestEnv::new().await;
    let tasks = env.folder("tasks");
    write(&tasks, "Tasks/reserve.json", &component("sys-tasks", "shop", "reserve", "1.0.0", SCRIPT_TASK));
    publish_folder(&env.dbs, &tasks, |_| {}).await.unwrap();

    // A later folder references the task it does not contain: resolved from the store.
    let uses = |task_key: &str| {
        workflow("shop", "checkout", "1.0.0").replace(
            r#""stateType": 1,"#,
            &format!(
                r#""stateType": 1, "onEntries": [{{"order": 1, "task": {{"key": "{task_key}", "domain": "shop", "flow": "sys-tasks", "version": "1"}}}}],"#
            ),
        )
    };
    let missing = env.folder("missing");
    write(&missing, "Workflows/checkout.json", &uses("absent-task"));
    let err = publish_folder(&env.dbs, &missing, |_| {}).await.unwrap_err();
    let InitError::Package(report) = err else { panic!("expected a package report, got {err}") };
    assert_eq!(report.failures.len(), 1);
    assert!(report.failures[0].reason.contains("absent-task"), "{}", report.failures[0].reason);
    assert!(report.failures[0].reason.contains("/attributes/states/0/onEntries/0/task"), "{}", report.failures[0].reason);

    let found = env.folder("found");
    write(&found, "Workflows/checkout.json", &uses("reserve"));
    let report = publish_folder(&env.dbs, &found, |_| {}).await.unwrap();
    assert_eq!(report.created, ["Workflows/checkout.json"]);
}

#[tokio::test]
async fn the_sample_folder_publishes() {
    let env = TestEnv::new().await;
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows/demo");
    let mut lines = 0;
    let report = publish_folder(&env.dbs, &demo, |_| lines += 1).await.unwrap();
    assert!(report.created.len() >= 10, "{report:?}");
    assert_eq!(lines, report.created.len());
    assert!(report.failures.is_empty());
}
