//! tessera-verify against a real running Tessera, and a table of hostile tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera::admin::NewClient;
use tessera::server::Running;

use tessera_verify::{Authenticated, BearerAuthLayer, RequireScopeLayer, Verifier, VerifyError};

const API: &str = "https://api.example.com";

// Bound tokens at an API (DPoP, certificates): one test binary with the rest.
#[cfg(feature = "test-kit")]
#[path = "bound/dpop.rs"]
mod dpop_api;

#[cfg(not(feature = "test-kit"))]
#[test]
fn bound_tokens_at_an_api() {
    panic!("needs --features test-kit (cargo test --workspace enables it)");
}

struct Issuer {
    running: Option<Running>,
    base: String,
    _dir: tempfile::TempDir,
    id: String,
    secret: String,
}

async fn issuer() -> Issuer {
    let dir = tempfile::tempdir().unwrap();
    let running = tessera_testkit::local(dir.path(), Default::default()).await;
    let created = tessera_testkit::register(
        &running,
        NewClient {
            name: "caller".into(),
            scope: "invoices:read invoices:write".into(),
            audiences: vec![API.into()],
            introspect: true,
            ..Default::default()
        },
    )
    .await;
    Issuer {
        base: running.base_url(),
        running: Some(running),
        _dir: dir,
        id: created.client.id,
        secret: created.secret,
    }
}

impl Issuer {
    async fn token(&self, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        fetch_token(&self.base, &self.id, &self.secret, &form).await
    }

    /// The issuer's current signing key, to forge tokens that are signed correctly but wrong in
    /// one other way.
    async fn signing_key(&self) -> (String, EncodingKey) {
        let app = &self.running.as_ref().unwrap().app;
        let key = app
            .store
            .live_keys(tessera::model::clock::unix_now())
            .await
            .unwrap()
            .remove(0);
        let pkcs8 = app.master.open(&key.kid, &key.sealed_private_key).unwrap();
        (key.kid, EncodingKey::from_ec_der(&pkcs8))
    }
}

/// An access token from the token endpoint at `base`, for client `id` with `form`.
async fn fetch_token(base: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_string()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn verifier(issuer: &Issuer) -> Verifier {
    Verifier::builder(&issuer.base)
        .audience(API)
        .leeway(Duration::from_secs(5))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn verifies_real_tokens_with_typed_claims() {
    let iss = issuer().await;
    let v = verifier(&iss).await;
    let claims = v.verify(&iss.token(None).await).await.unwrap();
    assert_eq!(claims.iss, iss.base);
    assert_eq!(claims.sub, iss.id);
    assert_eq!(claims.client_id, iss.id);
    assert_eq!(claims.jti.len(), 22);
    assert!(claims.iat <= now() && claims.iat + 3600 == claims.exp);
    assert_eq!(claims.aud, vec![API.to_string()]);
    assert!(claims.has_scope("invoices:read") && claims.has_scope("invoices:write"));
    assert!(!claims.has_scope("invoices"));
    let narrow = v.verify(&iss.token(Some("invoices:read")).await).await.unwrap();
    assert!(!narrow.has_scope("invoices:write"));
    // Wrong audience configured: refused.
    let other = Verifier::builder(&iss.base)
        .audience("https://other.example.com")
        .build()
        .await
        .unwrap();
    assert_eq!(
        other.verify(&iss.token(None).await).await.err(),
        Some(VerifyError::WrongAudience)
    );
    // No audience, or a symmetric algorithm on the allow-list: refused at build time.
    assert!(Verifier::builder(&iss.base).build().await.is_err());
    let hs = Verifier::builder(&iss.base)
        .audience(API)
        .algorithms(&[Algorithm::HS256])
        .build()
        .await;
    assert!(matches!(hs, Err(VerifyError::Config(_))));
}

#[tokio::test]
async fn hostile_tokens_are_refused() {
    let iss = issuer().await;
    let v = verifier(&iss).await;
    let good = iss.token(None).await;
    let (kid, key) = iss.signing_key().await;
    let t = now();
    let base_claims = json!({"iss": iss.base, "sub": iss.id, "aud": API, "exp": t + 600, "iat": t, "jti": "x", "client_id": iss.id, "scope": "invoices:read"});
    let forge = |typ: &str, kid: &str, claims: Value| {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some(typ.into());
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, &key).unwrap()
    };
    let with = |k: &str, val: Value| {
        let mut c = base_claims.clone();
        c[k] = val;
        c
    };
    // Sanity: a correctly forged token with the real key passes, so each refusal below is for
    // the one thing that is wrong.
    assert!(
        v.verify(&forge("at+jwt", &kid, base_claims.clone()))
            .await
            .is_ok()
    );

    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let parts: Vec<&str> = good.split('.').collect();
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        parts[1]
    );
    // HS256 with the public key (the classic algorithm-confusion attack).
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", iss.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"][0].to_string();
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = Some(kid.clone());
    let hs256 =
        jsonwebtoken::encode(&hs, &base_claims, &EncodingKey::from_secret(public.as_bytes())).unwrap();
    let mut tampered = good.split('.').map(str::to_string).collect::<Vec<_>>();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&tampered[1]).unwrap()).unwrap();
    claims["scope"] = "admin".into();
    tampered[1] = b64(&claims);
    let oversized_header = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "ES256", "typ": "at+jwt", "kid": kid, "pad": "x".repeat(4000)})),
        parts[1],
        parts[2]
    );

    let table: Vec<(&str, String, VerifyError)> = vec![
        ("alg none", alg_none, VerifyError::Malformed),
        (
            "HS256 with the public key",
            hs256,
            VerifyError::AlgorithmNotAllowed,
        ),
        (
            "typ JWT",
            forge("JWT", &kid, base_claims.clone()),
            VerifyError::WrongType,
        ),
        (
            "expired",
            forge("at+jwt", &kid, with("exp", json!(t - 60))),
            VerifyError::Expired,
        ),
        (
            "not yet valid",
            forge("at+jwt", &kid, with("nbf", json!(t + 600))),
            VerifyError::NotYetValid,
        ),
        (
            "wrong iss",
            forge("at+jwt", &kid, with("iss", json!("https://evil.example"))),
            VerifyError::WrongIssuer,
        ),
        (
            "wrong aud",
            forge("at+jwt", &kid, with("aud", json!("https://other.example"))),
            VerifyError::WrongAudience,
        ),
        (
            "unknown kid",
            forge("at+jwt", "no-such-kid", base_claims.clone()),
            VerifyError::UnknownKey,
        ),
        (
            "bad base64",
            format!("{}.!!!.{}", parts[0], parts[2]),
            VerifyError::Malformed,
        ),
        (
            "truncated",
            format!("{}.{}", parts[0], parts[1]),
            VerifyError::Malformed,
        ),
        ("oversized header", oversized_header, VerifyError::Malformed),
        ("tampered claims", tampered.join("."), VerifyError::BadSignature),
    ];
    for (name, token, want) in &table {
        assert_eq!(v.verify(token).await.err().as_ref(), Some(want), "{name}");
    }

    // Through the HTTP glue, every one of them is a plain 401 invalid_token (RFC 6750 §3.1).
    let app = Router::new()
        .route(
            "/invoices",
            get(|Authenticated(c): Authenticated| async move { c.sub }),
        )
        .route_layer(RequireScopeLayer::new("invoices:read"))
        .route(
            "/admin",
            get(|| async { "admin" }).route_layer(RequireScopeLayer::new("invoices:admin")),
        )
        .layer(BearerAuthLayer::new(v.clone()));
    let api = serve(app).await;
    let http = reqwest::Client::new();
    for (name, token, _) in &table {
        let r = http
            .get(format!("{api}/invoices"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        // Characters outside the b64token syntax make the header itself malformed (400
        // invalid_request); every other hostile token is a plain 401 invalid_token.
        let (status, code) = if *name == "bad base64" {
            (400, "invalid_request")
        } else {
            (401, "invalid_token")
        };
        assert_eq!(r.status(), status, "{name}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
        let description = if code == "invalid_token" {
            "the access token is invalid, expired or revoked"
        } else {
            "the request carries no usable bearer token"
        };
        assert_eq!(
            challenge,
            format!(r#"Bearer realm="api", error="{code}", error_description="{description}""#),
            "{name}: no detail for an attacker"
        );
    }
    // The good token passes and the handler sees the claims; a missing scope is 403.
    let r = http
        .get(format!("{api}/invoices"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), iss.id);
    let r = http
        .get(format!("{api}/admin"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer realm="api", error="insufficient_scope", error_description="the access token lacks a scope this request needs", scope="invoices:admin""#
    );
    // No credentials: 401 without an error code. Malformed header, two headers, or a token in
    // the query: 400 invalid_request.
    let r = http.get(format!("{api}/invoices")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="api""#);
    for header in ["Bearer", "Bearer a b", "Bearer ä"] {
        let r = http
            .get(format!("{api}/invoices"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{header}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_request""#)
        );
    }
    let r = http
        .get(format!("{api}/invoices?access_token={good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!("{api}/invoices"))
        .header("authorization", format!("Bearer {good}"))
        .header("authorization", format!("Bearer {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn unknown_kids_refresh_once_and_a_down_issuer_keeps_cached_keys() {
    let mut iss = issuer().await;
    // A JWKS endpoint in front of the issuer's, counting fetches.
    let fetches = Arc::new(AtomicUsize::new(0));
    let upstream = format!("{}/.well-known/jwks.json", iss.base);
    let counter = fetches.clone();
    let proxy = serve(Router::new().route(
        "/jwks",
        get(move || {
            let counter = counter.clone();
            let upstream = upstream.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                match reqwest::get(&upstream).await {
                    Ok(r) => (axum::http::StatusCode::OK, r.text().await.unwrap_or_default()),
                    Err(_) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new()),
                }
            }
        }),
    ))
    .await;
    let v = Verifier::builder(&iss.base)
        .audience(API)
        .jwks_uri(format!("{proxy}/jwks"))
        .min_refresh_interval(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let good = iss.token(None).await;
    assert!(v.verify(&good).await.is_ok());
    // A flood of forged kids: one refresh, then refusals from the cache.
    let (_, key) = iss.signing_key().await;
    let t = now();
    let claims = json!({"iss": iss.base, "sub": "x", "aud": API, "exp": t + 600, "iat": t});
    let mut tasks = Vec::new();
    for i in 0..50 {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(format!("forged-{i}"));
        let token = jsonwebtoken::encode(&h, &claims, &key).unwrap();
        let v = v.clone();
        tasks.push(tokio::spawn(async move { v.verify(&token).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().err(), Some(VerifyError::UnknownKey));
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "exactly one refresh for the whole flood"
    );
    // The issuer goes down: cached keys keep verifying.
    iss.running.take().unwrap().shutdown().await;
    assert!(v.verify(&good).await.is_ok());
}

#[tokio::test]
async fn introspection_mode_refuses_revoked_tokens() {
    let iss = issuer().await;
    let v = Verifier::builder(&iss.base)
        .audience(API)
        .introspect(&iss.id, &iss.secret, Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let token = iss.token(None).await;
    assert!(v.verify(&token).await.is_ok());
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/revoke", iss.base))
        .basic_auth(&iss.id, Some(&iss.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The verifier asks again once its 200 ms answer cache has let the token go.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut last = v.verify(&token).await.err();
    while last != Some(VerifyError::Inactive) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = v.verify(&token).await.err();
    }
    assert_eq!(last, Some(VerifyError::Inactive));
}

/// What resource servers need beyond a yes or no: custom claims, several audiences, optional
/// authentication, scope sets, the realm everywhere.
#[tokio::test]
async fn custom_claims_audiences_optional_auth_scope_sets_and_realm() {
    let dir = tempfile::tempdir().unwrap();
    let running = tessera_testkit::local(dir.path(), Default::default()).await;
    let base = running.base_url();
    let created = tessera_testkit::register(
        &running,
        NewClient {
            name: "partner".into(),
            scope: "orders:read".into(),
            audiences: vec!["https://orders.example.com".into(), API.into()],
            claims: serde_json::from_str(r#"{"partner":"acme","region":"eu","limits":{"rps":5}}"#).unwrap(),
            ..Default::default()
        },
    )
    .await;
    let token = |resource: &'static str| {
        let (base, id, secret) = (base.clone(), created.client.id.clone(), created.secret.clone());
        async move {
            let form = [("grant_type", "client_credentials"), ("resource", resource)];
            fetch_token(&base, &id, &secret, &form).await
        }
    };
    // Two audiences accepted (an API known by two names); a third refused.
    let v = Verifier::builder(&base)
        .audience("https://orders.example.com")
        .audience(API)
        .build()
        .await
        .unwrap();
    assert_eq!(v.audiences().len(), 2);
    let old_name = token("https://orders.example.com").await;
    let new_name = token(API).await;
    let claims = v.verify(&old_name).await.unwrap();
    assert!(v.verify(&new_name).await.is_ok());
    let only_one = Verifier::builder(&base).audience(API).build().await.unwrap();
    assert_eq!(
        only_one.verify(&old_name).await.err(),
        Some(VerifyError::WrongAudience)
    );
    // Custom claims, typed.
    #[derive(serde::Deserialize)]
    struct Limits {
        rps: u32,
    }
    assert_eq!(claims.claim::<String>("partner").as_deref(), Some("acme"));
    assert_eq!(claims.claim::<String>("region").as_deref(), Some("eu"));
    assert_eq!(claims.claim::<Limits>("limits").map(|l| l.rps), Some(5));
    assert!(
        claims.extra.get("scope").is_none(),
        "standard claims are fields, not extras"
    );

    // Optional authentication, scope sets and the realm on every challenge.
    let app = Router::new()
        .route(
            "/catalog",
            get(|who: Option<Authenticated>| async move {
                who.map_or_else(|| "anonymous".to_string(), |Authenticated(c)| c.sub)
            }),
        )
        .route(
            "/orders",
            get(|| async { "orders" }).route_layer(RequireScopeLayer::any(["orders:read", "orders:admin"])),
        )
        .route(
            "/refunds",
            get(|| async { "refunds" }).route_layer(RequireScopeLayer::all(["orders:read", "refunds:write"])),
        )
        .layer(BearerAuthLayer::new(v.clone()).realm("shop").optional());
    let api = serve(app).await;
    let http = reqwest::Client::new();
    let get_as = |path: &'static str, token: Option<String>| {
        let (http, api) = (http.clone(), api.clone());
        async move {
            let mut req = http.get(format!("{api}{path}"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };
    let r = get_as("/catalog", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "anonymous");
    let r = get_as("/catalog", Some(new_name.clone())).await;
    assert_eq!(r.text().await.unwrap(), created.client.id);
    let r = get_as("/catalog", Some("forged.token.here".into())).await;
    assert_eq!(r.status(), 401, "a presented token must still verify");
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with(r#"Bearer realm="shop""#)
    );
    assert_eq!(
        get_as("/orders", Some(new_name.clone())).await.status(),
        200,
        "any of"
    );
    let r = get_as("/refunds", Some(new_name.clone())).await;
    assert_eq!(r.status(), 403, "all of");
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(
        challenge.starts_with(r#"Bearer realm="shop", error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.ends_with(r#"scope="orders:read refunds:write""#),
        "{challenge}"
    );
    let r = get_as("/orders", None).await;
    assert_eq!(r.status(), 401, "a scope needs a token");
    assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="shop""#);
    running.shutdown().await;
}

/// A verifier starts while the issuer is away, says "unavailable" (with the cause) rather than
/// "forged", and works once the keys can be fetched.
#[tokio::test]
async fn a_verifier_starts_while_the_issuer_is_down_and_recovers() {
    let iss = issuer().await;
    let token = iss.token(None).await;
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", iss.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The keys will be served here, later.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let v = Verifier::builder(&iss.base)
        .audience(API)
        .jwks_uri(format!("http://{addr}/jwks"))
        .build()
        .await
        .expect("starts without the issuer");
    match v.verify(&token).await {
        Err(VerifyError::Unavailable(why)) => {
            assert!(why.to_lowercase().contains("connection refused"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let app = Router::new().route(
        "/jwks",
        get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // Tried again at most once a second until the first keys arrive.
    let started = std::time::Instant::now();
    loop {
        match v.verify(&token).await {
            Ok(claims) => {
                assert_eq!(claims.sub, iss.id);
                break;
            }
            Err(VerifyError::Unavailable(_)) if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// The test kit: an API tested with minted tokens and no token server at all.
#[cfg(feature = "test-kit")]
#[tokio::test]
async fn the_test_kit_mints_tokens_an_api_accepts_without_a_server() {
    use tessera_verify::testing::TestIssuer;
    let issuer = TestIssuer::new("https://auth.example.com");
    let verifier = issuer.verifier(API).await;
    let app = Router::new()
        .route(
            "/orders",
            get(|Authenticated(c): Authenticated| async move { c.sub }),
        )
        .route_layer(RequireScopeLayer::new("orders:read"))
        .layer(BearerAuthLayer::new(verifier.clone()));
    let api = serve(app).await;
    let http = reqwest::Client::new();
    let good = issuer
        .token(API)
        .subject("svc-1")
        .scope("orders:read")
        .claim("partner", "acme")
        .sign();
    let r = http
        .get(format!("{api}/orders"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "svc-1");
    let claims = verifier.verify(&good).await.unwrap();
    assert_eq!(claims.claim::<String>("partner").as_deref(), Some("acme"));
    // The defects a test wants: no scope, expired, another audience, another issuer's key.
    let no_scope = issuer.token(API).sign();
    let r = http
        .get(format!("{api}/orders"))
        .bearer_auth(&no_scope)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let expired = issuer.token(API).scope("orders:read").expires_in(-120).sign();
    assert_eq!(verifier.verify(&expired).await.err(), Some(VerifyError::Expired));
    let elsewhere = issuer.token("https://other.example.com").sign();
    assert_eq!(
        verifier.verify(&elsewhere).await.err(),
        Some(VerifyError::WrongAudience)
    );
    let stranger = TestIssuer::new("https://auth.example.com").token(API).sign();
    assert_eq!(
        verifier.verify(&stranger).await.err(),
        Some(VerifyError::UnknownKey)
    );
}

/// A protected resource (RFC 9728): its metadata at the path-inserted and the bare well-known
/// URLs, `resource_metadata` in every challenge (no token, a bad token, too little scope), and
/// only tokens whose audience is the resource itself.
#[cfg(feature = "test-kit")]
#[tokio::test]
async fn a_protected_resource_describes_itself_and_takes_only_its_own_tokens() {
    use tessera_verify::testing::TestIssuer;
    let issuer = TestIssuer::new("https://auth.example.com");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{base}/mcp");
    let verifier = Verifier::builder(issuer.issuer())
        .resource(&resource)
        .resource_name("Tools")
        .resource_scopes(["mcp:tools"])
        .resource_documentation("https://docs.example.com/mcp")
        .jwks(issuer.jwks())
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/mcp",
            get(|Authenticated(c): Authenticated| async move { c.sub }),
        )
        .route_layer(RequireScopeLayer::new("mcp:tools"))
        .layer(BearerAuthLayer::new(verifier.clone()).realm("mcp"))
        .merge(verifier.metadata_router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/mcp");
    assert_eq!(verifier.resource_metadata_url(), Some(metadata_url.as_str()));
    for url in [
        metadata_url.clone(),
        format!("{base}/.well-known/oauth-protected-resource"),
    ] {
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let doc: Value = r.json().await.unwrap();
        assert_eq!(
            doc,
            json!({
                "resource": resource,
                "authorization_servers": ["https://auth.example.com"],
                "scopes_supported": ["mcp:tools"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Tools",
                "resource_documentation": "https://docs.example.com/mcp",
                "dpop_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
            })
        );
    }
    let pointer = format!("resource_metadata=\"{metadata_url}\"");
    let challenges = |r: &reqwest::Response| -> Vec<String> {
        r.headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    };
    // No token: both challenges point to the metadata.
    let r = http.get(&resource).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let c = challenges(&r);
    assert!(c.len() == 2 && c.iter().all(|v| v.ends_with(&pointer)), "{c:?}");
    // Its own token: in. A token for another audience: refused, pointing to the metadata.
    let own = issuer.token(&resource).subject("ada").scope("mcp:tools").sign();
    let r = http.get(&resource).bearer_auth(&own).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ada");
    let other = issuer.token("https://api.example.com").scope("mcp:tools").sign();
    let r = http.get(&resource).bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(challenges(&r)[0].contains("invalid_token") && challenges(&r)[0].ends_with(&pointer));
    // Too little scope: 403, naming the scope and the metadata.
    let narrow = issuer.token(&resource).sign();
    let r = http.get(&resource).bearer_auth(&narrow).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let c = challenges(&r);
    assert!(
        c[0].contains("insufficient_scope")
            && c[0].contains("scope=\"mcp:tools\"")
            && c[0].ends_with(&pointer),
        "{c:?}"
    );

    // A resource is its own and only audience; it is a URL without a fragment.
    for bad in [
        Verifier::builder("https://auth.example.com")
            .resource("https://rs.example/mcp")
            .audience("https://other.example")
            .jwks(issuer.jwks())
            .build()
            .await,
        Verifier::builder("https://auth.example.com")
            .resource("urn:example:mcp")
            .jwks(issuer.jwks())
            .build()
            .await,
        Verifier::builder("https://auth.example.com")
            .resource("https://rs.example/mcp#x")
            .jwks(issuer.jwks())
            .build()
            .await,
        Verifier::builder("https://auth.example.com")
            .resource("http://rs.example/mcp")
            .jwks(issuer.jwks())
            .build()
            .await,
    ] {
        assert!(matches!(bad, Err(VerifyError::Config(_))), "{bad:?}");
    }
    // Without a resource, no metadata and no pointer.
    let plain = issuer.verifier(API).await;
    assert!(plain.resource_metadata().is_none());
}

/// A token seen again is not verified again, yet what changes with time still counts on every
/// use: its expiry (on an injected clock) and its key still being published, unchanged.
#[cfg(feature = "test-kit")]
#[tokio::test]
async fn a_repeated_token_is_remembered_and_expiry_and_key_retirement_still_apply() {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;
    use tessera_verify::testing::TestIssuer;
    let issuer = TestIssuer::new("https://auth.example.com");
    let published = Arc::new(Mutex::new(issuer.jwks()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/jwks",
        get({
            let (published, fetches) = (published.clone(), fetches.clone());
            move || async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                axum::Json(published.lock().unwrap().clone())
            }
        }),
    );
    let jwks_uri = format!("{}/jwks", serve(app).await);
    let clock = Arc::new(AtomicU64::new(now()));
    let verifier = Verifier::builder(issuer.issuer())
        .audience(API)
        .jwks_uri(&jwks_uri)
        .leeway(Duration::ZERO)
        .min_refresh_interval(Duration::ZERO)
        .clock({
            let clock = clock.clone();
            move || clock.load(Ordering::SeqCst)
        })
        .build()
        .await
        .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let token = issuer.token(API).scope("orders:read").expires_in(60).sign();
    let first = verifier.verify(&token).await.unwrap();
    assert_eq!((verifier.cached_tokens(), verifier.cache_hits()), (1, 0));
    for _ in 0..3 {
        assert_eq!(verifier.verify(&token).await.unwrap(), first);
    }
    assert_eq!(verifier.cached_tokens(), 1, "the same token is one entry");
    assert_eq!(verifier.cache_hits(), 3);
    // A token that differs in one signature character is not the cached one.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(verifier.verify(&forged).await.is_err());
    // Expiry is checked on every hit: one second before, fine; at `exp`, expired.
    clock.store(first.exp - 1, Ordering::SeqCst);
    assert!(verifier.verify(&token).await.is_ok());
    clock.store(first.exp, Ordering::SeqCst);
    assert_eq!(verifier.verify(&token).await.err(), Some(VerifyError::Expired));
    clock.store(now(), Ordering::SeqCst);

    // The key fetched again, unchanged: the token stays remembered and good.
    let unknown_kid = issuer.token(API).sign().replacen(
        token.split('.').next().unwrap(),
        &URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"at+jwt","kid":"elsewhere"}"#),
        1,
    );
    assert_eq!(
        verifier.verify(&unknown_kid).await.err(),
        Some(VerifyError::UnknownKey)
    );
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "an unknown kid fetched the keys again"
    );
    let hits = verifier.cache_hits();
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(verifier.cache_hits(), hits + 1, "still remembered");
    // Another key under the same kid (a replaced key): the remembered token is verified again,
    // and fails.
    let mut replaced = TestIssuer::new("https://auth.example.com").jwks();
    replaced["keys"][0]["kid"] = issuer.jwks()["keys"][0]["kid"].clone();
    *published.lock().unwrap() = replaced;
    assert!(verifier.verify(&unknown_kid).await.is_err());
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
    assert_eq!(
        verifier.verify(&token).await.err(),
        Some(VerifyError::BadSignature)
    );
    // The key retired: gone from the set, so is every token it signed.
    *published.lock().unwrap() = issuer.jwks();
    assert!(verifier.verify(&unknown_kid).await.is_err());
    assert!(verifier.verify(&token).await.is_ok());
    *published.lock().unwrap() = json!({"keys": []});
    assert!(verifier.verify(&unknown_kid).await.is_err());
    assert_eq!(fetches.load(Ordering::SeqCst), 5);
    assert_eq!(verifier.verify(&token).await.err(), Some(VerifyError::UnknownKey));

    // With the cache turned off, nothing is remembered and all still works.
    let uncached = Verifier::builder(issuer.issuer())
        .audience(API)
        .jwks(issuer.jwks())
        .cache_capacity(0)
        .build()
        .await
        .unwrap();
    assert!(uncached.verify(&token).await.is_ok());
    assert_eq!(uncached.cached_tokens(), 0);
}

#[cfg(not(feature = "test-kit"))]
#[test]
fn the_test_kit_mints_tokens_an_api_accepts_without_a_server() {
    assert!(
        std::env::var_os("CI").is_none(),
        "needs --features test-kit (cargo test --workspace enables it)"
    );
    eprintln!(
        "DID NOT RUN the_test_kit_mints_tokens_an_api_accepts_without_a_server: needs --features test-kit"
    );
}

/// The blocking verifier, against a real Tessera.
#[cfg(feature = "blocking")]
#[test]
fn the_blocking_verifier_checks_real_tokens() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut iss = rt.block_on(issuer());
    let token = rt.block_on(iss.token(Some("invoices:read")));
    let v = tessera_verify::blocking::Verifier::new(Verifier::builder(&iss.base).audience(API)).unwrap();
    let claims = v.verify(&token).unwrap();
    assert!(claims.has_scope("invoices:read"));
    assert_eq!(v.verify("not-a-token").err(), Some(VerifyError::Malformed));
    // From a blocking thread of an async program, and dropped inside async code: no panic.
    let (v2, t2) = (v.clone(), token.clone());
    let from_pool =
        rt.block_on(async move { tokio::task::spawn_blocking(move || v2.verify(&t2)).await.unwrap() });
    assert!(from_pool.is_ok());
    rt.block_on(async move { drop(v) });
    rt.block_on(iss.running.take().unwrap().shutdown());
}

#[cfg(not(feature = "blocking"))]
#[test]
fn the_blocking_verifier_checks_real_tokens() {
    assert!(
        std::env::var_os("CI").is_none(),
        "needs --features blocking (cargo test --workspace enables it)"
    );
    eprintln!("DID NOT RUN the_blocking_verifier_checks_real_tokens: needs --features blocking");
}
