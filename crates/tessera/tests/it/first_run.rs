//! First run: the README's command on an empty directory, and configuration layering.

use std::process::Stdio;

use serde_json::Value;

use crate::cli::parse_quickstart;
use crate::kit::{Process, free_port, tessera_cmd};

#[tokio::test]
async fn first_start_creates_a_key_and_a_quickstart_client_and_prints_a_working_curl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No --database: the embedded default under ./tessera-data/.
    let mut server = Process::spawn(d, &[], &[], "first").await;
    assert!(d.join("tessera-data/tessera.db").exists());
    assert!(d.join("tessera-data/master.key").exists());
    let out = server.stdout();
    let (id, secret) = parse_quickstart(&out);
    assert!(out.contains("demo:read demo:write"));
    let curl = out
        .lines()
        .find(|l| l.trim_start().starts_with("curl "))
        .expect("a curl command")
        .trim();
    assert!(curl.contains(&server.base), "curl points at the issuer: {curl}");
    // Paste it into a shell, as a newcomer would.
    let result = std::process::Command::new("sh")
        .arg("-c")
        .arg(curl)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(result.status.success());
    let body: Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "demo:read demo:write");
    let claims = crate::kit::decode_unverified(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["client_id"], id.as_str());
    server.stop();

    // The second start finds the store: no new client, the secret is never shown again.
    let mut again = Process::spawn(d, &["serve"], &[], "second").await;
    assert!(!again.stdout().contains("client_secret"), "{}", again.stdout());
    assert!(!again.stdout().contains(&secret));
    let list: Value = serde_json::from_slice(
        &tessera_cmd(d)
            .args(["client", "list", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    again.stop();
}

#[tokio::test]
async fn bootstrap_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::spawn(dir.path(), &[], &[("TESSERA_BOOTSTRAP", "false")], "nobootstrap").await;
    assert!(!server.stdout().contains("client_secret"));
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        1,
        "a signing key is still created"
    );
    server.stop();
    let out = tessera_cmd(dir.path())
        .args(["client", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

async fn issuer_of(base: &str) -> String {
    let m: Value = reqwest::get(format!("{base}/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    m["issuer"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn configuration_layers_defaults_file_environment_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let cfg = d.join("tessera.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\nissuer = \"https://from-file.example\"\ndatabase = \"sqlite:{}/cfg.db\"\nbootstrap = false\ntoken_endpoint_aliases = [\"/connect/token\"]\n",
            d.display()
        ),
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let wait_up = |base: String| async move {
        crate::kit::eventually(std::time::Duration::from_secs(30), || {
            let url = format!("{base}/healthz");
            async move { reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) }
        })
        .await
    };

    // File only: its listen address, issuer, database and alias are used.
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tessera_cmd(d)
        .args(["serve", "--config", cfg_s])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_up(base.clone()).await);
    assert_eq!(issuer_of(&base).await, "https://from-file.example");
    let r = reqwest::Client::new()
        .get(format!("{base}/connect/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405, "alias from the file");
    assert!(d.join("cfg.db").exists());
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();

    // Environment beats the file.
    let mut child = tessera_cmd(d)
        .args(["serve", "--config", cfg_s])
        .env("TESSERA_ISSUER", "https://from-env.example")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_up(base.clone()).await);
    assert_eq!(issuer_of(&base).await, "https://from-env.example");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();

    // Flags beat the environment; TESSERA_CONFIG finds the file.
    let mut child = tessera_cmd(d)
        .args(["serve", "--issuer", "https://from-flag.example"])
        .env("TESSERA_CONFIG", cfg_s)
        .env("TESSERA_ISSUER", "https://from-env.example")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_up(base.clone()).await);
    assert_eq!(issuer_of(&base).await, "https://from-flag.example");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
}

#[test]
fn a_wrong_value_stops_start_up_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad_file = d.join("bad.toml");
    std::fs::write(&bad_file, "listen = \"127.0.0.1:1\"\nlisen = \"typo\"\n").unwrap();
    let cases: Vec<(Vec<&str>, Vec<(&str, &str)>, &str)> = vec![
        (vec!["serve", "--listen", "nonsense"], vec![], "--listen"),
        (
            vec!["serve"],
            vec![("TESSERA_LISTEN", "300.1.1.1:80")],
            "TESSERA_LISTEN",
        ),
        (vec!["serve", "--issuer", "ftp://x"], vec![], "--issuer"),
        (
            vec!["serve"],
            vec![("TESSERA_ISSUER", "https://a/?q=1")],
            "TESSERA_ISSUER",
        ),
        (vec!["serve", "--database", "mysql://x"], vec![], "--database"),
        (
            vec!["serve"],
            vec![("TESSERA_BOOTSTRAP", "maybe")],
            "TESSERA_BOOTSTRAP",
        ),
        (vec!["serve", "--signing-alg", "HS256"], vec![], "--signing-alg"),
        (
            vec!["serve", "--key-rotation-interval", "1h"],
            vec![],
            "--key-rotation-interval",
        ),
        (
            vec!["serve"],
            vec![("TESSERA_KEY_ROTATION_INTERVAL", "soon")],
            "TESSERA_KEY_ROTATION_INTERVAL",
        ),
        (
            vec!["serve", "--token-endpoint-aliases", "no-slash"],
            vec![],
            "--token-endpoint-aliases",
        ),
        (
            vec!["serve", "--config", "/nonexistent/tessera.toml"],
            vec![],
            "/nonexistent/tessera.toml",
        ),
        (
            vec!["serve", "--config", bad_file.to_str().unwrap()],
            vec![],
            "lisen",
        ),
    ];
    for (args, env, mention) in cases {
        let mut cmd = tessera_cmd(d);
        cmd.args(&args).stdin(Stdio::null());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(mention), "{args:?}: {err} should mention {mention}");
        assert!(out.stdout.is_empty());
    }
    assert!(!d.join("tessera-data").exists(), "a failed start created state");
}

#[test]
fn the_cli_does_not_create_a_store_the_server_would_never_see() {
    let dir = tempfile::tempdir().unwrap();
    let out = tessera_cmd(dir.path()).args(["client", "list"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no Tessera store"), "{err}");
    assert!(!dir.path().join("tessera-data").exists());
}
