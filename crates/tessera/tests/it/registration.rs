//! Clients that register themselves: RFC 7591 registration under the operator's policy, RFC 7592
//! management, initial access tokens, rate and total limits, the consent page they always get,
//! and pruning the ones never used.
//!
//! The tests run on two worker threads: the CLI runs as a blocking child process while the
//! in-process node keeps serving (a write it has begun must be able to finish, or the CLI waits
//! on the store's lock).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::config::{RegistrationMode, RegistrationSettings};
use tessera::model::client_metadata::Policy;

use crate::kit::https::{DocumentServer, Reply};
use crate::kit::{self, Opts, Server};
use crate::oidc::{Browser, REDIRECT, authorize_url, pkce, query, redeem, user};

pub(crate) fn open() -> RegistrationSettings {
    RegistrationSettings {
        mode: RegistrationMode::Open,
        policy: Policy {
            grant_types: ["authorization_code", "refresh_token", "client_credentials"]
                .map(String::from)
                .to_vec(),
            scopes: ["openid", "email", "offline_access", "mcp:tools"]
                .map(String::from)
                .to_vec(),
            audiences: vec!["https://mcp.example/mcp".into()],
            ..Policy::default()
        },
        per_address_per_hour: 1000,
        ..RegistrationSettings::default()
    }
}

async fn server(registration: RegistrationSettings) -> Server {
    kit::start(Opts {
        registration: Some(registration),
        ..Default::default()
    })
    .await
}

/// POSTs `body` (raw) to the registration endpoint with `bearer`.
async fn post_raw(s: &Server, body: &str, content_type: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let mut req = s
        .http
        .post(s.url("/oauth2/register"))
        .header("content-type", content_type)
        .body(body.to_string());
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    if ![
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::NOT_FOUND,
        StatusCode::PAYLOAD_TOO_LARGE,
    ]
    .contains(&status)
    {
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn register(s: &Server, metadata: Value, bearer: Option<&str>) -> (StatusCode, Value) {
    post_raw(s, &metadata.to_string(), "application/json", bearer).await
}

fn native(name: &str) -> Value {
    json!({
        "client_name": name,
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "openid email",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_off_unless_an_operator_turns_it_on() {
    let s = kit::start(Opts::default()).await;
    let (status, _) = register(&s, native("agent"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let doc = s.get_json("/.well-known/oauth-authorization-server").await;
    assert!(doc.get("registration_endpoint").is_none(), "{doc}");
    assert!(doc.get("client_id_metadata_document_supported").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registers_and_gets_what_it_registered() {
    let s = server(open()).await;
    let doc = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(doc["registration_endpoint"], s.url("/oauth2/register"));

    // A public native app: no secret, everything it asked for within the policy, echoed.
    let mut asked = native("Claude Desktop");
    asked["scope"] = "openid email admin".into();
    asked["logo_uri"] = "https://agent.example/logo.png".into();
    asked["unknown_member"] = "ignored".into();
    let (status, body) = register(&s, asked, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["client_id"].as_str().unwrap();
    assert!(
        !id.starts_with("https://"),
        "generated ids never look like document URLs"
    );
    assert_eq!(body["client_name"], "Claude Desktop");
    assert_eq!(body["redirect_uris"], json!([REDIRECT]));
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["scope"], "openid email", "narrowed to the policy's scopes");
    assert_eq!(body["logo_uri"], "https://agent.example/logo.png");
    assert!(body.get("unknown_member").is_none());
    assert!(body.get("client_secret").is_none());
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 0);
    assert_eq!(
        body["registration_client_uri"],
        s.url(&format!("/oauth2/register/{id}"))
    );
    assert_eq!(body["registration_access_token"].as_str().unwrap().len(), 43);

    // Stored as registered, with its origin, and the store never holds the management token.
    let c = s.app().store.client(id).await.unwrap().unwrap();
    assert!(c.flows.public && !c.flows.first_party);
    assert_eq!(c.audiences, ["https://mcp.example/mcp"]);
    assert_eq!(c.token_ttl, 600);
    let stored = serde_json::to_string(&c.registration).unwrap();
    assert!(!stored.contains(body["registration_access_token"].as_str().unwrap()));
    let listed = kit::cli_json(s.dir.path(), &["client", "show", id, "--json"]);
    assert_eq!(listed["origin"], "registration");
    assert_eq!(listed["approved"], false);
    let (code, table, _) = kit::cli(s.dir.path(), &["client", "list"]);
    assert_eq!(code, 0);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(id) && l.contains("registration")),
        "{table}"
    );

    // A confidential machine client: a secret, shown once, that works at the token endpoint.
    let (status, body) = register(
        &s,
        json!({"client_name": "worker", "grant_types": ["client_credentials"], "response_types": [],
               "token_endpoint_auth_method": "client_secret_basic", "scope": "mcp:tools"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["client_secret_expires_at"], 0);
    let (id, secret) = (
        body["client_id"].as_str().unwrap(),
        body["client_secret"].as_str().unwrap(),
    );
    let token = s.token(id, secret).await;
    let (_, claims) = kit::decode_unverified(&token);
    assert_eq!(claims["aud"], "https://mcp.example/mcp");
    assert_eq!(claims["scope"], "mcp:tools");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_that_break_a_rule_are_refused_precisely() {
    let s = server(open()).await;
    let with = |k: &str, v: Value| {
        let mut m = native("agent");
        m[k] = v;
        m
    };
    for uri in [
        "http://agent.example/cb",
        "http://localhost:8080/cb",
        "https://agent.example/cb#fragment",
        "https://*.agent.example/cb",
        "https://agent.example/*",
        "/relative/cb",
        "javascript:alert(1)",
        "data:text/html,hi",
        "custom:/cb",
    ] {
        let (status, body) = register(&s, with("redirect_uris", json!([uri])), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["error"], "invalid_redirect_uri", "{uri}: {body}");
    }
    let (_, body) = register(&s, with("redirect_uris", json!([])), None).await;
    assert_eq!(body["error"], "invalid_redirect_uri");
    for (k, v) in [
        ("grant_types", json!(["password"])),
        ("grant_types", json!(["implicit"])),
        // A public client cannot hold client credentials (RFC 6749 §4.4).
        ("grant_types", json!(["client_credentials"])),
        (
            "grant_types",
            json!([
                "authorization_code",
                "urn:ietf:params:oauth:grant-type:jwt-bearer"
            ]),
        ),
        ("grant_types", json!("authorization_code")),
        ("response_types", json!(["token"])),
        ("token_endpoint_auth_method", json!("client_secret_jwt")),
        ("token_endpoint_auth_method", json!("private_key_jwt")),
        ("jwks_uri", json!("https://agent.example/jwks.json")),
        ("logo_uri", json!("http://agent.example/logo.png")),
        ("client_name", json!("")),
        ("contacts", json!(vec!["a@example.com"; 11])),
    ] {
        let (status, body) = register(&s, with(k, v.clone()), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{k}={v}");
        assert_eq!(body["error"], "invalid_client_metadata", "{k}={v}: {body}");
    }
    // The body: JSON, one object, no repeated member, bounded.
    for (body, content_type) in [
        (native("a").to_string(), "application/x-www-form-urlencoded"),
        ("[1]".to_string(), "application/json"),
        (
            "{\"client_name\":\"a\",\"client_name\":\"b\"}".to_string(),
            "application/json",
        ),
        ("{".to_string(), "application/json"),
    ] {
        let (status, answer) = post_raw(&s, &body, content_type, None).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{content_type} {}",
            &body[..body.len().min(60)]
        );
        assert_eq!(answer["error"], "invalid_client_metadata");
    }
    let big =
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "pad": "x".repeat(20_000)});
    let (status, _) = post_raw(&s, &big.to_string(), "application/json", None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A policy without confidential clients refuses them.
    let strict = server(RegistrationSettings {
        policy: Policy {
            confidential: false,
            ..open().policy
        },
        ..open()
    })
    .await;
    let (_, body) = register(
        &strict,
        with("token_endpoint_auth_method", json!("client_secret_basic")),
        None,
    )
    .await;
    assert_eq!(body["error"], "invalid_client_metadata");
    // Nothing refused was stored.
    let registered = s
        .app()
        .store
        .clients()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.registration.is_some())
        .count();
    assert_eq!(registered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_access_tokens_gate_registration() {
    let s = server(RegistrationSettings {
        mode: RegistrationMode::Token,
        ..open()
    })
    .await;
    // None, or one that was never issued: 401, and the metadata is not even read.
    for bearer in [None, Some("not-a-token")] {
        let (status, body) = register(&s, native("agent"), bearer).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bearer:?}");
        assert_eq!(body["error"], "invalid_token");
    }
    // An operator issues one for two registrations.
    let issued = kit::cli_json(
        s.dir.path(),
        &[
            "registration",
            "token",
            "create",
            "--uses",
            "2",
            "--expires-in",
            "1h",
            "--note",
            "ci agents",
            "--json",
        ],
    );
    let token = issued["token"].as_str().unwrap();
    let listed = kit::cli_json(s.dir.path(), &["registration", "token", "list", "--json"]);
    assert_eq!(listed[0]["uses_left"], 2);
    assert!(
        !listed.to_string().contains(token),
        "a listing never shows the value"
    );
    // A refused registration does not spend a use.
    let mut bad = native("agent");
    bad["redirect_uris"] = json!(["http://agent.example/cb"]);
    assert_eq!(register(&s, bad, Some(token)).await.0, StatusCode::BAD_REQUEST);
    for _ in 0..2 {
        let (status, body) = register(&s, native("agent"), Some(token)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = register(&s, native("agent"), Some(token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "used up");

    // An expired one.
    let issued = kit::cli_json(
        s.dir.path(),
        &["registration", "token", "create", "--expires-in", "10m", "--json"],
    );
    s.advance(Duration::from_secs(601));
    let (status, _) = register(&s, native("agent"), issued["token"].as_str()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired");

    // A withdrawn one.
    let issued = kit::cli_json(s.dir.path(), &["registration", "token", "create", "--json"]);
    let id = issued["id"].as_str().unwrap();
    assert_eq!(
        kit::cli(s.dir.path(), &["registration", "token", "revoke", id]).0,
        0
    );
    let (status, _) = register(&s, native("agent"), issued["token"].as_str()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "withdrawn");
    let (_, trail, _) = kit::cli(s.dir.path(), &["audit", "list"]);
    assert!(
        trail.contains("registration_token.create") && trail.contains("client.register"),
        "{trail}"
    );
    assert!(!trail.contains(token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_client_reads_updates_and_deletes_itself_with_a_rotating_token() {
    let s = server(open()).await;
    let (_, created) = register(&s, native("agent"), None).await;
    let uri = created["registration_client_uri"].as_str().unwrap().to_string();
    let id = created["client_id"].as_str().unwrap().to_string();
    let mut token = created["registration_access_token"].as_str().unwrap().to_string();
    let call = |method: reqwest::Method, bearer: Option<String>, body: Option<Value>| {
        let mut req = s.http.request(method, &uri);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Read: without or with a wrong token, 401; with its token, the registration and a new
    // token (the old one stops).
    assert_eq!(
        call(reqwest::Method::GET, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(reqwest::Method::GET, Some("x".repeat(43)), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, read) = call(reqwest::Method::GET, Some(token.clone()), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["client_name"], "agent");
    let rotated = read["registration_access_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, token);
    assert_eq!(
        call(reqwest::Method::GET, Some(token.clone()), None).await.0,
        StatusCode::UNAUTHORIZED,
        "the old token stopped"
    );
    token = rotated;

    // Update: the whole metadata replaces the old (omitted fields go), under the same policy.
    let mut changed = native("agent v2");
    changed["client_id"] = id.clone().into();
    changed["redirect_uris"] = json!(["http://127.0.0.1:9/callback", "https://agent.example/cb"]);
    changed["scope"] = "openid".into();
    let (status, updated) = call(reqwest::Method::PUT, Some(token.clone()), Some(changed.clone())).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["client_name"], "agent v2");
    assert_eq!(updated["scope"], "openid");
    assert_eq!(updated["redirect_uris"].as_array().unwrap().len(), 2);
    assert_eq!(updated["client_id_issued_at"], created["client_id_issued_at"]);
    let rotated = updated["registration_access_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, token);
    assert_eq!(
        call(reqwest::Method::PUT, Some(token.clone()), Some(changed.clone()))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    token = rotated;
    let c = s.app().store.client(&id).await.unwrap().unwrap();
    assert_eq!((c.name.as_str(), c.scopes.len()), ("agent v2", 1));

    // An operator's approval holds while the client sends people where it did; a new redirect
    // URI withdraws it.
    tessera::admin::registration::approve(&s.app().store, &s.actor(), &id, true)
        .await
        .unwrap();
    let (status, same) = call(reqwest::Method::PUT, Some(token.clone()), Some(changed.clone())).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    token = same["registration_access_token"].as_str().unwrap().to_string();
    assert!(
        s.app()
            .store
            .client(&id)
            .await
            .unwrap()
            .unwrap()
            .registration
            .unwrap()
            .approved
    );
    let mut moved = changed.clone();
    moved["redirect_uris"] = json!(["https://agent.example/elsewhere"]);
    let (status, body) = call(reqwest::Method::PUT, Some(token.clone()), Some(moved)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    token = body["registration_access_token"].as_str().unwrap().to_string();
    assert!(
        !s.app()
            .store
            .client(&id)
            .await
            .unwrap()
            .unwrap()
            .registration
            .unwrap()
            .approved
    );

    // What an update must not do.
    for (k, v) in [
        ("client_id", json!("someone-else")),
        ("registration_access_token", json!(token)),
        ("client_secret_expires_at", json!(0)),
        ("redirect_uris", json!(["http://agent.example/cb"])),
        ("token_endpoint_auth_method", json!("client_secret_basic")),
    ] {
        let mut bad = changed.clone();
        bad[k] = v;
        let (status, body) = call(reqwest::Method::PUT, Some(token.clone()), Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{k}: {body}");
    }

    // An operator's client has no configuration endpoint: a token good for a registered client
    // opens nothing else.
    let (operator_id, _) = s.client("x", &[]).await;
    let (status, _) = s
        .http
        .get(s.url(&format!("/oauth2/register/{operator_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Delete: 204, then the client and its token are gone.
    let r = s.http.delete(&uri).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(s.app().store.client(&id).await.unwrap().is_none());
    assert!(s.app().registry.get(&id).is_none());
    assert_eq!(
        call(reqwest::Method::GET, Some(token), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_rate_limited_per_address_and_capped_in_total() {
    let s = server(RegistrationSettings {
        per_address_per_hour: 2,
        ..open()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(register(&s, native("a"), None).await.0, StatusCode::CREATED);
    }
    let r = s
        .http
        .post(s.url("/oauth2/register"))
        .json(&native("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );

    let capped = server(RegistrationSettings {
        max_clients: 1,
        ..open()
    })
    .await;
    assert_eq!(register(&capped, native("a"), None).await.0, StatusCode::CREATED);
    let (status, body) = register(&capped, native("b"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "temporarily_unavailable");
}

/// The consent page for `id`'s authorization request, signed in as `email` (a fresh browser
/// signs in first).
async fn consent_page(s: &Server, b: &mut Browser, id: &str, email: &str, prompt: &str) -> crate::oidc::Page {
    let (_, challenge) = pkce();
    let url = authorize_url(
        s,
        id,
        &challenge,
        &[("scope", "openid email"), ("prompt", prompt)],
    );
    let mut page = b.get(&url).await;
    if page.body.contains("<h1>Sign in</h1>") {
        page = b
            .log_in(&s.url("/oauth2/login"), &page, email, crate::oidc::PASSWORD)
            .await;
    }
    page
}

async fn allow(s: &Server, b: &mut Browser, page: &crate::oidc::Page) -> String {
    let done = b
        .post(
            &s.url("/oauth2/consent"),
            &[
                ("request", &page.hidden("request")),
                ("csrf", &page.hidden("csrf")),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    done.location()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_always_see_who_is_asking_and_unused_registrations_are_pruned() {
    let s = server(open()).await;
    user(&s, "ada@example.com").await;
    let (_, created) = register(&s, native("Totally Legit <b>Bank</b>"), None).await;
    let id = created["client_id"].as_str().unwrap().to_string();
    let (_, unused) = register(&s, native("never used"), None).await;
    let unused = unused["client_id"].as_str().unwrap().to_string();
    let (_, machine) = register(
        &s,
        json!({"client_name": "worker", "grant_types": ["client_credentials"], "response_types": [],
               "token_endpoint_auth_method": "client_secret_basic"}),
        None,
    )
    .await;
    let machine = machine["client_id"].as_str().unwrap().to_string();
    let (_, disabled) = register(&s, native("blocked by the operator"), None).await;
    let disabled = disabled["client_id"].as_str().unwrap().to_string();
    assert_eq!(kit::cli(s.dir.path(), &["client", "disable", &disabled]).0, 0);

    // Every time, a consent page that names the app (escaped), shows where it returns to and
    // says that no operator checked it.
    let mut b = Browser::new();
    for round in 0..2 {
        let page = consent_page(&s, &mut b, &id, "ada@example.com", "").await;
        assert!(
            page.body.contains("Allow access?"),
            "round {round}: {}",
            page.body
        );
        assert!(page.body.contains("Not verified"), "{}", page.body);
        assert!(
            page.body.contains("http://127.0.0.1:9"),
            "the redirect URI's host is shown"
        );
        assert!(
            page.body.contains("Totally Legit &#60;b&#62;Bank")
                || page.body.contains("Totally Legit &lt;b&gt;Bank"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("<b>Bank</b>"));
        let back = allow(&s, &mut b, &page).await;
        assert!(query(&back).contains_key("code"));
    }

    // An operator vouches for it: no warning, and a consent once given is remembered.
    assert_eq!(kit::cli(s.dir.path(), &["registration", "approve", &id]).0, 0);
    s.app().apply_client(&id).await;
    let page = consent_page(&s, &mut b, &id, "ada@example.com", "consent").await;
    assert!(
        page.body.contains("Allow access?") && !page.body.contains("Not verified"),
        "{}",
        page.body
    );
    let (verifier, challenge) = pkce();
    allow(&s, &mut b, &page).await;
    let silent = b
        .get(&authorize_url(&s, &id, &challenge, &[("scope", "openid email")]))
        .await;
    assert_eq!(silent.status, 302, "remembered: {}", silent.body);
    let code = query(&silent.location())["code"].clone();
    let (status, tokens) = redeem(&s, &id, "", &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");

    // A day on, the never-used registration is pruned; the used one stays.
    s.advance(Duration::from_secs(86_401));
    let pruned =
        tessera::admin::registration::prune(&s.app().store, &s.actor(), &s.app().settings.registration)
            .await
            .unwrap();
    assert_eq!(pruned, std::slice::from_ref(&unused));
    assert!(s.app().store.client(&unused).await.unwrap().is_none());
    for kept in [&id, &machine, &disabled] {
        assert!(
            s.app().store.client(kept).await.unwrap().is_some(),
            "{kept} is kept"
        );
    }
    let (_, trail, _) = kit::cli(s.dir.path(), &["audit", "list"]);
    assert!(trail.contains("client.prune_unused"), "{trail}");
}

/// A node that takes client ID metadata documents, trusting `docs`' CA.
async fn documents_server(docs: &DocumentServer, extra: impl FnOnce(&mut RegistrationSettings)) -> Server {
    let mut registration = RegistrationSettings {
        mode: RegistrationMode::Off,
        metadata_documents: true,
        ..open()
    };
    extra(&mut registration);
    kit::start(Opts {
        registration: Some(registration),
        outbound_ca: Some(docs.ca_pem.clone()),
        ..Default::default()
    })
    .await
}

fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Doc Agent",
        "client_uri": "https://agent.example",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "openid email",
    })
}

/// The authorization request of `client_id`, as a fresh browser sees it.
async fn first_page(s: &Server, client_id: &str) -> crate::oidc::Page {
    let (_, challenge) = pkce();
    Browser::new()
        .get(&authorize_url(
            s,
            client_id,
            &challenge,
            &[("scope", "openid email")],
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_metadata_document_is_fetched_checked_cached_and_used() {
    let docs = DocumentServer::start().await;
    let s = documents_server(&docs, |_| {}).await;
    let meta = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    assert!(
        meta.get("registration_endpoint").is_none(),
        "registration itself stays off"
    );
    user(&s, "ada@example.com").await;
    let url = docs.url("/agent/client.json");
    docs.set(
        "/agent/client.json",
        Reply::json(&document(&url)).with("cache-control", "max-age=600"),
    );

    // The document makes the client: a person signs in, sees it marked and its document's host.
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();
    let page = consent_page_for(&s, &mut b, &url, &challenge).await;
    assert!(
        page.body.contains("Doc Agent") && page.body.contains("Not verified"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&docs.base),
        "the document's host is shown: {}",
        page.body
    );
    let back = allow(&s, &mut b, &page).await;
    let code = query(&back)["code"].clone();
    let (status, tokens) = redeem(&s, &url, "", &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, claims) = kit::decode_unverified(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], url.as_str());
    let stored = kit::cli_json(s.dir.path(), &["client", "show", &url, "--json"]);
    assert_eq!(stored["origin"], "metadata_document");
    assert_eq!(stored["client_metadata"]["client_uri"], "https://agent.example");

    // Fetched once while fresh; again once stale, and a change in the document is taken.
    let fetched = docs.hits();
    first_page(&s, &url).await;
    assert_eq!(docs.hits(), fetched, "cached for its max-age");
    let mut renamed = document(&url);
    renamed["client_name"] = "Doc Agent 2".into();
    docs.set(
        "/agent/client.json",
        Reply::json(&renamed).with("cache-control", "no-store"),
    );
    s.advance(Duration::from_secs(601));
    let page = first_page(&s, &url).await;
    assert_eq!(docs.hits(), fetched + 1);
    assert!(page.body.contains("Doc Agent 2"), "{}", page.body);
    first_page(&s, &url).await;
    assert_eq!(docs.hits(), fetched + 1, "no-store: still kept a minute");
    s.advance(Duration::from_secs(61));
    first_page(&s, &url).await;
    assert_eq!(
        docs.hits(),
        fetched + 2,
        "no-store: fetched again after the minimum"
    );

    // An operator disables it: it stays disabled whatever the document says.
    assert_eq!(kit::cli(s.dir.path(), &["client", "disable", &url]).0, 0);
    let page = first_page(&s, &url).await;
    assert!(!page.body.contains("<h1>Sign in</h1>"), "{}", page.body);
    assert!(!s.app().store.client(&url).await.unwrap().unwrap().enabled);
}

async fn consent_page_for(
    s: &Server,
    b: &mut Browser,
    client_id: &str,
    challenge: &str,
) -> crate::oidc::Page {
    let page = b
        .get(&authorize_url(
            s,
            client_id,
            challenge,
            &[("scope", "openid email")],
        ))
        .await;
    assert!(page.body.contains("<h1>Sign in</h1>"), "{}", page.body);
    b.log_in(
        &s.url("/oauth2/login"),
        &page,
        "ada@example.com",
        crate::oidc::PASSWORD,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_documents_that_cannot_be_trusted_are_refused() {
    let docs = DocumentServer::start().await;
    let s = documents_server(&docs, |r| r.per_address_per_hour = 1000).await;
    let refused = |page: &crate::oidc::Page, why: &str| {
        assert!(
            page.status.is_client_error() || page.status.is_server_error(),
            "{why}: {}",
            page.status
        );
        assert!(!page.body.contains("<h1>Sign in</h1>"), "{why}: {}", page.body);
        assert!(page.body.contains("cannot sign you in"), "{why}: {}", page.body);
    };
    let cases: Vec<(&str, Reply)> = vec![
        (
            "unreachable (404)",
            Reply {
                status: 404,
                headers: vec![],
                body: vec![],
            },
        ),
        (
            "a server error",
            Reply {
                status: 500,
                headers: vec![],
                body: vec![],
            },
        ),
        (
            "a redirect off its host",
            Reply {
                status: 307,
                headers: vec![("location".into(), "https://evil.example/client.json".into())],
                body: vec![],
            },
        ),
        (
            "a redirect, even on its own host",
            Reply {
                status: 302,
                headers: vec![("location".into(), docs.url("/elsewhere.json"))],
                body: vec![],
            },
        ),
        (
            "too large",
            Reply::json(&{
                let mut d = document("X");
                d["pad"] = "x".repeat(6 * 1024).into();
                d
            }),
        ),
        (
            "another client_id",
            Reply::json(&document("https://other.example/client.json")),
        ),
        (
            "not JSON",
            Reply {
                status: 200,
                headers: vec![],
                body: b"<html>".to_vec(),
            },
        ),
        (
            "a shared secret",
            Reply::json(&{
                let mut d = document("X");
                d["token_endpoint_auth_method"] = "client_secret_basic".into();
                d
            }),
        ),
        (
            "a bad redirect URI",
            Reply::json(&{
                let mut d = document("X");
                d["redirect_uris"] = json!(["http://evil.example/cb"]);
                d
            }),
        ),
    ];
    for (i, (why, mut reply)) in cases.into_iter().enumerate() {
        let path = format!("/bad/{i}.json");
        let url = docs.url(&path);
        // Documents written for this URL name it.
        reply.body = String::from_utf8(reply.body)
            .unwrap()
            .replace("\"X\"", &format!("{url:?}"))
            .into_bytes();
        docs.set(&path, reply);
        let page = first_page(&s, &url).await;
        refused(&page, why);
        assert!(
            s.app().store.client(&url).await.unwrap().is_none(),
            "{why}: nothing stored"
        );
    }
    // A URL that is not a document URL is an ordinary (unknown) client id.
    let page = first_page(&s, "https://127.0.0.1/").await;
    assert!(page.body.contains("not registered"), "{}", page.body);

    // Slow: the fetch ends at the outbound timeout. (A port that accepts and never answers.)
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/slow/client.json", silent.local_addr().unwrap());
    let page = first_page(&s, &url).await;
    refused(&page, "no answer");

    // Addresses the operator has not allowed: by default loopback (written as an address or
    // reached by name), private and link-local ones. Nothing is even asked of them.
    let strict = kit::start(Opts {
        registration: Some(RegistrationSettings {
            metadata_documents: true,
            ..open()
        }),
        outbound_ca: Some(docs.ca_pem.clone()),
        strict_outbound: true,
        ..Default::default()
    })
    .await;
    let port = docs.base.rsplit(':').next().unwrap().to_string();
    for (path, host) in [("/strict/a.json", "127.0.0.1"), ("/strict/b.json", "localhost")] {
        let url = format!("https://{host}:{port}{path}");
        docs.set(path, Reply::json(&document(&url)));
        let before = docs.hits();
        let page = first_page(&strict, &url).await;
        refused(&page, &url);
        assert!(
            page.body.contains("is not allowed") || page.body.contains("no allowed address"),
            "{url}: {}",
            page.body
        );
        assert_eq!(docs.hits(), before, "{url}: never fetched");
    }
    for refused_host in [
        "https://10.0.0.1/client.json",
        "https://169.254.169.254/latest/client.json",
    ] {
        let page = first_page(&strict, refused_host).await;
        refused(&page, refused_host);
        assert!(page.body.contains("is not allowed"), "{}", page.body);
    }

    // New documents count against the registration rate per address.
    let limited = documents_server(&docs, |r| r.per_address_per_hour = 1).await;
    for i in 0..2 {
        let path = format!("/rate/{i}.json");
        let url = docs.url(&path);
        docs.set(&path, Reply::json(&document(&url)));
        let page = first_page(&limited, &url).await;
        if i == 0 {
            assert!(page.body.contains("<h1>Sign in</h1>"), "{}", page.body);
        } else {
            assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_issues_initial_access_tokens_and_approves_clients() {
    let s = server(RegistrationSettings {
        mode: RegistrationMode::Token,
        ..open()
    })
    .await;
    let (admin, _) = crate::admin_api::admin_token(&s).await;
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = s.http.request(method, s.url(path)).bearer_auth(&admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            let no_store = r.headers().get("cache-control").is_some_and(|v| v == "no-store");
            (status, r.json::<Value>().await.unwrap_or(Value::Null), no_store)
        }
    };
    let (status, created, no_store) = call(
        reqwest::Method::POST,
        "/admin/v1/registration-tokens",
        Some(json!({"expires_in": 3600, "uses": 1, "note": "one agent"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(no_store, "a response with a secret is never cached");
    let token = created["token"].as_str().unwrap().to_string();
    let (status, body) = register(&s, native("agent"), Some(&token)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["client_id"].as_str().unwrap().to_string();
    let (_, listed, _) = call(reqwest::Method::GET, "/admin/v1/registration-tokens", None).await;
    assert_eq!(listed["registration_tokens"][0]["uses_left"], 0);
    assert!(!listed.to_string().contains(&token));
    for bad in [
        json!({"uses": 0}),
        json!({"expires_in": 10}),
        json!({"uses": 1, "extra": true}),
    ] {
        let (status, _, _) = call(
            reqwest::Method::POST,
            "/admin/v1/registration-tokens",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // The client shows how it came to be, and an operator vouches for it, or stops.
    let (_, shown, _) = call(reqwest::Method::GET, &format!("/admin/v1/clients/{id}"), None).await;
    assert_eq!(
        (shown["origin"].as_str(), shown["approved"].as_bool()),
        (Some("registration"), Some(false))
    );
    let (status, approved, _) = call(
        reqwest::Method::POST,
        &format!("/admin/v1/clients/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["approved"], true);
    let (_, withdrawn, _) = call(
        reqwest::Method::POST,
        &format!("/admin/v1/clients/{id}/approve"),
        Some(json!({"approved": false})),
    )
    .await;
    assert_eq!(withdrawn["approved"], false);
    let (operator, _) = s.client("x", &[]).await;
    let (status, _, _) = call(
        reqwest::Method::POST,
        &format!("/admin/v1/clients/{operator}/approve"),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an operator's client is trusted already"
    );

    let tid = created["id"].as_str().unwrap();
    let (status, _, _) = call(
        reqwest::Method::DELETE,
        &format!("/admin/v1/registration-tokens/{tid}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(
        reqwest::Method::DELETE,
        &format!("/admin/v1/registration-tokens/{tid}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
