//! Discovery (RFC 8414, OpenID Connect discovery), the JWKS (RFC 7517) and health endpoints.

use serde_json::Value;

use crate::kit::{self, Opts};

#[tokio::test]
async fn authorization_server_metadata_has_every_required_field() {
    let s = kit::start(Opts::default()).await;
    let r = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let m: Value = r.json().await.unwrap();
    // RFC 8414 §3.3: issuer equals the URL the metadata was fetched from, minus the well-known part.
    assert_eq!(m["issuer"], s.base.as_str());
    assert_eq!(m["token_endpoint"], s.url("/oauth2/token"));
    assert_eq!(m["jwks_uri"], s.url("/.well-known/jwks.json"));
    assert_eq!(
        m["response_types_supported"],
        serde_json::json!(["code"]),
        "REQUIRED by RFC 8414 §2"
    );
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "client_credentials",
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    // RFC 8414 §2: REQUIRED with private_key_jwt; client_secret_jwt is not offered (it needs
    // the secret in clear, and only hashes of secrets are stored).
    assert_eq!(
        m["token_endpoint_auth_signing_alg_values_supported"],
        serde_json::json!(["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"])
    );
    assert_eq!(m["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    // The advertised endpoints work.
    assert_eq!(
        s.http
            .get(m["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.http
            .get(m["token_endpoint"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

#[tokio::test]
async fn openid_configuration_adds_what_oidc_discovery_requires() {
    let s = kit::start(Opts::default()).await;
    let m = s.get_json("/.well-known/openid-configuration").await;
    assert_eq!(m["issuer"], s.base.as_str());
    assert_eq!(m["token_endpoint"], s.url("/oauth2/token"));
    assert_eq!(m["jwks_uri"], s.url("/.well-known/jwks.json"));
    // OpenID Connect Discovery 1.0 §3: every REQUIRED member, and the endpoints a relying party
    // uses, at this issuer.
    assert_eq!(m["authorization_endpoint"], s.url("/oauth2/authorize"));
    assert_eq!(m["userinfo_endpoint"], s.url("/oauth2/userinfo"));
    assert_eq!(m["end_session_endpoint"], s.url("/oauth2/logout"));
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(m["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(
        m["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"]),
        "OIDC discovery: RS256 MUST be listed, and ID tokens are signed with it"
    );
    assert_eq!(m["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    let scopes = m["scopes_supported"].as_array().unwrap();
    assert!(scopes.iter().any(|s| s == "openid"), "{m}");
    for claim in ["sub", "iss", "auth_time", "email", "name"] {
        assert!(
            m["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == claim),
            "{claim} missing from claims_supported"
        );
    }
    assert_eq!(m["request_uri_parameter_supported"], false);
}

#[tokio::test]
async fn jwks_lists_public_keys_only_with_a_cache_lifetime() {
    for (alg, kty) in [("ES256", "EC"), ("RS256", "RSA"), ("EdDSA", "OKP")] {
        let s = kit::start(Opts {
            alg: Some(alg),
            ..Default::default()
        })
        .await;
        let r = s.http.get(s.url("/.well-known/jwks.json")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "public, max-age=300");
        let jwks: Value = r.json().await.unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let k = &keys[0];
        assert_eq!(k["kty"], kty);
        assert_eq!(k["alg"], alg);
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                k.get(private).is_none(),
                "{alg}: private member {private} published"
            );
        }
        match kty {
            "EC" => assert!(k["crv"] == "P-256" && k["x"].is_string() && k["y"].is_string()),
            "RSA" => assert!(k["n"].is_string() && k["e"] == "AQAB"),
            _ => assert!(k["crv"] == "Ed25519" && k["x"].is_string()),
        }
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let s = kit::start(Opts::default()).await;
    assert_eq!(s.get_json("/healthz").await["status"], "ok");
    assert_eq!(s.get_json("/readyz").await["status"], "ready");
    let r = s.http.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn an_issuer_with_a_path_advertises_endpoints_that_work() {
    let s = kit::start(Opts {
        issuer_path: Some("/tenant"),
        ..Default::default()
    })
    .await;
    let issuer = s.url("/tenant");
    // RFC 8414 §3.1: the well-known part is inserted before the issuer's path.
    let m = s.get_json("/.well-known/oauth-authorization-server/tenant").await;
    assert_eq!(m["issuer"], issuer.as_str());
    assert_eq!(m["token_endpoint"], format!("{issuer}/oauth2/token"));
    // OpenID Connect appends the well-known part to the issuer.
    let oidc = s.get_json("/tenant/.well-known/openid-configuration").await;
    assert_eq!(oidc["issuer"], issuer.as_str());
    let jwks: Value = s
        .http
        .get(m["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let (id, secret) = s.client("a", &[]).await;
    let r = s
        .http
        .post(m["token_endpoint"].as_str().unwrap())
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let claims = kit::decode_unverified(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["iss"], issuer.as_str());
}

#[tokio::test]
async fn the_authorization_endpoint_shows_errors_it_cannot_redirect() {
    let s = kit::start(Opts::default()).await;
    let m = s.get_json("/.well-known/openid-configuration").await;
    let url = m["authorization_endpoint"].as_str().unwrap();
    // An unknown client: nowhere registered to send the error to, so a page says it.
    let r = s
        .http
        .get(format!(
            "{url}?response_type=code&client_id=x&redirect_uri=https%3A%2F%2Fevil.example%2F"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(r.text().await.unwrap().contains("not registered"));
    let rfc8414 = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(rfc8414["authorization_endpoint"], url);
}
