//! The admin API: protected by Tessera's own tokens, described by its OpenAPI document.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tessera::admin::NewClient;
use tessera::http::admin::ROUTES;

use crate::kit::{self, Opts};

/// An admin API token, and the id of the client it belongs to.
pub async fn admin_token(s: &kit::Server) -> (String, String) {
    let (id, secret) = s
        .client_with(NewClient {
            name: "ops".into(),
            admin: true,
            ..Default::default()
        })
        .await;
    (s.token(&id, &secret).await, id)
}

async fn call(
    s: &kit::Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = s.http.request(method.parse().unwrap(), s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn json_of(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status);
    r.json().await.unwrap()
}

#[tokio::test]
async fn admin_api_refuses_requests_without_a_valid_admin_token() {
    let s = kit::start(Opts::default()).await;
    let path = "/admin/v1/clients";

    // No token: 401 with a challenge that carries no error code (RFC 6750 §3).
    let r = call(&s, "GET", path, None, None).await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(
        challenge.starts_with("Bearer realm=") && !challenge.contains("error="),
        "{challenge}"
    );

    // Garbage and tokens of another issuer: invalid_token.
    for bad in ["garbage", "a.b.c"] {
        let r = call(&s, "GET", path, Some(bad), None).await;
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_token");
    }

    // A valid token without tessera:admin: 403 insufficient_scope naming the scope.
    let (id, secret) = s.client("read", &["urn:tessera:admin"]).await;
    let plain = s.token(&id, &secret).await;
    let r = call(&s, "GET", path, Some(&plain), None).await;
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="tessera:admin""#)
    );
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "insufficient_scope");

    // An expired admin token.
    let (short, short_secret) = s
        .client_with(NewClient {
            name: "short".into(),
            admin: true,
            token_ttl: Some(1),
            ..Default::default()
        })
        .await;
    let expiring = s.token(&short, &short_secret).await;
    assert_eq!(call(&s, "GET", path, Some(&expiring), None).await.status(), 200);
    s.advance(Duration::from_secs(2));
    let r = call(&s, "GET", path, Some(&expiring), None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_token");

    // A revoked admin token.
    let (admin_id, admin_secret) = s
        .client_with(NewClient {
            name: "ops".into(),
            admin: true,
            ..Default::default()
        })
        .await;
    let admin = s.token(&admin_id, &admin_secret).await;
    assert_eq!(call(&s, "GET", path, Some(&admin), None).await.status(), 200);
    let r = s
        .post_form("/oauth2/revoke", &admin_id, &admin_secret, &[("token", &admin)])
        .await;
    assert_eq!(r.status(), 200);
    let r = call(&s, "GET", path, Some(&admin), None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_token");
    let admin = s.token(&admin_id, &admin_secret).await;

    // A token in the query string is refused, not looked at (RFC 6750 §2.3), and malformed
    // headers are invalid_request: the same answers as userinfo and tessera-verify give.
    let r = s
        .http
        .get(s.url(&format!("{path}?access_token={admin}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    for header in ["Bearer", "Bearer a b", "Bearer  "] {
        let r = s
            .http
            .get(s.url(path))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{header:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    }
    let r = s
        .http
        .get(s.url(path))
        .basic_auth(&id, Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn admin_api_manages_clients_keys_and_shows_the_audit_trail() {
    let s = kit::start(Opts::default()).await;
    let (admin, admin_id) = admin_token(&s).await;
    let t = Some(admin.as_str());

    // Create: 201 with the secret shown once; the client gets tokens from this running server.
    let created = json_of(
        call(&s, "POST", "/admin/v1/clients", t, Some(json!({"name": "billing", "scope": "read write", "audiences": ["https://api.example.com"], "token_ttl": 600}))).await,
        201,
    )
    .await;
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(created["client"]["token_ttl"], 600);
    let grant = [("grant_type", "client_credentials")];
    assert!(
        kit::eventually(Duration::from_secs(2), || async {
            s.token_basic(&id, &secret, &grant).await.status() == 200
        })
        .await
    );

    // Get, patch.
    let got = json_of(
        call(&s, "GET", &format!("/admin/v1/clients/{id}"), t, None).await,
        200,
    )
    .await;
    assert_eq!(got["name"], "billing");
    assert!(!got.to_string().contains(&secret));
    let patched = json_of(
        call(
            &s,
            "PATCH",
            &format!("/admin/v1/clients/{id}"),
            t,
            Some(json!({"scope": "read"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["scope"], "read");

    // Invalid input has stable codes.
    let r = call(
        &s,
        "POST",
        "/admin/v1/clients",
        t,
        Some(json!({"name": "x", "scope": "bad\"scope"})),
    )
    .await;
    assert_eq!(json_of(r, 400).await["error"], "invalid_input");
    let r = call(
        &s,
        "POST",
        "/admin/v1/clients",
        t,
        Some(json!({"name": "x", "colour": "blue"})),
    )
    .await;
    assert_eq!(json_of(r, 400).await["error"], "invalid_request");
    let r = s
        .http
        .post(s.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 400).await["error"], "invalid_request");
    let r = call(&s, "GET", "/admin/v1/clients/nope", t, None).await;
    assert_eq!(json_of(r, 404).await["error"], "not_found");

    // Pagination walks every client exactly once.
    for i in 0..5 {
        json_of(
            call(
                &s,
                "POST",
                "/admin/v1/clients",
                t,
                Some(json!({"name": format!("c{i}")})),
            )
            .await,
            201,
        )
        .await;
    }
    let mut seen = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("/admin/v1/clients?limit=2&after={a}"),
            None => "/admin/v1/clients?limit=2".to_string(),
        };
        let page = json_of(call(&s, "GET", &q, t, None).await, 200).await;
        for c in page["clients"].as_array().unwrap() {
            assert!(
                seen.insert(c["client_id"].as_str().unwrap().to_string()),
                "seen twice"
            );
        }
        match page["next_after"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), s.app().store.clients().await.unwrap().len());
    assert_eq!(
        json_of(call(&s, "GET", "/admin/v1/clients?limit=0", t, None).await, 400).await["error"],
        "invalid_input"
    );

    // Disable: tokens refused; enable: back. Rotate the secret with no grace; revoke tokens.
    json_of(
        call(&s, "POST", &format!("/admin/v1/clients/{id}/disable"), t, None).await,
        200,
    )
    .await;
    assert!(
        kit::eventually(Duration::from_secs(2), || async {
            s.token_basic(&id, &secret, &grant).await.status() == 401
        })
        .await
    );
    json_of(
        call(&s, "POST", &format!("/admin/v1/clients/{id}/enable"), t, None).await,
        200,
    )
    .await;
    assert!(
        kit::eventually(Duration::from_secs(2), || async {
            s.token_basic(&id, &secret, &grant).await.status() == 200
        })
        .await
    );
    let rotated = json_of(
        call(
            &s,
            "POST",
            &format!("/admin/v1/clients/{id}/rotate-secret"),
            t,
            Some(json!({"grace_seconds": 0})),
        )
        .await,
        200,
    )
    .await;
    let new = rotated["client_secret"].as_str().unwrap().to_string();
    assert!(
        kit::eventually(Duration::from_secs(2), || async {
            s.token_basic(&id, &new, &grant).await.status() == 200
        })
        .await
    );
    assert_eq!(s.token_basic(&id, &secret, &grant).await.status(), 401);
    let revoked = json_of(
        call(
            &s,
            "POST",
            &format!("/admin/v1/clients/{id}/revoke-tokens"),
            t,
            None,
        )
        .await,
        200,
    )
    .await;
    assert!(revoked["tokens_revoked_before"].as_i64().unwrap() > 0);

    // Keys.
    let keys = json_of(call(&s, "GET", "/admin/v1/keys", t, None).await, 200).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    let rotation = json_of(
        call(
            &s,
            "POST",
            "/admin/v1/keys/rotate",
            t,
            Some(json!({"alg": "RS256"})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(rotation["alg"], "RS256");
    let keys = json_of(call(&s, "GET", "/admin/v1/keys", t, None).await, 200).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    let r = call(
        &s,
        "POST",
        "/admin/v1/keys/rotate",
        t,
        Some(json!({"alg": "HS256"})),
    )
    .await;
    assert_eq!(json_of(r, 400).await["error"], "invalid_input");

    // Delete.
    assert_eq!(
        call(&s, "DELETE", &format!("/admin/v1/clients/{id}"), t, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        call(&s, "GET", &format!("/admin/v1/clients/{id}"), t, None)
            .await
            .status(),
        404
    );

    // The audit trail names the admin client and its address, and holds no secret.
    let audit = json_of(call(&s, "GET", "/admin/v1/audit?limit=1000", t, None).await, 200).await;
    let events = audit["events"].as_array().unwrap();
    let mine: Vec<&Value> = events
        .iter()
        .filter(|e| e["actor"] == format!("client:{admin_id}"))
        .collect();
    let actions: BTreeSet<&str> = mine.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for want in [
        "client.create",
        "client.update",
        "client.disable",
        "client.enable",
        "client.rotate_secret",
        "client.revoke_tokens",
        "key.rotate",
        "client.delete",
    ] {
        assert!(actions.contains(want), "{want} not audited: {actions:?}");
    }
    assert!(mine.iter().all(|e| e["source"] == "127.0.0.1"));
    assert!(!audit.to_string().contains(&secret) && !audit.to_string().contains(&new));
    let page = json_of(call(&s, "GET", "/admin/v1/audit?limit=2", t, None).await, 200).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let next = page["next_after"].as_i64().unwrap();
    let rest = json_of(
        call(
            &s,
            "GET",
            &format!("/admin/v1/audit?after={next}&limit=1000"),
            t,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rest["events"].as_array().unwrap().len() + 2, events.len());
}

#[tokio::test]
async fn the_openapi_document_describes_every_admin_route() {
    let s = kit::start(Opts::default()).await;
    let r = s.http.get(s.url("/admin/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served, "router and OpenAPI document differ");
    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/").skip(1) {
        let pointer = format!("/{}", part.split('"').next().unwrap());
        assert!(doc.pointer(&pointer).is_some(), "dangling $ref {pointer}");
    }
    // And every documented route is really served, with the answer its handler gives: an
    // unknown id is the API's own 404, an empty body its own 400 (the password route checks
    // the body before the user), lists are 200, a key rotation and an initial access token
    // (all defaults) 201; never 405 nor a 5xx.
    let (admin, _) = admin_token(&s).await;
    for (method, path) in &documented {
        let expected = match (method.as_str(), path.as_str()) {
            ("POST", "/admin/v1/users/{id}/password") => 400,
            (_, p) if p.contains("{id}") => 404,
            ("POST", "/admin/v1/clients" | "/admin/v1/users" | "/admin/v1/trust-policies") => 400,
            ("POST", "/admin/v1/keys/rotate" | "/admin/v1/registration-tokens") => 201,
            ("GET", _) => 200,
            other => panic!("no expectation for {other:?}: add one"),
        };
        let path = path.replace("{id}", "no-such-client");
        let body = (method != "GET" && method != "DELETE").then(|| json!({}));
        let r = call(&s, method, &path, Some(&admin), body).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{method} {path}: {body}");
        if status >= 400 {
            assert!(
                body["message"].is_string(),
                "{method} {path}: the API's own error: {body}"
            );
        } else {
            assert!(body.is_object(), "{method} {path}: {body}");
        }
    }
}

#[tokio::test]
async fn admin_tokens_must_be_meant_for_the_admin_api_and_follow_the_clients_scope() {
    let s = kit::start(Opts::default()).await;
    // An admin client that also calls another API: its token for that API carries the admin
    // scope but cannot be replayed against the admin API by that API.
    let (id, secret) = s
        .client_with(NewClient {
            name: "ops".into(),
            admin: true,
            audiences: vec!["https://api.example.com".into()],
            ..Default::default()
        })
        .await;
    let for_api = s.token(&id, &secret).await;
    let claims = kit::decode_unverified(&for_api).1;
    assert_eq!(claims["aud"], "https://api.example.com");
    assert!(claims["scope"].as_str().unwrap().contains("tessera:admin"));
    let r = call(&s, "GET", "/admin/v1/keys", Some(&for_api), None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_token");
    // Asking for the admin API as the resource works.
    let r = s
        .token_basic(
            &id,
            &secret,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "urn:tessera:admin"),
            ],
        )
        .await;
    let admin: Value = r.json().await.unwrap();
    let admin = admin["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&s, "GET", "/admin/v1/keys", Some(&admin), None)
            .await
            .status(),
        200
    );
    // Taking the admin scope away takes effect at once, for tokens already issued too.
    let r = call(
        &s,
        "PATCH",
        &format!("/admin/v1/clients/{id}"),
        Some(&admin),
        Some(json!({"scope": "read"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    s.caught_up().await;
    let r = call(&s, "GET", "/admin/v1/keys", Some(&admin), None).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "insufficient_scope");
}

#[tokio::test]
async fn responses_that_show_a_secret_are_not_cached() {
    let s = kit::start(Opts::default()).await;
    let (admin, _) = admin_token(&s).await;
    let r = call(
        &s,
        "POST",
        "/admin/v1/clients",
        Some(&admin),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let id = r.json::<Value>().await.unwrap()["client"]["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(
        &s,
        "POST",
        &format!("/admin/v1/clients/{id}/rotate-secret"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
}

/// The member names of a JSON document, at every depth (array items merged).
fn shape(v: &Value, at: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let path = format!("{at}/{k}");
                out.insert(path.clone());
                shape(v, &path, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| shape(i, &format!("{at}[]"), out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_api_answer_a_new_client_with_the_same_document() {
    let s = kit::start(Opts::default()).await;
    let (admin, _) = admin_token(&s).await;
    let body = json!({"name": "same", "scope": "read", "audiences": ["https://api.example.com"]});
    let api = json_of(
        call(&s, "POST", "/admin/v1/clients", Some(&admin), Some(body)).await,
        201,
    )
    .await;
    let cli = kit::cli_json(
        s.dir.path(),
        &[
            "client",
            "create",
            "--name",
            "same",
            "--scope",
            "read",
            "--audience",
            "https://api.example.com",
            "--json",
        ],
    );
    let (mut a, mut c) = (BTreeSet::new(), BTreeSet::new());
    shape(&api, "", &mut a);
    shape(&cli, "", &mut c);
    assert_eq!(a, c);
    assert!(
        a.contains("/client/secrets[]/kind") && a.contains("/client_secret"),
        "{a:?}"
    );
    // The same view, apart from what differs between two clients.
    let strip = |mut v: Value| {
        for k in ["client_id", "created_at", "updated_at", "secrets"] {
            v["client"].as_object_mut().unwrap().remove(k);
        }
        v["client"].clone()
    };
    assert_eq!(strip(api.clone()), strip(cli.clone()));
    assert_ne!(api["client_secret"], cli["client_secret"]);
}

/// The router answers without a listener (`tower::ServiceExt::oneshot`), and the connection's
/// peer reaches the handlers as axum's `ConnectInfo`: the admin API's audit trail records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_serves_oneshot_requests_and_audits_the_peer_it_is_given() {
    use tower::ServiceExt;
    let s = kit::start(Opts::default()).await;
    let (admin, _) = admin_token(&s).await;
    let app = s.running.as_ref().unwrap().app.clone();
    let peer: std::net::SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let mut request = axum::http::Request::post("/admin/v1/clients")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"name":"oneshot"}"#))
        .unwrap();
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    let r = tessera::http::router(app.clone()).oneshot(request).await.unwrap();
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let events = app.store.audit_events(0, 0, 1000).await.unwrap();
    let created = events
        .iter()
        .find(|e| e.entry.action == "client.create" && e.entry.details["name"] == "oneshot")
        .expect("the creation is audited");
    assert_eq!(created.entry.source, "192.0.2.7");
}

/// Every `grant_types` list in the OpenAPI document names exactly the grants the token
/// endpoint serves, in its order: a new grant module cannot leave the document behind.
#[test]
fn the_openapi_document_lists_the_grants_the_token_endpoint_serves() {
    fn walk(v: &Value, found: &mut Vec<Value>) {
        match v {
            Value::Object(m) => {
                if let Some(g) = m.get("grant_types") {
                    found.push(g["items"]["enum"].clone());
                }
                m.values().for_each(|v| walk(v, found));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let doc: Value = serde_json::from_str(tessera::http::admin::OPENAPI).unwrap();
    let mut found = Vec::new();
    walk(&doc, &mut found);
    assert_eq!(found.len(), 3, "grant_types lists in the document");
    let served: Vec<&str> = tessera::oauth::grants::GRANTS.iter().map(|g| g.name()).collect();
    for listed in found {
        assert_eq!(listed, json!(served));
    }
}
