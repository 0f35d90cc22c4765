//! A hostile world: abuse limits, HTTP framing, metrics, request ids, readiness, the master-key
//! trap and graceful shutdown.

use std::time::{Duration, Instant};

use tessera::admin::NewClient;
use tessera::limits::LimitSettings;
use tessera::operation::Actor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kit::{self, Opts};

fn limits(f: impl FnOnce(&mut LimitSettings)) -> Opts {
    let mut l = LimitSettings::default();
    f(&mut l);
    Opts {
        limits: Some(l),
        ..Default::default()
    }
}

/// Status, `Retry-After` and body of a token request.
async fn attempt(s: &kit::Server, id: &str, secret: &str) -> (u16, Option<String>, String, Option<String>) {
    let r = s
        .token_basic(id, secret, &[("grant_type", "client_credentials")])
        .await;
    let status = r.status().as_u16();
    let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    let retry = header("retry-after");
    let challenge = header("www-authenticate");
    (status, retry, r.text().await.unwrap(), challenge)
}

#[tokio::test]
async fn failed_logins_back_off_alike_for_known_unknown_and_imported_ids() {
    let s = kit::start(limits(|l| {
        l.failures_before_backoff = 3;
        l.address_failures_before_backoff = 1000;
    }))
    .await;
    let (known, known_secret) = s.client("a", &[]).await;
    let (imported, _) = s
        .client_with(NewClient {
            name: "imported".into(),
            secret: Some("an-imported-secret-of-some-length".into()),
            ..Default::default()
        })
        .await;
    let unknown = "no-such-client";
    let mut answers = Vec::new();
    for id in [known.as_str(), imported.as_str(), unknown] {
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(attempt(&s, id, "wrong-secret").await);
        }
        // The third failure starts a back-off of 1 s: the next attempt is refused unchecked.
        seen.push(attempt(&s, id, "wrong-secret").await);
        answers.push(seen);
    }
    for (status, retry, body, challenge) in &answers[0][..3] {
        assert_eq!(*status, 401);
        assert_eq!(*retry, None);
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Basic realm="tessera", charset="UTF-8""#)
        );
        assert_eq!(
            body,
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#
        );
    }
    let (status, retry, body, _) = &answers[0][3];
    assert_eq!(*status, 429);
    assert_eq!(retry.as_deref(), Some("1"));
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // Known, imported and unknown ids get the very same answers, step by step.
    assert_eq!(
        answers[0], answers[1],
        "known and imported ids answered differently"
    );
    assert_eq!(
        answers[0], answers[2],
        "known and unknown ids answered differently"
    );

    // The back-off grows: one more failure after it ends doubles it.
    s.advance(Duration::from_millis(1100));
    assert_eq!(attempt(&s, unknown, "wrong").await.0, 401);
    let (status, retry, ..) = attempt(&s, unknown, "wrong").await;
    assert_eq!((status, retry.as_deref()), (429, Some("2")));

    // A client that presents its right (generated) secret is not locked out by guessers.
    let (status, ..) = attempt(&s, &known, &known_secret).await;
    assert_eq!(status, 200);
    // An imported secret is not checked at all during a back-off, not even the right one
    // verified a moment ago: a check that costs nothing would let a guesser try it at full speed.
    let imported_secret = "an-imported-secret-of-some-length";
    assert_eq!(
        attempt(&s, &imported, imported_secret).await.0,
        200,
        "verified, count cleared"
    );
    for _ in 0..3 {
        assert_eq!(attempt(&s, &imported, "wrong-secret").await.0, 401);
    }
    let (status, ..) = attempt(&s, &imported, imported_secret).await;
    assert_eq!(
        status, 429,
        "the right imported secret was checked during a back-off"
    );
    // ... and that success clears its count.
    assert_eq!(attempt(&s, &known, "wrong").await.0, 401);
}

#[tokio::test]
async fn guesses_from_one_address_back_off_every_id() {
    let s = kit::start(limits(|l| {
        l.failures_before_backoff = 1000;
        l.address_failures_before_backoff = 4;
    }))
    .await;
    for i in 0..4 {
        assert_eq!(attempt(&s, &format!("spray-{i}"), "x").await.0, 401);
    }
    let (status, retry, ..) = attempt(&s, "spray-new", "x").await;
    assert_eq!(status, 429);
    assert!(retry.is_some());
    // Introspection and revocation share the back-off.
    let r = s
        .post_form("/oauth2/introspect", "spray-new", "x", &[("token", "t")])
        .await;
    assert_eq!(r.status(), 429);
    let r = s
        .post_form("/oauth2/revoke", "spray-new", "x", &[("token", "t")])
        .await;
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn rates_per_address_and_per_client_answer_429() {
    let s = kit::start(limits(|l| {
        l.per_address_rps = 1;
        l.per_address_burst = 3;
    }))
    .await;
    let (id, secret) = s.client("a", &[]).await;
    for _ in 0..3 {
        assert_eq!(attempt(&s, &id, &secret).await.0, 200);
    }
    let (status, retry, body, _) = attempt(&s, &id, &secret).await;
    assert_eq!(status, 429, "{body}");
    let retry: u64 = retry.unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Malformed requests count too: the rate is spent before anything is read.
    let r = s.post_raw("/oauth2/token", &[], "x").await;
    assert_eq!(r.status(), 429);

    let s = kit::start(limits(|l| {
        l.per_client_rps = 1;
        l.per_client_burst = 2;
    }))
    .await;
    let (a, a_secret) = s.client("a", &[]).await;
    let (b, b_secret) = s.client("a", &[]).await;
    assert_eq!(attempt(&s, &a, &a_secret).await.0, 200);
    assert_eq!(attempt(&s, &a, &a_secret).await.0, 200);
    let (status, retry, ..) = attempt(&s, &a, &a_secret).await;
    assert_eq!((status, retry.is_some()), (429, true));
    // Another client is not held back by the first.
    assert_eq!(attempt(&s, &b, &b_secret).await.0, 200);
}

/// Opens a connection and sends a token request whose body never finishes: the request stays
/// in flight until the connection closes.
async fn stuck_request(addr: &str) -> tokio::net::TcpStream {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant",
    )
    .await
    .unwrap();
    c
}

#[tokio::test]
async fn a_flood_beyond_the_concurrency_cap_gets_a_fast_503() {
    let s = kit::start(limits(|l| l.max_concurrent_requests = 2)).await;
    let (id, secret) = s.client("a", &[]).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let stuck = [stuck_request(&addr).await, stuck_request(&addr).await];
    // Wait until both are being served (the server has read their headers).
    assert!(
        kit::eventually(Duration::from_secs(5), || async {
            s.app().guard.in_flight.available_permits() == 0
        })
        .await
    );
    let started = Instant::now();
    let flood = futures_util::future::join_all((0..20).map(|_| attempt(&s, &id, &secret))).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shedding was not fast"
    );
    for (status, retry, body, _) in &flood {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(body.contains("temporarily_unavailable"), "{body}");
    }
    // Health checks are never shed.
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(stuck);
    assert!(
        kit::eventually(Duration::from_secs(5), || async {
            attempt(&s, &id, &secret).await.0 == 200
        })
        .await
    );
}

#[tokio::test]
async fn revocations_per_client_are_capped_and_a_refusal_changes_nothing() {
    let s = kit::start(limits(|l| l.max_revocations_per_client = 3)).await;
    let (id, secret) = s.client("a", &[]).await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(s.token(&id, &secret).await);
    }
    for t in &tokens[..3] {
        let r = s.post_form("/oauth2/revoke", &id, &secret, &[("token", t)]).await;
        assert_eq!(r.status(), 200);
    }
    // Revoking one already revoked is still fine (nothing new is stored).
    let r = s
        .post_form("/oauth2/revoke", &id, &secret, &[("token", &tokens[0])])
        .await;
    assert_eq!(r.status(), 200);
    let r = s
        .post_form("/oauth2/revoke", &id, &secret, &[("token", &tokens[3])])
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(s.introspect(&id, &secret, &tokens[3]).await["active"], true);
    let mut stored = 0;
    s.app().store.for_each_revoked(|_, _| stored += 1).await.unwrap();
    assert_eq!(stored, 3);
}

#[tokio::test]
async fn pending_keys_are_capped() {
    let s = kit::start(Opts::default()).await;
    let (admin, _) = crate::admin_api::admin_token(&s).await;
    let rotate = || async {
        s.http
            .post(s.url("/admin/v1/keys/rotate"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(rotate().await.status(), 201);
    assert_eq!(rotate().await.status(), 201);
    let r = rotate().await;
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "limit_reached");
    assert_eq!(s.app().store.all_keys().await.unwrap().len(), 3);
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_what_happened() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s.client("a", &[]).await;
    for _ in 0..3 {
        s.token(&id, &secret).await;
    }
    assert_eq!(attempt(&s, &id, "wrong").await.0, 401);
    // Introspected three times: verified once, then found in the cache of verified tokens, also
    // after the node rebuilt its key set with the same keys (as every poll that sees a key
    // change does).
    let token = s.token(&id, &secret).await;
    for _ in 0..2 {
        assert_eq!(s.introspect(&id, &secret, &token).await["active"], true);
    }
    let app = &s.running.as_ref().unwrap().app;
    let rebuilt = tessera::signing::load_key_set(&app.store, &app.master, tessera::model::clock::unix_now())
        .await
        .unwrap();
    app.keys.replace(rebuilt);
    assert_eq!(s.introspect(&id, &secret, &token).await["active"], true);
    let r = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    let token_ok = [("endpoint", "token"), ("outcome", "ok")];
    assert_eq!(value("tessera_http_requests_total", &token_ok), Some(4.0));
    let verified = [("cache", "verified_tokens")];
    assert_eq!(value("tessera_cache_lookups_total", &verified), Some(3.0));
    assert_eq!(value("tessera_cache_hits_total", &verified), Some(2.0));
    let bad = [("endpoint", "token"), ("outcome", "invalid_client")];
    assert_eq!(value("tessera_http_requests_total", &bad), Some(1.0));
    assert_eq!(value("tessera_cache_entries", &[("cache", "clients")]), Some(1.0));
    assert!(value("tessera_signing_key_age_seconds", &[]).is_some_and(|v| v >= 0.0));
    assert!(value("tessera_store_synced_age_seconds", &[]).is_some_and(|v| v < 30.0));
    let histogram = scrape.samples.iter().find(|s| {
        s.metric == "tessera_http_request_duration_seconds" && s.labels.get("endpoint") == Some("token")
    });
    match histogram.map(|h| &h.value) {
        Some(prometheus_parse::Value::Histogram(buckets)) => {
            assert_eq!(buckets.last().map(|b| b.count), Some(5.0));
        }
        other => panic!("no latency histogram: {other:?}"),
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let s = kit::start(Opts::default()).await;
    let get = |id: Option<&'static str>| {
        let mut r = s.http.get(s.url("/healthz"));
        if let Some(id) = id {
            r = r.header("x-request-id", id);
        }
        async move {
            r.send().await.unwrap().headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    let (a, b) = (get(None).await, get(None).await);
    assert!(!a.is_empty() && a != b, "{a} {b}");
    // A plain id from a proxy is kept; anything else is replaced.
    assert_eq!(get(Some("edge-42.a_b")).await, "edge-42.a_b");
    assert_ne!(get(Some("has space")).await, "has space");
}

async fn raw(addr: &str, request: &[u8]) -> String {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(request).await.unwrap();
    let mut out = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut out))
        .await
        .expect("no answer")
        .unwrap();
    String::from_utf8_lossy(&out[..n]).to_string()
}

#[tokio::test]
async fn framing_host_rules_and_an_early_413() {
    let s = kit::start(Opts::default()).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let no_host = raw(&addr, b"GET /healthz HTTP/1.1\r\n\r\n").await;
    assert!(no_host.starts_with("HTTP/1.1 400"), "{no_host}");
    assert!(no_host.contains("Host"), "{no_host}");
    let two = raw(&addr, b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").await;
    assert!(two.starts_with("HTTP/1.1 400"), "{two}");
    let bad = raw(&addr, b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    // HTTP/1.0 has no Host requirement.
    let old = raw(&addr, b"GET /healthz HTTP/1.0\r\n\r\n").await;
    assert!(old.starts_with("HTTP/1.0 200"), "{old}");
    let ok = raw(&addr, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    // A huge declared body is refused at once, before a byte of it is sent.
    let started = Instant::now();
    let big = raw(
        &addr,
        b"POST /oauth2/token HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n",
    )
    .await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    assert!(big.contains("invalid_request"), "{big}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_node_that_cannot_open_a_stored_key_is_not_ready_and_keeps_its_key() {
    let s = kit::start(Opts::default()).await;
    let ready = || async { s.http.get(s.url("/readyz")).send().await.unwrap() };
    assert_eq!(ready().await.status(), 200);
    let (id, secret) = s.client("a", &[]).await;
    let kid = |t: &str| kit::decode_unverified(t).0["kid"].as_str().unwrap().to_string();
    let before = kid(&s.token(&id, &secret).await);
    // A key sealed under another master key lands in the store (as an old CLI with a stray key
    // file would have done).
    let other = s.dir.path().join("stray.key");
    let stray = tessera::keys::MasterKey::create(&other).unwrap();
    let store = &s.app().store;
    tessera::signing::rotate(
        store,
        &stray,
        &Actor::cli(),
        tessera::keys::Alg::ES256,
        tessera::model::KeyPurpose::Access,
        Duration::from_secs(1),
        None,
    )
    .await
    .unwrap();
    assert!(
        kit::eventually(Duration::from_secs(10), || async {
            ready().await.status() == 503
        })
        .await,
        "a node that cannot open a stored key stayed ready"
    );
    let body: serde_json::Value = ready().await.json().await.unwrap();
    assert!(body["reason"].as_str().unwrap().contains("cannot open"), "{body}");
    assert_eq!(kid(&s.token(&id, &secret).await), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_to_seal_with_a_master_key_that_cannot_open_the_store() {
    let s = kit::start(Opts::default()).await;
    let dir = s.dir.path();
    let other = dir.join("typo.key");
    tessera::keys::MasterKey::create(&other).unwrap();
    let db = kit::db_url(dir);
    let keys_before = s.app().store.all_keys().await.unwrap().len();
    let out = tokio::process::Command::new(kit::bin())
        .current_dir(dir)
        .args([
            "--database",
            &db,
            "--master-key-file",
            &other.display().to_string(),
        ])
        .args(["key", "rotate"])
        .output()
        .await
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("typo.key") && err.contains("cannot open"), "{err}");
    assert_eq!(s.app().store.all_keys().await.unwrap().len(), keys_before);
    assert_eq!(s.http.get(s.url("/readyz")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_is_replaced_without_downtime() {
    let s = kit::start(Opts::default()).await;
    let dir = s.dir.path().to_path_buf();
    let (id, secret) = s.client("a", &[]).await;
    let kid = |t: &str| kit::decode_unverified(t).0["kid"].as_str().unwrap().to_string();
    let signing = kid(&s.token(&id, &secret).await);
    let key_file = dir.join("master.key");
    let old = std::fs::read_to_string(&key_file).unwrap();
    let new_file = dir.join("new.key");
    tessera::keys::MasterKey::create(&new_file).unwrap();
    let new = std::fs::read_to_string(&new_file).unwrap();
    let db = kit::db_url(&dir);
    // 0. Skipping the first step is refused, with one line saying what to do, and changes
    // nothing: the nodes, given only the old key, could not start after it.
    let out = tokio::process::Command::new(kit::bin())
        .current_dir(&dir)
        .args(["--database", &db, "--master-key-file", "master.key"])
        .args(["key", "rotate-master", "--to", "new.key"])
        .output()
        .await
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("not among the keys") && err.contains("nothing was changed"),
        "{err}"
    );
    let only_old = tessera::keys::MasterKey::load(&key_file).unwrap();
    for k in s.app().store.all_keys().await.unwrap() {
        assert!(only_old.open(&k.kid, &k.sealed_private_key).is_ok(), "{}", k.kid);
    }
    assert!(
        !s.app()
            .store
            .audit_events(0, 0, 100)
            .await
            .unwrap()
            .iter()
            .any(|e| e.entry.action == "master_key.rotate")
    );
    // 1. Every node is given both keys (old first) and restarted, one by one.
    std::fs::write(&key_file, format!("{}\n{}\n", old.trim(), new.trim())).unwrap();
    let s = s.restart().await;
    // 2. The keys are sealed again under the new one.
    let out = tokio::process::Command::new(kit::bin())
        .current_dir(&dir)
        .args(["--database", &db, "--master-key-file", "master.key"])
        .args(["key", "rotate-master", "--to", "new.key"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The node follows without a pause: ready, same key.
    s.caught_up().await;
    let r = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(kid(&s.token(&id, &secret).await), signing);
    let entries = s.app().store.audit_events(0, 0, 100).await.unwrap();
    assert!(entries.iter().any(|e| e.entry.action == "master_key.rotate"));
    // A node given only the old key can no longer start; one given only the new key can.
    let only_old = dir.join("old.key");
    std::fs::write(&only_old, &old).unwrap();
    let out = tokio::process::Command::new(kit::bin())
        .current_dir(&dir)
        .args(["--database", &db, "--master-key-file", "old.key", "key", "rotate"])
        .output()
        .await
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    std::fs::write(&key_file, &new).unwrap();
    let s = s.restart().await;
    assert_eq!(kid(&s.token(&id, &secret).await), signing);
    // New keys are sealed under the new master key too.
    let (admin, _) = crate::admin_api::admin_token(&s).await;
    let r = s
        .http
        .post(s.url("/admin/v1/keys/rotate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let only_new = tessera::keys::MasterKey::load(&key_file).unwrap();
    for k in s.app().store.all_keys().await.unwrap() {
        assert!(only_new.open(&k.kid, &k.sealed_private_key).is_ok(), "{}", k.kid);
    }
}

#[tokio::test]
async fn taking_the_admin_audience_away_ends_live_admin_tokens() {
    let s = kit::start(Opts::default()).await;
    let (admin, id) = crate::admin_api::admin_token(&s).await;
    let list = || async {
        s.http
            .get(s.url("/admin/v1/clients"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(list().await.status(), 200);
    let update = tessera::admin::ClientUpdate {
        audiences: Some(Vec::new()),
        ..Default::default()
    };
    tessera::admin::update_client(&s.app().store, &s.actor(), &id, update)
        .await
        .unwrap();
    s.caught_up().await;
    let r = list().await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}
