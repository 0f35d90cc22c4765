//! Verification throughput on one core: tokens of a real issuer, verified offline.
//!
//! Run with `cargo bench -p tessera-verify --bench verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera::admin::NewClient;
use tessera::config::Overrides;
use tessera::server::start_local;
use tessera_verify::Verifier;

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for alg in ["ES256", "EdDSA", "RS256"] {
        let (verifier, token) = rt.block_on(async {
            let sub = dir.path().join(alg);
            std::fs::create_dir_all(&sub).unwrap();
            let over = Overrides {
                signing_alg: Some((alg.to_string(), "bench".to_string())),
                ..Default::default()
            };
            let running = start_local(&sub, over).await.unwrap();
            let base = running.base_url();
            let created = running
                .register(NewClient {
                    name: "bench".into(),
                    scope: "a b".into(),
                    audiences: vec!["https://api.example.com".into()],
                    ..Default::default()
                })
                .await
                .unwrap();
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
            let verifier = Verifier::builder(&base)
                .audience("https://api.example.com")
                .build()
                .await
                .unwrap();
            std::mem::forget(running);
            (verifier, body["access_token"].as_str().unwrap().to_string())
        });
        c.bench_function(&format!("verify: {alg} access token"), |b| {
            b.iter(|| black_box(rt.block_on(verifier.verify(black_box(&token))).unwrap()))
        });
    }
}

criterion_group!(benches, verify);
criterion_main!(benches);
