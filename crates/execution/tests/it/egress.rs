//! The egress guard of HTTP tasks.
//!
//! Address classification and up-front refusals are checked without opening
//! any connection; the tests that do connect only ever reach servers on
//! 127.0.0.1 started here.

use crate::common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::any;
use serde_json::{Value, json};
use uuid::Uuid;
use vnext_core::model::TaskType;
use vnext_core::traits::{TaskInvocation, TaskResponse};
use vnext_execution::tasks::egress::{AddressClass, EgressGuard, OwnEndpoints, classify};
use vnext_execution::{HttpClients, LocalExecutor};
use vnext_init::config::Config;
use vnext_init::config::egress::{EgressOverride, LoopbackSetting};

fn class(text: &str) -> AddressClass {
    classify(text.parse::<IpAddr>().unwrap())
}

#[test]
fn addresses_are_classified_without_connecting() {
    use AddressClass::*;
    let cases = [
        ("127.0.0.1", Loopback),
        ("127.255.0.9", Loopback),
        ("::1", Loopback),
        ("10.1.2.3", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("192.168.1.1", Private),
        ("fc00::1", Private),
        ("fd12:3456::1", Private),
        ("100.64.0.1", SharedNat),
        ("100.127.255.255", SharedNat),
        ("169.254.169.254", LinkLocal),
        ("169.254.0.1", LinkLocal),
        ("fe80::1", LinkLocal),
        ("0.0.0.0", Unspecified),
        ("::", Unspecified),
        ("224.0.0.1", Multicast),
        ("ff02::1", Multicast),
        ("255.255.255.255", Broadcast),
        ("0.1.2.3", Reserved),
        ("192.0.2.10", Reserved),
        ("240.0.0.1", Reserved),
        ("2001:db8::1", Reserved),
        // IPv6 forms that carry an IPv4 address are what they carry.
        ("::ffff:127.0.0.1", Loopback),
        ("::ffff:169.254.169.254", LinkLocal),
        ("::ffff:10.0.0.1", Private),
        ("::ffff:100.64.1.1", SharedNat),
        ("::127.0.0.1", Loopback),
        ("::10.0.0.1", Private),
        ("::ffff:0:192.168.0.1", Private),
        ("64:ff9b::169.254.169.254", LinkLocal),
        ("64:ff9b::7f00:1", Loopback),
        ("2002:a9fe:a9fe::1", LinkLocal),
        ("2002:7f00:1::", Loopback),
        // Public ones stay public.
        ("8.8.8.8", Public),
        ("100.128.0.1", Public),
        ("172.32.0.1", Public),
        ("::ffff:8.8.8.8", Public),
        ("2606:4700::1111", Public),
    ];
    for (ip, expected) in cases {
        assert_eq!(class(ip), expected, "{ip}");
    }
}

/// A config whose app listens at `app_port` on loopback, as `vnext up` runs.
fn config(app_port: u16) -> Config {
    let mut c = Config::default();
    c.app.listen = format!("127.0.0.1:{app_port}");
    c.app.url = format!("http://127.0.0.1:{app_port}");
    c
}

fn guard(config: &Config) -> EgressGuard {
    EgressGuard::from_config(config, true, OwnEndpoints::from_config(config)).unwrap()
}

/// Refusals decided from the URL alone, before any connection.
#[test]
fn literal_addresses_and_rules_are_refused_up_front() {
    let c = config(4201);
    let g = guard(&c);
    let refused = |g: &EgressGuard, domain: &str, url: &str| {
        g.client_for(domain, &url.parse().unwrap(), true).err().map(|e| e.to_string())
    };
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.1/",
        "http://[fd00::1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0:8080/",
        "http://[::]/",
        "http://255.255.255.255/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
        // The runtime's own ports, even with loopback allowed.
        "http://127.0.0.1:4201/api/v1/execution/invoke/http/x",
        "http://127.0.0.2:4201/",
        "http://[::ffff:127.0.0.1]:4202/",
        "http://10.0.0.1:4201/",
    ] {
        let e = refused(&g, "d", url).unwrap_or_else(|| panic!("{url} is allowed"));
        assert!(e.contains("is not allowed"), "{url}: {e}");
    }
    // Loopback elsewhere is allowed in development, and numeric forms of an
    // address are read as the address.
    assert_eq!(refused(&g, "d", "http://127.0.0.1:8080/"), None);
    assert!(refused(&g, "d", "http://2130706433:4201/").is_some(), "127.0.0.1 written as a number");
    assert!(refused(&EgressGuard::public_only(), "d", "http://[::ffff:127.0.0.1]:8080/").unwrap().contains("loopback"));

    // Schemes, hosts, networks and a domain's own rules.
    let mut c = config(4201);
    c.egress.allow_schemes = vec!["https".into()];
    c.egress.allow_hosts = vec!["api.example.com".into(), "*.partner.example".into(), "10.20.0.0/16".into()];
    c.egress.allow_networks = vec!["10.20.0.0/16".into()];
    c.egress.allow_loopback = LoopbackSetting::Deny;
    c.egress.domains.insert(
        "ops".into(),
        EgressOverride { allow_hosts: Some(vec![]), allow_loopback: Some(LoopbackSetting::Allow), ..EgressOverride::default() },
    );
    let g = guard(&c);
    assert!(refused(&g, "d", "http://api.example.com/").unwrap().contains("scheme"));
    assert_eq!(refused(&g, "d", "https://API.example.com./x"), None);
    assert_eq!(refused(&g, "d", "https://a.b.partner.example/"), None);
    assert!(refused(&g, "d", "https://partner.example/").unwrap().contains("allow_hosts"));
    assert!(refused(&g, "d", "https://evil.example/").unwrap().contains("allow_hosts"));
    assert_eq!(refused(&g, "d", "https://10.20.3.4/"), None);
    assert!(refused(&g, "d", "https://10.21.0.1/").is_some());
    assert!(refused(&g, "d", "https://127.0.0.1:8080/").is_some());
    assert_eq!(refused(&g, "ops", "https://127.0.0.1:8080/"), None, "the domain allows loopback and any host");
    assert!(refused(&g, "ops", "https://127.0.0.1:4201/").is_some(), "but never the runtime's port");

    let mut bad = config(4201);
    bad.egress.allow_networks = vec!["10.0.0.0/33".into()];
    assert!(EgressGuard::from_config(&bad, true, OwnEndpoints::default()).err().unwrap().contains("10.0.0.0/33"));
    let mut bad = config(4201);
    bad.egress.allow_schemes = vec!["ftp".into()];
    assert!(EgressGuard::from_config(&bad, true, OwnEndpoints::default()).is_err());
}

/// A local server that counts the requests it gets. `/redirect?to=...` answers
/// 302 to `to`.
async fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().fallback(any(move |uri: axum::http::Uri| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            let to = uri.query().and_then(|q| q.strip_prefix("to=")).map(str::to_string);
            match to {
                Some(to) if uri.path() == "/redirect" => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
                _ => axum::Json(json!({"ok": true})).into_response(),
            }
        }
    }));
    (common::serve(app).await.port(), hits)
}

async fn call(executor: &LocalExecutor, url: &str) -> TaskResponse {
    let invocation = TaskInvocation {
        domain: "sales".into(),
        flow: "order".into(),
        instance_id: Uuid::new_v4(),
        instance_key: None,
        task_key: "call".into(),
        task_version: "1.0.0".into(),
        task_type: TaskType::Http,
        config: json!({"url": url, "method": "GET", "timeoutSeconds": 5}),
        idempotency_key: None,
    };
    executor.run(&invocation).await
}

fn denied(r: &TaskResponse) -> Option<(String, bool, String)> {
    r.error.as_ref().map(|e| (e.code.clone(), e.retryable, e.message.clone()))
}

#[tokio::test]
async fn the_runtimes_own_port_is_refused_and_loopback_works_only_when_allowed() {
    // A server standing in for the app's API, and an ordinary target.
    let (app_port, app_hits) = counting_server().await;
    let (target_port, target_hits) = counting_server().await;
    let c = config(app_port);
    let dev = LocalExecutor::from_config(&c, HttpClients::new()).unwrap();

    let r = call(&dev, &format!("http://127.0.0.1:{app_port}/api/v1/execution/invoke/http/x")).await;
    let (code, retryable, message) = denied(&r).expect("refused");
    assert_eq!((code.as_str(), retryable), ("Task:egress-denied", false), "{message}");
    assert!(message.contains("127.0.0.1") && message.contains("runtime"), "{message}");
    // By name too: `localhost` resolves to loopback on the app's port.
    let r = call(&dev, &format!("http://localhost:{app_port}/health")).await;
    assert_eq!(denied(&r).expect("refused").0, "Task:egress-denied", "{r:?}");
    // And through a redirect from an allowed target.
    let r = call(&dev, &format!("http://127.0.0.1:{target_port}/redirect?to=http://127.0.0.1:{app_port}/health")).await;
    assert_eq!(denied(&r).expect("refused").0, "Task:egress-denied", "{r:?}");
    assert_eq!(app_hits.load(Ordering::SeqCst), 0, "nothing reached the app");

    // Loopback is allowed in development (`"auto"`), by address and by name.
    let ok = call(&dev, &format!("http://127.0.0.1:{target_port}/ok")).await;
    assert!(ok.is_success, "{ok:?}");
    let ok = call(&dev, &format!("http://localhost:{target_port}/ok")).await;
    assert!(ok.is_success, "{ok:?}");
    let before = target_hits.load(Ordering::SeqCst);

    // Not when loopback is denied, nor outside development, nor by default.
    let mut denied_config = c.clone();
    denied_config.egress.allow_loopback = LoopbackSetting::Deny;
    let service_like = EgressGuard::from_config(&c, false, OwnEndpoints::from_config(&c)).unwrap();
    for executor in [
        LocalExecutor::from_config(&denied_config, HttpClients::new()).unwrap(),
        LocalExecutor::new(HttpClients::new(), &c.app.url).unwrap().with_egress(service_like),
        LocalExecutor::new(HttpClients::new(), &c.app.url).unwrap(),
    ] {
        for url in [format!("http://127.0.0.1:{target_port}/ok"), format!("http://localhost:{target_port}/ok")] {
            let r = call(&executor, &url).await;
            let (code, retryable, message) = denied(&r).expect("refused");
            assert_eq!((code.as_str(), retryable), ("Task:egress-denied", false), "{url}: {message}");
            assert!(message.contains("loopback"), "{message}");
        }
    }
    // A redirect to a link-local address is refused before anything connects to it.
    let r = call(&dev, &format!("http://127.0.0.1:{target_port}/redirect?to=http://169.254.169.254/latest/meta-data/")).await;
    let (code, _, message) = denied(&r).expect("refused");
    assert_eq!(code, "Task:egress-denied", "{message}");
    assert!(message.contains("169.254.169.254") && message.contains("link-local"), "{message}");
    assert_eq!(target_hits.load(Ordering::SeqCst), before + 1, "only the redirecting call reached the target");
}

#[test]
fn loopback_setting_reads_booleans_and_auto() {
    let parse = |v: Value| serde_json::from_value::<LoopbackSetting>(v).map_err(|e| e.to_string());
    assert_eq!(parse(json!(true)), Ok(LoopbackSetting::Allow));
    assert_eq!(parse(json!("false")), Ok(LoopbackSetting::Deny));
    assert_eq!(parse(json!("auto")), Ok(LoopbackSetting::Auto));
    assert!(parse(json!("sometimes")).unwrap_err().contains("allow_loopback"));
}
