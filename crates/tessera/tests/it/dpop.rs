//! DPoP (RFC 9449) on Tessera's own endpoints: tokens bound to the key of the proof at the token
//! endpoint (every grant), refused as `Bearer` and checked with their proof at userinfo and the
//! admin API, nonces, `dpop_jkt`, bound refresh tokens of public clients, and every refusal.

use serde_json::{Value, json};
use tessera::admin::NewClient;

use crate::kit::keys::{TestKey, ath, hs256_jwt};
use crate::kit::{self, Server};
use crate::oidc;

/// POSTs `form` to the token endpoint with Basic credentials and the given `DPoP` headers.
async fn token_with(
    s: &Server,
    id: &str,
    secret: &str,
    proofs: &[&str],
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = s
        .http
        .post(s.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded");
    if !secret.is_empty() {
        req = req.header("authorization", kit::basic(id, secret));
    }
    for p in proofs {
        req = req.header("dpop", *p);
    }
    req.body(kit::encode_form(form)).send().await.unwrap()
}

async fn client_credentials(s: &Server, id: &str, secret: &str, proofs: &[&str]) -> reqwest::Response {
    token_with(s, id, secret, proofs, &[("grant_type", "client_credentials")]).await
}

fn now(s: &Server) -> i64 {
    s.app().clock.now()
}

/// A proof of `key` for the token endpoint, made now.
fn token_proof(s: &Server, key: &TestKey) -> String {
    key.dpop("POST", &s.url("/oauth2/token"), now(s), json!({}))
}

async fn service(s: &Server) -> (String, String) {
    s.client_with(NewClient {
        name: "svc".into(),
        scope: "read".into(),
        audiences: vec!["https://api.example".into()],
        introspect: true,
        ..Default::default()
    })
    .await
}

async fn error_of(r: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "expected {error}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    body
}

#[tokio::test]
async fn a_proof_binds_the_token_to_its_key_for_every_algorithm() {
    let s = kit::start(Default::default()).await;
    let (id, secret) = service(&s).await;
    let meta = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "RS256", "PS256"])
    );
    for alg in ["ES256", "ES384", "EdDSA", "RS256", "PS256"] {
        let key = TestKey::new(alg, "dpop");
        let r = client_credentials(&s, &id, &secret, &[&token_proof(&s, &key)]).await;
        assert_eq!(r.status(), 200, "{alg}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP", "{alg}");
        let token = body["access_token"].as_str().unwrap();
        let (_, claims) = kit::decode_unverified(token);
        assert_eq!(claims["cnf"], json!({"jkt": key.thumbprint()}), "{alg}");
        let introspected = s.introspect(&id, &secret, token).await;
        assert_eq!(introspected["active"], true);
        assert_eq!(introspected["token_type"], "DPoP");
        assert_eq!(introspected["cnf"]["jkt"], key.thumbprint());
    }
    // Without a proof, a bearer token as before.
    let r = client_credentials(&s, &id, &secret, &[]).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        kit::decode_unverified(body["access_token"].as_str().unwrap())
            .1
            .get("cnf")
            .is_none()
    );
}

#[tokio::test]
async fn every_bad_proof_is_refused_at_the_token_endpoint() {
    let s = kit::start(Default::default()).await;
    let (id, secret) = service(&s).await;
    let key = TestKey::new("ES256", "k");
    let other = TestKey::new("ES256", "other");
    let htu = s.url("/oauth2/token");
    let t = now(&s);
    let header = |extra: Value| {
        let mut h = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    let mut private_jwk = key.public_jwk();
    private_jwk["d"] = "AAAA".into();
    let none = {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let h = json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()});
        let c = json!({"jti": "n", "htm": "POST", "htu": htu, "iat": t});
        format!("{}.{}.", b64(&h), b64(&c))
    };
    // An HMAC "signed" with the public key's bytes, as if it were a secret.
    let hmac = {
        let jwt = hs256_jwt(
            key.public_jwk().to_string().as_bytes(),
            "k",
            &json!({"jti": "h", "htm": "POST", "htu": htu, "iat": t}),
        );
        let (_, rest) = jwt.split_once('.').unwrap();
        use base64::Engine;
        let h = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk()});
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.to_string());
        format!("{header}.{rest}")
    };
    let swapped = {
        // Signed by `other`, carrying `key`'s public key.
        other.dpop_with(header(json!({})), "POST", &htu, t, json!({}))
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("signed by another key", swapped, "signature"),
        (
            "a private key in jwk",
            key.dpop_with(header(json!({"jwk": private_jwk})), "POST", &htu, t, json!({})),
            "public key",
        ),
        ("wrong htm", key.dpop("GET", &htu, t, json!({})), "htm"),
        (
            "wrong htu",
            key.dpop("POST", &s.url("/oauth2/introspect"), t, json!({})),
            "htu",
        ),
        (
            "another host in htu",
            key.dpop("POST", "https://evil.example/oauth2/token", t, json!({})),
            "htu",
        ),
        ("stale iat", key.dpop("POST", &htu, t - 600, json!({})), "too old"),
        ("future iat", key.dpop("POST", &htu, t + 120, json!({})), "future"),
        ("alg none", none, "malformed"),
        ("HMAC", hmac, "alg"),
        (
            "wrong typ",
            key.dpop_with(header(json!({"typ": "JWT"})), "POST", &htu, t, json!({})),
            "typ",
        ),
        (
            "no typ",
            key.dpop_with(header(json!({"typ": null})), "POST", &htu, t, json!({})),
            "typ",
        ),
        (
            "no jwk",
            key.dpop_with(header(json!({"jwk": null})), "POST", &htu, t, json!({})),
            "malformed",
        ),
        (
            "no jti",
            key.dpop("POST", &htu, t, json!({"jti": null})),
            "malformed",
        ),
        (
            "no iat",
            key.dpop("POST", &htu, t, json!({"iat": null})),
            "malformed",
        ),
        ("not a JWT", "not-a-proof".into(), "malformed"),
    ];
    for (why, proof, reason) in &cases {
        let r = client_credentials(&s, &id, &secret, &[proof]).await;
        let body = error_of(r, 400, "invalid_dpop_proof").await;
        assert!(
            body["error_description"].as_str().unwrap().contains(reason),
            "{why}: {body}"
        );
    }
    // A well-made proof still works after all of that (nothing above was recorded as used).
    assert_eq!(
        client_credentials(&s, &id, &secret, &[&token_proof(&s, &key)])
            .await
            .status(),
        200
    );
    // Two DPoP headers.
    let (a, b) = (token_proof(&s, &key), token_proof(&s, &key));
    error_of(
        client_credentials(&s, &id, &secret, &[&a, &b]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    // A proof is used once.
    let once = token_proof(&s, &key);
    assert_eq!(client_credentials(&s, &id, &secret, &[&once]).await.status(), 200);
    let body = error_of(
        client_credentials(&s, &id, &secret, &[&once]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    // A bad proof from a client that fails authentication is still a client failure first.
    let r = client_credentials(&s, &id, "wrong", &[&token_proof(&s, &key)]).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_client_registered_for_dpop_needs_a_proof() {
    let s = kit::start(Default::default()).await;
    let (id, secret) = s
        .client_with(NewClient {
            name: "bound".into(),
            scope: "read".into(),
            dpop_bound_tokens: true,
            ..Default::default()
        })
        .await;
    let body = error_of(
        client_credentials(&s, &id, &secret, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains("DPoP"));
    let key = TestKey::new("EdDSA", "k");
    let r = client_credentials(&s, &id, &secret, &[&token_proof(&s, &key)]).await;
    assert_eq!(r.json::<Value>().await.unwrap()["token_type"], "DPoP");
    // The admin view shows the setting.
    let client = tessera::views::client_json(&s.app().store.client(&id).await.unwrap().unwrap());
    assert_eq!(client["dpop_bound_access_tokens"], true);
}

#[tokio::test]
async fn nonces_are_required_when_configured_and_any_issued_one_is_taken() {
    let s = kit::start(kit::Opts {
        dpop: Some(tessera::config::DpopSettings {
            require_nonce: true,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    let (id, secret) = service(&s).await;
    let key = TestKey::new("ES256", "k");
    let htu = s.url("/oauth2/token");
    let r = client_credentials(&s, &id, &secret, &[&token_proof(&s, &key)]).await;
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_string();
    error_of(r, 400, "use_dpop_nonce").await;
    let with = key.dpop("POST", &htu, now(&s), json!({"nonce": nonce}));
    let r = client_credentials(&s, &id, &secret, &[&with]).await;
    assert_eq!(r.status(), 200);
    // A made-up nonce, and one two lifetimes old, are refused with a fresh one.
    let made_up = key.dpop(
        "POST",
        &htu,
        now(&s),
        json!({"nonce": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
    );
    error_of(
        client_credentials(&s, &id, &secret, &[&made_up]).await,
        400,
        "use_dpop_nonce",
    )
    .await;
    s.advance(std::time::Duration::from_secs(601));
    let stale = key.dpop("POST", &htu, now(&s), json!({"nonce": nonce}));
    let r = client_credentials(&s, &id, &secret, &[&stale]).await;
    let fresh = r.headers()["dpop-nonce"].to_str().unwrap().to_string();
    assert_ne!(fresh, nonce);
    error_of(r, 400, "use_dpop_nonce").await;
    // Nonces are made from the master key: a node with the same master key takes them (the
    // cluster test shows it across processes on PostgreSQL).
    let other = tessera::oauth::dpop::nonces(s.app().master.state_secrets()[0].as_slice(), 300);
    assert!(other.accepts(&fresh, now(&s)));
}

/// GET /oauth2/userinfo with `authorization` and the given proofs.
async fn userinfo(s: &Server, authorization: &str, proofs: &[&str]) -> reqwest::Response {
    let mut req = s
        .http
        .get(s.url("/oauth2/userinfo"))
        .header("authorization", authorization);
    for p in proofs {
        req = req.header("dpop", *p);
    }
    req.send().await.unwrap()
}

/// The `DPoP` challenge of a refusal (a bound token sent as `Bearer` also gets a `Bearer` one,
/// first, with `invalid_token`).
fn challenge_of(r: &reqwest::Response) -> String {
    let all: Vec<&str> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    if all.len() == 2 {
        assert!(
            all[0].starts_with("Bearer ") && all[0].contains("invalid_token"),
            "{all:?}"
        );
    }
    all.last().unwrap().to_string()
}

#[tokio::test]
async fn a_public_client_binds_its_code_refresh_tokens_and_userinfo_calls_to_its_key() {
    let s = kit::start(Default::default()).await;
    oidc::user(&s, "ada@example.com").await;
    let (id, _) = oidc::app_client(&s, "spa", true, true).await;
    let key = TestKey::new("ES256", "spa");
    let other = TestKey::new("ES256", "thief");
    let (verifier, challenge) = oidc::pkce();
    // dpop_jkt on the authorization request (RFC 9449 §10).
    let jkt = key.thumbprint();
    let mut b = oidc::Browser::new();
    let url = oidc::authorize_url(&s, &id, &challenge, &[("dpop_jkt", &jkt)]);
    let back = oidc::sign_in(&mut b, &s, &url, "ada@example.com").await;
    let code = oidc::query(&back)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", oidc::REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("client_id", id.as_str()),
    ];
    // Another key, or none, cannot redeem the code; it is not spent by the attempt.
    let body = error_of(
        token_with(&s, &id, "", &[&token_proof(&s, &other)], &form).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains("dpop_jkt"));
    error_of(token_with(&s, &id, "", &[], &form).await, 400, "invalid_grant").await;
    let r = token_with(&s, &id, "", &[&token_proof(&s, &key)], &form).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(kit::decode_unverified(&access).1["cnf"]["jkt"], jkt);
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    // Userinfo: with a proof carrying ath, under the DPoP scheme.
    let info_url = s.url("/oauth2/userinfo");
    let proof = |k: &TestKey, extra: Value| k.dpop("GET", &info_url, now(&s), extra);
    let good = proof(&key, json!({"ath": ath(&access)}));
    let r = userinfo(&s, &format!("DPoP {access}"), &[&good]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["email"], "ada@example.com");
    // The same proof again, and every downgrade or mismatch, is refused with a DPoP challenge.
    let refusals: Vec<(&str, String, Vec<String>, &str)> = vec![
        (
            "replayed proof",
            format!("DPoP {access}"),
            vec![good.clone()],
            "invalid_dpop_proof",
        ),
        (
            "bound token as Bearer",
            format!("Bearer {access}"),
            vec![],
            "invalid_token",
        ),
        (
            "bound token as Bearer with a proof",
            format!("Bearer {access}"),
            vec![proof(&key, json!({"ath": ath(&access)}))],
            "invalid_token",
        ),
        ("no proof", format!("DPoP {access}"), vec![], "invalid_dpop_proof"),
        (
            "no ath",
            format!("DPoP {access}"),
            vec![proof(&key, json!({}))],
            "invalid_dpop_proof",
        ),
        (
            "wrong ath",
            format!("DPoP {access}"),
            vec![proof(&key, json!({"ath": ath("another token")}))],
            "invalid_dpop_proof",
        ),
        (
            "another key",
            format!("DPoP {access}"),
            vec![proof(&other, json!({"ath": ath(&access)}))],
            "invalid_dpop_proof",
        ),
        (
            "wrong htm",
            format!("DPoP {access}"),
            vec![key.dpop("POST", &info_url, now(&s), json!({"ath": ath(&access)}))],
            "invalid_dpop_proof",
        ),
    ];
    for (why, authorization, proofs, error) in refusals {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = userinfo(&s, &authorization, &proofs).await;
        assert_eq!(r.status(), 401, "{why}");
        let c = challenge_of(&r);
        assert!(
            c.starts_with("DPoP ") && c.contains(&format!("error=\"{error}\"")),
            "{why}: {c}"
        );
        assert!(c.contains("algs=\"ES256 ES384 EdDSA RS256 PS256\""), "{c}");
    }

    // The refresh token is bound to the key: only a proof of it refreshes.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", id.as_str()),
    ];
    error_of(token_with(&s, &id, "", &[], &form).await, 400, "invalid_grant").await;
    error_of(
        token_with(&s, &id, "", &[&token_proof(&s, &other)], &form).await,
        400,
        "invalid_grant",
    )
    .await;
    let r = token_with(&s, &id, "", &[&token_proof(&s, &key)], &form).await;
    assert_eq!(r.status(), 200);
    let next: Value = r.json().await.unwrap();
    assert_eq!(next["token_type"], "DPoP");
    assert_eq!(
        kit::decode_unverified(next["access_token"].as_str().unwrap()).1["cnf"]["jkt"],
        jkt
    );
    // And the next one too.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", next["refresh_token"].as_str().unwrap()),
        ("client_id", id.as_str()),
    ];
    error_of(token_with(&s, &id, "", &[], &form).await, 400, "invalid_grant").await;

    // A bearer token under the DPoP scheme is refused too.
    let (bearer_id, _) = oidc::app_client(&s, "plain", true, true).await;
    let (_, verifier2, code2) = oidc::first_code(&s, &bearer_id, "ada@example.com").await;
    let (status, plain) = oidc::redeem(&s, &bearer_id, "", &code2, &verifier2).await;
    assert_eq!(status, 200);
    assert_eq!(plain["token_type"], "Bearer");
    // Its refresh token is not bound; refreshed with a proof, the next one is (RFC 9449 §5).
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", plain["refresh_token"].as_str().unwrap()),
        ("client_id", bearer_id.as_str()),
    ];
    let r = token_with(&s, &bearer_id, "", &[&token_proof(&s, &key)], &form).await;
    assert_eq!(r.status(), 200);
    let rebound: Value = r.json().await.unwrap();
    assert_eq!(rebound["token_type"], "DPoP");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rebound["refresh_token"].as_str().unwrap()),
        ("client_id", bearer_id.as_str()),
    ];
    error_of(
        token_with(&s, &bearer_id, "", &[], &form).await,
        400,
        "invalid_grant",
    )
    .await;
    error_of(
        token_with(&s, &bearer_id, "", &[&token_proof(&s, &other)], &form).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        token_with(&s, &bearer_id, "", &[&token_proof(&s, &key)], &form)
            .await
            .status(),
        200
    );
    let plain = plain["access_token"].as_str().unwrap();
    let r = userinfo(
        &s,
        &format!("DPoP {plain}"),
        &[&proof(&key, json!({"ath": ath(plain)}))],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(challenge_of(&r).contains("invalid_token"));
    assert_eq!(userinfo(&s, &format!("Bearer {plain}"), &[]).await.status(), 200);
}

#[tokio::test]
async fn the_admin_api_takes_a_dpop_bound_token_only_with_its_proof() {
    let s = kit::start(Default::default()).await;
    let (id, secret) = s
        .client_with(NewClient {
            name: "ops".into(),
            admin: true,
            dpop_bound_tokens: true,
            ..Default::default()
        })
        .await;
    let key = TestKey::new("PS256", "ops");
    let r = client_credentials(&s, &id, &secret, &[&token_proof(&s, &key)]).await;
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let url = s.url("/admin/v1/clients");
    let call = |authorization: String, proof: Option<String>| {
        let mut req = s.http.get(&url).header("authorization", authorization);
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        req.send()
    };
    let good = key.dpop("GET", &url, now(&s), json!({"ath": ath(&token)}));
    assert_eq!(
        call(format!("DPoP {token}"), Some(good.clone()))
            .await
            .unwrap()
            .status(),
        200
    );
    for (why, authorization, proof) in [
        ("replayed", format!("DPoP {token}"), Some(good)),
        ("as Bearer", format!("Bearer {token}"), None),
        ("without proof", format!("DPoP {token}"), None),
        (
            "for another URL",
            format!("DPoP {token}"),
            Some(key.dpop(
                "GET",
                &s.url("/admin/v1/users"),
                now(&s),
                json!({"ath": ath(&token)}),
            )),
        ),
    ] {
        let r = call(authorization, proof).await.unwrap();
        assert_eq!(r.status(), 401, "{why}");
        assert!(
            challenge_of(&r).starts_with("DPoP realm=\"tessera-admin\""),
            "{why}"
        );
    }
}

/// An API protected by tessera-verify at a loopback address it knows as its public URL, nonces
/// required: `GET /invoices` answers with the subject and the key the token was bound to.
async fn verified_api(issuer: &str, audience: &str) -> String {
    use tessera_verify::{Authenticated, BearerAuthLayer, TokenBinding, Verifier};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let verifier = Verifier::builder(issuer)
        .audience(audience)
        .public_url(&base)
        .dpop_nonces(
            b"nonce secret of the API under test",
            std::time::Duration::from_secs(60),
        )
        .build()
        .await
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/invoices",
            axum::routing::get(|Authenticated(c): Authenticated, b: TokenBinding| async move {
                axum::Json(json!({"sub": c.sub, "jkt": b.dpop_jkt}))
            }),
        )
        .layer(BearerAuthLayer::new(verifier));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn nonces_required() -> kit::Opts {
    kit::Opts {
        dpop: Some(tessera::config::DpopSettings {
            require_nonce: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// openid-client makes the proofs, Tessera binds the token, tessera-verify checks it at an API;
/// both ask for nonces, and the independent stack answers both.
#[tokio::test]
async fn openid_client_does_dpop_against_tessera_and_a_tessera_verify_api() {
    if !oidc::node_ready("openid_client_does_dpop_against_tessera_and_a_tessera_verify_api") {
        return;
    }
    let s = kit::start(nonces_required()).await;
    let (id, secret) = service(&s).await;
    let api = verified_api(&s.app().settings.issuer, "https://api.example").await;
    let (base, url) = (s.base.clone(), format!("{api}/invoices"));
    let r = tokio::task::spawn_blocking(move || {
        oidc::run_script(
            "node",
            "openid_client_dpop.mjs",
            &[
                ("ISSUER", &base),
                ("CLIENT_ID", &id),
                ("CLIENT_SECRET", &secret),
                ("API_URL", &url),
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        r["token_type"].as_str().map(str::to_ascii_lowercase).as_deref(),
        Some("dpop"),
        "{r}"
    );
    for call in r["calls"].as_array().unwrap() {
        assert_eq!(call["status"], 200, "{r}");
        assert_eq!(call["body"]["jkt"], r["jkt"], "{r}");
    }
}

/// tessera-client makes the proofs, and an API written with jose from RFC 9449 alone checks
/// them (and asks for its nonce first).
#[tokio::test]
async fn tessera_client_does_dpop_against_an_independent_jose_api() {
    if !oidc::node_ready("tessera_client_does_dpop_against_an_independent_jose_api") {
        return;
    }
    let s = kit::start(Default::default()).await;
    let (id, secret) = service(&s).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rp/jose_dpop_api.mjs");
    /// Stops the API however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut api = Killed(
        std::process::Command::new("node")
            .arg(script)
            .env("ISSUER", &s.app().settings.issuer)
            .env("AUDIENCE", "https://api.example")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = api.0.stdout.take().unwrap();
    let port = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
        serde_json::from_str::<Value>(&line).unwrap()["port"]
            .as_u64()
            .unwrap()
    })
    .await
    .unwrap();
    let key = tessera_client::DpopKey::generate().unwrap();
    let jkt = key.thumbprint().to_string();
    let tokens = tessera_client::TokenClient::builder(&id, &secret)
        .issuer(&s.base)
        .dpop(key)
        .build()
        .await
        .unwrap();
    let http = tessera_client::reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(tessera_client::BearerMiddleware::new(tokens))
        .build();
    let mut results = Vec::new();
    for _ in 0..2 {
        let r = http
            .get(format!("http://127.0.0.1:{port}/invoices"))
            .send()
            .await
            .unwrap();
        results.push((r.status().as_u16(), r.text().await.unwrap()));
    }
    drop(api);
    for (status, body) in results {
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["checked_by"], "jose");
        assert_eq!(body["jkt"], jkt);
    }
}
