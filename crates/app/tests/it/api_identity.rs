//! Identities besides API keys: JWT bearer tokens verified against a JWKS
//! served by a local identity provider on port 0, and identity headers of a
//! trusted proxy (trusted and untrusted peers, the proxy's secret). Their
//! roles meet the workflow model's `roles` and `queryRoles` as keys' do.

use crate::api_roles::ticket;
use crate::api_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use api_support::{TestApp, expect_problem};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const BASE: &str = "/api/v1/shop/workflows/ticket/instances";
const ISSUER: &str = "https://idp.test";

/// A signing key of the test identity provider.
struct SigningKey {
    kid: String,
    key: EncodingKey,
}

impl SigningKey {
    fn new(kid: &str) -> SigningKey {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        SigningKey { kid: kid.into(), key: EncodingKey::from_ec_der(pkcs8.as_ref()) }
    }

    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// The identity provider's JWKS endpoint, counting fetches.
struct Idp {
    url: String,
    keys: Arc<Mutex<JwkSet>>,
    fetches: Arc<AtomicUsize>,
}

async fn idp(keys: &[&SigningKey]) -> Idp {
    let set = Arc::new(Mutex::new(JwkSet { keys: keys.iter().map(|k| k.jwk()).collect() }));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (set.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = serde_json::to_value(&*served.lock().unwrap()).unwrap();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Idp { url: format!("http://{addr}/jwks"), keys: set, fetches }
}

fn claims(sub: &str, roles: &[&str], grants: &[&str]) -> Value {
    let now = chrono::Utc::now().timestamp().unsigned_abs();
    json!({ "iss": ISSUER, "aud": "vnext", "sub": sub, "iat": now, "exp": now + 300, "roles": roles, "vnext_grants": grants })
}

/// Publishes the ticket workflow with an admin key (identities enforce keys).
async fn with_ticket(app: &TestApp) {
    app.provision("shop").await;
    let request = vnext_init::keys::NewKey::from_parts("admin", true, None, &[], vec![]).unwrap();
    let admin = vnext_init::keys::create(&app.init, &request).await.unwrap().1;
    let r = app.client.post(app.url("/api/v1/definitions/publish")).bearer_auth(admin).json(&ticket()).send().await.unwrap();
    assert_eq!(r.status(), 201);
}

async fn status(response: reqwest::Response) -> u16 {
    response.status().as_u16()
}

#[tokio::test]
async fn jwt_identities_with_roles_allowed_and_denied() {
    let signer = SigningKey::new("k1");
    let provider = idp(&[&signer]).await;
    let jwks_url = provider.url.clone();
    let app = TestApp::spawn_with(|c| {
        c.identity.jwt_issuer = ISSUER.into();
        c.identity.jwt_audience = vec!["vnext".into()];
        c.identity.jwt_jwks_url = jwks_url;
        c.identity.role_grants = BTreeMap::from([("manager".to_string(), vec!["shop:read".to_string(), "shop:write".to_string()])]);
    })
    .await;
    // Configured identities enforce authentication on loopback without any key.
    expect_problem(app.get(BASE).await, 401, "auth.missing-key").await;
    let admin = signer.sign(&claims("ops", &[], &["admin"]));
    for component in [ticket()] {
        let r = app.client.post(app.url("/api/v1/definitions/publish")).bearer_auth(&admin).json(&component).send().await.unwrap();
        assert_eq!(r.status(), 201, "an admin identity provisions and publishes: {}", r.text().await.unwrap());
    }
    let clerk = signer.sign(&claims("alice", &["clerk"], &["shop:*"]));
    let manager = signer.sign(&claims("bob", &["manager"], &[]));
    let start = |token: &str| app.client.post(app.url(&format!("{BASE}/start?sync=true"))).bearer_auth(token).json(&json!({ "key": "j-1" })).send();

    let problem = expect_problem(start(&manager).await.unwrap(), 403, "auth.role-denied").await;
    assert_eq!(problem["transition"], "create");
    assert_eq!(status(start(&clerk).await.unwrap()).await, 200);
    let approve = |token: &str| {
        app.client.patch(app.url(&format!("{BASE}/j-1/transitions/approve?sync=true"))).bearer_auth(token).json(&json!({})).send()
    };
    expect_problem(approve(&clerk).await.unwrap(), 403, "auth.role-denied").await;
    assert_eq!(status(approve(&manager).await.unwrap()).await, 200, "grants from identity.role_grants, roles from the token");
    let read = |token: &str| app.client.get(app.url(&format!("{BASE}/j-1"))).bearer_auth(token).send();
    expect_problem(read(&clerk).await.unwrap(), 403, "auth.role-denied").await;
    assert_eq!(status(read(&manager).await.unwrap()).await, 200);
    // No grant on the domain: the route itself is forbidden.
    let stranger = signer.sign(&claims("eve", &["clerk"], &["elsewhere:*"]));
    expect_problem(read(&stranger).await.unwrap(), 403, "auth.forbidden").await;

    // Tokens that must not pass.
    let now = chrono::Utc::now().timestamp().unsigned_abs();
    let mut expired = claims("alice", &["clerk"], &["shop:*"]);
    expired["exp"] = json!(now - 3600);
    let mut audience = claims("alice", &["clerk"], &["shop:*"]);
    audience["aud"] = json!("someone-else");
    let mut issuer = claims("alice", &["clerk"], &["shop:*"]);
    issuer["iss"] = json!("https://evil.test");
    let mut no_subject = claims("alice", &["clerk"], &["shop:*"]);
    no_subject.as_object_mut().unwrap().remove("sub");
    // Same key id, another key.
    let forger = SigningKey::new("k1");
    let hmac = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims("alice", &["clerk"], &["shop:*"]), &EncodingKey::from_secret(b"guess").unwrap()).unwrap();
    for (what, token) in [
        ("expired", signer.sign(&expired)),
        ("other audience", signer.sign(&audience)),
        ("other issuer", signer.sign(&issuer)),
        ("no subject", signer.sign(&no_subject)),
        ("forged signature", forger.sign(&claims("alice", &["clerk"], &["shop:*"]))),
        ("shared-secret algorithm", hmac),
    ] {
        let r = read(&token).await.unwrap();
        assert!(r.headers().contains_key("www-authenticate"), "{what}");
        let problem = expect_problem(r, 401, "auth.invalid-token").await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{what}: {problem}");
    }

    // A key added by the provider later is fetched when a token names it; a
    // made-up key id does not make the server fetch again and again.
    let rotated = SigningKey::new("k2");
    provider.keys.lock().unwrap().keys.push(rotated.jwk());
    assert_eq!(status(read(&rotated.sign(&claims("bob", &["manager"], &[]))).await.unwrap()).await, 200);
    let before = provider.fetches.load(Ordering::SeqCst);
    let unknown = SigningKey::new("k-unknown");
    for _ in 0..3 {
        expect_problem(read(&unknown.sign(&claims("bob", &["manager"], &[]))).await.unwrap(), 401, "auth.invalid-token").await;
    }
    assert!(provider.fetches.load(Ordering::SeqCst) - before <= 1, "unknown key ids are rate-limited");
}

#[tokio::test]
async fn trusted_headers_from_trusted_and_untrusted_peers() {
    // Only 127.0.0.2 is the proxy; the test client can send from either address.
    let app = TestApp::spawn_with(|c| {
        c.identity.header_subject = "x-auth-user".into();
        c.identity.trusted_proxies = vec!["127.0.0.2/32".into()];
    })
    .await;
    with_ticket(&app).await;
    let via = |ip: &str| reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let (proxy, direct) = (via("127.0.0.2"), via("127.0.0.1"));
    let as_user = |client: &reqwest::Client, method: reqwest::Method, path: &str, user: &str, roles: &str| {
        client
            .request(method, app.url(path))
            .header("x-auth-user", user)
            .header("x-vnext-roles", roles)
            .header("x-vnext-grants", "shop:read,shop:write")
            .json(&json!({ "key": "h-1" }))
            .send()
    };
    let start = format!("{BASE}/start?sync=true");
    let r = as_user(&direct, reqwest::Method::POST, &start, "mallory", "clerk").await.unwrap();
    expect_problem(r, 401, "auth.untrusted-identity").await;
    let r = as_user(&proxy, reqwest::Method::POST, &start, "bob", "manager").await.unwrap();
    expect_problem(r, 403, "auth.role-denied").await;
    assert_eq!(status(as_user(&proxy, reqwest::Method::POST, &start, "alice", "clerk, auditor").await.unwrap()).await, 200);
    let read = format!("{BASE}/h-1");
    assert_eq!(status(as_user(&proxy, reqwest::Method::GET, &read, "carol", "auditor").await.unwrap()).await, 200);
    expect_problem(as_user(&proxy, reqwest::Method::GET, &read, "dave", "guest").await.unwrap(), 403, "auth.role-denied").await;
    expect_problem(as_user(&direct, reqwest::Method::GET, &read, "carol", "auditor").await.unwrap(), 401, "auth.untrusted-identity").await;
    // Without the header, the proxy's clients still need a credential.
    expect_problem(proxy.get(app.url(&read)).send().await.unwrap(), 401, "auth.missing-key").await;
}

#[tokio::test]
async fn trusted_headers_need_the_proxy_secret_when_one_is_set() {
    let secret = "proxy-secret-0123456789-abcdefghijkl";
    let app = TestApp::spawn_with(|c| {
        c.identity.header_subject = "x-auth-user".into();
        c.identity.header_secret = secret.into();
    })
    .await;
    with_ticket(&app).await;
    let start = |with: Option<&str>| {
        let mut r = app
            .client
            .post(app.url(&format!("{BASE}/start?sync=true")))
            .header("x-auth-user", "alice")
            .header("x-vnext-roles", "clerk")
            .header("x-vnext-grants", "shop:write")
            .json(&json!({}));
        if let Some(s) = with {
            r = r.header("x-vnext-proxy-secret", s);
        }
        r.send()
    };
    expect_problem(start(None).await.unwrap(), 401, "auth.untrusted-identity").await;
    expect_problem(start(Some("proxy-secret-0123456789-abcdefghijkX")).await.unwrap(), 401, "auth.untrusted-identity").await;
    assert_eq!(status(start(Some(secret)).await.unwrap()).await, 200);
}
