//! What a second round of probing found, each case as a test against a real server: grants
//! that outlive what was taken away, attributes posing as identity claims, back-off key spaces,
//! changes that must bind at once, sign-ins that must end with a password, operator traps.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::admin::{ClientUpdate, NewClient};
use tessera::operation::Actor;
use tessera::users::NewUser;

use crate::kit::{self, Opts, Server};
use crate::oidc::{
    Browser, PASSWORD, REDIRECT, authorize_url, pkce, query, redeem, refresh, sign_in, try_login, user,
};

const API_A: &str = "https://a.api.example/";
const API_B: &str = "https://b.api.example/";

/// A confidential first-party client that signs people in, with two APIs as audiences.
async fn two_api_client(s: &Server) -> (String, String) {
    s.client_with(NewClient {
        name: "Two APIs".into(),
        scope: "orders:read orders:write".into(),
        audiences: vec![API_A.into(), API_B.into()],
        first_party: true,
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        redirect_uris: vec![REDIRECT.into()],
        ..Default::default()
    })
    .await
}

/// Signs `email` in for `scope` with `extra` parameters on the authorization request; returns
/// the code and its verifier.
async fn code_for(
    s: &Server,
    id: &str,
    email: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();
    let mut params = vec![("scope", scope)];
    params.extend_from_slice(extra);
    let back = sign_in(&mut b, s, &authorize_url(s, id, &challenge, &params), email).await;
    (query(&back)["code"].clone(), verifier)
}

async fn token_form(s: &Server, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = s.token_basic(id, secret, form).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

fn claims(token: &Value) -> Value {
    kit::decode_unverified(token["access_token"].as_str().unwrap()).1
}

async fn narrow_client(s: &Server, id: &str, update: ClientUpdate) {
    tessera::admin::update_client(&s.app().store, &s.actor(), id, update)
        .await
        .unwrap();
    s.caught_up().await;
}

#[tokio::test]
async fn a_grant_used_again_gives_only_what_the_client_may_have_now_and_only_for_its_resource() {
    let s = kit::start(Opts::default()).await;
    user(&s, "ada@example.com").await;
    let (id, secret) = two_api_client(&s).await;
    let all = "openid offline_access orders:read orders:write";

    // The authorization request names resource A; a resource the client lacks is refused there.
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();
    let unknown = b
        .get(&authorize_url(
            &s,
            &id,
            &challenge,
            &[("scope", all), ("resource", "https://evil.example/")],
        ))
        .await;
    assert_eq!(query(&unknown.location())["error"], "invalid_target");
    let back = sign_in(
        &mut b,
        &s,
        &authorize_url(&s, &id, &challenge, &[("scope", all), ("resource", API_A)]),
        "ada@example.com",
    )
    .await;
    let code = query(&back)["code"].clone();
    let exchange = |resource: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ];
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        let (s, id, secret) = (&s, id.clone(), secret.clone());
        async move { token_form(s, &id, &secret, &form).await }
    };
    // RFC 8707 §2.2: a resource the authorization request did not name is invalid_target, and
    // the code is not spent by the refusal.
    let (status, body) = exchange(Some(API_B)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    let (status, tokens) = exchange(None).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(&tokens)["aud"], API_A);
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();

    // A refresh may not switch to another of the client's audiences either; nothing is spent.
    let (status, body) = token_form(
        &s,
        &id,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("resource", API_B),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    let (status, body) = token_form(
        &s,
        &id,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("resource", API_A),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(&body)["aud"], API_A);
    let rt = body["refresh_token"].as_str().unwrap().to_string();

    // orders:write is taken from the client: the next refresh no longer carries it, nor may ask
    // for it, and neither does the token of the family after that.
    narrow_client(
        &s,
        &id,
        ClientUpdate {
            scope: Some("orders:read".into()),
            ..Default::default()
        },
    )
    .await;
    let (status, body) = token_form(
        &s,
        &id,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "orders:write"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    let (status, body) = refresh(&s, &id, &secret, &rt).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid offline_access orders:read");
    assert_eq!(claims(&body)["scope"], "openid offline_access orders:read");
    // Given back to the client, it does not come back to a grant that lost it.
    narrow_client(
        &s,
        &id,
        ClientUpdate {
            scope: Some("orders:read orders:write".into()),
            ..Default::default()
        },
    )
    .await;
    let (status, body) = refresh(&s, &id, &secret, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid offline_access orders:read");

    // A resource taken from the client ends what the grant may mint for it.
    narrow_client(
        &s,
        &id,
        ClientUpdate {
            audiences: Some(vec![API_B.into()]),
            ..Default::default()
        },
    )
    .await;
    let (status, body) = refresh(&s, &id, &secret, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );

    // The same rules for a code redeemed after its client changed.
    narrow_client(
        &s,
        &id,
        ClientUpdate {
            audiences: Some(vec![API_A.into(), API_B.into()]),
            ..Default::default()
        },
    )
    .await;
    let (code, verifier) = code_for(&s, &id, "ada@example.com", all, &[]).await;
    narrow_client(
        &s,
        &id,
        ClientUpdate {
            scope: Some("orders:read".into()),
            ..Default::default()
        },
    )
    .await;
    let (status, body) = redeem(&s, &id, &secret, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid offline_access orders:read");
    // Without resource on the authorization request the grant covers the default audience only.
    assert_eq!(claims(&body)["aud"], API_A);
    let (status, body) = token_form(
        &s,
        &id,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("resource", API_B),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    let (code, verifier) = code_for(
        &s,
        &id,
        "ada@example.com",
        "openid orders:read",
        &[("resource", API_B)],
    )
    .await;
    narrow_client(
        &s,
        &id,
        ClientUpdate {
            audiences: Some(vec![API_A.into()]),
            ..Default::default()
        },
    )
    .await;
    let (status, body) = redeem(&s, &id, &secret, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
}

#[tokio::test]
async fn user_attributes_cannot_stand_in_for_identity_claims() {
    let s = kit::start(Opts::default()).await;
    let store = &s.app().store;
    for name in [
        "email",
        "EMAIL",
        "email_verified",
        "name",
        "Given_Name",
        "phone_number",
        "updated_at",
        "sub",
    ] {
        let mut attributes = serde_json::Map::new();
        attributes.insert(name.into(), json!("ceo@corp.example"));
        let new = NewUser {
            email: format!("{}@example.com", name.to_lowercase()),
            attributes: attributes.clone(),
            ..Default::default()
        };
        let refused = tessera::users::create_user(store, &Actor::cli(), new).await;
        assert!(
            matches!(refused, Err(tessera::operation::AdminError::Invalid(_))),
            "{name}: created"
        );
    }
    let id = user(&s, "ada@example.com").await;
    let update = tessera::users::UserUpdate {
        attributes: Some(serde_json::from_value(json!({"email_verified": true})).unwrap()),
        ..Default::default()
    };
    assert!(
        tessera::users::update_user(store, &Actor::cli(), &id, update)
            .await
            .is_err()
    );
    // The CLI says why, in one line, and changes nothing.
    let (code, _, err) = kit::cli(
        s.dir.path(),
        &[
            "user",
            "update",
            "ada@example.com",
            "--attribute",
            "email=ceo@corp.example",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("standard claim"), "{err}");
    // A user stored before such names were refused: userinfo does not release them.
    let mut u = store.user(&id).await.unwrap().unwrap();
    u.id = "legacy-user".into();
    u.email = "legacy@example.com".into();
    u.email_verified = false;
    u.attributes = serde_json::from_value(
        json!({"email": "ceo@corp.example", "email_verified": true, "name": "CEO", "team": "compilers"}),
    )
    .unwrap();
    let audit = Actor::cli().entry("user.create", "legacy-user", json!({}));
    assert!(store.insert_user(&u, &audit).await.unwrap());
    let (cid, secret) = s
        .client_with(NewClient {
            name: "Profile".into(),
            first_party: true,
            grant_types: Some(vec!["authorization_code".into()]),
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        })
        .await;
    for scope in ["openid profile", "openid profile email"] {
        let (code, verifier) = code_for(&s, &cid, "legacy@example.com", scope, &[]).await;
        let (status, tokens) = redeem(&s, &cid, &secret, &code, &verifier).await;
        assert_eq!(status, 200, "{tokens}");
        let info: Value = s
            .http
            .get(s.url("/oauth2/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["team"], "compilers", "{info}");
        assert_eq!(info["name"], "Ada Lovelace", "{info}");
        if scope.ends_with("email") {
            assert_eq!(info["email"], "legacy@example.com", "{info}");
            assert_eq!(info["email_verified"], false, "{info}");
        } else {
            assert!(
                info.get("email").is_none() && info.get("email_verified").is_none(),
                "{info}"
            );
        }
    }
}

#[tokio::test]
async fn a_client_id_that_looks_like_a_person_holds_nobody_out() {
    let s = kit::start(Opts::default()).await;
    user(&s, "bob@example.com").await;
    let (id, _) = crate::oidc::app_client(&s, "Orders", false, true).await;
    for client_id in ["login:bob@example.com", "bob@example.com"] {
        for _ in 0..8 {
            let r = s
                .token_basic(client_id, "guess", &[("grant_type", "client_credentials")])
                .await;
            assert!(matches!(r.status().as_u16(), 401 | 429));
        }
    }
    let mut b = Browser::new();
    let p = try_login(&mut b, &s, &id, "bob@example.com", PASSWORD).await;
    assert_eq!(
        p.status, 303,
        "the person was held by a client's failures: {}",
        p.body
    );
}

/// Logs in to client `id` as `email` from `address` (the trusted proxy's header says so).
async fn login_from(
    b: &mut Browser,
    s: &Server,
    id: &str,
    email: &str,
    password: &str,
    address: &str,
) -> crate::oidc::Page {
    let (_, challenge) = pkce();
    // prompt=login: the login page even for a browser that is signed in already.
    let url = authorize_url(s, id, &challenge, &[("prompt", "login")]);
    let req = b.http.get(&url).header("x-forwarded-for", address);
    let login = b.send(req).await;
    let form = kit::encode_form(&[
        ("request", &login.hidden("request")),
        ("csrf", &login.hidden("csrf")),
        ("email", email),
        ("password", password),
    ]);
    let req = b
        .http
        .post(s.url("/oauth2/login"))
        .header("x-forwarded-for", address)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form);
    b.send(req).await
}

#[tokio::test]
async fn someone_elses_guesses_do_not_hold_the_owner_out_and_spread_guessing_is_still_held() {
    let s = kit::start(Opts {
        limits: Some(tessera::limits::LimitSettings {
            trusted_proxy_header: Some("X-Forwarded-For".into()),
            trusted_proxies: vec!["127.0.0.1/32".into()],
            failures_before_backoff: 3,
            account_failures_before_backoff: 8,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    user(&s, "bob@example.com").await;
    let (id, _) = crate::oidc::app_client(&s, "Orders", false, true).await;
    // Bob signed in once from his browser: it holds his device cookie.
    let mut owner = Browser::new();
    let p = login_from(&mut owner, &s, &id, "bob@example.com", PASSWORD, "198.51.100.7").await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.set_cookies().iter().any(|c| c.contains("tessera_device=")));
    // A guesser from one address is held after three failures, even with the right password.
    let mut guesser = Browser::new();
    for _ in 0..3 {
        let p = login_from(&mut guesser, &s, &id, "bob@example.com", "guess", "203.0.113.1").await;
        assert_eq!(p.status, 200);
    }
    let p = login_from(&mut guesser, &s, &id, "bob@example.com", PASSWORD, "203.0.113.1").await;
    assert_eq!(p.status, 429, "{}", p.body);
    // Bob, elsewhere, even in a new browser, is not.
    let p = login_from(
        &mut Browser::new(),
        &s,
        &id,
        "bob@example.com",
        PASSWORD,
        "198.51.100.8",
    )
    .await;
    assert_eq!(p.status, 303, "the owner was held by a guesser: {}", p.body);
    // Guessing spread over many addresses reaches the account's ceiling: new browsers are held
    // everywhere, Bob's own browser is not.
    for i in 0..8 {
        let p = login_from(
            &mut Browser::new(),
            &s,
            &id,
            "bob@example.com",
            "guess",
            &format!("192.0.2.{i}"),
        )
        .await;
        assert!(matches!(p.status.as_u16(), 200 | 429));
    }
    let stranger = login_from(
        &mut Browser::new(),
        &s,
        &id,
        "bob@example.com",
        PASSWORD,
        "198.51.100.9",
    )
    .await;
    assert_eq!(stranger.status, 429, "{}", stranger.body);
    assert!(stranger.headers.get("retry-after").is_some());
    // A device cookie for another account does not help.
    let mut other = Browser::new();
    user(&s, "carol@example.com").await;
    let p = login_from(
        &mut other,
        &s,
        &id,
        "carol@example.com",
        PASSWORD,
        "198.51.100.10",
    )
    .await;
    assert_eq!(p.status, 303);
    let p = login_from(&mut other, &s, &id, "bob@example.com", PASSWORD, "198.51.100.10").await;
    assert_eq!(p.status, 429, "{}", p.body);
    let p = login_from(&mut owner, &s, &id, "bob@example.com", PASSWORD, "198.51.100.7").await;
    assert_eq!(p.status, 303, "the owner's browser was held: {}", p.body);
}

#[tokio::test]
async fn changes_through_the_admin_api_bind_this_node_before_it_answers() {
    let s = kit::start(Opts::default()).await;
    let (admin, admin_id) = crate::admin_api::admin_token(&s).await;
    let (id, secret) = s.client("orders:read", &[]).await;
    assert_eq!(
        s.token_basic(&id, &secret, &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );
    let r = s
        .http
        .post(s.url(&format!("/admin/v1/clients/{id}/disable")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No wait for a poll: the node that answered has applied the change.
    let r = s
        .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 401);
    // A secret rotated with no grace period: the old one ends at once.
    let (id2, secret2) = s.client("orders:read", &[]).await;
    let r = s
        .http
        .post(s.url(&format!("/admin/v1/clients/{id2}/rotate-secret")))
        .bearer_auth(&admin)
        .json(&json!({"grace_seconds": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let new_secret = r.json::<Value>().await.unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.token_basic(&id2, &secret2, &[("grant_type", "client_credentials")])
            .await
            .status(),
        401
    );
    assert_eq!(
        s.token_basic(&id2, &new_secret, &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );
    // The admin scope taken from a client by the CLI (not through this node): its live token is
    // refused at the next call, without waiting for this node to poll.
    let update = ClientUpdate {
        scope: Some(String::new()),
        ..Default::default()
    };
    tessera::admin::update_client(&s.app().store, &s.actor(), &admin_id, update)
        .await
        .unwrap();
    let r = s
        .http
        .get(s.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_new_password_or_a_disable_ends_the_users_sign_ins() {
    let s = kit::start(Opts::default()).await;
    let ada = user(&s, "ada@example.com").await;
    let (id, secret) = crate::oidc::app_client(&s, "Orders", false, true).await;
    let (admin, _) = crate::admin_api::admin_token(&s).await;
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();
    let url = authorize_url(&s, &id, &challenge, &[]);
    let back = sign_in(&mut b, &s, &url, "ada@example.com").await;
    let (status, tokens) = redeem(&s, &id, &secret, &query(&back)["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let userinfo = |t: String| {
        let s = &s;
        async move {
            s.http
                .get(s.url("/oauth2/userinfo"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(userinfo(access.clone()).await, 200);
    // The session signs the browser in without a password.
    let again = b.get(&authorize_url(&s, &id, &pkce().1, &[])).await;
    assert!(
        matches!(again.status, StatusCode::FOUND | StatusCode::SEE_OTHER),
        "{}",
        again.body
    );

    let r = s
        .http
        .post(s.url(&format!("/admin/v1/users/{ada}/password")))
        .bearer_auth(&admin)
        .json(&json!({"password": "a new and long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ended: Value = r.json().await.unwrap();
    assert_eq!(
        ended["sign_ins_ended"],
        json!({"sessions": 1, "refresh_token_families": 1, "access_tokens_revoked": 1})
    );
    let (status, body) = refresh(&s, &id, &secret, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        userinfo(access).await,
        401,
        "the access token outlived the password"
    );
    let again = b.get(&authorize_url(&s, &id, &pkce().1, &[])).await;
    assert!(
        again.body.contains("<h1>Sign in</h1>"),
        "the session outlived the password"
    );

    // Disabling, from the CLI: the same, and it says so.
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();
    let back = crate::oidc::sign_in_with(
        &mut b,
        &s,
        &authorize_url(&s, &id, &challenge, &[]),
        "ada@example.com",
        "a new and long password",
    )
    .await;
    let (status, tokens) = redeem(&s, &id, &secret, &query(&back)["code"], &verifier).await;
    assert_eq!(status, 200);
    let (code, out, err) = kit::cli(s.dir.path(), &["user", "disable", "ada@example.com"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 sessions and 1 refresh-token families ended, 1 access tokens revoked"),
        "{out}"
    );
    let (status, _) = refresh(&s, &id, &secret, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400);
    let audit = s.app().store.audit_events(0, 0, 100).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.entry.action == "user.set_password" && e.entry.details["ends_sign_ins"] == true)
    );
}

#[tokio::test]
async fn json_members_given_twice_or_holding_nul_are_refused_at_any_depth() {
    let s = kit::start(Opts::default()).await;
    let (admin, _) = crate::admin_api::admin_token(&s).await;
    let clients_before = s.app().store.clients().await.unwrap().len();
    for body in [
        r#"{"name":"a","name":"b"}"#,
        r#"{"name":"a","claims":{"tenant":"x","tenant":"y"}}"#,
        r#"{"name":"a","claims":{"t":{"deep":1,"deep":2}}}"#,
        r#"{"name":"a\u0000b"}"#,
        r#"{"name":"a","claims":{"t":"x\u0000"}}"#,
    ] {
        let r = s
            .http
            .post(s.url("/admin/v1/clients"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_request", "{body}: {answer}");
    }
    assert_eq!(s.app().store.clients().await.unwrap().len(), clients_before);
    let r = s
        .http
        .post(s.url("/admin/v1/users"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(r#"{"email":"x@example.com","attributes":{"team":"a","team":"b"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The CLI holds a claim's JSON value to the same rule.
    let (code, _, err) = kit::cli(
        s.dir.path(),
        &["client", "create", "--name", "x", "--claim", r#"t={"a":1,"a":2}"#],
    );
    assert_ne!(code, 0);
    assert!(err.contains("repeated"), "{err}");
}

#[test]
fn a_catch_all_trusted_proxy_network_stops_start_up_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let write = |extra: &str| {
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            format!("[limits]\ntrusted_proxy_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"10.0.0.0/8\", \"0.0.0.0/0\"]\n{extra}"),
        )
        .unwrap();
        path
    };
    let over = tessera::config::Overrides::default();
    let refused = tessera::config::Settings::load(Some(&write("")), &over)
        .err()
        .unwrap();
    assert!(refused.to_string().contains("allow_any_proxy"), "{refused}");
    let allowed = tessera::config::Settings::load(Some(&write("allow_any_proxy = true\n")), &over).unwrap();
    assert!(allowed.limits.trusts_any_proxy());
}
