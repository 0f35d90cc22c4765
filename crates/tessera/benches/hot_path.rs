//! Micro-benchmarks of each step of the token endpoint's hot path, so that a regression points at
//! its step: parse (form and Basic credentials), authenticate (registry lookup and secret check),
//! mint (claims and their JSON), sign (one JWS per algorithm: the bare signature loop the
//! endpoint is compared with), serialize (the response body); a DPoP proof's check; and a `private_key_jwt` assertion's
//! check (header, key, signature, claims; the store's single-use insert is measured end to end
//! by `bench/token.sh`) beside a bare ES256 signature verification.
//!
//! Run with `cargo bench -p tessera --bench hot_path`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::hint::black_box;

use axum::http::{HeaderMap, HeaderValue, header};
use criterion::{Criterion, criterion_group, criterion_main};
use tessera::admin::{NewClient, build_client};
use tessera::clients::Registry;
use tessera::keys::{Alg, Signer, generate};
use tessera::oauth::client_auth::credentials;
use tessera::oauth::form::Form;
use tessera::oauth::mint::{AudienceRef, Issued, Subject, mint, new_jti, token_response_json};
use tessera_proto::{AccessTokenClaims, Audience};

fn claims(client_id: &str) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: client_id.into(),
        aud: Audience::One("https://api.example.com".into()),
        exp: 1_800_003_600,
        iat: 1_800_000_000,
        jti: new_jti(),
        client_id: client_id.into(),
        scope: Some("demo:read demo:write".into()),
        extra: Default::default(),
    }
}

fn hot_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let created = build_client(
        NewClient {
            name: "bench".into(),
            scope: "demo:read demo:write".into(),
            ..Default::default()
        },
        tessera::model::clock::unix_now(),
    )
    .unwrap();
    let imported = build_client(
        NewClient {
            name: "bench-imported".into(),
            scope: "demo:read".into(),
            secret: Some("imported-secret-0123456789".into()),
            ..Default::default()
        },
        tessera::model::clock::unix_now(),
    )
    .unwrap();
    let id = created.client.id.clone();
    let secret = created.secret.clone();
    let registry = Registry::new();
    registry.replace_all(vec![created.client.clone(), imported.client.clone()]);

    let body = b"grant_type=client_credentials&scope=demo%3Aread+demo%3Awrite";
    let mut headers = HeaderMap::new();
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{id}:{secret}"),
    );
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
    );

    c.bench_function("parse: form body and Basic credentials", |b| {
        b.iter(|| {
            let form = Form::parse(black_box(body)).unwrap();
            black_box(credentials(&headers, &form, None).unwrap());
        })
    });
    c.bench_function("authenticate: generated secret (SHA-256)", |b| {
        b.iter(|| black_box(rt.block_on(registry.authenticate(&id, &secret)).is_ok()))
    });
    // The first call pays Argon2id; later ones hit the verified-secret cache.
    let imported_id = imported.client.id.clone();
    assert!(
        rt.block_on(registry.authenticate(&imported_id, &imported.secret))
            .is_ok()
    );
    c.bench_function("authenticate: imported secret (Argon2id, cached)", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(registry.authenticate(&imported_id, &imported.secret))
                    .is_ok(),
            )
        })
    });
    let client = registry.get(&id).unwrap();
    let aud = AudienceRef::One("https://api.example.com");
    c.bench_function("mint: claims and their JSON", |b| {
        b.iter(|| {
            let scope = Some(Cow::Borrowed(black_box("demo:read demo:write")));
            black_box(
                mint(
                    "http://127.0.0.1:8080",
                    &client,
                    Subject::Client,
                    scope,
                    &aud,
                    1_800_000_000,
                    None,
                )
                .unwrap(),
            )
        })
    });
    let claims_json = serde_json::to_vec(&claims(&id)).unwrap();
    let mut token = String::new();
    for alg in [Alg::ES256, Alg::RS256, Alg::EdDSA] {
        let key = generate(alg).unwrap();
        let signer = Signer::new(&key.kid, alg, &key.pkcs8).unwrap();
        c.bench_function(&format!("sign: {} JWS of the claims", alg.as_str()), |b| {
            b.iter(|| black_box(signer.sign_jwt(black_box(&claims_json)).unwrap()))
        });
        if alg == Alg::ES256 {
            token = signer.sign_jwt(&claims_json).unwrap();
        }
    }
    // A private_key_jwt assertion (ES256) against a bare verification of the same signature.
    let client_key = tessera_testkit::keys::TestKey::new("ES256", "bench-1");
    let ring = tessera_verify::jws::KeyRing::from_jwks(
        &client_key.jwks(),
        tessera::model::auth::ASSERTION_ALGORITHMS,
    );
    let now = tessera::model::clock::unix_now();
    let assertion = client_key.jwt(&serde_json::json!({
        "iss": id, "sub": id, "aud": "http://127.0.0.1:8080", "iat": now, "exp": now + 60,
        "jti": "bench-jti-0123456789",
    }));
    let (input, sig) = assertion.rsplit_once('.').unwrap();
    let sig = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
    let key = ring.get("bench-1").unwrap().clone();
    assert!(key.verify(tessera_verify::Algorithm::ES256, input.as_bytes(), &sig));
    c.bench_function("verify: ES256 signature alone", |b| {
        b.iter(|| {
            black_box(key.verify(
                tessera_verify::Algorithm::ES256,
                black_box(input.as_bytes()),
                &sig,
            ))
        })
    });
    use tessera::oauth::client_auth::private_key_jwt::{Expect, preflight, verify_signed};
    let expect = Expect {
        client_id: &id,
        issuer: "http://127.0.0.1:8080",
        token_endpoint: Some("http://127.0.0.1:8080/oauth2/token"),
        now,
        max_lifetime: 3600,
    };
    c.bench_function("authenticate: private_key_jwt ES256 assertion (no store)", |b| {
        b.iter(|| {
            let token = preflight(black_box(&assertion)).unwrap();
            let key = tessera::client_keys::pick(&ring, token.kid.as_deref(), token.alg).unwrap();
            black_box(verify_signed(&token, &key, &expect).unwrap())
        })
    });
    // A DPoP proof at the token endpoint (ES256), checked as the endpoint checks it, without
    // its single-use record in the store: the same proof every time (`check` does not remember).
    let dpop_key = tessera_testkit::keys::TestKey::new("ES256", "dpop");
    let proof = dpop_key.dpop(
        "POST",
        "http://127.0.0.1:8080/oauth2/token",
        now,
        serde_json::json!({}),
    );
    let request = tessera_verify::dpop::Request::new("POST", "http://127.0.0.1:8080/oauth2/token");
    let window = tessera_verify::dpop::Window::default();
    tessera_verify::dpop::check(&proof, &request, now, window).unwrap();
    c.bench_function("authenticate: DPoP ES256 proof (no store)", |b| {
        b.iter(|| black_box(tessera_verify::dpop::check(black_box(&proof), &request, now, window).unwrap()))
    });
    c.bench_function("serialize: token response JSON", |b| {
        b.iter(|| {
            let issued = Issued {
                access_token: token.clone(),
                token_type: "Bearer",
                expires_in: 3600,
                scope: Some(Cow::Borrowed("demo:read demo:write")),
            };
            black_box(token_response_json(&issued).unwrap())
        })
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
