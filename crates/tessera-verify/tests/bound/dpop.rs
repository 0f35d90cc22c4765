//! Bound tokens at an API behind tessera-verify: DPoP-bound tokens from a real Tessera, checked
//! with their proofs by the tower layer (served on a loopback port, addressed through the
//! public URL a proxy would give it), every refusal, nonces, the three binding policies, and
//! certificate-bound tokens.

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tessera::admin::NewClient;
use tessera_testkit::keys::{TestKey, ath};
use tessera_verify::dpop::{Binding, Window};
use tessera_verify::{Authenticated, BearerAuthLayer, TokenBinding, Verifier};

use super::{API, serve};

/// A Tessera with a client whose tokens are bound to a DPoP key.
struct DpopIssuer {
    _running: tessera::server::Running,
    base: String,
    _dir: tempfile::TempDir,
    id: String,
    secret: String,
}

async fn dpop_issuer() -> DpopIssuer {
    let dir = tempfile::tempdir().unwrap();
    let running = tessera_testkit::local(dir.path(), Default::default()).await;
    let created = tessera_testkit::register(
        &running,
        NewClient {
            name: "bound caller".into(),
            scope: "invoices:read".into(),
            audiences: vec![API.into()],
            dpop_bound_tokens: true,
            ..Default::default()
        },
    )
    .await;
    DpopIssuer {
        base: running.base_url(),
        _running: running,
        _dir: dir,
        id: created.client.id,
        secret: created.secret,
    }
}

fn now() -> i64 {
    tessera::model::clock::unix_now()
}

impl DpopIssuer {
    /// A token bound to `key`.
    async fn token(&self, key: &TestKey) -> String {
        let url = format!("{}/oauth2/token", self.base);
        let r: Value = reqwest::Client::new()
            .post(&url)
            .basic_auth(&self.id, Some(&self.secret))
            .header("dpop", key.dpop("POST", &url, now(), json!({})))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["token_type"], "DPoP", "{r}");
        r["access_token"].as_str().unwrap().to_string()
    }
}

/// An API at a loopback address, whose public URL is `API`: a handler that answers with what
/// the token was bound to.
async fn api(verifier: Verifier) -> String {
    let app = Router::new()
        .route(
            "/invoices",
            get(
                |Authenticated(c): Authenticated, binding: TokenBinding| async move {
                    axum::Json(json!({"sub": c.sub, "jkt": binding.dpop_jkt, "x5t": binding.certificate}))
                },
            ),
        )
        .layer(BearerAuthLayer::new(verifier).realm("invoices"));
    serve(app).await
}

async fn call(api: &str, authorization: &str, proofs: &[&str]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(format!("{api}/invoices"))
        .header("authorization", authorization);
    for p in proofs {
        req = req.header("dpop", *p);
    }
    req.send().await.unwrap()
}

fn challenges(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_api_takes_a_dpop_bound_token_only_with_a_proof_of_its_key() {
    let issuer = dpop_issuer().await;
    let verifier = Verifier::builder(&issuer.base)
        .audience(API)
        .build()
        .await
        .unwrap();
    let api = api(verifier).await;
    let key = TestKey::new("ES256", "client");
    let other = TestKey::new("ES256", "thief");
    let token = issuer.token(&key).await;
    // The proof names the API's public URL, not the loopback address it was reached at.
    let htu = format!("{API}/invoices");
    let good = key.dpop("GET", &htu, now(), json!({"ath": ath(&token)}));
    let r = call(&api, &format!("DPoP {token}"), &[&good]).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["jkt"], key.thumbprint(), "the handler sees the binding");
    assert_eq!(body["sub"], issuer.id);

    let proof = |k: &TestKey, htm: &str, url: &str, iat: i64, extra: Value| k.dpop(htm, url, iat, extra);
    let with_ath = json!({"ath": ath(&token)});
    let mut wrong_typ = key.public_jwk();
    wrong_typ["d"] = "AAAA".into();
    let cases: Vec<(&str, String, Vec<String>, &str)> = vec![
        (
            "replayed",
            format!("DPoP {token}"),
            vec![good.clone()],
            "invalid_dpop_proof",
        ),
        ("as Bearer", format!("Bearer {token}"), vec![], "invalid_token"),
        (
            "as Bearer with a proof",
            format!("Bearer {token}"),
            vec![proof(&key, "GET", &htu, now(), with_ath.clone())],
            "invalid_token",
        ),
        ("no proof", format!("DPoP {token}"), vec![], "invalid_dpop_proof"),
        (
            "no ath",
            format!("DPoP {token}"),
            vec![proof(&key, "GET", &htu, now(), json!({}))],
            "invalid_dpop_proof",
        ),
        (
            "wrong ath",
            format!("DPoP {token}"),
            vec![proof(&key, "GET", &htu, now(), json!({"ath": ath("x")}))],
            "invalid_dpop_proof",
        ),
        (
            "another key",
            format!("DPoP {token}"),
            vec![proof(&other, "GET", &htu, now(), with_ath.clone())],
            "invalid_dpop_proof",
        ),
        (
            "wrong htm",
            format!("DPoP {token}"),
            vec![proof(&key, "POST", &htu, now(), with_ath.clone())],
            "invalid_dpop_proof",
        ),
        (
            "the loopback URL",
            format!("DPoP {token}"),
            vec![proof(
                &key,
                "GET",
                &format!("{api}/invoices"),
                now(),
                with_ath.clone(),
            )],
            "invalid_dpop_proof",
        ),
        (
            "another path",
            format!("DPoP {token}"),
            vec![proof(
                &key,
                "GET",
                &format!("{API}/other"),
                now(),
                with_ath.clone(),
            )],
            "invalid_dpop_proof",
        ),
        (
            "stale",
            format!("DPoP {token}"),
            vec![proof(&key, "GET", &htu, now() - 600, with_ath.clone())],
            "invalid_dpop_proof",
        ),
        (
            "future",
            format!("DPoP {token}"),
            vec![proof(&key, "GET", &htu, now() + 600, with_ath.clone())],
            "invalid_dpop_proof",
        ),
        (
            "private key in jwk",
            format!("DPoP {token}"),
            vec![key.dpop_with(
                json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": wrong_typ}),
                "GET",
                &htu,
                now(),
                with_ath.clone(),
            )],
            "invalid_dpop_proof",
        ),
        (
            "wrong typ",
            format!("DPoP {token}"),
            vec![key.dpop_with(
                json!({"typ": "JWT", "alg": "ES256", "jwk": key.public_jwk()}),
                "GET",
                &htu,
                now(),
                with_ath.clone(),
            )],
            "invalid_dpop_proof",
        ),
        (
            "two proofs",
            format!("DPoP {token}"),
            vec![
                proof(&key, "GET", &htu, now(), with_ath.clone()),
                proof(&key, "GET", &htu, now(), with_ath.clone()),
            ],
            "invalid_dpop_proof",
        ),
    ];
    for (why, authorization, proofs, error) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = call(&api, &authorization, &proofs).await;
        assert_eq!(r.status(), 401, "{why}");
        let c = challenges(&r);
        // RFC 9449 §7.2: a bound token sent as Bearer hears of it on that scheme too.
        let expected = if authorization.starts_with("Bearer ") {
            2
        } else {
            1
        };
        assert_eq!(c.len(), expected, "{why}: {c:?}");
        if expected == 2 {
            assert!(
                c[0].starts_with("Bearer realm=\"invoices\", error=\"invalid_token\""),
                "{why}: {c:?}"
            );
        }
        let d = c.last().unwrap();
        assert!(d.starts_with("DPoP realm=\"invoices\""), "{why}: {c:?}");
        assert!(d.contains(&format!("error=\"{error}\"")), "{why}: {c:?}");
        assert!(
            d.contains("algs=\"ES256 ES384 EdDSA RS256 PS256\""),
            "{why}: {c:?}"
        );
    }
    // No credentials: both schemes are offered.
    let r = reqwest::get(format!("{api}/invoices")).await.unwrap();
    assert_eq!(r.status(), 401);
    let c = challenges(&r);
    assert_eq!(c[0], "Bearer realm=\"invoices\"");
    assert!(c[1].starts_with("DPoP realm=\"invoices\", algs="), "{c:?}");
}

#[tokio::test]
async fn nonces_and_binding_policies_at_an_api() {
    let issuer = dpop_issuer().await;
    let key = TestKey::new("EdDSA", "client");
    let token = issuer.token(&key).await;
    let htu = format!("{API}/invoices");
    // Nonces: the first proof is answered with one; a proof carrying it passes.
    let with_nonces = Verifier::builder(&issuer.base)
        .audience(API)
        .dpop_nonces(
            b"a secret every instance of the API shares",
            std::time::Duration::from_secs(60),
        )
        .build()
        .await
        .unwrap();
    let api_n = api(with_nonces).await;
    let first = key.dpop("GET", &htu, now(), json!({"ath": ath(&token)}));
    let r = call(&api_n, &format!("DPoP {token}"), &[&first]).await;
    assert_eq!(r.status(), 401);
    assert!(challenges(&r)[0].contains("error=\"use_dpop_nonce\""));
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_string();
    let second = key.dpop("GET", &htu, now(), json!({"ath": ath(&token), "nonce": nonce}));
    assert_eq!(
        call(&api_n, &format!("DPoP {token}"), &[&second]).await.status(),
        200
    );

    // Bound tokens only: a bearer token is refused, a bound one passes.
    let plain = {
        let r: Value = reqwest::Client::new()
            .post(format!("{}/oauth2/token", issuer.base))
            .basic_auth(&issuer.id, Some(&issuer.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // This client is registered for DPoP: without a proof it gets nothing.
        assert_eq!(r["error"], "invalid_request");
        tessera_verify::testing::TestIssuer::new("https://auth.example.com")
    };
    let strict = Verifier::builder(plain.issuer())
        .audience(API)
        .jwks(plain.jwks())
        .binding(Binding::Require)
        .build()
        .await
        .unwrap();
    let api_s = api(strict).await;
    let bearer = plain.token(API).sign();
    let r = call(&api_s, &format!("Bearer {bearer}"), &[]).await;
    assert_eq!(r.status(), 401);
    assert!(challenges(&r)[0].contains("error=\"invalid_token\""));
    let bound = plain
        .token(API)
        .claim("cnf", json!({"jkt": key.thumbprint()}))
        .sign();
    let proof = key.dpop("GET", &htu, now(), json!({"ath": ath(&bound)}));
    assert_eq!(
        call(&api_s, &format!("DPoP {bound}"), &[&proof]).await.status(),
        200
    );

    // Bearer tokens only: DPoP is refused, and a DPoP-bound token cannot pass as a bearer one.
    let bearer_only = Verifier::builder(plain.issuer())
        .audience(API)
        .jwks(plain.jwks())
        .binding(Binding::BearerOnly)
        .dpop_window(Window {
            max_age: 60,
            leeway: 5,
        })
        .build()
        .await
        .unwrap();
    let api_b = api(bearer_only).await;
    assert_eq!(call(&api_b, &format!("Bearer {bearer}"), &[]).await.status(), 200);
    let proof = key.dpop("GET", &htu, now(), json!({"ath": ath(&bound)}));
    assert_eq!(
        call(&api_b, &format!("DPoP {bound}"), &[&proof]).await.status(),
        401
    );
    assert_eq!(call(&api_b, &format!("Bearer {bound}"), &[]).await.status(), 401);
    let r = reqwest::get(format!("{api_b}/invoices")).await.unwrap();
    assert_eq!(challenges(&r), vec!["Bearer realm=\"invoices\"".to_string()]);
}

#[tokio::test]
async fn a_certificate_bound_token_needs_its_certificate() {
    use base64::Engine;
    let issuer = tessera_verify::testing::TestIssuer::new("https://auth.example.com");
    let cert = rcgen::generate_simple_self_signed(vec!["billing.example".into()]).unwrap();
    let der = cert.cert.der().to_vec();
    let thumbprint = tessera_verify::certificate_thumbprint(&der);
    assert_eq!(
        thumbprint,
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der))
    );
    let verifier = Verifier::builder(issuer.issuer())
        .audience(API)
        .jwks(issuer.jwks())
        .certificate_header("X-Client-Cert")
        .build()
        .await
        .unwrap();
    let api = api(verifier).await;
    let token = issuer
        .token(API)
        .claim("cnf", json!({"x5t#S256": thumbprint}))
        .sign();
    let escaped = |pem: &str| {
        percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{api}/invoices"))
        .bearer_auth(&token)
        .header("x-client-cert", escaped(&cert.cert.pem()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["x5t"], thumbprint);
    let stranger = rcgen::generate_simple_self_signed(vec!["other.example".into()]).unwrap();
    for header in [Some(escaped(&stranger.cert.pem())), None] {
        let mut req = http.get(format!("{api}/invoices")).bearer_auth(&token);
        if let Some(h) = header {
            req = req.header("x-client-cert", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(challenges(&r)[0].contains("error=\"invalid_token\""));
    }
}

#[tokio::test]
async fn a_certificate_header_is_believed_only_from_trusted_proxies() {
    let issuer = tessera_verify::testing::TestIssuer::new("https://auth.example.com");
    let cert = rcgen::generate_simple_self_signed(vec!["billing.example".into()]).unwrap();
    let thumbprint = tessera_verify::certificate_thumbprint(cert.cert.der());
    let token = issuer
        .token(API)
        .claim("cnf", json!({"x5t#S256": thumbprint}))
        .sign();
    let header = percent_encoding::utf8_percent_encode(&cert.cert.pem(), percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    for (trusted, status) in [("127.0.0.0/8", 200), ("10.0.0.0/8", 401)] {
        let verifier = Verifier::builder(issuer.issuer())
            .audience(API)
            .jwks(issuer.jwks())
            .certificate_header("X-Client-Cert")
            .trusted_proxies([trusted])
            .build()
            .await
            .unwrap();
        let app = Router::new()
            .route("/invoices", get(|| async { "ok" }))
            .layer(BearerAuthLayer::new(verifier));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap()
        });
        let r = reqwest::Client::new()
            .get(format!("http://{addr}/invoices"))
            .bearer_auth(&token)
            .header("x-client-cert", &header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "proxies {trusted}");
    }
    let bad = Verifier::builder(issuer.issuer())
        .audience(API)
        .jwks(issuer.jwks())
        .trusted_proxies(["not a network"])
        .build()
        .await;
    assert!(matches!(bad, Err(tessera_verify::VerifyError::Config(_))));
}

/// `Verifier::verify` sees only the token, not how it came: it refuses bound tokens rather than
/// take them as bearer ones; `verify_request` (blocking too) checks them whole.
#[tokio::test]
async fn bound_tokens_need_the_whole_request() {
    let issuer = tessera_verify::testing::TestIssuer::new("https://auth.example.com");
    let key = TestKey::new("ES256", "client");
    let verifier = Verifier::builder(issuer.issuer())
        .audience(API)
        .jwks(issuer.jwks())
        .build()
        .await
        .unwrap();
    let bound = issuer
        .token(API)
        .claim("cnf", json!({"jkt": key.thumbprint()}))
        .sign();
    assert_eq!(
        verifier.verify(&bound).await.err(),
        Some(tessera_verify::VerifyError::Bound)
    );
    assert!(verifier.verify(&issuer.token(API).sign()).await.is_ok());
    // A short nonce secret would make nonces guessable.
    let short = Verifier::builder(issuer.issuer())
        .audience(API)
        .jwks(issuer.jwks())
        .dpop_nonces(b"short", std::time::Duration::from_secs(60))
        .build()
        .await;
    assert!(matches!(short, Err(tessera_verify::VerifyError::Config(_))));
    // No URL for htu (an audience that is not one, no public_url): DPoP is refused, not guessed.
    let no_url = Verifier::builder(issuer.issuer())
        .audience("urn:example:api")
        .jwks(issuer.jwks())
        .build()
        .await
        .unwrap();
    let token = issuer
        .token("urn:example:api")
        .claim("cnf", json!({"jkt": key.thumbprint()}))
        .sign();
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", format!("DPoP {token}").parse().unwrap());
    headers.insert(
        "dpop",
        key.dpop("GET", "/invoices", now(), json!({"ath": ath(&token)}))
            .parse()
            .unwrap(),
    );
    let parts = tessera_verify::RequestParts {
        method: "GET",
        path: "/invoices",
        query: None,
        headers: &headers,
        certificate: None,
        peer: None,
    };
    assert_eq!(
        no_url.verify_request(&parts).await.err(),
        Some(tessera_verify::RequestError::Binding(
            tessera_verify::dpop::BindingError::DpopNotAccepted
        ))
    );
    #[cfg(feature = "blocking")]
    {
        let builder = Verifier::builder(issuer.issuer())
            .audience(API)
            .jwks(issuer.jwks());
        let (bound, thumbprint) = (bound.clone(), key.thumbprint());
        let proof = key.dpop(
            "GET",
            &format!("{API}/invoices"),
            now(),
            json!({"ath": ath(&bound)}),
        );
        let verified = tokio::task::spawn_blocking(move || {
            let blocking = tessera_verify::blocking::Verifier::new(builder).unwrap();
            let mut headers = http::HeaderMap::new();
            headers.insert("authorization", format!("DPoP {bound}").parse().unwrap());
            headers.insert("dpop", proof.parse().unwrap());
            let parts = tessera_verify::RequestParts {
                method: "GET",
                path: "/invoices",
                query: None,
                headers: &headers,
                certificate: None,
                peer: None,
            };
            blocking.verify_request(&parts).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(verified.binding.dpop_jkt, Some(thumbprint));
    }
}
