//! Verification cost on one core: tokens of a real issuer, verified offline, in one run beside
//! what they are measured against.
//!
//! - `first seen`: a token the verifier has not remembered, so the call does the whole work
//!   (hash, cache lookup, split, header, key lookup, signature, claims, cache insertion): two
//!   tokens alternate through a cache of one;
//! - `repeated`: the same token again, as a resource server sees it on every request;
//! - `bare signature`: only the signature check with the parsed key (the floor for first seen);
//! - `jsonwebtoken::decode`: the same token through `jsonwebtoken` with its key and `Validation`
//!   built once (what a hand-written resource server would do).
//!
//! - `DPoP: first seen` / `DPoP: repeated`: a whole API request with a DPoP-bound ES256 token
//!   and a fresh ES256 proof (`Verifier::verify_request`: the token as above, plus the proof's
//!   parse, signature, claims, thumbprint and replay-cache insertion); the proof is made outside
//!   the timing.
//!
//! Run with `cargo bench -p tessera-verify --bench verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use tessera::admin::NewClient;
use tessera::config::Overrides;

use tessera_verify::jws::{self, KeyRing};
use tessera_verify::{Algorithm, Verifier};

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for alg in ["ES256", "EdDSA", "RS256"] {
        let ((missing, cached), tokens, jwks, base) = rt.block_on(async {
            let sub = dir.path().join(alg);
            std::fs::create_dir_all(&sub).unwrap();
            let over = Overrides {
                signing_alg: Some((alg.to_string(), "bench".to_string())),
                ..Default::default()
            };
            let running = tessera_testkit::local(&sub, over).await;
            let base = running.base_url();
            let created = tessera_testkit::register(
                &running,
                NewClient {
                    name: "bench".into(),
                    scope: "a b".into(),
                    audiences: vec!["https://api.example.com".into()],
                    ..Default::default()
                },
            )
            .await;
            let mut tokens = Vec::new();
            for _ in 0..2 {
                let body: serde_json::Value = reqwest::Client::new()
                    .post(format!("{base}/oauth2/token"))
                    .basic_auth(&created.client.id, Some(&created.secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                tokens.push(body["access_token"].as_str().unwrap().to_string());
            }
            let jwks: serde_json::Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let verifier = |capacity| {
                Verifier::builder(&base)
                    .audience("https://api.example.com")
                    .jwks(jwks.clone())
                    .cache_capacity(capacity)
                    .build()
            };
            let verifiers = (verifier(1).await.unwrap(), verifier(1000).await.unwrap());
            std::mem::forget(running);
            (verifiers, tokens, jwks, base)
        });
        let token = tokens[0].clone();
        let mut turn = 0usize;
        c.bench_function(&format!("{alg}: first seen"), |b| {
            b.iter(|| {
                turn += 1;
                black_box(rt.block_on(missing.verify(black_box(&tokens[turn % 2]))).unwrap())
            })
        });
        // (0 when a filter skipped the row.)
        assert!(
            missing.cached_tokens() <= 1,
            "a cache of one: every call above was a miss"
        );
        c.bench_function(&format!("{alg}: repeated"), |b| {
            b.iter(|| black_box(rt.block_on(cached.verify(black_box(&token))).unwrap()))
        });
        let ring = KeyRing::from_jwks(&jwks, &[Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256]);
        let parsed = jws::parse(&token).unwrap();
        let key = ring.get(parsed.kid.as_deref().unwrap()).unwrap().clone();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        c.bench_function(&format!("{alg}: bare signature"), |b| {
            b.iter(|| assert!(key.verify(parsed.alg, black_box(input.as_bytes()), black_box(&signature))))
        });
        let kid = parsed.kid.as_deref().unwrap();
        let published = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(published.clone()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(parsed.alg);
        validation.set_issuer(&[&base]);
        validation.set_audience(&["https://api.example.com"]);
        c.bench_function(&format!("{alg}: jsonwebtoken::decode"), |b| {
            b.iter(|| {
                black_box(
                    jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding, &validation)
                        .unwrap(),
                )
            })
        });
    }
}

/// A request with a DPoP-bound token and its proof, first seen and repeated, beside a bare ES256
/// signature check (the `ES256:` rows above, in the same run).
fn dpop(c: &mut Criterion) {
    use criterion::BatchSize;
    use tessera_testkit::keys::{TestKey, ath};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::new("ES256", "dpop");
    let now = || tessera::model::clock::unix_now();
    let (missing, cached, tokens) = rt.block_on(async {
        let running = tessera_testkit::local(dir.path(), Overrides::default()).await;
        let base = running.base_url();
        let created = tessera_testkit::register(
            &running,
            NewClient {
                name: "bench".into(),
                scope: "a b".into(),
                audiences: vec!["https://api.example.com".into()],
                ..Default::default()
            },
        )
        .await;
        let url = format!("{base}/oauth2/token");
        let mut tokens = Vec::new();
        for _ in 0..2 {
            let body: serde_json::Value = reqwest::Client::new()
                .post(&url)
                .basic_auth(&created.client.id, Some(&created.secret))
                .header("dpop", key.dpop("POST", &url, now(), serde_json::json!({})))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(body["token_type"], "DPoP");
            tokens.push(body["access_token"].as_str().unwrap().to_string());
        }
        let jwks: serde_json::Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let verifier = |capacity| {
            Verifier::builder(&base)
                .audience("https://api.example.com")
                .jwks(jwks.clone())
                .cache_capacity(capacity)
                .dpop_replay_capacity(50_000_000)
                .build()
        };
        let verifiers = (verifier(1).await.unwrap(), verifier(1000).await.unwrap());
        std::mem::forget(running);
        (verifiers.0, verifiers.1, tokens)
    });
    // A GET of https://api.example.com/invoices, its token under the DPoP scheme with a proof.
    let request = |token: &str| {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", format!("DPoP {token}").parse().unwrap());
        let proof = key.dpop(
            "GET",
            "https://api.example.com/invoices",
            now(),
            serde_json::json!({"ath": ath(token)}),
        );
        headers.insert("dpop", proof.parse().unwrap());
        headers
    };
    fn parts(headers: &http::HeaderMap) -> tessera_verify::RequestParts<'_> {
        tessera_verify::RequestParts {
            method: "GET",
            path: "/invoices",
            query: None,
            headers,
            certificate: None,
            peer: None,
        }
    }
    let mut turn = 0usize;
    c.bench_function("DPoP: first seen", |b| {
        b.iter_batched(
            || {
                turn += 1;
                request(&tokens[turn % 2])
            },
            |headers| black_box(rt.block_on(missing.verify_request(&parts(&headers))).unwrap()),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("DPoP: repeated", |b| {
        b.iter_batched(
            || request(&tokens[0]),
            |headers| black_box(rt.block_on(cached.verify_request(&parts(&headers))).unwrap()),
            BatchSize::SmallInput,
        )
    });
}

/// What driving an async call from this loop costs by itself (the first two rows pay it, the
/// last two do not).
fn runtime(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    c.bench_function("runtime: block_on of a ready future", |b| {
        b.iter(|| rt.block_on(async { black_box(1) }))
    });
}

criterion_group!(benches, verify, dpop, runtime);
criterion_main!(benches);
