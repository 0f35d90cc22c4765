//! Token and credential lifecycle: introspection (RFC 7662), revocation (RFC 7009), secret and
//! key rotation.

use std::time::Duration;

use serde_json::{Value, json};
use tessera::admin::{self, ClientUpdate, NewClient};
use tessera::operation::Actor;

use crate::kit::{self, Opts, decode_unverified, encode_form, verify_as_resource_server};

const API: &str = "https://api.example.com";

fn inactive() -> Value {
    json!({"active": false})
}

async fn client_ttl(s: &kit::Server, ttl: u32) -> (String, String) {
    s.client_with(NewClient {
        name: "short".into(),
        scope: "a".into(),
        token_ttl: Some(ttl),
        ..Default::default()
    })
    .await
}

/// A client allowed to introspect every client's tokens, as a resource server would be.
async fn resource_server(s: &kit::Server) -> (String, String) {
    s.client_with(NewClient {
        name: "resource server".into(),
        introspect: true,
        ..Default::default()
    })
    .await
}

/// Waits until this node sees an admin change made in the store (propagation is tested
/// elsewhere).
async fn refresh(s: &kit::Server) {
    s.caught_up().await;
}

#[tokio::test]
async fn introspection_reports_active_tokens_and_every_kind_of_inactive_one() {
    let s = kit::start(Opts::default()).await;
    let (a, a_secret) = s.client("read write", &[API]).await;
    let (b, b_secret) = s.client("read", &[]).await;
    let (rs, rs_secret) = resource_server(&s).await;
    let token = s.token(&a, &a_secret).await;
    let claims = decode_unverified(&token).1;

    // Own token: active, with every member RFC 7662 §2.2 lists that applies.
    let m = s.introspect(&a, &a_secret, &token).await;
    assert_eq!(m["active"], true);
    for k in ["client_id", "sub", "aud", "iss", "exp", "iat", "jti", "scope"] {
        assert_eq!(m[k], claims[k], "{k}");
    }
    assert_eq!(m["token_type"], "Bearer");
    // token_type_hint is accepted, whatever it says; form auth works too.
    for hint in ["access_token", "refresh_token", "something_else"] {
        let r = s
            .post_form(
                "/oauth2/introspect",
                &a,
                &a_secret,
                &[("token", &token), ("token_type_hint", hint)],
            )
            .await;
        assert_eq!(r.json::<Value>().await.unwrap()["active"], true, "{hint}");
    }
    let body = encode_form(&[("token", &token), ("client_id", &a), ("client_secret", &a_secret)]);
    let r = s
        .post_raw(
            "/oauth2/introspect",
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);

    // Another client may not see it; a resource server the operator allowed may.
    assert_eq!(s.introspect(&b, &b_secret, &token).await, inactive());
    assert_eq!(s.introspect(&rs, &rs_secret, &token).await["active"], true);

    // Malformed tokens of every shape.
    let mut tampered: Vec<String> = token.split('.').map(str::to_string).collect();
    tampered[2] = tampered[2].chars().rev().collect();
    for bad in [
        "abc".to_string(),
        "a.b.c".to_string(),
        format!("{token}.x"),
        tampered.join("."),
        "x".repeat(6_000),
    ] {
        assert_eq!(s.introspect(&rs, &rs_secret, &bad).await, inactive());
    }

    // A token from another issuer (another Tessera, its own key).
    let other = kit::start(Opts::default()).await;
    let (o, o_secret) = other.client("read", &[]).await;
    let foreign = other.token(&o, &o_secret).await;
    assert_eq!(s.introspect(&rs, &rs_secret, &foreign).await, inactive());

    // Expired.
    let (short, short_secret) = client_ttl(&s, 1).await;
    let expiring = s.token(&short, &short_secret).await;
    assert_eq!(s.introspect(&rs, &rs_secret, &expiring).await["active"], true);
    s.advance(Duration::from_secs(2));
    assert_eq!(s.introspect(&rs, &rs_secret, &expiring).await, inactive());

    // Revoked.
    let revoked = s.token(&b, &b_secret).await;
    let r = s
        .post_form("/oauth2/revoke", &b, &b_secret, &[("token", &revoked)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.introspect(&rs, &rs_secret, &revoked).await, inactive());

    // A disabled client's tokens, and a deleted client's.
    let (d, d_secret) = s.client("read", &[]).await;
    let of_disabled = s.token(&d, &d_secret).await;
    let disable = ClientUpdate {
        enabled: Some(false),
        ..Default::default()
    };
    admin::update_client(&s.app().store, &s.actor(), &d, disable)
        .await
        .unwrap();
    refresh(&s).await;
    assert_eq!(s.introspect(&rs, &rs_secret, &of_disabled).await, inactive());
    // Enabling again does not bring back tokens that disabling revoked.
    let enable = ClientUpdate {
        enabled: Some(true),
        ..Default::default()
    };
    admin::update_client(&s.app().store, &s.actor(), &d, enable)
        .await
        .unwrap();
    refresh(&s).await;
    assert_eq!(s.introspect(&rs, &rs_secret, &of_disabled).await, inactive());
    let fresh = s.token(&d, &d_secret).await;
    assert_eq!(s.introspect(&rs, &rs_secret, &fresh).await["active"], true);
    admin::delete_client(&s.app().store, &s.actor(), &d)
        .await
        .unwrap();
    refresh(&s).await;
    assert_eq!(s.introspect(&rs, &rs_secret, &fresh).await, inactive());

    // The caller must authenticate, and must send a token.
    let r = s
        .post_form("/oauth2/introspect", &a, "wrong", &[("token", &token)])
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = s.post_form("/oauth2/introspect", &a, &a_secret, &[]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    assert_eq!(
        s.http
            .get(s.url("/oauth2/introspect"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

#[tokio::test]
async fn revocation_follows_rfc_7009_and_survives_a_restart() {
    let s = kit::start(Opts::default()).await;
    let (a, a_secret) = s.client("read", &[]).await;
    let (b, b_secret) = s.client("read", &[]).await;
    let (rs, rs_secret) = resource_server(&s).await;
    let token = s.token(&a, &a_secret).await;
    let untouched = s.token(&a, &a_secret).await;

    // Another client cannot revoke it.
    let r = s
        .post_form("/oauth2/revoke", &b, &b_secret, &[("token", &token)])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized_client");
    assert_eq!(s.introspect(&rs, &rs_secret, &token).await["active"], true);
    // Bad credentials, missing token.
    assert_eq!(
        s.post_form("/oauth2/revoke", &a, "wrong", &[("token", &token)])
            .await
            .status(),
        401
    );
    let r = s
        .post_form(
            "/oauth2/revoke",
            &a,
            &a_secret,
            &[("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(r.status(), 400);
    // Unknown or invalid tokens: 200, nothing happens (§2.2).
    for unknown in ["not-a-token", "a.b.c"] {
        let r = s
            .post_form("/oauth2/revoke", &a, &a_secret, &[("token", unknown)])
            .await;
        assert_eq!(r.status(), 200);
    }
    // Its own token: 200, then inactive; again: still 200.
    for _ in 0..2 {
        let r = s
            .post_form(
                "/oauth2/revoke",
                &a,
                &a_secret,
                &[("token", &token), ("token_type_hint", "access_token")],
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    assert_eq!(s.introspect(&rs, &rs_secret, &token).await, inactive());
    assert_eq!(s.introspect(&rs, &rs_secret, &untouched).await["active"], true);
    // Another client learns nothing about activity: a revoked token of A is refused just the same.
    let r = s
        .post_form("/oauth2/revoke", &b, &b_secret, &[("token", &token)])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized_client");

    // The revocation is in the store and survives a restart.
    let jti = decode_unverified(&token).1["jti"].as_str().unwrap().to_string();
    let mut stored = Vec::new();
    s.app()
        .store
        .for_each_revoked(|j, _| stored.push(j.to_string()))
        .await
        .unwrap();
    assert!(stored.contains(&jti));
    let s = s.restart().await;
    // The issuer changed with the port; check what the restarted node thinks directly.
    let now = tessera::model::clock::unix_now();
    assert!(s.app().revocations.contains(&jti));
    assert!(tessera::oauth::validate::check(s.app(), &token, now).is_err());
}

#[tokio::test]
async fn revoking_all_of_a_clients_tokens() {
    let s = kit::start(Opts::default()).await;
    let (a, a_secret) = s.client("read", &[]).await;
    let (rs, rs_secret) = resource_server(&s).await;
    let tokens = [s.token(&a, &a_secret).await, s.token(&a, &a_secret).await];
    // Introspected twice each: the second time the remembered verification is used, and what
    // can change (here the client's revocation time) is still checked afterwards.
    for t in &tokens {
        for _ in 0..2 {
            assert_eq!(s.introspect(&rs, &rs_secret, t).await["active"], true);
        }
    }
    assert_eq!(s.app().verified.len(), 2, "one verification remembered per token");
    admin::revoke_tokens(&s.app().store, &s.actor(), &a)
        .await
        .unwrap();
    refresh(&s).await;
    for t in &tokens {
        assert_eq!(s.introspect(&rs, &rs_secret, t).await, inactive());
    }
    // Tokens issued afterwards, even within the same second, are not affected.
    let after = s.token(&a, &a_secret).await;
    assert_eq!(s.introspect(&rs, &rs_secret, &after).await["active"], true);
}

#[tokio::test]
async fn a_rotated_secret_works_during_the_grace_period_and_not_after() {
    let s = kit::start(Opts::default()).await;
    let (id, old) = s.client("read", &[]).await;
    let rotated = admin::rotate_secret(&s.app().store, &s.actor(), &id, Duration::from_secs(4))
        .await
        .unwrap();
    refresh(&s).await;
    let new = rotated.secret.clone();
    assert_ne!(new, old);
    let grant = [("grant_type", "client_credentials")];
    // The node's own poll may still be applying the client as it was before the rotation (read
    // just before it): the new secret works once the node has caught up, within a poll or two.
    let caught_up = kit::eventually(Duration::from_secs(2), || async {
        s.token_basic(&id, &new, &grant).await.status() == 200
    })
    .await;
    assert!(caught_up, "the new secret never worked");
    assert_eq!(
        s.token_basic(&id, &old, &grant).await.status(),
        200,
        "old secret in grace"
    );
    // Both are visible (never their values), the old one with its end.
    let shown = tessera::views::client_json(&admin::get_client(&s.app().store, &id).await.unwrap());
    let secrets = shown["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert_eq!(
        secrets.iter().filter(|s| s["expires_at"].is_i64()).count(),
        1,
        "the old one ends"
    );
    assert_eq!(
        secrets.iter().filter(|s| s["expires_at"].is_null()).count(),
        1,
        "the new one does not"
    );
    assert!(!shown.to_string().contains(&new) && !shown.to_string().contains(&old));
    s.advance(Duration::from_secs(5));
    assert_eq!(
        s.token_basic(&id, &old, &grant).await.status(),
        401,
        "old secret after grace"
    );
    assert_eq!(s.token_basic(&id, &new, &grant).await.status(), 200);
    // A second rotation drops the expired secret.
    admin::rotate_secret(&s.app().store, &s.actor(), &id, Duration::ZERO)
        .await
        .unwrap();
    let c = admin::get_client(&s.app().store, &id).await.unwrap();
    assert_eq!(c.secrets.len(), 2);
}

#[tokio::test]
async fn key_rotation_under_continuous_traffic_breaks_no_token() {
    let max_age = Duration::from_secs(1);
    let s = kit::start(Opts {
        jwks_max_age: Some(max_age),
        ..Default::default()
    })
    .await;
    let (id, secret) = s
        .client_with(NewClient {
            name: "t".into(),
            scope: "a".into(),
            token_ttl: Some(2),
            audiences: vec![API.into()],
            ..Default::default()
        })
        .await;
    let jwks_url = s.url("/.well-known/jwks.json");
    let old_kid = decode_unverified(&s.token(&id, &secret).await).0["kid"]
        .as_str()
        .unwrap()
        .to_string();

    let mut issued: Vec<(String, String)> = Vec::new(); // (kid, token)
    let mut rotation = None;
    let mut new_kid_in_jwks_first: Option<usize> = None;
    let mut old_kid_gone = false;
    for round in 0..400 {
        if round == 5 {
            let r = tessera::signing::rotate(
                &s.app().store,
                &master(&s),
                &Actor::cli(),
                tessera::keys::Alg::ES256,
                tessera::model::KeyPurpose::Access,
                max_age,
                None,
            )
            .await
            .unwrap()
            .unwrap();
            assert!(
                r.activates_at > tessera::model::clock::unix_now() + 1,
                "published at least one cache lifetime ahead"
            );
            rotation = Some(r);
        }
        let token = s.token(&id, &secret).await;
        let kid = decode_unverified(&token).0["kid"].as_str().unwrap().to_string();
        // Verify against the JWKS served now, as a resource server refreshing its cache would.
        verify_as_resource_server(&s.http, &jwks_url, &token, &s.base, API)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let jwks: Value = s.http.get(&jwks_url).send().await.unwrap().json().await.unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        if let Some(r) = &rotation {
            if kids.contains(&r.kid.as_str()) && new_kid_in_jwks_first.is_none() {
                new_kid_in_jwks_first = Some(round);
            }
            if kid == r.kid {
                assert!(
                    new_kid_in_jwks_first.is_some_and(|f| f < round),
                    "signed before it was published"
                );
            }
            if !kids.contains(&old_kid.as_str()) {
                // Retired: every token the old key signed has expired by now.
                let now = tessera::model::clock::unix_now() as u64;
                for (k, t) in &issued {
                    if *k == old_kid {
                        assert!(
                            decode_unverified(t).1["exp"].as_u64().unwrap() <= now,
                            "old key retired early"
                        );
                    }
                }
                old_kid_gone = true;
                break;
            }
        }
        issued.push((kid, token));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = rotation.unwrap();
    assert!(
        issued.iter().any(|(k, _)| *k == r.kid),
        "the new key never signed"
    );
    assert!(issued.iter().any(|(k, _)| *k == old_kid));
    assert!(old_kid_gone, "the old key was never retired");
    // Every token issued before, during and after still verifies if unexpired; none failed above.
}

fn master(s: &kit::Server) -> tessera::keys::MasterKey {
    tessera::keys::MasterKey::load(&s.dir.path().join("master.key")).unwrap()
}

#[tokio::test]
async fn keys_rotate_on_schedule() {
    let s = kit::start(Opts {
        jwks_max_age: Some(Duration::from_secs(1)),
        key_rotation_interval: Some(Duration::from_secs(2)),
        ..Default::default()
    })
    .await;
    let first = s.app().store.all_keys().await.unwrap();
    assert_eq!(first.len(), 1);
    let rotated = kit::eventually(Duration::from_secs(15), || async {
        s.app().store.all_keys().await.unwrap().len() >= 2
    })
    .await;
    assert!(rotated, "no scheduled rotation");
    let (id, secret) = s.client("a", &[]).await;
    let signs_with_new = kit::eventually(Duration::from_secs(10), || async {
        let kid = decode_unverified(&s.token(&id, &secret).await).0["kid"]
            .as_str()
            .unwrap()
            .to_string();
        kid != first[0].kid
    })
    .await;
    assert!(signs_with_new);
}
