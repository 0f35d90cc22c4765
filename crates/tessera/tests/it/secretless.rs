//! Clients without shared secrets: `private_key_jwt` (RFC 7523 §2.2, §3) with inline keys and
//! with a `jwks_uri` the test serves, the move from a secret to a key, and every refusal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tessera::admin::NewClient;
use tessera::model::auth::TokenAuth;

use crate::kit::keys::{TestKey, hs256_jwt};
use crate::kit::{self, Server};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A server whose back-off does not start within a test's run of failures (a test of its own
/// shows the back-off applies to assertions).
async fn lenient() -> Server {
    kit::start(kit::Opts {
        limits: Some(tessera::limits::LimitSettings {
            failures_before_backoff: 1000,
            address_failures_before_backoff: 1000,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
}

/// Claims of a good assertion by `id` for `s`, valid from the server's now for 60 s.
fn claims(s: &Server, id: &str) -> Value {
    let now = s.app().clock.now();
    json!({
        "iss": id, "sub": id, "aud": s.app().settings.issuer,
        "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
    })
}

async fn key_client(s: &Server, jwks: Option<Value>, jwks_uri: Option<String>) -> String {
    let (id, secret) = s
        .client_with(NewClient {
            name: "keyed".into(),
            scope: "read".into(),
            audiences: vec!["https://api.example".into()],
            auth: TokenAuth::PrivateKeyJwt,
            jwks,
            jwks_uri,
            ..Default::default()
        })
        .await;
    assert!(secret.is_empty(), "a key client gets no secret");
    id
}

/// POSTs `form` plus the assertion to `path`.
async fn post(s: &Server, path: &str, assertion: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut all = vec![
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    all.extend_from_slice(form);
    s.http
        .post(s.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&all))
        .send()
        .await
        .unwrap()
}

async fn token(s: &Server, assertion: &str) -> reqwest::Response {
    post(
        s,
        "/oauth2/token",
        assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

/// Asserts the answer is the one refusal every failed assertion gets.
async fn refused(r: reqwest::Response, case: &str) {
    assert_eq!(r.status(), 401, "{case}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{case}");
    assert_eq!(
        body["error_description"], "client authentication failed",
        "{case}"
    );
}

#[tokio::test]
async fn every_algorithm_signs_assertions_for_tokens_and_introspection() {
    let s = kit::start(Default::default()).await;
    for alg in ["ES256", "ES384", "EdDSA", "RS256", "PS256"] {
        let key = TestKey::new(alg, &format!("{alg}-1"));
        let id = key_client(&s, Some(key.jwks()), None).await;
        let r = token(&s, &key.jwt(&claims(&s, &id))).await;
        assert_eq!(r.status(), 200, "{alg}");
        let body: Value = r.json().await.unwrap();
        let access = body["access_token"].as_str().unwrap();
        let (_, payload) = kit::decode_unverified(access);
        assert_eq!(payload["client_id"], id.as_str(), "{alg}");
        // The token endpoint URL as `aud` (OpenID Connect Core §9), an array of one, and `typ`
        // as RFC 7523bis names it, at the introspection endpoint.
        let mut c = claims(&s, &id);
        c["aud"] = json!([s.url("/oauth2/token")]);
        let assertion = key.jwt_with(json!({"typ": "client-authentication+jwt"}), &c);
        let r = post(&s, "/oauth2/introspect", &assertion, &[("token", access)]).await;
        assert_eq!(r.status(), 200, "{alg}");
        assert_eq!(r.json::<Value>().await.unwrap()["active"], true, "{alg}");
    }
    let meta = s.get_json("/.well-known/oauth-authorization-server").await;
    let methods = meta["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("private_key_jwt")));
    assert!(!methods.contains(&json!("client_secret_jwt")));
    assert_eq!(
        meta["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"])
    );
}

#[tokio::test]
async fn assertions_are_refused_for_every_flaw() {
    let s = lenient().await;
    let key = TestKey::new("ES256", "k1");
    let id = key_client(&s, Some(key.jwks()), None).await;
    let other = TestKey::new("ES256", "k1");
    let now = s.app().clock.now();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(&s, &id);
        f(&mut c);
        c
    };

    // Used once, then a replay.
    let once = key.jwt(&claims(&s, &id));
    assert_eq!(token(&s, &once).await.status(), 200);
    refused(token(&s, &once).await, "replay").await;

    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            key.jwt(&with(&|c| {
                c["iat"] = json!(now - 600);
                c["exp"] = json!(now - 300);
            })),
        ),
        ("long lifetime", key.jwt(&with(&|c| c["exp"] = json!(now + 7200)))),
        (
            "long lifetime without iat",
            key.jwt(&with(&|c| {
                c.as_object_mut().unwrap().remove("iat");
                c["exp"] = json!(now + 7200);
            })),
        ),
        (
            "long lifetime from an old iat",
            key.jwt(&with(&|c| {
                c["iat"] = json!(now - 3000);
                c["exp"] = json!(now + 1000);
            })),
        ),
        (
            "no exp",
            key.jwt(&with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
        ),
        (
            "wrong audience",
            key.jwt(&with(&|c| c["aud"] = json!("https://other.example"))),
        ),
        (
            "extra audience",
            key.jwt(&with(&|c| {
                c["aud"] = json!([s.app().settings.issuer, "https://other.example"])
            })),
        ),
        (
            "another endpoint as audience",
            key.jwt(&with(&|c| c["aud"] = json!(s.url("/oauth2/introspect")))),
        ),
        ("another key with the same kid", other.jwt(&claims(&s, &id))),
        (
            "iss is not sub",
            key.jwt(&with(&|c| c["iss"] = json!("someone-else"))),
        ),
        (
            "no jti",
            key.jwt(&with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })),
        ),
        ("not yet valid", key.jwt(&with(&|c| c["nbf"] = json!(now + 120)))),
        (
            "another kind of JWT",
            key.jwt_with(json!({"typ": "at+jwt"}), &claims(&s, &id)),
        ),
        (
            "HS256 keyed with the public key",
            hs256_jwt(key.jwk().to_string().as_bytes(), "k1", &claims(&s, &id)),
        ),
        ("alg none", {
            use base64::Engine;
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!(
                "{}.{}.",
                b.encode(br#"{"alg":"none","typ":"JWT"}"#),
                b.encode(claims(&s, &id).to_string())
            )
        }),
        ("not a JWT", "not-a-jwt".into()),
    ];
    for (case, assertion) in cases {
        refused(token(&s, &assertion).await, case).await;
    }

    // The token endpoint URL as the audience is refused where only the issuer is allowed
    // (RFC 7523bis).
    let bis = kit::start(kit::Opts {
        strict_assertion_audience: true,
        ..Default::default()
    })
    .await;
    let bis_id = key_client(&bis, Some(key.jwks()), None).await;
    let mut c = claims(&bis, &bis_id);
    c["aud"] = json!(bis.url("/oauth2/token"));
    refused(
        token(&bis, &key.jwt(&c)).await,
        "token endpoint as audience, strict",
    )
    .await;
    c["aud"] = json!(bis.app().settings.issuer);
    assert_eq!(token(&bis, &key.jwt(&c)).await.status(), 200);

    // An hour is the default bound; an operator may set a shorter one.
    let hour = key.jwt(&with(&|c| c["exp"] = json!(now + 3600)));
    assert_eq!(token(&s, &hour).await.status(), 200);
    let strict = kit::start(kit::Opts {
        max_assertion_lifetime: Some(Duration::from_secs(300)),
        ..Default::default()
    })
    .await;
    let strict_id = key_client(&strict, Some(key.jwks()), None).await;
    let mut c = claims(&strict, &strict_id);
    c["exp"] = json!(strict.app().clock.now() + 3600);
    refused(
        token(&strict, &key.jwt(&c)).await,
        "longer than the operator allows",
    )
    .await;
    c["exp"] = json!(strict.app().clock.now() + 300);
    assert_eq!(token(&strict, &key.jwt(&c)).await.status(), 200);

    // A client id in the form that is not the assertion's.
    let r = post(
        &s,
        "/oauth2/token",
        &key.jwt(&claims(&s, &id)),
        &[("grant_type", "client_credentials"), ("client_id", "another")],
    )
    .await;
    refused(r, "client_id differs").await;

    // An assertion and a secret: two methods (RFC 6749 §2.3).
    let r = s
        .http
        .post(s.url("/oauth2/token"))
        .header("authorization", kit::basic(&id, "whatever"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &key.jwt(&claims(&s, &id))),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");

    // The assertion without its type.
    let r = s
        .http
        .post(s.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion", &key.jwt(&claims(&s, &id))),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A secret client that registered keys does not authenticate with them.
    let (secret_id, secret) = s.client("read", &[]).await;
    let update = tessera::admin::ClientUpdate {
        jwks: Some(Some(key.jwks())),
        ..Default::default()
    };
    tessera::admin::update_client(&s.app().store, &s.actor(), &secret_id, update)
        .await
        .unwrap();
    s.app().apply_client(&secret_id).await;
    refused(
        token(&s, &key.jwt(&claims(&s, &secret_id))).await,
        "secret client",
    )
    .await;
    assert_eq!(
        s.token_basic(&secret_id, &secret, &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn failed_assertions_back_off_while_good_ones_pass() {
    let s = kit::start(Default::default()).await;
    let key = TestKey::new("ES256", "k");
    let id = key_client(&s, Some(key.jwks()), None).await;
    let stranger = TestKey::new("ES256", "k");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(token(&s, &stranger.jwt(&claims(&s, &id))).await.status().as_u16());
    }
    assert_eq!(statuses.first(), Some(&401));
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(token(&s, &key.jwt(&claims(&s, &id))).await.status(), 200);
}

#[tokio::test]
async fn a_client_moves_from_its_secret_to_a_key_without_downtime() {
    let s = kit::start(Default::default()).await;
    let (id, secret) = s.client("read", &[]).await;
    let key = TestKey::new("EdDSA", "move-1");
    let store = &s.app().store;
    let update = |u: tessera::admin::ClientUpdate| async {
        let r = tessera::admin::update_client(store, &s.actor(), &id, u).await;
        s.app().apply_client(&id).await;
        r
    };
    let by_secret = || s.token_basic(&id, &secret, &[("grant_type", "client_credentials")]);

    // Keys registered: the secret still works, the key not yet.
    update(tessera::admin::ClientUpdate {
        jwks: Some(Some(key.jwks())),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(by_secret().await.status(), 200);
    refused(token(&s, &key.jwt(&claims(&s, &id))).await, "before the move").await;

    // The move, with an hour's grace: both work.
    let moved = update(tessera::admin::ClientUpdate {
        auth: Some(TokenAuth::PrivateKeyJwt),
        secret_grace: Some(Duration::from_secs(3600)),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(moved.secrets.iter().all(|s| s.expires_at.is_some()));
    assert_eq!(by_secret().await.status(), 200);
    assert_eq!(token(&s, &key.jwt(&claims(&s, &id))).await.status(), 200);

    // After the grace, only the key.
    s.advance(Duration::from_secs(3601));
    refused(by_secret().await, "after the grace").await;
    assert_eq!(token(&s, &key.jwt(&claims(&s, &id))).await.status(), 200);

    // Back to a secret needs one to move to.
    let back = update(tessera::admin::ClientUpdate {
        auth: Some(TokenAuth::ClientSecret),
        ..Default::default()
    })
    .await;
    assert!(back.is_err(), "no secret to move back to");
}

/// A key set the test serves and changes: its keys, a delay, a size, or a redirect.
#[derive(Clone, Default)]
struct Published {
    jwks: Arc<Mutex<Value>>,
    hang: Arc<Mutex<bool>>,
    fetches: Arc<Mutex<u32>>,
}

async fn serve(published: Published) -> String {
    use axum::routing::get;
    let p = published.clone();
    let app = axum::Router::new()
        .route(
            "/jwks",
            get(move || {
                let p = p.clone();
                async move {
                    *p.fetches.lock().unwrap() += 1;
                    if *p.hang.lock().unwrap() {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    axum::Json(p.jwks.lock().unwrap().clone())
                }
            }),
        )
        .route("/huge", get(|| async { "x".repeat(200_000) }))
        .route(
            "/here",
            get(|| async { axum::response::Redirect::temporary("/jwks") }),
        )
        .route(
            "/elsewhere",
            get(|| async { axum::response::Redirect::temporary("http://localhost:9/jwks") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn published_keys_rotate_and_a_bad_address_harms_only_its_client() {
    let s = lenient().await;
    let first = TestKey::new("ES256", "2026-01");
    let published = Published::default();
    *published.jwks.lock().unwrap() = first.jwks();
    let base = serve(published.clone()).await;
    let id = key_client(&s, None, Some(format!("{base}/jwks"))).await;

    assert_eq!(token(&s, &first.jwt(&claims(&s, &id))).await.status(), 200);
    assert_eq!(token(&s, &first.jwt(&claims(&s, &id))).await.status(), 200);
    assert_eq!(
        *published.fetches.lock().unwrap(),
        1,
        "a known key is served from memory"
    );

    // The client rotates: the new key is fetched on first sight, at most once per interval.
    let second = TestKey::new("ES256", "2026-02");
    *published.jwks.lock().unwrap() = second.jwks();
    refused(
        token(&s, &second.jwt(&claims(&s, &id))).await,
        "fetched too recently",
    )
    .await;
    s.advance(tessera::client_keys::MIN_INTERVAL + Duration::from_secs(1));
    assert_eq!(token(&s, &second.jwt(&claims(&s, &id))).await.status(), 200);
    refused(token(&s, &first.jwt(&claims(&s, &id))).await, "retired key").await;
    let fetched = *published.fetches.lock().unwrap();
    for _ in 0..5 {
        let unknown = TestKey::new("ES256", "made-up");
        refused(token(&s, &unknown.jwt(&claims(&s, &id))).await, "made-up kid").await;
    }
    assert_eq!(
        *published.fetches.lock().unwrap(),
        fetched,
        "unknown kids fetch at most once per interval"
    );

    // A key set that hangs, is huge, or redirects elsewhere gives its own client nothing...
    let hanging = Published::default();
    *hanging.hang.lock().unwrap() = true;
    let hanging_base = serve(hanging).await;
    let bad = TestKey::new("ES256", "bad");
    for uri in [
        format!("{hanging_base}/jwks"),
        format!("{base}/huge"),
        format!("{base}/elsewhere"),
        "https://169.254.169.254/latest/meta-data/jwks".to_string(),
    ] {
        let bad_id = key_client(&s, None, Some(uri.clone())).await;
        let started = std::time::Instant::now();
        // ...while the good client keeps getting tokens at once.
        let bad_assertion = bad.jwt(&claims(&s, &bad_id));
        let (bad_answer, good) = tokio::join!(token(&s, &bad_assertion), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t = std::time::Instant::now();
            let r = token(&s, &second.jwt(&claims(&s, &id))).await;
            (r.status(), t.elapsed())
        });
        refused(bad_answer, &uri).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{uri} took {:?}",
            started.elapsed()
        );
        assert_eq!(good.0, 200, "{uri}");
        assert!(
            good.1 < Duration::from_secs(1),
            "{uri}: the good client waited {:?}",
            good.1
        );
    }

    // A redirect within the same origin is followed.
    let same = key_client(&s, None, Some(format!("{base}/here"))).await;
    let r = token(&s, &second.jwt(&claims(&s, &same))).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn key_clients_through_the_cli_and_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::new("ES256", "cli-1");
    let jwks = dir.path().join("key.json");
    assert_eq!(kit::cli(dir.path(), &["migrate"]).0, 0);
    // One JWK (not a set) is accepted and made a set.
    std::fs::write(&jwks, key.jwk().to_string()).unwrap();
    let created = kit::cli_json(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "keyed",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            jwks.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(created["client_secret"], Value::Null);
    assert_eq!(created["client"]["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(created["client"]["jwks"]["keys"][0]["kid"], "cli-1");
    let (code, _, err) = kit::cli(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "x",
            "--auth-method",
            "client_secret_jwt",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("never stores"), "{err}");
    // Without keys: they will come from trust policies, and the CLI says how.
    let (code, out, _) = kit::cli(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "x",
            "--auth-method",
            "private_key_jwt",
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("tessera trust create"), "{out}");
    let id = created["client"]["client_id"].as_str().unwrap();
    let shown = kit::cli_json(
        dir.path(),
        &[
            "client",
            "update",
            id,
            "--jwks-uri",
            "https://app.example/jwks.json",
            "--json",
        ],
    );
    assert_eq!(shown["jwks_uri"], "https://app.example/jwks.json");
    assert_eq!(shown["jwks"], Value::Null, "a key address replaces inline keys");

    // The recipe of the README: a PEM public key registered, its private half in a file that
    // tessera-client reads; a token from a server on that store.
    let pair = TestKey::new("EdDSA", "unused");
    std::fs::write(dir.path().join("client.pub.pem"), pair.public_pem()).unwrap();
    std::fs::write(dir.path().join("client.pem"), pair.pem()).unwrap();
    let created = kit::cli_json(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "recipe",
            "--scope",
            "reports:read",
            "--auth-method",
            "private_key_jwt",
            "--public-key-file",
            dir.path().join("client.pub.pem").to_str().unwrap(),
            "--json",
        ],
    );
    let kid = created["client"]["jwks"]["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(kid.len(), 43, "an RFC 7638 thumbprint by default");
    let recipe_id = created["client"]["client_id"].as_str().unwrap().to_string();
    // The server on the store the CLI wrote (SQLite, or the PostgreSQL run's database).
    let on_store = |v: String| Some((v, "test".to_string()));
    let running = kit::local(
        dir.path(),
        tessera::config::Overrides {
            database: on_store(kit::db_url(dir.path())),
            master_key_file: on_store(dir.path().join("master.key").display().to_string()),
            ..Default::default()
        },
    )
    .await;
    let client_key = tessera_client::ClientKey::from_pem_file(dir.path().join("client.pem")).unwrap();
    let tokens = tessera_client::TokenClient::builder_with_key(&recipe_id, client_key)
        .issuer(running.base_url())
        .build()
        .await
        .unwrap();
    let t = tokens.token(None, None).await.unwrap();
    assert_eq!(t.scope.as_deref(), Some("reports:read"));
    // And from the command line, as a script would.
    let (path, base) = (dir.path().to_path_buf(), running.base_url());
    let pem = dir.path().join("client.pem").display().to_string();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        kit::cli(
            &path,
            &[
                "token",
                "--issuer",
                &base,
                "--client-id",
                &recipe_id,
                "--private-key-file",
                &pem,
                "--json",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["scope"], "reports:read");
    running.shutdown().await;

    // The admin API: create with keys, refuse a private key.
    let s = kit::start(Default::default()).await;
    let (admin_id, admin_secret) = s
        .client_with(NewClient {
            name: "admin".into(),
            admin: true,
            ..Default::default()
        })
        .await;
    let admin = s.token(&admin_id, &admin_secret).await;
    let create = |body: Value| {
        s.http
            .post(s.url("/admin/v1/clients"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let r = create(json!({"name": "k", "token_endpoint_auth_method": "private_key_jwt", "jwks": key.jwks()}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["client_secret"], Value::Null);
    let new_id = body["client"]["client_id"].as_str().unwrap().to_string();
    assert_eq!(token(&s, &key.jwt(&claims(&s, &new_id))).await.status(), 200);
    let mut private = key.jwk();
    private["d"] = json!("AAAA");
    let r = create(
        json!({"name": "k", "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [private]}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .http
        .patch(s.url(&format!("/admin/v1/clients/{new_id}")))
        .bearer_auth(&admin)
        .json(&json!({"jwks_uri": "http://app.example/jwks"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "plain http to a public host");
}

/// Two independent libraries authenticate with `private_key_jwt` as their users would write it:
/// authlib's `PrivateKeyJWT` (audience: the token endpoint URL) and openid-client's
/// `PrivateKeyJwt` (audience: the issuer identifier).
#[tokio::test]
async fn authlib_and_openid_client_authenticate_with_private_key_jwt() {
    let python = std::process::Command::new("python3")
        .args(["-c", "import authlib, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    let node = crate::oidc::node_ready("authlib_and_openid_client_authenticate_with_private_key_jwt");
    if !crate::oidc::tool_ready(
        "authlib_and_openid_client_authenticate_with_private_key_jwt",
        python && node,
        "run `pip install -r crates/tessera/tests/rp/requirements.txt` and `npm ci --prefix crates/tessera/tests/rp`",
    ) {
        return;
    }
    let s = kit::start(Default::default()).await;
    for (program, script, library, alg) in [
        ("python3", "authlib_private_key_jwt.py", "authlib", "RS256"),
        ("python3", "authlib_private_key_jwt.py", "authlib", "ES256"),
        (
            "node",
            "openid_client_private_key_jwt.mjs",
            "openid-client",
            "ES256",
        ),
        (
            "node",
            "openid_client_private_key_jwt.mjs",
            "openid-client",
            "EdDSA",
        ),
    ] {
        let key = TestKey::new(alg, &format!("{library}-{alg}"));
        let id = key_client(&s, Some(key.jwks()), None).await;
        let (base, pem, kid) = (s.base.clone(), key.pem(), key.kid.clone());
        let r = tokio::task::spawn_blocking(move || {
            crate::oidc::run_script(
                program,
                script,
                &[
                    ("ISSUER", &base),
                    ("CLIENT_ID", &id),
                    ("PRIVATE_KEY_PEM", &pem),
                    ("ALG", alg),
                    ("KID", &kid),
                ],
            )
        })
        .await
        .unwrap();
        assert_eq!(r["library"], library, "{r}");
        assert_eq!(
            r["token_type"].as_str().map(str::to_ascii_lowercase).as_deref(),
            Some("bearer"),
            "{r}"
        );
        assert_eq!(r["tokens_differ"], true, "{library} {alg}: {r}");
        assert_eq!(r["active"], true, "{library} {alg}: {r}");
    }
}

/// A vendor's path keeps its vendor's methods: client secrets. The default path and its
/// aliases take assertions too.
#[tokio::test]
async fn vendor_paths_keep_their_own_methods() {
    let s = kit::start(kit::Opts {
        presets: Some("all"),
        aliases: Some("/token"),
        ..Default::default()
    })
    .await;
    let key = TestKey::new("ES256", "k");
    let id = key_client(&s, Some(key.jwks()), None).await;
    for (path, accepted) in [
        ("/oauth2/token", true),
        ("/token", true),
        ("/connect/token", false),
        ("/ids/auth/login", false),
        ("/api/id/v1/auth/token", false),
    ] {
        let r = post(
            &s,
            path,
            &key.jwt(&claims(&s, &id)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        if accepted {
            assert_eq!(r.status(), 200, "{path}");
        } else {
            assert_eq!(r.status(), 401, "{path}");
            let body: Value = r.json().await.unwrap();
            let description = body["error_description"].as_str().unwrap();
            assert!(description.contains("only"), "{path}: {description}");
        }
    }
}
