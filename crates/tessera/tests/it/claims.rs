//! Per-client claims: in every token, in introspection, bounded, never a protocol claim, and the
//! source of templated scopes.

use std::time::Duration;

use serde_json::{Value, json};
use tessera::admin::{self, ClientUpdate, NewClient};
use tessera::operation::Actor;

use crate::kit::{self, Opts, cli, cli_json, decode_unverified};

fn claims(v: Value) -> tessera::claims::Claims {
    v.as_object().cloned().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_in_every_token_and_in_introspection() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s
        .client_with(NewClient {
            name: "tenant app".into(),
            scope: "reports:read".into(),
            claims: claims(json!({"tenant": "acme", "tier": 3, "beta": true, "org": {"id": 7}})),
            ..Default::default()
        })
        .await;
    let token = s.token(&id, &secret).await;
    let (_, payload) = decode_unverified(&token);
    assert_eq!(payload["tenant"], "acme");
    assert_eq!(payload["tier"], 3);
    assert_eq!(payload["beta"], true);
    assert_eq!(payload["org"], json!({"id": 7}));
    // The registered claims are Tessera's own, untouched.
    assert_eq!(payload["sub"], id.as_str());
    assert_eq!(payload["client_id"], id.as_str());
    assert_eq!(payload["scope"], "reports:read");

    let m = s.introspect(&id, &secret, &token).await;
    assert_eq!(m["active"], true);
    assert_eq!(
        (m["tenant"].clone(), m["tier"].clone(), m["org"].clone()),
        (json!("acme"), json!(3), json!({"id": 7}))
    );
    assert_eq!(m["token_type"], "Bearer");

    // A client without claims gets exactly the registered ones.
    let (plain, plain_secret) = s.client("x", &[]).await;
    let (_, payload) = decode_unverified(&s.token(&plain, &plain_secret).await);
    let mut names: Vec<_> = payload.as_object().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        ["aud", "client_id", "exp", "iat", "iss", "jti", "scope", "sub"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_names_and_oversized_claims_are_refused_everywhere() {
    let s = kit::start(Opts::default()).await;
    let d = s.dir.path();
    for name in [
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "client_id",
        "scope",
        "azp",
        "cnf",
        "act",
    ] {
        let (code, out, err) = cli(
            d,
            &["client", "create", "--name", "x", "--claim", &format!("{name}=v")],
        );
        assert_ne!(code, 0, "--claim {name} accepted: {out}");
        assert!(err.contains("registered or protocol claim"), "{name}: {err}");
    }
    let big = format!("blob={}", "x".repeat(3000));
    let (code, _, err) = cli(d, &["client", "create", "--name", "x", "--claim", &big]);
    assert_ne!(code, 0);
    assert!(err.contains("at most 2048"), "{err}");

    // The admin API says the same, as JSON.
    let (admin, _) = crate::admin_api::admin_token(&s).await;
    let r = s
        .http
        .post(s.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "x", "claims": {"exp": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_input");
    assert!(body["message"].as_str().unwrap().contains("\"exp\""), "{body}");
    // Nothing was created by the refused requests.
    let listed = cli_json(d, &["client", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_in_the_next_token_within_the_propagation_bound() {
    let s = kit::start(Opts::default()).await;
    let d = s.dir.path();
    let created = cli_json(
        d,
        &[
            "client",
            "create",
            "--name",
            "moving",
            "--claim",
            "region=eu-1",
            "--json",
        ],
    );
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    // `client show` lists the claims.
    let (code, out, _) = cli(d, &["client", "show", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("claim:      region = \"eu-1\""), "{out}");
    let shown = cli_json(d, &["client", "show", &id, "--json"]);
    assert_eq!(shown["claims"], json!({"region": "eu-1"}));

    let region = |token: String| decode_unverified(&token).1["region"].clone();
    let seen = kit::eventually(Duration::from_secs(5), || async {
        s.token_basic(&id, &secret, &[("grant_type", "client_credentials")])
            .await
            .status()
            == 200
    })
    .await;
    assert!(seen);
    assert_eq!(region(s.token(&id, &secret).await), "eu-1");

    let (code, _, err) = cli(
        d,
        &[
            "client",
            "update",
            &id,
            "--claim",
            "region=us-2",
            "--claim",
            "n=5",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let updated = kit::eventually(Duration::from_secs(5), || async {
        region(s.token(&id, &secret).await) == "us-2"
    })
    .await;
    assert!(updated, "the update did not reach the running server within 5 s");
    assert_eq!(decode_unverified(&s.token(&id, &secret).await).1["n"], 5);

    let (code, _, _) = cli(d, &["client", "update", &id, "--remove-claim", "n"]);
    assert_eq!(code, 0);
    let shown = cli_json(d, &["client", "show", &id, "--json"]);
    assert_eq!(shown["claims"], json!({"region": "us-2"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_built_from_claims_as_instructure_answers() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s
        .client_with(NewClient {
            name: "dap".into(),
            scope: "dap principal:{principal} partner:{partner} region:{region}".into(),
            claims: claims(json!({"principal": "inst-42", "partner": "p-9", "region": "us-east-1"})),
            ..Default::default()
        })
        .await;
    let r = s
        .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["scope"],
        "dap principal:inst-42 partner:p-9 region:us-east-1"
    );
    // A client may also ask for part of it, as filled in.
    let r = s
        .token_basic(
            &id,
            &secret,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "dap region:us-east-1"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["scope"], "dap region:us-east-1");
    // But not the template itself.
    let r = s
        .token_basic(
            &id,
            &secret,
            &[("grant_type", "client_credentials"), ("scope", "region:{region}")],
        )
        .await;
    assert_eq!(r.status(), 400);

    // A template naming a claim the client lacks is refused when it is set, and a claim a
    // template needs cannot be removed.
    let store = &s.app().store;
    let err = admin::create_client(
        store,
        &Actor::cli(),
        NewClient {
            name: "bad".into(),
            scope: "x:{missing}".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("lacks"), "{err}");
    let err = admin::update_client(
        store,
        &Actor::cli(),
        &id,
        ClientUpdate {
            claims: Some(claims(json!({"region": null}))),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("lacks"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_sets_and_replaces_claims() {
    let s = kit::start(Opts::default()).await;
    let (admin, _) = crate::admin_api::admin_token(&s).await;
    let r = s
        .http
        .post(s.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "svc", "scope": "t:{tenant}", "claims": {"tenant": "acme", "n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["client"]["claims"], json!({"tenant": "acme", "n": 1}));
    assert_eq!(created["client"]["scope"], "t:{tenant}");
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    let url = s.url(&format!("/admin/v1/clients/{id}"));
    // PATCH replaces the claims whole; a template left without its claim is refused.
    let patch = |body: Value| s.http.patch(&url).bearer_auth(&admin).json(&body).send();
    let r = patch(json!({"claims": {"n": 2}})).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("lacks")
    );
    let r = patch(json!({"claims": {"tenant": "beta"}})).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["claims"],
        json!({"tenant": "beta"})
    );
    let shown: Value = s
        .http
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["claims"], json!({"tenant": "beta"}));
    let got = kit::eventually(Duration::from_secs(5), || async {
        let r = s
            .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
            .await;
        if r.status() != 200 {
            return false;
        }
        let body: Value = r.json().await.unwrap();
        let (_, payload) = decode_unverified(body["access_token"].as_str().unwrap());
        body["scope"] == "t:beta" && payload["tenant"] == "beta" && payload.get("n").is_none()
    })
    .await;
    assert!(
        got,
        "the replaced claims and scope did not reach the token within 5 s"
    );
}

/// A scope stored before templates existed (`{` was always a legal scope character) stays a
/// literal scope, and its client can still be disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_brace_scope_from_before_templates_still_works() {
    let s = kit::start(Opts::default()).await;
    let mut created = admin::build_client(
        NewClient {
            name: "legacy".into(),
            scope: "plain".into(),
            ..Default::default()
        },
        tessera::model::clock::unix_now(),
    )
    .unwrap();
    created.client.scopes.push("legacy{x}".into());
    let entry = Actor::cli().entry("client.create", &created.client.id, json!({}));
    let store = &s.app().store;
    assert!(store.insert_client(&created.client, None, &entry).await.unwrap());
    let (id, secret) = (created.client.id.clone(), created.secret.clone());
    s.caught_up().await;
    let r = s
        .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["scope"], "plain legacy{x}");
    let disabled = admin::update_client(
        store,
        &Actor::cli(),
        &id,
        ClientUpdate {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!disabled.enabled);
}
