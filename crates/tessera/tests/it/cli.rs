//! The admin CLI on the same store as a running server, and the server's logs.

use std::time::Duration;

use serde_json::Value;

use crate::kit::{Process, basic, cli, cli_json, db_url, encode_form};

async fn token_status(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let r = http
        .post(format!("{base}/oauth2/token"))
        .header("authorization", basic(id, secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&form))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The promise: a CLI change reaches a running server within 2 seconds.
const PROPAGATION: Duration = Duration::from_secs(2);

async fn within_bound<F, Fut>(check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::kit::eventually(PROPAGATION, check).await
}

#[tokio::test]
async fn cli_manages_clients_and_a_running_server_follows_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = db_url(d);
    let server = Process::spawn(
        d,
        &["serve", "--database", &db],
        &[("TESSERA_BOOTSTRAP", "false")],
        "server",
    )
    .await;
    let http = reqwest::Client::new();
    let base = server.base.clone();

    // create --json prints the admin API's document, {"client": {…}, "client_secret"}, and
    // nothing else on stdout.
    let (code, out, _) = cli(
        d,
        &[
            "client",
            "create",
            "--name",
            "billing",
            "--scope",
            "read write",
            "--json",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created.as_object().unwrap().len(), 2);
    assert_eq!(created["client"]["name"], "billing");
    assert_eq!(created["client"]["scope"], "read write");
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();

    // create -> token, on the server that was already running.
    assert!(within_bound(|| async { token_status(&http, &base, &id, &secret, None).await.0 == 200 }).await);
    let (_, body) = token_status(&http, &base, &id, &secret, None).await;
    assert_eq!(body["scope"], "read write");

    // list and show (never a secret or a hash).
    let list = cli_json(d, &["client", "list", "--json"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id.as_str())
    );
    let show = cli_json(d, &["client", "show", &id, "--json"]);
    assert_eq!(show["name"], "billing");
    assert_eq!(show["enabled"], true);
    assert_eq!(show["token_ttl"], 3600);
    assert_eq!(show["secrets"].as_array().unwrap().len(), 1);
    let (_, human, _) = cli(d, &["client", "show", &id]);
    for text in [show.to_string(), list.to_string(), human] {
        assert!(!text.contains(&secret), "secret shown");
        assert!(
            !text.contains("$argon2") && !text.contains("hash"),
            "hash shown: {text}"
        );
    }

    // update: scopes, audiences, ttl, name; the server follows.
    let updated = cli_json(
        d,
        &[
            "client",
            "update",
            &id,
            "--scope",
            "read",
            "--audience",
            "https://api.example.com",
            "--token-ttl",
            "600",
            "--name",
            "billing-v2",
            "--json",
        ],
    );
    assert_eq!(updated["scope"], "read");
    assert_eq!(
        updated["audiences"],
        serde_json::json!(["https://api.example.com"])
    );
    assert_eq!(updated["token_ttl"], 600);
    assert_eq!(updated["name"], "billing-v2");
    assert!(
        within_bound(|| async {
            token_status(&http, &base, &id, &secret, None).await.1["expires_in"] == 600
        })
        .await
    );
    let (status, body) = token_status(&http, &base, &id, &secret, Some("write")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));

    // disable -> 401, enable -> 200, while the server keeps running.
    assert_eq!(
        cli_json(d, &["client", "disable", &id, "--json"])["enabled"],
        false
    );
    assert!(within_bound(|| async { token_status(&http, &base, &id, &secret, None).await.0 == 401 }).await);
    assert_eq!(cli_json(d, &["client", "enable", &id, "--json"])["enabled"], true);
    assert!(within_bound(|| async { token_status(&http, &base, &id, &secret, None).await.0 == 200 }).await);

    // An imported secret (for teams migrating from another vendor).
    let imported = "vendor-secret:with+odd%chars";
    let created = cli_json(
        d,
        &[
            "client", "create", "--name", "migrated", "--scope", "x", "--secret", imported, "--json",
        ],
    );
    assert_eq!(created["client_secret"], imported);
    let mid = created["client"]["client_id"].as_str().unwrap().to_string();
    assert!(within_bound(|| async { token_status(&http, &base, &mid, imported, None).await.0 == 200 }).await);
    assert_eq!(
        cli_json(d, &["client", "show", &mid, "--json"])["secrets"][0]["kind"],
        "imported"
    );

    // delete -> 401.
    assert_eq!(cli_json(d, &["client", "delete", &id, "--json"])["deleted"], true);
    assert!(within_bound(|| async { token_status(&http, &base, &id, &secret, None).await.0 == 401 }).await);
    let (code, out, err) = cli(d, &["client", "show", &id]);
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Invalid input is refused with one line and changes nothing.
    let before = cli_json(d, &["client", "list", "--json"]);
    for args in [
        &["client", "create", "--name", "x", "--scope", "bad\"scope"][..],
        &["client", "create", "--name", "x", "--audience", "not-a-uri"],
        &["client", "create", "--name", "x", "--token-ttl", "0"],
        &["client", "create", "--name", "x", "--secret", "short"],
        &["client", "update", &mid, "--token-ttl", "999999999"],
    ] {
        let (code, _, err) = cli(d, args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    assert_eq!(cli_json(d, &["client", "list", "--json"]), before);
    drop(server);
}

#[tokio::test]
async fn logs_of_a_whole_session_contain_no_secret_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = db_url(d);
    // Most verbose logging, bootstrap on: its one-time display goes to stdout only.
    let mut server = Process::spawn(
        d,
        &["serve", "--database", &db],
        &[("TESSERA_LOG", "trace")],
        "log",
    )
    .await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let mut secrets = Vec::new();
    let mut tokens = Vec::new();

    let (q_id, q_secret) = parse_quickstart(&server.stdout());
    secrets.push(q_secret.clone());
    let created = cli_json(d, &["client", "create", "--name", "a", "--scope", "s", "--json"]);
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    secrets.push(created["client_secret"].as_str().unwrap().to_string());
    let imported = "imported-secret-for-log-test";
    secrets.push(imported.to_string());
    let created = cli_json(
        d,
        &["client", "create", "--name", "b", "--secret", imported, "--json"],
    );
    let imp_id = created["client"]["client_id"].as_str().unwrap().to_string();
    assert!(
        within_bound(|| async { token_status(&http, &base, &imp_id, imported, None).await.0 == 200 }).await
    );
    for (cid, sec) in [(&q_id, &q_secret), (&id, &secrets[1]), (&imp_id, &secrets[2])] {
        let (status, body) = token_status(&http, &base, cid, sec, None).await;
        assert_eq!(status, 200);
        tokens.push(body["access_token"].as_str().unwrap().to_string());
    }
    // Failures log too: their secrets must not appear either.
    let wrong = "wrong-secret-that-must-not-be-logged";
    secrets.push(wrong.to_string());
    assert_eq!(token_status(&http, &base, &id, wrong, None).await.0, 401);
    let body = encode_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", wrong),
    ]);
    let r = http
        .post(format!("{base}/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let _ = cli(d, &["client", "disable", &id]);
    server.stop();

    let master_key = std::fs::read_to_string(d.join("master.key")).unwrap();
    let log = server.stderr();
    assert!(log.contains("tessera listening"), "no log captured: {log}");
    assert!(
        log.contains("client authentication failed"),
        "failures are logged"
    );
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "secret in log");
    }
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "token in log");
        // Not even the signature part of it.
        assert!(
            !log.contains(token.rsplit('.').next().unwrap()),
            "token signature in log"
        );
    }
    assert!(!log.contains(master_key.trim()), "master key in log");
    // stdout holds the one-time quickstart display, and nothing else secret.
    let out = server.stdout();
    assert_eq!(
        out.matches(&q_secret).count(),
        2,
        "quickstart secret shown once (id/secret line and curl)"
    );
    for secret in &secrets[1..] {
        assert!(!out.contains(secret.as_str()));
    }
}

/// Reads the quickstart client's id and secret from the first start's output.
pub fn parse_quickstart(stdout: &str) -> (String, String) {
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in: {stdout}"))
    };
    (field("client_id:"), field("client_secret:"))
}

#[tokio::test]
async fn cli_rotates_secrets_and_keys_revokes_tokens_and_keeps_an_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = db_url(d);
    let server = Process::spawn(
        d,
        &["serve", "--database", &db],
        &[("TESSERA_BOOTSTRAP", "false")],
        "ops",
    )
    .await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let created = cli_json(
        d,
        &["client", "create", "--name", "svc", "--scope", "read", "--json"],
    );
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let old = created["client_secret"].as_str().unwrap().to_string();
    let rs = cli_json(d, &["client", "create", "--name", "rs", "--introspect", "--json"]);
    let (rs_id, rs_secret) = (
        rs["client"]["client_id"].as_str().unwrap().to_string(),
        rs["client_secret"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        cli_json(d, &["client", "show", &rs_id, "--json"])["can_introspect"],
        true
    );

    // rotate-secret: both work during the grace period; show lists both, values never.
    let rotated = cli_json(d, &["client", "rotate-secret", &id, "--grace", "1h", "--json"]);
    let new = rotated["client_secret"].as_str().unwrap().to_string();
    assert!(within_bound(|| async { token_status(&http, &base, &id, &new, None).await.0 == 200 }).await);
    assert_eq!(token_status(&http, &base, &id, &old, None).await.0, 200);
    let shown = cli_json(d, &["client", "show", &id, "--json"]);
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 2);
    assert!(!shown.to_string().contains(&new));
    // A zero grace ends the old secrets at once.
    let newer = cli_json(d, &["client", "rotate-secret", &id, "--grace", "0s", "--json"]);
    let newer = newer["client_secret"].as_str().unwrap().to_string();
    assert!(within_bound(|| async { token_status(&http, &base, &id, &new, None).await.0 == 401 }).await);
    assert_eq!(token_status(&http, &base, &id, &newer, None).await.0, 200);

    // revoke-tokens: a token held before is inactive afterwards.
    let (_, body) = token_status(&http, &base, &id, &newer, None).await;
    let held = body["access_token"].as_str().unwrap().to_string();
    let introspect = |token: String| {
        let http = http.clone();
        let url = format!("{base}/oauth2/introspect");
        let auth = basic(&rs_id, &rs_secret);
        async move {
            let r = http
                .post(url)
                .header("authorization", auth)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encode_form(&[("token", &token)]))
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()["active"] == true
        }
    };
    assert!(introspect(held.clone()).await);
    cli_json(d, &["client", "revoke-tokens", &id, "--json"]);
    assert!(
        within_bound(|| {
            let active = introspect(held.clone());
            async move { !active.await }
        })
        .await,
        "revoked token still active"
    );

    // key rotate / key list.
    let before = cli_json(d, &["key", "list", "--json"]);
    assert_eq!(before.as_array().unwrap().len(), 1);
    assert_eq!(before[0]["state"], "active");
    let rotation = cli_json(d, &["key", "rotate", "--alg", "EdDSA", "--json"]);
    assert_eq!(rotation["alg"], "EdDSA");
    let keys = cli_json(d, &["key", "list", "--json"]);
    let states: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"pending") && states.contains(&"retiring"),
        "{keys}"
    );
    let kid = rotation["kid"].as_str().unwrap().to_string();
    assert!(
        within_bound(|| async {
            let jwks: Value = http
                .get(format!("{base}/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kid"] == kid.as_str())
        })
        .await,
        "new key published at once"
    );

    // The audit trail has every change, who made it and from where, and no secret.
    let audit = cli_json(d, &["audit", "list", "--json"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "key.create",
        "client.create",
        "client.rotate_secret",
        "client.revoke_tokens",
        "key.rotate",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let e = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "client.rotate_secret")
        .unwrap();
    assert!(e["actor"].as_str().unwrap().starts_with("cli:"));
    assert!(e["source"].as_str().unwrap().starts_with("cli@"));
    assert_eq!(e["target"], id.as_str());
    assert!(e["at"].is_i64());
    for secret in [&old, &new, &newer, &rs_secret] {
        assert!(!audit.to_string().contains(secret.as_str()), "secret in audit");
    }
    let recent = cli_json(d, &["audit", "list", "--since", "1h", "--json"]);
    assert_eq!(recent.as_array().unwrap().len(), audit.as_array().unwrap().len());
    let none = cli_json(d, &["audit", "list", "--since", "2999-01-01T00:00:00Z", "--json"]);
    assert_eq!(none, serde_json::json!([]));
    drop(server);
}

#[tokio::test]
async fn tessera_token_fetches_decodes_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = db_url(d);
    let server = Process::spawn(
        d,
        &["serve", "--database", &db],
        &[("TESSERA_BOOTSTRAP", "false")],
        "tok",
    )
    .await;
    let base = server.base.clone();
    let created = cli_json(
        d,
        &[
            "client",
            "create",
            "--name",
            "cli",
            "--scope",
            "a b",
            "--audience",
            "https://api.example.com",
            "--json",
        ],
    );
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = crate::kit::tessera_cmd(d);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    // Wait for the running server to see the client.
    assert!(
        within_bound(|| async {
            token_status(&reqwest::Client::new(), &base, &id, &secret, None)
                .await
                .0
                == 200
        })
        .await
    );

    // Discovery, secret from the environment: prints the token and nothing else.
    let (code, out, err) = run(
        &["token", "--issuer", &base, "--client-id", &id, "--scope", "a"],
        &[("TESSERA_CLIENT_SECRET", &secret)],
    );
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_string();
    assert_eq!(out.lines().count(), 1);
    assert_eq!(token.split('.').count(), 3);
    // The whole response with --json, here with form auth and an explicit token URL.
    let url = format!("{base}/oauth2/token");
    let (code, out, _) = run(
        &[
            "token",
            "--token-url",
            &url,
            "--client-id",
            &id,
            "--client-secret",
            &secret,
            "--auth",
            "post",
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0);
    let response: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(response["token_type"], "Bearer");
    assert_eq!(response["scope"], "a b");
    assert!(response["expires_in"].is_u64());
    // A secret that starts with '-' is still a value, not an option.
    let dashed = cli_json(
        d,
        &[
            "client",
            "create",
            "--name",
            "dash",
            "--secret",
            "-leading-dash-secret",
            "--json",
        ],
    );
    let dashed_id = dashed["client"]["client_id"].as_str().unwrap().to_string();
    assert!(
        within_bound(|| async {
            token_status(
                &reqwest::Client::new(),
                &base,
                &dashed_id,
                "-leading-dash-secret",
                None,
            )
            .await
            .0 == 200
        })
        .await
    );
    let (code, _, err) = run(
        &[
            "token",
            "--issuer",
            &base,
            "--client-id",
            &dashed_id,
            "--client-secret",
            "-leading-dash-secret",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    // A refusal is an error exit, with the server's error.
    let (code, _, err) = run(
        &[
            "token",
            "--issuer",
            &base,
            "--client-id",
            &id,
            "--client-secret",
            "wrong",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("invalid_client"), "{err}");

    // decode prints header and claims; --verify checks the signature against the JWKS.
    let (code, out, _) = run(&["token", "decode", &token], &[]);
    assert_eq!(code, 0);
    let decoded: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decoded["header"]["typ"], "at+jwt");
    assert_eq!(decoded["claims"]["client_id"], id.as_str());
    assert_eq!(decoded["claims"]["scope"], "a");
    let (code, _, err) = run(&["token", "decode", "--verify", &token], &[]);
    assert_ne!(code, 0, "the issuer to trust must be given");
    assert!(err.contains("--issuer"), "{err}");
    let (code, _, err) = run(&["token", "decode", "--verify", "--issuer", &base, &token], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with(&format!("valid: signed by {base}, for ")),
        "{err}"
    );
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    // One character in the middle of the signature changed: still canonical base64url.
    let flipped = if parts[2].as_bytes()[10] == b'A' { "B" } else { "A" };
    parts[2].replace_range(10..11, flipped);
    let (code, _, err) = run(
        &["token", "decode", "--verify", "--issuer", &base, &parts.join(".")],
        &[],
    );
    assert_ne!(code, 0);
    assert_eq!(err.trim_end(), "invalid: bad signature", "{err}");
    let (code, _, _) = run(
        &[
            "token",
            "decode",
            "--verify",
            "--issuer",
            &base,
            "--audience",
            "https://other.example.com",
            &token,
        ],
        &[],
    );
    assert_ne!(code, 0);
    let (code, _, err) = run(&["token", "decode", "not-a-jwt"], &[]);
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    drop(server);
}
