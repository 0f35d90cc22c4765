//! The user directory: people who sign in. Managed from the CLI, kept on both store engines,
//! audited, and never showing a password or its hash.

use std::io::Write;
use std::process::Stdio;

use crate::kit;

/// Runs the CLI with `input` on standard input; returns (status, stdout, stderr).
fn cli_with_input(dir: &std::path::Path, args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = kit::tessera_cmd(dir)
        .args(args)
        .arg("--database")
        .arg(kit::db_url(dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_cli_manages_users_and_never_shows_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, _, err) = kit::cli(d, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    let password = "correct horse battery staple";
    let (code, out, err) = cli_with_input(
        d,
        &[
            "user",
            "create",
            "--email",
            "Ada@Example.com",
            "--name",
            "Ada Lovelace",
            "--given-name",
            "Ada",
            "--email-verified",
            "--attribute",
            "department=analytics",
            "--password",
            "--json",
        ],
        &format!("{password}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let ada: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = ada["id"].as_str().unwrap().to_string();
    assert_eq!(ada["email"], "Ada@Example.com");
    assert_eq!(ada["email_verified"], true);
    assert_eq!(ada["has_password"], true);
    assert_eq!(ada["attributes"]["department"], "analytics");
    assert!(ada.get("password_hash").is_none(), "{ada}");

    // Found by id or by email in any case; the email is unique without regard to case.
    let shown = kit::cli_json(d, &["user", "show", "ada@example.COM", "--json"]);
    assert_eq!(shown["id"], id.as_str());
    let (code, _, err) = kit::cli(d, &["user", "create", "--email", "ADA@example.com"]);
    assert_ne!(code, 0);
    assert!(err.contains("exists"), "{err}");

    // Bad input is refused in one line and writes nothing.
    for (args, why) in [
        (vec!["user", "create", "--email", "not-an-email"], "email"),
        (
            vec!["user", "create", "--email", "x@y.z", "--attribute", "sub=evil"],
            "sub",
        ),
        (vec!["user", "show", "nobody@example.com"], "no user"),
    ] {
        let (code, _, err) = kit::cli(d, &args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let (code, _, err) = cli_with_input(d, &["user", "set-password", &id], "short\n");
    assert_ne!(code, 0);
    assert!(err.contains("at least 8"), "{err}");

    // A new email is unverified until someone says otherwise.
    let updated = kit::cli_json(
        d,
        &[
            "user",
            "update",
            &id,
            "--email",
            "ada@analytical.engine",
            "--family-name",
            "Lovelace",
            "--json",
        ],
    );
    assert_eq!(updated["email"], "ada@analytical.engine");
    assert_eq!(updated["email_verified"], false);
    assert_eq!(updated["family_name"], "Lovelace");
    let disabled = kit::cli_json(d, &["user", "disable", &id, "--json"]);
    assert_eq!(disabled["enabled"], false);
    let enabled = kit::cli_json(d, &["user", "enable", "ada@analytical.engine", "--json"]);
    assert_eq!(enabled["enabled"], true);
    let (code, _, err) = cli_with_input(d, &["user", "set-password", &id], "another good password\n");
    assert_eq!(code, 0, "{err}");
    let listed = kit::cli_json(d, &["user", "list", "--json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // Every change is audited, and no password or hash is anywhere the operator looks.
    let audit = kit::cli_json(d, &["audit", "list", "--json"]);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .or(audit.as_array())
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("user."))
        .collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.update",
            "user.disable",
            "user.enable",
            "user.set_password"
        ]
    );
    let (_, text, _) = kit::cli(d, &["user", "show", &id]);
    let (_, export, _) = kit::cli(d, &["export", "--output", "-"]);
    for shown in [audit.to_string(), listed.to_string(), text] {
        assert!(!shown.contains(password) && !shown.contains("$argon2"), "{shown}");
    }
    // The export carries the hash (to move the user), never the password.
    assert!(export.contains("$argon2id$") && !export.contains(password));

    let (code, out, _) = kit::cli(d, &["user", "delete", &id]);
    assert_eq!(code, 0);
    assert!(out.contains(&id));
    let (code, _, _) = kit::cli(d, &["user", "show", &id]);
    assert_ne!(code, 0);
}

#[tokio::test]
async fn the_admin_api_manages_users_as_the_cli_does() {
    let s = kit::start(kit::Opts::default()).await;
    let (admin, admin_id) = crate::admin_api::admin_token(&s).await;
    let call = |method: &str, path: &str, body: Option<serde_json::Value>| {
        let mut r = s
            .http
            .request(method.parse().unwrap(), s.url(path))
            .bearer_auth(&admin);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    let password = "a long enough password";
    let r = call(
        "POST",
        "/admin/v1/users",
        Some(serde_json::json!({"email": "grace@example.com", "name": "Grace Hopper", "password": password})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let grace: serde_json::Value = r.json().await.unwrap();
    let id = grace["id"].as_str().unwrap().to_string();
    assert_eq!(grace["has_password"], true);
    assert_eq!(grace["email_verified"], false);
    assert!(!grace.to_string().contains("argon2"), "{grace}");
    // The same email in another case is a conflict.
    let r = call(
        "POST",
        "/admin/v1/users",
        Some(serde_json::json!({"email": "GRACE@example.com"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "conflict");
    // Unknown fields and short passwords are refused.
    let r = call(
        "POST",
        "/admin/v1/users",
        Some(serde_json::json!({"email": "x@example.com", "admin": true})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = call(
        "POST",
        &format!("/admin/v1/users/{id}/password"),
        Some(serde_json::json!({"password": "short"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = call(
        "PATCH",
        &format!("/admin/v1/users/{id}"),
        Some(serde_json::json!({"email_verified": true, "attributes": {"team": "compilers"}})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let patched: serde_json::Value = r.json().await.unwrap();
    assert_eq!(patched["email_verified"], true);
    assert_eq!(patched["attributes"], serde_json::json!({"team": "compilers"}));
    let r = call("POST", &format!("/admin/v1/users/{id}/disable"), None)
        .await
        .unwrap();
    let disabled: serde_json::Value = r.json().await.unwrap();
    assert_eq!(disabled["enabled"], false);
    let r = call(
        "POST",
        &format!("/admin/v1/users/{id}/password"),
        Some(serde_json::json!({"password": "another long password"})),
    )
    .await
    .unwrap();
    // A new password ends every sign-in (none here) and says so.
    assert_eq!(r.status(), 200);
    let ended: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ended["sign_ins_ended"]["sessions"], 0, "{ended}");
    let page: serde_json::Value = call("GET", "/admin/v1/users?limit=10", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["next_after"], serde_json::Value::Null);
    // The audit trail names the admin client; no password anywhere in it.
    let events = s.app().store.audit_events(0, 0, 100).await.unwrap();
    let mine: Vec<&str> = events
        .iter()
        .filter(|e| e.entry.target == id)
        .map(|e| {
            assert_eq!(e.entry.actor, format!("client:{admin_id}"));
            assert!(!e.entry.details.to_string().contains("password\":\""));
            e.entry.action.as_str()
        })
        .collect();
    assert_eq!(
        mine,
        ["user.create", "user.update", "user.disable", "user.set_password"]
    );
    let r = call("DELETE", &format!("/admin/v1/users/{id}"), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = call("GET", &format!("/admin/v1/users/{id}"), None).await.unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn clients_that_redirect_are_registered_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(kit::cli(d, &["migrate"]).0, 0);
    // A single-page app: public, no secret, the code flow with refresh by default.
    let spa = kit::cli_json(
        d,
        &[
            "client",
            "create",
            "--name",
            "spa",
            "--public",
            "--redirect-uri",
            "https://app.example/cb",
            "--json",
        ],
    );
    assert_eq!(spa["client_secret"], serde_json::Value::Null);
    let id = spa["client"]["client_id"].as_str().unwrap();
    let shown = kit::cli_json(d, &["client", "show", id, "--json"]);
    assert_eq!(shown["client_type"], "public");
    assert_eq!(shown["token_endpoint_auth_method"], "none");
    assert_eq!(
        shown["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(shown["secrets"], serde_json::json!([]));
    let (code, _, err) = kit::cli(d, &["client", "rotate-secret", id]);
    assert_ne!(code, 0);
    assert!(err.contains("public client"), "{err}");
    // A native app: a loopback redirect (any port at sign-in) and a private-use scheme.
    let native = kit::cli_json(
        d,
        &[
            "client",
            "create",
            "--name",
            "cli app",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--redirect-uri",
            "com.example.app:/oauth2redirect",
            "--first-party",
            "--json",
        ],
    );
    let shown = kit::cli_json(
        d,
        &[
            "client",
            "show",
            native["client"]["client_id"].as_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(shown["first_party"], true);
    // What may not be registered, each refused in one line.
    for (args, why) in [
        (
            vec!["--public", "--grant-type", "client_credentials"],
            "public client",
        ),
        (vec!["--grant-type", "authorization_code"], "redirect URI"),
        (
            vec![
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                "http://app.example/cb",
            ],
            "loopback",
        ),
        (
            vec![
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                "https://app.example/cb#x",
            ],
            "fragment",
        ),
        (
            vec![
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                "https://*.example/cb",
            ],
            "wildcard",
        ),
        (
            vec![
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                "javascript:alert(1)",
            ],
            "javascript",
        ),
        (vec!["--grant-type", "password"], "unknown grant type"),
        (vec!["--grant-type", "refresh_token"], "needs authorization_code"),
        (vec!["--public", "--secret", "an-imported-secret"], "no secret"),
    ] {
        let mut all = vec!["client", "create", "--name", "bad"];
        all.extend(args.iter().copied());
        let (code, _, err) = kit::cli(d, &all);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let listed = kit::cli_json(d, &["client", "list", "--json"]);
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(2),
        "a refused client was stored"
    );
}

#[tokio::test]
async fn a_client_not_allowed_client_credentials_gets_unauthorized_client() {
    let s = kit::start(kit::Opts::default()).await;
    let (id, secret) = s
        .client_with(tessera::admin::NewClient {
            name: "web".into(),
            grant_types: Some(vec!["authorization_code".into()]),
            redirect_uris: vec!["https://web.example/cb".into()],
            ..Default::default()
        })
        .await;
    let r = s
        .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    // Allowing the grant takes effect like any other client change.
    let update = tessera::admin::ClientUpdate {
        grant_types: Some(vec!["authorization_code".into(), "client_credentials".into()]),
        ..Default::default()
    };
    tessera::admin::update_client(&s.app().store, &tessera::operation::Actor::cli(), &id, update)
        .await
        .unwrap();
    s.caught_up().await;
    assert_eq!(s.token(&id, &secret).await.split('.').count(), 3);
}
