//! Token exchange (RFC 8693): delegation two hops deep with the whole `act` chain, impersonation
//! allowed and refused by policy, audience and scope never wider, expired and revoked subject
//! tokens refused, an external JWT from a trust policy's issuer, `may_act` honoured, and the
//! lifetime never past the subject's.

use std::time::Duration;

use serde_json::{Value, json};
use tessera::admin::NewClient;
use tessera::admin::trust::NewTrustPolicy;
use tessera::model::auth::TokenAuth;
use tessera::model::exchange::ExchangePolicy;
use tessera::model::trust::TrustKeys;

use crate::kit::keys::TestKey;
use crate::kit::{self, Server};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

fn policy(
    audiences: &[&str],
    subject_audiences: &[&str],
    delegation: bool,
    impersonation: bool,
) -> ExchangePolicy {
    ExchangePolicy {
        audiences: audiences.iter().map(|a| a.to_string()).collect(),
        subject_token_types: vec!["access_token".into()],
        subject_audiences: subject_audiences.iter().map(|a| a.to_string()).collect(),
        delegation,
        impersonation,
        max_ttl: None,
        outlive_subject: false,
    }
}

/// A confidential client that may exchange under `p`, with its own `api` as audience.
async fn exchanger(s: &Server, name: &str, scope: &str, api: &str, p: ExchangePolicy) -> (String, String) {
    s.client_with(NewClient {
        name: name.into(),
        scope: scope.into(),
        audiences: vec![api.into()],
        grant_types: Some(vec!["client_credentials".into(), EXCHANGE.into()]),
        token_exchange: Some(p),
        ..Default::default()
    })
    .await
}

async fn exchange(s: &Server, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("grant_type", EXCHANGE)];
    all.extend_from_slice(form);
    let r = s.token_basic(id, secret, &all).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Exchanges `subject` with the client's own `actor` token (delegation), `extra` added.
async fn delegate(
    s: &Server,
    id: &str,
    secret: &str,
    subject: &str,
    actor: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
        ("actor_token", actor),
        ("actor_token_type", ACCESS),
    ];
    form.extend_from_slice(extra);
    exchange(s, id, secret, &form).await
}

fn claims(token: &str) -> Value {
    kit::decode_unverified(token).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_two_hops_deep_keeps_the_whole_chain() {
    let s = kit::start(Default::default()).await;
    let doc = s.get_json("/.well-known/oauth-authorization-server").await;
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(EXCHANGE))
    );
    // A calls B's API; B calls C's API for A; C calls D's API for A.
    let (a, a_secret) = s.client("orders:read orders:write", &["https://b.example"]).await;
    let (b, b_secret) = exchanger(
        &s,
        "B",
        "orders:read orders:write",
        "https://b.example",
        policy(&["https://c.example"], &["https://b.example"], true, false),
    )
    .await;
    let (c, c_secret) = exchanger(
        &s,
        "C",
        "orders:read",
        "https://c.example",
        policy(&["https://d.example"], &["https://c.example"], true, false),
    )
    .await;
    let a_token = s.token(&a, &a_secret).await;
    let b_self = s.token(&b, &b_secret).await;
    let (status, t1) = delegate(
        &s,
        &b,
        &b_secret,
        &a_token,
        &b_self,
        &[("audience", "https://c.example"), ("scope", "orders:read")],
    )
    .await;
    assert_eq!(status, 200, "{t1}");
    assert_eq!(t1["issued_token_type"], ACCESS);
    assert_eq!(t1["token_type"], "Bearer");
    let t1 = t1["access_token"].as_str().unwrap().to_string();
    let c1 = claims(&t1);
    assert_eq!(
        (c1["sub"].as_str(), c1["aud"].as_str(), c1["client_id"].as_str()),
        (Some(a.as_str()), Some("https://c.example"), Some(b.as_str()))
    );
    assert_eq!(c1["act"], json!({"sub": b}));
    assert_eq!(c1["scope"], "orders:read");

    // Impersonating a delegated token keeps its chain: E becomes A, and the token still says
    // B acted.
    let (e, e_secret) = exchanger(
        &s,
        "E",
        "orders:read",
        "https://e.example",
        policy(&["https://f.example"], &["https://c.example"], false, true),
    )
    .await;
    let (status, te) = exchange(
        &s,
        &e,
        &e_secret,
        &[("subject_token", &t1), ("subject_token_type", ACCESS)],
    )
    .await;
    assert_eq!(status, 200, "{te}");
    let ce = claims(te["access_token"].as_str().unwrap());
    assert_eq!(
        (ce["sub"].as_str(), ce["client_id"].as_str()),
        (Some(a.as_str()), Some(e.as_str()))
    );
    assert_eq!(ce["act"], json!({"sub": b}));

    // C's hop with tessera-client: its own token as the actor.
    let c_client = tessera_client::TokenClient::builder(&c, &c_secret)
        .token_url(s.url("/oauth2/token"))
        .build()
        .await
        .unwrap();
    let c_self = c_client.token(None, None).await.unwrap().access_token;
    let t2 = c_client
        .exchange_as(&t1, Some(&c_self), Some("https://d.example"), None)
        .await
        .unwrap();
    assert_eq!(t2.issued_token_type.as_deref(), Some(ACCESS));
    let t2 = json!({"access_token": t2.access_token});
    let c2 = claims(t2["access_token"].as_str().unwrap());
    assert_eq!(c2["sub"], a.as_str(), "the subject stays A");
    assert_eq!(
        c2["act"],
        json!({"sub": c, "act": {"sub": b}}),
        "C acted, for B, who acted for A"
    );
    assert_eq!(c2["aud"], "https://d.example");
    assert_eq!(
        c2["scope"], "orders:read",
        "never wider than the subject or C's scopes"
    );
    // An independent JWT library at D's API takes it, chain and all.
    let verified = kit::verify_as_resource_server(
        &s.http,
        &s.url("/.well-known/jwks.json"),
        t2["access_token"].as_str().unwrap(),
        &s.base,
        "https://d.example",
    )
    .await
    .unwrap();
    assert_eq!(verified["act"]["act"]["sub"], b.as_str());
    // tessera-verify at D's API reads the chain, current actor first.
    let d = tessera_verify::Verifier::builder(&s.base)
        .audience("https://d.example")
        .build()
        .await
        .unwrap();
    let at_d = d.verify(t2["access_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(at_d.sub, a);
    assert_eq!(at_d.actors(), [c.as_str(), b.as_str()]);

    // Only B's own token for itself names B as the actor: not a token B holds for A (t1 was
    // issued to B about A), so B cannot claim A acted.
    let (status, body) = delegate(
        &s,
        &b,
        &b_secret,
        &a_token,
        &t1,
        &[("audience", "https://c.example")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    // Impersonation is not B's to do: without an actor token, refused.
    let (status, body) = exchange(
        &s,
        &b,
        &b_secret,
        &[("subject_token", &a_token), ("subject_token_type", ACCESS)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // Wider audience or scope than allowed.
    let actor = [("actor_token", b_self.as_str()), ("actor_token_type", ACCESS)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut f = vec![
            ("subject_token", a_token.as_str()),
            ("subject_token_type", ACCESS),
        ];
        f.extend_from_slice(&actor);
        f.extend_from_slice(extra);
        f
    };
    for (extra, error) in [
        (vec![("audience", "https://d.example")], "invalid_target"),
        (vec![("resource", "https://evil.example")], "invalid_target"),
        (vec![("scope", "orders:admin")], "invalid_scope"),
    ] {
        let (status, body) = exchange(&s, &b, &b_secret, &with(&extra)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{extra:?}: {body}"
        );
    }
    // A subject token not meant for B (for C's API), an actor token that is not B's own, an
    // ID token asked for, a type B does not take.
    let (status, body) = delegate(&s, &b, &b_secret, &t1, &b_self, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = delegate(&s, &b, &b_secret, &a_token, &c_self, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    for (k, v) in [
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
        ("subject_token_type", JWT),
    ] {
        let mut f = with(&[]);
        f.retain(|(n, _)| *n != k);
        f.push((k, v));
        let (status, body) = exchange(&s, &b, &b_secret, &f).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{k}: {body}"
        );
    }
    // A client without the grant.
    let (status, body) = exchange(&s, &a, &a_secret, &with(&[])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );

    // A revoked subject token cannot be exchanged; an expired one neither.
    let r = s
        .post_form("/oauth2/revoke", &a, &a_secret, &[("token", &a_token)])
        .await;
    assert_eq!(r.status(), 200);
    let (status, body) = exchange(&s, &b, &b_secret, &with(&[])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "revoked: {body}"
    );
    let fresh = s.token(&a, &a_secret).await;
    s.advance(Duration::from_secs(3601));
    let b_self = s.token(&b, &b_secret).await;
    let (status, body) = delegate(&s, &b, &b_secret, &fresh, &b_self, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "expired: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_where_allowed_never_outlives_the_subject() {
    let s = kit::start(Default::default()).await;
    let (a, a_secret) = s.client("orders:read", &["https://gateway.example"]).await;
    let mut p = policy(
        &["https://internal.example"],
        &["https://gateway.example"],
        false,
        true,
    );
    p.max_ttl = Some(7200);
    let (g, g_secret) = exchanger(&s, "gateway", "orders:read", "https://gateway.example", p).await;
    let subject = s.token(&a, &a_secret).await;
    let subject_exp = claims(&subject)["exp"].as_i64().unwrap();
    s.advance(Duration::from_secs(1800));
    let (status, body) = exchange(
        &s,
        &g,
        &g_secret,
        &[("subject_token", &subject), ("subject_token_type", ACCESS)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], a.as_str());
    assert!(c.get("act").is_none(), "impersonation names no actor");
    assert_eq!(
        c["exp"].as_i64().unwrap(),
        subject_exp,
        "capped at the subject's expiry, not 2 h"
    );
    assert_eq!(
        body["expires_in"].as_i64().unwrap(),
        subject_exp - c["iat"].as_i64().unwrap()
    );
    // Delegation is not the gateway's to do.
    let own = s.token(&g, &g_secret).await;
    let (status, body) = delegate(&s, &g, &g_secret, &subject, &own, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // The same from the command line, the subject token on standard input.
    let (dir, url, gid, gsec, subj) = (
        s.dir.path().to_path_buf(),
        s.url("/oauth2/token"),
        g.clone(),
        g_secret.clone(),
        subject.clone(),
    );
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = kit::tessera_cmd(&dir)
            .args([
                "token",
                "exchange",
                "--token-url",
                &url,
                "--client-id",
                &gid,
                "--subject-token",
                "-",
            ])
            .args(["--resource", "https://internal.example", "--json"])
            .env("TESSERA_CLIENT_SECRET", &gsec)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{subj}").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["issued_token_type"], ACCESS);
    assert_eq!(
        claims(answer["access_token"].as_str().unwrap())["sub"],
        a.as_str()
    );

    // The policy through the CLI: shown, changed, audited.
    let shown = kit::cli_json(s.dir.path(), &["client", "show", &g, "--json"]);
    assert_eq!(shown["token_exchange"]["impersonation"], true);
    let (code, _, err) = kit::cli(
        s.dir.path(),
        &[
            "client",
            "update",
            &g,
            "--exchange-audience",
            "https://internal.example",
            "--exchange-delegation",
            "--exchange-subject-audience",
            "https://gateway.example",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let shown = kit::cli_json(s.dir.path(), &["client", "show", &g, "--json"]);
    assert_eq!(
        (
            shown["token_exchange"]["impersonation"].as_bool(),
            shown["token_exchange"]["delegation"].as_bool()
        ),
        (Some(false), Some(true))
    );
    let (code, _, err) = kit::cli(
        s.dir.path(),
        &[
            "client",
            "update",
            &g,
            "--exchange-audience",
            "https://internal.example",
        ],
    );
    assert_ne!(code, 0, "neither delegation nor impersonation is refused");
    assert!(err.contains("delegation"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_jwt_from_a_trusted_issuer_is_exchanged_and_may_act_is_honoured() {
    let s = kit::start(Default::default()).await;
    let key = TestKey::new("ES256", "gw");
    let idp = TestKey::new("ES256", "idp-1");
    let mut p = policy(&["https://internal.example"], &[], false, true);
    p.subject_token_types = vec!["jwt".into()];
    let (g, _) = s
        .client_with(NewClient {
            name: "edge".into(),
            scope: "orders:read".into(),
            audiences: vec!["https://internal.example".into()],
            auth: TokenAuth::PrivateKeyJwt,
            jwks: Some(key.jwks()),
            grant_types: Some(vec![EXCHANGE.into()]),
            token_exchange: Some(p),
            ..Default::default()
        })
        .await;
    tessera::admin::trust::create(
        &s.app().store,
        &s.actor(),
        NewTrustPolicy {
            name: "partner idp".into(),
            issuer: "https://idp.partner.example".into(),
            keys: TrustKeys::Jwks(idp.jwks()),
            audience: "https://edge.example".into(),
            subject: "user-*".into(),
            claims: Default::default(),
            client_id: g.clone(),
        },
    )
    .await
    .unwrap();
    s.app()
        .trust
        .replace(s.app().store.trust_policies().await.unwrap());
    let now = s.app().clock.now();
    let external = |sub: &str, extra: Value| {
        let mut c = json!({"iss": "https://idp.partner.example", "sub": sub, "aud": "https://edge.example",
            "iat": now, "exp": now + 600, "scope": "orders:read profile"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        idp.jwt(&c)
    };
    let post = |subject: String| exchange_with_key(&s, &key, &g, subject);
    let (status, body) = post(external("user-42", json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str(), c["scope"].as_str()),
        (
            Some("user-42"),
            Some("https://internal.example"),
            Some("orders:read")
        )
    );
    assert!(c["exp"].as_i64().unwrap() <= now + 600);
    // may_act naming this client: allowed; naming someone else: refused.
    let (status, body) = post(external("user-42", json!({"may_act": {"client_id": g}}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["sub"], "user-42");
    // Without a scope claim, no scope (never "all the client may have"); the issuer's own
    // `act` is not Tessera's to assert.
    let mut bare = json!({"iss": "https://idp.partner.example", "sub": "user-7", "aud": "https://edge.example",
        "iat": now, "exp": now + 600, "act": {"sub": "admin"}});
    let (status, body) = post(idp.jwt(&bare)).await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert!(c.get("scope").is_none() && c.get("act").is_none(), "{c}");
    bare["scope"] = json!(["orders:read"]);
    let (status, body) = post(idp.jwt(&bare)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        claims(body["access_token"].as_str().unwrap())
            .get("scope")
            .is_none(),
        "a scope that is not a string is none"
    );
    let (status, body) = post(external("user-42", json!({"may_act": {"sub": "someone-else"}}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // A subject the policy does not admit, or another issuer's token.
    let (status, body) = post(external("robot-1", json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let stranger = TestKey::new("ES256", "idp-1")
        .jwt(&json!({"iss": "https://idp.partner.example", "sub": "user-1",
        "aud": "https://edge.example", "iat": now, "exp": now + 600}));
    let (status, body) = post(stranger).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
}

/// A token exchange by key client `id` (a fresh assertion signed with `key`) for an external
/// subject token.
async fn exchange_with_key(s: &Server, key: &TestKey, id: &str, subject: String) -> (u16, Value) {
    let now = s.app().clock.now();
    let assertion = key.jwt(
        &json!({"iss": id, "sub": id, "aud": s.app().settings.issuer, "iat": now,
        "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string()}),
    );
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", JWT),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let r = s
        .http
        .post(s.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&form))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json::<Value>().await.unwrap())
}

/// An app swaps the ID token a person signed in with for an access token for its back end:
/// the person is the subject, no scope comes with an ID token, another client's ID token is
/// refused, and so is one whose user has since been disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_is_exchanged_for_its_own_client_only_while_its_user_is_enabled() {
    use crate::oidc::{REDIRECT, first_code, redeem, user};
    let s = kit::start(Default::default()).await;
    let ada = user(&s, "ada@example.com").await;
    let mut p = policy(&["https://backend.example"], &[], false, true);
    p.subject_token_types = vec!["id_token".into()];
    let app_client = |name: &'static str, p: Option<ExchangePolicy>| {
        let s = &s;
        async move {
            let mut grants = vec!["authorization_code".to_string(), "refresh_token".to_string()];
            if p.is_some() {
                grants.push(EXCHANGE.into());
            }
            s.client_with(NewClient {
                name: name.into(),
                scope: "orders:read".into(),
                first_party: true,
                grant_types: Some(grants),
                redirect_uris: vec![REDIRECT.into()],
                token_exchange: p,
                ..Default::default()
            })
            .await
        }
    };
    let (app, app_secret) = app_client("web app", Some(p)).await;
    let (other, other_secret) = app_client("another app", None).await;
    let id_token_of = |id: String, secret: String| {
        let s = &s;
        async move {
            let (_, verifier, code) = first_code(s, &id, "ada@example.com").await;
            let (status, tokens) = redeem(s, &id, &secret, &code, &verifier).await;
            assert_eq!(status, 200, "{tokens}");
            tokens["id_token"].as_str().unwrap().to_string()
        }
    };
    let mine = id_token_of(app.clone(), app_secret.clone()).await;
    let theirs = id_token_of(other.clone(), other_secret.clone()).await;
    const ID: &str = "urn:ietf:params:oauth:token-type:id_token";

    let (status, body) = exchange(
        &s,
        &app,
        &app_secret,
        &[("subject_token", &mine), ("subject_token_type", ID)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str()),
        (Some(ada.as_str()), Some("https://backend.example"))
    );
    assert!(c.get("scope").is_none(), "an ID token grants no scope: {c}");
    let (status, body) = exchange(
        &s,
        &app,
        &app_secret,
        &[
            ("subject_token", &mine),
            ("subject_token_type", ID),
            ("scope", "orders:read"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    // Another client's ID token, and something that is not a JWT at all.
    for (token, what) in [
        (theirs.as_str(), "another client's"),
        (body.to_string().as_str(), "not a JWT"),
    ] {
        let (status, body) = exchange(
            &s,
            &app,
            &app_secret,
            &[("subject_token", token), ("subject_token_type", ID)],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{what}: {body}"
        );
    }
    // Its user disabled: the ID token, which cannot be revoked, exchanges no more.
    tessera::users::set_enabled(&s.app().store, &s.actor(), &ada, false)
        .await
        .unwrap();
    let (status, body) = exchange(
        &s,
        &app,
        &app_secret,
        &[("subject_token", &mine), ("subject_token_type", ID)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
}
