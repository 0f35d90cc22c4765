//! The token endpoint: client credentials end to end, and every error case one by one.

use std::collections::HashSet;

use serde_json::Value;
use tessera::admin::NewClient;

use crate::kit::{self, Opts, basic, decode_unverified, encode_form, verify_as_resource_server};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const API: &str = "https://api.example.com";
const API2: &str = "https://billing.example.com";

async fn assert_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status for {code}");
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["pragma"], "no-cache");
    if status == 401 {
        let challenge = h["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic "), "{challenge}");
    }
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
        "error_description outside RFC 6749 alphabet: {description}"
    );
    body
}

#[tokio::test]
async fn basic_auth_issues_a_bearer_jwt_with_rfc_headers() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s.client("read write", &[API]).await;
    let resp = s
        .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["expires_in"].is_u64());
    assert_eq!(body["scope"], "read write", "no scope asked: all allowed scopes");
    assert!(
        body.get("refresh_token").is_none(),
        "RFC 6749 §4.4.3: no refresh token"
    );
    let (header, claims) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    assert_eq!(claims["iss"], s.base.as_str());
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["scope"], "read write");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
}

#[tokio::test]
async fn client_secret_post_works_and_form_fields_are_decoded() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s.client("read", &[]).await;
    let body = encode_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
    ]);
    let resp = s.post_raw("/oauth2/token", &[FORM], body).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (_, claims) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["aud"],
        s.base.as_str(),
        "a client without audiences gets the issuer"
    );
    // A charset parameter on the content type is fine.
    let body = encode_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
    ]);
    let resp = s
        .post_raw(
            "/oauth2/token",
            &[("content-type", "application/x-www-form-urlencoded; charset=UTF-8")],
            body,
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_inside_base64() {
    let s = kit::start(Opts::default()).await;
    let secret = "p:a+s%s w/rd=&é";
    let (id, _) = s
        .client_with(NewClient {
            name: "imported".into(),
            scope: "x".into(),
            secret: Some(secret.into()),
            ..Default::default()
        })
        .await;
    let ok = s
        .token_basic(&id, secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        ok.status(),
        200,
        "RFC 6749 §2.3.1 encoding of a secret with : + % space"
    );
    // Without the form encoding, '+' would mean space and '%s ' is a bad escape: refused.
    let raw = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{id}:{secret}")
        )
    );
    let resp = s
        .post_raw(
            "/oauth2/token",
            &[FORM, ("authorization", &raw)],
            "grant_type=client_credentials",
        )
        .await;
    assert_error(resp, 401, "invalid_client").await;
    // The same imported secret also works in the body.
    let body = encode_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", secret),
    ]);
    assert_eq!(s.post_raw("/oauth2/token", &[FORM], body).await.status(), 200);
}

#[tokio::test]
async fn scopes_are_granted_as_asked_within_the_allowed_set() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s.client("a b c", &[]).await;
    for (asked, granted) in [("b", "b"), ("c a", "c a"), ("a a", "a")] {
        let resp = s
            .token_basic(
                &id,
                &secret,
                &[("grant_type", "client_credentials"), ("scope", asked)],
            )
            .await;
        assert_eq!(resp.status(), 200, "{asked}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["scope"], granted);
        let (_, claims) = decode_unverified(body["access_token"].as_str().unwrap());
        assert_eq!(claims["scope"], granted);
    }
    // An empty scope counts as omitted (RFC 6749 §3.2): all allowed scopes.
    let resp = s
        .token_basic(
            &id,
            &secret,
            &[("grant_type", "client_credentials"), ("scope", "")],
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["scope"], "a b c");
    // Outside the allowed set, or malformed per §3.3.
    for bad in ["d", "a d", "a  b", " a", "a ", "a\"b", "a\\b", "é"] {
        let resp = s
            .token_basic(
                &id,
                &secret,
                &[("grant_type", "client_credentials"), ("scope", bad)],
            )
            .await;
        assert_error(resp, 400, "invalid_scope").await;
    }
}

#[tokio::test]
async fn resource_indicators_select_the_audience() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s.client("a", &[API, API2]).await;
    let aud = |resp: Value| decode_unverified(resp["access_token"].as_str().unwrap()).1["aud"].clone();
    let r = s
        .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(aud(r.json().await.unwrap()), API, "default audience is the first");
    let r = s
        .token_basic(
            &id,
            &secret,
            &[("grant_type", "client_credentials"), ("resource", API2)],
        )
        .await;
    assert_eq!(aud(r.json().await.unwrap()), API2);
    let r = s
        .token_basic(
            &id,
            &secret,
            &[
                ("grant_type", "client_credentials"),
                ("resource", API2),
                ("resource", API),
            ],
        )
        .await;
    assert_eq!(aud(r.json().await.unwrap()), serde_json::json!([API2, API]));
    for bad in [
        "https://other.example.com",
        "/relative",
        "https://api.example.com#frag",
        "not a uri",
    ] {
        let r = s
            .token_basic(
                &id,
                &secret,
                &[("grant_type", "client_credentials"), ("resource", bad)],
            )
            .await;
        assert_error(r, 400, "invalid_target").await;
    }
}

#[tokio::test]
async fn authentication_failures_are_invalid_client_401() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s.client("a", &[]).await;
    let grant = [("grant_type", "client_credentials")];
    // Unknown client, wrong secret (Basic).
    assert_error(
        s.token_basic("no-such-client", &secret, &grant).await,
        401,
        "invalid_client",
    )
    .await;
    assert_error(s.token_basic(&id, "wrong", &grant).await, 401, "invalid_client").await;
    // Wrong secret (post).
    let body = encode_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", "wrong"),
    ]);
    assert_error(
        s.post_raw("/oauth2/token", &[FORM], body).await,
        401,
        "invalid_client",
    )
    .await;
    // No client authentication at all, or only a client_id (no "none" method).
    let r = s
        .post_raw("/oauth2/token", &[FORM], "grant_type=client_credentials")
        .await;
    assert_error(r, 401, "invalid_client").await;
    let body = encode_form(&[("grant_type", "client_credentials"), ("client_id", &id)]);
    assert_error(
        s.post_raw("/oauth2/token", &[FORM], body).await,
        401,
        "invalid_client",
    )
    .await;
    // Malformed Basic, another scheme.
    for header in ["Basic !!!notbase64", "Basic bm9jb2xvbg==", "Bearer abc", "Basic"] {
        let r = s
            .post_raw(
                "/oauth2/token",
                &[FORM, ("authorization", header)],
                "grant_type=client_credentials",
            )
            .await;
        assert_error(r, 401, "invalid_client").await;
    }
    // Disabled client.
    let disable = tessera::admin::ClientUpdate {
        enabled: Some(false),
        ..Default::default()
    };
    tessera::admin::update_client(&s.app().store, &tessera::operation::Actor::cli(), &id, disable)
        .await
        .unwrap();
    s.caught_up().await;
    assert_error(s.token_basic(&id, &secret, &grant).await, 401, "invalid_client").await;
}

#[tokio::test]
async fn malformed_requests_are_invalid_request_400_and_change_nothing() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s.client("a", &[]).await;
    let seq_before = s.app().store.change_seq().await.unwrap();
    let clients_before = s.app().store.clients().await.unwrap();
    let auth = basic(&id, &secret);
    let with_auth = |extra: (&'static str, &'static str)| {
        vec![("authorization", auth.clone()), (extra.0, extra.1.to_string())]
    };
    let cases: Vec<(&str, Vec<(&str, String)>, String)> = vec![
        ("missing grant_type", with_auth(FORM), "scope=a".into()),
        (
            "repeated grant_type",
            with_auth(FORM),
            "grant_type=client_credentials&grant_type=client_credentials".into(),
        ),
        (
            "repeated scope",
            with_auth(FORM),
            "grant_type=client_credentials&scope=a&scope=a".into(),
        ),
        (
            "json body",
            with_auth(("content-type", "application/json")),
            r#"{"grant_type":"client_credentials"}"#.into(),
        ),
        (
            "no content type",
            vec![("authorization", auth.clone())],
            "grant_type=client_credentials".into(),
        ),
        (
            "multipart",
            with_auth(("content-type", "multipart/form-data; boundary=x")),
            "--x--".into(),
        ),
        (
            "bad escape",
            with_auth(FORM),
            "grant_type=client%ZZcredentials".into(),
        ),
        (
            "not utf-8 escape",
            with_auth(FORM),
            "grant_type=client_credentials&scope=%FF".into(),
        ),
        (
            "oversized",
            with_auth(FORM),
            format!("grant_type=client_credentials&pad={}", "x".repeat(64 * 1024)),
        ),
        (
            "two auth methods",
            with_auth(FORM),
            encode_form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ]),
        ),
        (
            "mismatched client_id",
            with_auth(FORM),
            encode_form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "someone-else"),
            ]),
        ),
    ];
    for (name, headers, body) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = s.post_raw("/oauth2/token", &headers, body).await;
        // A declared body over the limit is refused before it is read (413).
        let expected = if name == "oversized" { 413 } else { 400 };
        assert_eq!(resp.status(), expected, "{name}");
        let body = assert_error(resp, expected, "invalid_request").await;
        assert!(!body["error_description"].as_str().unwrap().is_empty(), "{name}");
    }
    // Two Authorization headers.
    let resp = s
        .http
        .post(s.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", auth.clone())
        .header("authorization", auth.clone())
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_request").await;
    // A client_id in the body that matches Basic is not a second method.
    let body = encode_form(&[("grant_type", "client_credentials"), ("client_id", &id)]);
    assert_eq!(
        s.post_raw("/oauth2/token", &[FORM, ("authorization", &auth)], body)
            .await
            .status(),
        200
    );
    // Parameters without a value are treated as omitted (RFC 6749 §3.2), so they cannot repeat.
    let body = "grant_type=&grant_type=client_credentials&scope=&scope=";
    let r = s
        .post_raw("/oauth2/token", &[FORM, ("authorization", &auth)], body)
        .await;
    assert_eq!(r.status(), 200);
    // Unrecognised parameters are ignored (RFC 6749 §3.2).
    let r = s
        .token_basic(
            &id,
            &secret,
            &[("grant_type", "client_credentials"), ("foo", "bar")],
        )
        .await;
    assert_eq!(r.status(), 200);

    assert_eq!(
        s.app().store.change_seq().await.unwrap(),
        seq_before,
        "a request changed the store"
    );
    assert_eq!(s.app().store.clients().await.unwrap(), clients_before);
}

#[tokio::test]
async fn other_grant_types_and_methods_are_refused() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s.client("a", &[]).await;
    for grant in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:saml2-bearer",
        "client_credentials ",
    ] {
        let r = s.token_basic(&id, &secret, &[("grant_type", grant)]).await;
        assert_error(r, 400, "unsupported_grant_type").await;
    }
    // Grants this server has, but a machine client may not use (RFC 6749 §5.2).
    for grant in [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let r = s.token_basic(&id, &secret, &[("grant_type", grant)]).await;
        assert_error(r, 400, "unauthorized_client").await;
    }
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = s
            .http
            .request(method.clone(), s.url("/oauth2/token"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "POST");
    }
}

#[tokio::test]
async fn token_lifetime_is_per_client_and_jti_is_unique() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s
        .client_with(NewClient {
            name: "short".into(),
            scope: "a".into(),
            token_ttl: Some(120),
            ..Default::default()
        })
        .await;
    let mut jtis = HashSet::new();
    for _ in 0..50 {
        let body: Value = s
            .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["expires_in"], 120);
        let (_, claims) = decode_unverified(body["access_token"].as_str().unwrap());
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            120
        );
        assert!(
            jtis.insert(claims["jti"].as_str().unwrap().to_string()),
            "jti repeated"
        );
    }
}

#[tokio::test]
async fn configured_aliases_serve_the_token_endpoint() {
    let s = kit::start(Opts {
        aliases: Some("/connect/token,/api/id/v1/auth/token"),
        ..Default::default()
    })
    .await;
    let (id, secret) = s.client("a", &[]).await;
    for path in ["/connect/token", "/api/id/v1/auth/token"] {
        let body = encode_form(&[("grant_type", "client_credentials")]);
        let r = s
            .post_raw(path, &[FORM, ("authorization", &basic(&id, &secret))], body)
            .await;
        assert_eq!(r.status(), 200, "{path}");
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 405);
    }
    assert_eq!(
        s.http
            .post(s.url("/ids/auth/login"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// The other way round: tessera-verify checks tokens an independent JOSE library signs (Node's
/// jose): every algorithm it is allowed, with keys published without `alg` as many issuers do
/// (RSA keys serving both PKCS #1 v1.5 and PSS), several audiences, custom claims; and with its
/// default allow-list (ES256, RS256, EdDSA) it refuses the others.
#[tokio::test]
async fn tessera_verify_checks_what_an_independent_library_signs_and_no_more() {
    use tessera_verify::{Algorithm, Verifier, VerifyError};
    if !crate::oidc::node_ready("tessera_verify_checks_what_an_independent_library_signs_and_no_more") {
        return;
    }
    let minted = tokio::task::spawn_blocking(|| crate::oidc::run_script("node", "jose_mint.mjs", &[]))
        .await
        .unwrap();
    let tokens = minted["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 7);
    let builder = || {
        Verifier::builder("https://issuer.example")
            .audience("https://api.example")
            .jwks(minted["jwks"].clone())
    };
    use Algorithm::*;
    let every = builder()
        .algorithms(&[RS256, RS384, PS256, PS512, ES256, ES384, EdDSA])
        .build()
        .await
        .unwrap();
    let default = builder().build().await.unwrap();
    for t in tokens {
        let (alg, token) = (t["alg"].as_str().unwrap(), t["token"].as_str().unwrap());
        let claims = every.verify(token).await.unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims.jti, format!("jti-{alg}"));
        assert_eq!(claims.client_id, "svc-1");
        assert!(claims.has_all_scopes(["orders:read", "orders:write"]), "{alg}");
        assert_eq!(claims.claim::<String>("tenant").as_deref(), Some("acme"), "{alg}");
        assert_eq!(claims.aud, ["https://other.example", "https://api.example"]);
        let by_default = default.verify(token).await;
        if matches!(alg, "ES256" | "RS256" | "EdDSA") {
            assert!(by_default.is_ok(), "{alg}: {by_default:?}");
        } else {
            assert_eq!(by_default.err(), Some(VerifyError::AlgorithmNotAllowed), "{alg}");
        }
    }
}

#[tokio::test]
async fn a_resource_server_verifies_tokens_with_an_independent_library() {
    for alg in ["ES256", "RS256", "EdDSA"] {
        let s = kit::start(Opts {
            alg: Some(alg),
            ..Default::default()
        })
        .await;
        let (id, secret) = s.client("a", &[API]).await;
        let body: Value = s
            .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
            .await
            .json()
            .await
            .unwrap();
        let jwt = body["access_token"].as_str().unwrap();
        assert_eq!(decode_unverified(jwt).0["alg"], alg);
        let jwks_url = s.url("/.well-known/jwks.json");
        let claims = verify_as_resource_server(&s.http, &jwks_url, jwt, &s.base, API)
            .await
            .unwrap();
        assert_eq!(claims["client_id"], id.as_str());
        // Wrong audience, wrong issuer, tampered claims: refused.
        assert!(
            verify_as_resource_server(&s.http, &jwks_url, jwt, &s.base, API2)
                .await
                .is_err()
        );
        assert!(
            verify_as_resource_server(&s.http, &jwks_url, jwt, "https://evil", API)
                .await
                .is_err()
        );
        let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
        let (_, mut claims) = decode_unverified(jwt);
        claims["scope"] = "admin".into();
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims.to_string(),
        );
        let forged = parts.join(".");
        assert!(
            verify_as_resource_server(&s.http, &jwks_url, &forged, &s.base, API)
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let timeout = std::time::Duration::from_secs(1);
    let s = kit::start(Opts {
        request_timeout: Some(timeout),
        ..Default::default()
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let read_all = |mut c: tokio::net::TcpStream| async move {
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).to_string()
    };
    // Headers that never end: the server hangs up instead of waiting forever.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let closed = tokio::time::timeout(timeout * 10, read_all(c)).await;
    assert!(closed.is_ok(), "a stalled request kept its connection");
    // A body promised but never sent: an OAuth error, then the connection ends.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
    )
    .await
    .unwrap();
    let answer = tokio::time::timeout(timeout * 10, read_all(c))
        .await
        .expect("no answer to a stalled body");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_request"), "{answer}");
}
