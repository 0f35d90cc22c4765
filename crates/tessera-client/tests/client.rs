//! tessera-client: single flight, renewal, retries, and a real Tessera.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;
use tessera_client::{AuthMethod, BearerMiddleware, ClientError, ClientKey, TokenClient};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A token endpoint whose answers the test scripts: `behave(n)` for the n-th request (from 0).
async fn endpoint<F>(behave: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(usize) -> (StatusCode, Vec<(&'static str, String)>, serde_json::Value)
        + Clone
        + Send
        + Sync
        + 'static,
{
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = Router::new().route(
        "/token",
        post(move || {
            let c = c.clone();
            let behave = behave.clone();
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                let (status, headers, body) = behave(n);
                let mut r = (status, axum::Json(body)).into_response();
                for (k, v) in headers {
                    r.headers_mut().insert(k, v.parse().unwrap());
                }
                r
            }
        }),
    );
    (format!("{}/token", serve(app).await), count)
}

fn ok(n: usize, ttl: u64) -> (StatusCode, Vec<(&'static str, String)>, serde_json::Value) {
    (
        StatusCode::OK,
        vec![],
        json!({"access_token": format!("token-{n}"), "token_type": "Bearer", "expires_in": ttl}),
    )
}

#[tokio::test]
async fn a_hundred_callers_on_a_cold_cache_cause_one_request() {
    let (url, count) = endpoint(|n| ok(n, 3600)).await;
    let client = TokenClient::builder("id", "secret")
        .token_url(url)
        .build()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.token(Some("a"), None).await.unwrap().access_token
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "token-0");
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // Another scope is another cache entry.
    assert_eq!(
        client.token(Some("b"), None).await.unwrap().access_token,
        "token-1"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire() {
    let (url, count) = endpoint(|n| ok(n, 3)).await;
    let clock = TestClock::default();
    let client = TokenClient::builder("id", "secret")
        .token_url(url)
        .renew_before(Duration::from_secs(1))
        .clock(clock.reader())
        .build()
        .await
        .unwrap();
    let first = client.token(None, None).await.unwrap();
    assert_eq!(
        client.token(None, None).await.unwrap().access_token,
        first.access_token,
        "cached"
    );
    // Renewal is due between 1.7 s and 2 s into a 3 s lifetime (1 s margin, up to 0.3 s jitter).
    clock.advance(Duration::from_millis(2100));
    // The caller holds a valid token: it gets it at once, and the renewal runs behind it.
    let asked = Instant::now();
    let second = client.token(None, None).await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_millis(250),
        "waited {:?}",
        asked.elapsed()
    );
    assert_eq!(second.access_token, first.access_token);
    assert!(
        eventually(Duration::from_secs(2), || async {
            client.token(None, None).await.unwrap().access_token != first.access_token
        })
        .await,
        "renewed in the background"
    );
    assert!(
        clock.now() < first.expires_at,
        "renewed only after the old token expired"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

/// A clock the test moves forward instead of waiting; it runs with the real one.
#[derive(Clone, Default)]
struct TestClock(Arc<std::sync::Mutex<Duration>>);

impl TestClock {
    fn now(&self) -> Instant {
        Instant::now() + *self.0.lock().unwrap()
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    fn reader(&self) -> impl Fn() -> Instant + Send + Sync + 'static {
        let c = self.clone();
        move || c.now()
    }
}

/// Polls `check` until it is true or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_503_with_retry_after_is_honoured() {
    let (url, count) = endpoint(|n| {
        if n == 0 {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                vec![("retry-after", "1".into())],
                json!({}),
            )
        } else {
            ok(n, 3600)
        }
    })
    .await;
    let client = TokenClient::builder("id", "secret")
        .token_url(url)
        .retries(3, Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(client.token(None, None).await.unwrap().access_token, "token-1");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "Retry-After: 1 not waited for"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn network_errors_and_5xx_are_retried_with_backoff_then_reported() {
    let (url, count) = endpoint(|_| (StatusCode::BAD_GATEWAY, vec![], json!({}))).await;
    let client = TokenClient::builder("id", "secret")
        .token_url(url)
        .retries(2, Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    assert!(matches!(
        client.token(None, None).await,
        Err(ClientError::Unavailable(_))
    ));
    assert_eq!(count.load(Ordering::SeqCst), 3, "first try and two retries");
    let closed = TokenClient::builder("id", "secret")
        .token_url("http://127.0.0.1:9/token")
        .retries(1, Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    assert!(matches!(
        closed.token(None, None).await,
        Err(ClientError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_401_is_not_retried() {
    let (url, count) = endpoint(|_| {
        (
            StatusCode::UNAUTHORIZED,
            vec![],
            json!({"error": "invalid_client", "error_description": "client authentication failed"}),
        )
    })
    .await;
    let client = TokenClient::builder("id", "wrong")
        .token_url(url)
        .build()
        .await
        .unwrap();
    match client.token(None, None).await {
        Err(ClientError::Refused { status, error, .. }) => {
            assert_eq!(status, 401);
            assert_eq!(error, "invalid_client");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

async fn tessera() -> (tessera::server::Running, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let running = tessera_testkit::local(dir.path(), Default::default()).await;
    let base = running.base_url();
    (running, base, dir)
}

#[tokio::test]
async fn against_a_real_tessera_with_discovery_and_reqwest_middleware() {
    let (running, base, _dir) = tessera().await;
    // An imported secret with characters that need RFC 6749 §2.3.1 encoding.
    let secret = "p:a+s%s w/rd";
    let created = tessera_testkit::register(
        &running,
        tessera::admin::NewClient {
            name: "svc".into(),
            scope: "invoices:read invoices:write".into(),
            audiences: vec!["https://api.example.com".into()],
            secret: Some(secret.into()),
            ..Default::default()
        },
    )
    .await;
    let id = created.client.id.clone();

    for method in [AuthMethod::Basic, AuthMethod::Post] {
        let client = TokenClient::builder(&id, secret)
            .issuer(&base)
            .auth_method(method)
            .build()
            .await
            .unwrap();
        assert_eq!(client.token_url(), None, "discovery waits for the first token");
        let t = client
            .token(Some("invoices:read"), Some("https://api.example.com"))
            .await
            .unwrap();
        assert_eq!(t.scope.as_deref(), Some("invoices:read"));
        assert_eq!(client.token_url(), Some(format!("{base}/oauth2/token").as_str()));
    }

    // Every request through the middleware carries a fresh bearer token.
    let api = serve(Router::new().route(
        "/echo",
        get(|headers: HeaderMap| async move {
            headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        }),
    ))
    .await;
    let tokens = TokenClient::builder(&id, secret)
        .issuer(&base)
        .build()
        .await
        .unwrap();
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerMiddleware::new(tokens.clone()).scope("invoices:read"))
        .build();
    let sent = http
        .get(format!("{api}/echo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected = tokens
        .token(Some("invoices:read"), None)
        .await
        .unwrap()
        .access_token;
    assert_eq!(sent, format!("Bearer {expected}"));
    // A bad scope is a refusal, not a retry loop.
    assert!(matches!(
        tokens.token(Some("nope"), None).await,
        Err(ClientError::Refused { status: 400, .. })
    ));
}

/// A client with no secret: its key (read from a PEM file) signs a fresh assertion for each
/// request, for the issuer found by discovery or for a token URL given; the server holds the
/// public JWK the library derives from the same key.
#[tokio::test]
async fn a_key_client_gets_tokens_without_a_secret() {
    let (running, base, dir) = tessera().await;
    for alg in ["ES256", "ES384", "EdDSA", "RS256"] {
        let test_key = tessera_testkit::keys::TestKey::new(alg, "unused");
        let pem_file = dir.path().join(format!("{alg}.pem"));
        std::fs::write(&pem_file, test_key.pem()).unwrap();
        let key = ClientKey::from_pem_file(&pem_file)
            .unwrap()
            .with_kid(format!("svc-{alg}"));
        assert_eq!(key.algorithm(), alg);
        assert!(!format!("{key:?}").contains("BEGIN"), "Debug never shows the key");
        let created = tessera_testkit::register(
            &running,
            tessera::admin::NewClient {
                name: "keyed".into(),
                scope: "a b".into(),
                auth: tessera::model::auth::TokenAuth::PrivateKeyJwt,
                jwks: Some(json!({"keys": [key.public_jwk()]})),
                ..Default::default()
            },
        )
        .await;
        let id = created.client.id.clone();
        let discovered = TokenClient::builder_with_key(&id, key)
            .issuer(&base)
            .build()
            .await
            .unwrap();
        assert_eq!(
            discovered.token(Some("a"), None).await.unwrap().scope.as_deref(),
            Some("a"),
            "{alg}"
        );
        assert_eq!(
            discovered.token(Some("b"), None).await.unwrap().scope.as_deref(),
            Some("b"),
            "{alg}"
        );
        let fixed = TokenClient::builder_with_key(&id, ClientKey::from_pem(&test_key.pem()).unwrap())
            .token_url(format!("{base}/oauth2/token"))
            .build()
            .await
            .unwrap();
        assert!(
            fixed.token(None, None).await.is_ok(),
            "{alg}: without kid, the client's one key"
        );
    }
    // A secret method with a key, or a key method without one, is a configuration error.
    let key = ClientKey::from_pem(&tessera_testkit::keys::TestKey::new("ES256", "k").pem()).unwrap();
    let wrong = TokenClient::builder_with_key("x", key)
        .token_url(format!("{base}/oauth2/token"))
        .auth_method(AuthMethod::Basic)
        .build()
        .await;
    assert!(matches!(wrong, Err(ClientError::Config(_))));
    let wrong = TokenClient::builder("x", "secret")
        .token_url(format!("{base}/oauth2/token"))
        .auth_method(AuthMethod::PrivateKeyJwt)
        .build()
        .await;
    assert!(matches!(wrong, Err(ClientError::Config(_))));
}

/// A workload without any credential of its own: its platform's token, in a file the platform
/// rotates, read for every request, and admitted by a trust policy.
#[tokio::test]
async fn a_workload_presents_its_platform_token_from_a_file() {
    let (running, base, dir) = tessera().await;
    let issuer_key = tessera_testkit::keys::TestKey::new("RS256", "cluster");
    let created = tessera_testkit::register(
        &running,
        tessera::admin::NewClient {
            name: "worker".into(),
            scope: "jobs:run".into(),
            auth: tessera::model::auth::TokenAuth::PrivateKeyJwt,
            ..Default::default()
        },
    )
    .await;
    let id = created.client.id.clone();
    let actor = tessera::operation::Actor::cli();
    tessera::admin::trust::create(
        &running.app.store,
        &actor,
        tessera::admin::trust::NewTrustPolicy {
            name: "cluster workers".into(),
            issuer: "https://kubernetes.default.svc.cluster.local".into(),
            keys: tessera::model::trust::TrustKeys::Jwks(issuer_key.jwks()),
            audience: base.clone(),
            subject: "system:serviceaccount:jobs:worker".into(),
            claims: Default::default(),
            client_id: id.clone(),
        },
    )
    .await
    .unwrap();
    running
        .app
        .trust
        .replace(running.app.store.trust_policies().await.unwrap());
    let token_for = |sub: &str| {
        let now = tessera::model::clock::unix_now();
        issuer_key.jwt(&json!({
            "iss": "https://kubernetes.default.svc.cluster.local", "aud": [base.clone()],
            "sub": sub, "iat": now, "exp": now + 600,
        }))
    };
    let path = dir.path().join("token");
    std::fs::write(
        &path,
        format!("{}\n", token_for("system:serviceaccount:jobs:worker")),
    )
    .unwrap();
    let client = TokenClient::builder_with_token_file(&id, &path)
        .issuer(&base)
        .build()
        .await
        .unwrap();
    assert_eq!(
        client.token(None, None).await.unwrap().scope.as_deref(),
        Some("jobs:run")
    );
    // The platform rotates the file; the next request reads what is there now.
    std::fs::write(&path, token_for("system:serviceaccount:jobs:intruder")).unwrap();
    client.invalidate();
    assert!(matches!(
        client.token(None, None).await,
        Err(ClientError::Refused { status: 401, .. })
    ));
    std::fs::write(&path, token_for("system:serviceaccount:jobs:worker")).unwrap();
    assert!(client.token(None, None).await.is_ok());
    std::fs::remove_file(&path).unwrap();
    client.invalidate();
    assert!(matches!(
        client.token(None, None).await,
        Err(ClientError::Config(_))
    ));
}

#[tokio::test]
async fn a_failed_renewal_keeps_the_still_valid_token() {
    let (url, count) = endpoint(|n| {
        if n == 0 {
            ok(n, 3)
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, vec![], json!({}))
        }
    })
    .await;
    let clock = TestClock::default();
    let client = TokenClient::builder("id", "secret")
        .token_url(url)
        .renew_before(Duration::from_secs(1))
        .retries(0, Duration::from_millis(10))
        .clock(clock.reader())
        .build()
        .await
        .unwrap();
    let first = client.token(None, None).await.unwrap();
    clock.advance(Duration::from_millis(2100));
    // Renewal is due and fails (in the background); the token has not expired, so it is still
    // the answer.
    let again = client.token(None, None).await.unwrap();
    assert_eq!(again.access_token, first.access_token);
    assert!(
        eventually(Duration::from_secs(1), || async {
            count.load(Ordering::SeqCst) >= 2
        })
        .await,
        "a renewal was attempted"
    );
    assert_eq!(
        client.token(None, None).await.unwrap().access_token,
        first.access_token
    );
    // Once it has expired, the failure is reported.
    clock.advance(Duration::from_millis(1000));
    assert!(matches!(
        client.token(None, None).await,
        Err(ClientError::Unavailable(_))
    ));
}

/// A token server on a fixed port that can be stopped and started again: discovery and a token
/// endpoint whose tokens live `ttl` seconds and are numbered.
struct Switchable {
    addr: std::net::SocketAddr,
    count: Arc<AtomicUsize>,
    task: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    ttl: u64,
}

impl Switchable {
    fn new(ttl: u64) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        Switchable {
            addr: port,
            count: Arc::new(AtomicUsize::new(0)),
            task: None,
            ttl,
        }
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn start(&mut self) {
        let (issuer, count, ttl) = (self.issuer(), self.count.clone(), self.ttl);
        let meta = json!({"issuer": issuer, "token_endpoint": format!("{issuer}/token")});
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || {
                    let meta = meta.clone();
                    async move { axum::Json(meta) }
                }),
            )
            .route(
                "/token",
                post(move || {
                    let count = count.clone();
                    async move {
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        axum::Json(json!({"access_token": format!("token-{n}"), "token_type": "Bearer", "expires_in": ttl}))
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        self.task = Some((stop, task));
    }

    /// Stops listening and closes every connection (kept-alive ones included).
    async fn stop(&mut self) {
        if let Some((stop, task)) = self.task.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

#[tokio::test]
async fn no_request_waits_for_a_token_server_that_is_down() {
    // Tokens live 14 s: renewal is due from 5.6 to 7 s, and a token is handed out until 2 s
    // before it expires.
    let mut server = Switchable::new(14);
    server.start().await;
    // A caller made to wait for a renewal would wait for a refused connection, 300 ms, and a
    // second refused connection.
    let client = TokenClient::builder("id", "secret")
        .issuer(server.issuer())
        .retries(1, Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let began = Instant::now();
    let first = client.token(None, None).await.unwrap();
    assert_eq!(first.access_token, "token-0");
    server.stop().await;
    // Down until 7.5 s: the renewal falls due and fails, again and again, in the background.
    // No caller waits for it: each answer comes from memory (well under a millisecond; the
    // bound leaves room for a loaded machine and is below what one waited-for attempt costs).
    let mut slowest = Duration::ZERO;
    let mut calls = 0;
    while began.elapsed() < Duration::from_millis(7500) {
        let asked = Instant::now();
        let t = client.token(None, None).await.unwrap();
        slowest = slowest.max(asked.elapsed());
        assert_eq!(t.access_token, "token-0");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(calls > 100, "{calls}");
    assert!(
        slowest < Duration::from_millis(250),
        "a caller waited {slowest:?} for the token server"
    );
    // Back again: the background renewal resumes, and its token arrives while the old one is
    // still being handed out (so no caller fetched it in the foreground).
    server.start().await;
    let handed_out_until = first.expires_at - Duration::from_secs(2);
    let mut renewed = false;
    while Instant::now() + Duration::from_millis(100) < handed_out_until {
        let asked = Instant::now();
        let t = client.token(None, None).await.unwrap();
        assert!(
            asked.elapsed() < Duration::from_millis(250),
            "waited {:?}",
            asked.elapsed()
        );
        if t.access_token != "token-0" {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(renewed, "renewal resumed in the background");
    assert!(server.count.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn start_up_while_the_token_server_is_down_succeeds_and_recovers() {
    let mut server = Switchable::new(3600);
    // Nothing listens yet: building works, the first token says why it cannot be had.
    let client = TokenClient::builder("id", "secret")
        .issuer(server.issuer())
        .retries(0, Duration::ZERO)
        .build()
        .await
        .unwrap();
    match client.token(None, None).await {
        Err(ClientError::Unavailable(why)) => {
            assert!(why.to_lowercase().contains("connection refused"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    server.start().await;
    assert_eq!(client.token(None, None).await.unwrap().access_token, "token-0");
}

#[tokio::test]
async fn the_middleware_retries_once_with_a_fresh_token_after_invalid_token() {
    let (url, count) = endpoint(|n| ok(n, 3600)).await;
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    // The API refuses token-0 (say it was revoked) and accepts any other.
    let api = serve(Router::new().route(
        "/orders",
        get(move |headers: HeaderMap| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let auth = headers["authorization"].to_str().unwrap().to_string();
                if auth == "Bearer token-0" {
                    let mut r = StatusCode::UNAUTHORIZED.into_response();
                    r.headers_mut().insert(
                        "www-authenticate",
                        r#"Bearer realm="api", error="invalid_token""#.parse().unwrap(),
                    );
                    r
                } else {
                    (StatusCode::OK, auth).into_response()
                }
            }
        }),
    ))
    .await;
    let tokens = TokenClient::builder("id", "secret")
        .token_url(url)
        .build()
        .await
        .unwrap();
    let http = tessera_client::reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerMiddleware::new(tokens.clone()))
        .build();
    let r = http.get(format!("{api}/orders")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "Bearer token-1");
    assert_eq!(count.load(Ordering::SeqCst), 2, "one fresh token");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "sent twice");
    // The next request uses the fresh token straight away.
    let r = http.get(format!("{api}/orders")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[cfg(feature = "blocking")]
#[test]
fn the_blocking_client_gets_tokens_from_a_real_tessera() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (running, base, _dir) = rt.block_on(tessera());
    let created = rt.block_on(tessera_testkit::register(
        &running,
        tessera::admin::NewClient {
            name: "script".into(),
            scope: "reports:read".into(),
            ..Default::default()
        },
    ));
    let client = tessera_client::blocking::TokenClient::new(
        TokenClient::builder(&created.client.id, &created.secret).issuer(&base),
    )
    .unwrap();
    let t = client.token(None, None).unwrap();
    assert_eq!(t.scope.as_deref(), Some("reports:read"));
    assert_eq!(
        client.token(None, None).unwrap().access_token,
        t.access_token,
        "cached"
    );
    // From a blocking thread of an async program, and dropped inside async code: no panic.
    let c = client.clone();
    let from_pool = rt.block_on(async move {
        tokio::task::spawn_blocking(move || c.token(None, None).map(|t| t.access_token))
            .await
            .unwrap()
    });
    assert_eq!(from_pool.unwrap(), t.access_token);
    rt.block_on(async move { drop(client) });

    // A key client, blocking too.
    let key = ClientKey::from_pem(&tessera_testkit::keys::TestKey::new("EdDSA", "k").pem())
        .unwrap()
        .with_kid("script-1");
    let keyed = rt.block_on(tessera_testkit::register(
        &running,
        tessera::admin::NewClient {
            name: "keyed script".into(),
            scope: "reports:read".into(),
            auth: tessera::model::auth::TokenAuth::PrivateKeyJwt,
            jwks: Some(json!({"keys": [key.public_jwk()]})),
            ..Default::default()
        },
    ));
    let client = tessera_client::blocking::TokenClient::new(
        TokenClient::builder_with_key(&keyed.client.id, key).issuer(&base),
    )
    .unwrap();
    assert_eq!(
        client.token(None, None).unwrap().scope.as_deref(),
        Some("reports:read")
    );
    rt.block_on(async move { drop(client) });
    rt.block_on(running.shutdown());
}

#[cfg(not(feature = "blocking"))]
#[test]
fn the_blocking_client_gets_tokens_from_a_real_tessera() {
    assert!(
        std::env::var_os("CI").is_none(),
        "the blocking tests need the blocking feature (cargo test --workspace enables it)"
    );
    eprintln!("DID NOT RUN the_blocking_client_gets_tokens_from_a_real_tessera: needs --features blocking");
}

/// An API protected by tessera-verify (nonces required, DPoP and bearer tokens accepted) at a
/// loopback address it knows as its public URL: `POST /invoices` answers with the body it got
/// and the key the token was bound to.
async fn dpop_api(issuer: &str) -> String {
    use tessera_verify::{Authenticated, BearerAuthLayer, TokenBinding, Verifier};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let verifier = Verifier::builder(issuer)
        .audience("https://api.example.com")
        .public_url(&base)
        .dpop_nonces(
            b"the API's nonce secret, shared by its instances",
            Duration::from_secs(60),
        )
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/invoices",
            post(
                |Authenticated(c): Authenticated,
                 binding: TokenBinding,
                 axum::Json(body): axum::Json<serde_json::Value>| async move {
                    axum::Json(json!({"sub": c.sub, "jkt": binding.dpop_jkt, "got": body}))
                },
            ),
        )
        .layer(BearerAuthLayer::new(verifier));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn dpop_tessera() -> (
    tessera::server::Running,
    String,
    tempfile::TempDir,
    String,
    String,
) {
    let dir = tempfile::tempdir().unwrap();
    let running = tessera_testkit::local_with(dir.path(), Default::default(), |s| {
        s.dpop.require_nonce = true;
    })
    .await;
    let base = running.base_url();
    let created = tessera_testkit::register(
        &running,
        tessera::admin::NewClient {
            name: "bound worker".into(),
            scope: "invoices:write".into(),
            audiences: vec!["https://api.example.com".into()],
            dpop_bound_tokens: true,
            ..Default::default()
        },
    )
    .await;
    (running, base, dir, created.client.id, created.secret)
}

/// DPoP end to end with this library's proofs: the token server and the API both ask for a
/// nonce, and the client answers each once; the API sees the key; a copy of the token is
/// worthless without it. The README's kind of worker sends JSON through the re-exported
/// middleware crate.
#[tokio::test]
async fn dpop_bound_tokens_from_tessera_to_an_api_with_nonces_at_both_ends() {
    let (_running, base, _dir, id, secret) = dpop_tessera().await;
    let api = dpop_api(&base).await;
    let key = tessera_client::DpopKey::generate().unwrap();
    let jkt = key.thumbprint().to_string();
    let tokens = TokenClient::builder(&id, &secret)
        .issuer(&base)
        .dpop(key)
        .build()
        .await
        .unwrap();
    let token = tokens.token(None, None).await.unwrap();
    assert_eq!(token.token_type, "DPoP", "the nonce challenge was answered");
    let http = tessera_client::reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerMiddleware::new(tokens.clone()))
        .build();
    for n in 0..3 {
        let r = http
            .post(format!("{api}/invoices"))
            .json(&json!({"invoice": n}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "call {n}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["jkt"], jkt);
        assert_eq!(body["got"]["invoice"], n);
    }
    // The token alone, copied: refused as Bearer and as DPoP without the key.
    let stolen = token.access_token.clone();
    let r = reqwest::Client::new()
        .post(format!("{api}/invoices"))
        .bearer_auth(&stolen)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let thief = tessera_client::DpopKey::generate().unwrap();
    let proof = thief
        .proof("POST", &format!("{api}/invoices"), Some(&stolen))
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{api}/invoices"))
        .header("authorization", format!("DPoP {stolen}"))
        .header("dpop", proof)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[cfg(feature = "blocking")]
#[test]
fn the_blocking_client_binds_tokens_with_dpop() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (running, base, _dir, id, secret) = rt.block_on(dpop_tessera());
    let api = rt.block_on(dpop_api(&base));
    let client = tessera_client::blocking::TokenClient::new(
        TokenClient::builder(&id, &secret)
            .issuer(&base)
            .dpop(tessera_client::DpopKey::generate().unwrap()),
    )
    .unwrap();
    let token = client.token(None, None).unwrap();
    assert_eq!(token.token_type, "DPoP");
    let url = format!("{api}/invoices");
    let send = |headers: Vec<(http::HeaderName, http::HeaderValue)>| {
        let url = url.clone();
        rt.block_on(async move {
            let mut req = reqwest::Client::new().post(url).json(&json!({"invoice": 1}));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send().await.unwrap()
        })
    };
    // The API asks for its nonce first; the key remembers it and the next proof carries it.
    let first = send(client.authorization(&token, "POST", &url).unwrap());
    assert_eq!(first.status(), 401);
    let key = client.as_async().dpop_key().unwrap();
    assert!(key.remember_nonce(first.url(), first.headers()));
    let second = send(client.authorization(&token, "POST", &url).unwrap());
    assert_eq!(second.status(), 200);
    rt.block_on(async move { drop(client) });
    rt.block_on(running.shutdown());
}

#[cfg(not(feature = "blocking"))]
#[test]
fn the_blocking_client_binds_tokens_with_dpop() {
    assert!(
        std::env::var_os("CI").is_none(),
        "the blocking tests need the blocking feature (cargo test --workspace enables it)"
    );
    eprintln!("DID NOT RUN the_blocking_client_binds_tokens_with_dpop: needs --features blocking");
}
