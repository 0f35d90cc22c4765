//! Workload identity federation: tokens shaped like a Kubernetes service account's, a GitHub
//! Actions job's and a SPIFFE JWT-SVID, minted by a local issuer the test serves (discovery and
//! JWKS), authenticate as the clients trust policies map them to, as a `client_assertion` and
//! as the JWT bearer grant (RFC 7523 §2.1). Wrong audience, subject, issuer, claims or expiry
//! are refused, and a key rotated at the issuer is picked up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tessera::admin::NewClient;
use tessera::admin::trust::{NewTrustPolicy, TrustPolicyUpdate};
use tessera::model::auth::TokenAuth;
use tessera::model::trust::TrustKeys;

use crate::kit::keys::TestKey;
use crate::kit::{self, Server};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The audience every platform token here carries for Tessera.
const AUD: &str = "https://auth.acme.example";
const K8S_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// An issuer the test serves: discovery at `/.well-known/openid-configuration`, keys at `/jwks`.
#[derive(Clone)]
struct Issuer {
    base: String,
    keys: Arc<Mutex<Vec<Value>>>,
}

async fn issuer() -> Issuer {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let keys: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (b, k) = (base.clone(), keys.clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let b = b.clone();
                async move { axum::Json(json!({"issuer": b, "jwks_uri": format!("{b}/jwks")})) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let k = k.clone();
                async move { axum::Json(json!({"keys": *k.lock().unwrap()})) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Issuer { base, keys }
}

/// A client that authenticates with platform tokens (no keys of its own, no secret).
async fn workload_client(s: &Server, name: &str, grant_types: &[&str]) -> String {
    let (id, secret) = s
        .client_with(NewClient {
            name: name.into(),
            scope: "deploy read".into(),
            audiences: vec!["https://api.acme.example".into()],
            auth: TokenAuth::PrivateKeyJwt,
            grant_types: Some(grant_types.iter().map(|g| g.to_string()).collect()),
            ..Default::default()
        })
        .await;
    assert!(secret.is_empty());
    id
}

async fn trust(s: &Server, new: NewTrustPolicy) -> String {
    let p = tessera::admin::trust::create(&s.app().store, &s.actor(), new)
        .await
        .unwrap();
    s.app()
        .trust
        .replace(s.app().store.trust_policies().await.unwrap());
    p.id
}

fn policy(issuer: &str, keys: TrustKeys, subject: &str, client: &str) -> NewTrustPolicy {
    NewTrustPolicy {
        name: "test".into(),
        issuer: issuer.into(),
        keys,
        audience: AUD.into(),
        subject: subject.into(),
        claims: Default::default(),
        client_id: client.into(),
    }
}

/// A Kubernetes projected service-account token's claims.
fn k8s(now: i64, namespace: &str, account: &str) -> Value {
    json!({
        "aud": [AUD], "exp": now + 3600, "iat": now, "nbf": now, "iss": K8S_ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": "worker-7d9f", "uid": "3b1c"},
            "serviceaccount": {"name": account, "uid": "9a2e"},
        },
        "sub": format!("system:serviceaccount:{namespace}:{account}"),
    })
}

/// A GitHub Actions OIDC token's claims.
fn github(now: i64, issuer: &str, repo: &str, git_ref: &str) -> Value {
    let owner = repo.split('/').next().unwrap();
    json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": format!("repo:{repo}:ref:{git_ref}"),
        "aud": AUD, "ref": git_ref, "sha": "d6e5b0f", "repository": repo,
        "repository_owner": owner, "repository_owner_id": "4711", "run_id": "99", "actor": "ada",
        "workflow": "deploy", "event_name": "push", "ref_type": "branch",
        "job_workflow_ref": format!("{repo}/.github/workflows/deploy.yml@{git_ref}"),
        "runner_environment": "github-hosted",
        "iss": issuer, "nbf": now - 5, "exp": now + 300, "iat": now,
    })
}

/// A SPIFFE JWT-SVID's claims.
fn spiffe(now: i64, issuer: &str, id: &str) -> Value {
    json!({"sub": id, "aud": [AUD], "exp": now + 300, "iat": now, "iss": issuer})
}

async fn assertion(s: &Server, client_id: &str, token: &str) -> reqwest::Response {
    s.http
        .post(s.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", token),
        ])
        .send()
        .await
        .unwrap()
}

async fn bearer_grant(s: &Server, token: &str, client_id: Option<&str>) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", JWT_BEARER),
        ("assertion", token),
        ("scope", "deploy"),
    ];
    if let Some(id) = client_id {
        form.push(("client_id", id));
    }
    s.http
        .post(s.url("/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn issued_to(r: reqwest::Response, what: &str) -> String {
    assert_eq!(r.status(), 200, "{what}");
    let body: Value = r.json().await.unwrap();
    let (_, claims) = kit::decode_unverified(body["access_token"].as_str().unwrap());
    claims["client_id"].as_str().unwrap().to_string()
}

async fn refused(r: reqwest::Response, status: u16, error: &str, what: &str) {
    assert_eq!(r.status(), status, "{what}");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], error, "{what}");
}

async fn lenient() -> Server {
    kit::start(kit::Opts {
        limits: Some(tessera::limits::LimitSettings {
            failures_before_backoff: 1000,
            address_failures_before_backoff: 1000,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn platform_tokens_authenticate_as_the_clients_trust_policies_name() {
    let s = lenient().await;
    let now = s.app().clock.now();
    let idp = issuer().await;

    // Kubernetes: the API server is not reachable, so its keys are given inline (the recipe's
    // `kubectl get --raw /openid/v1/jwks`), and the token is the client assertion.
    let cluster_key = TestKey::new("RS256", "k8s-2026");
    let worker = workload_client(&s, "payments worker", &["client_credentials"]).await;
    trust(
        &s,
        policy(
            K8S_ISSUER,
            TrustKeys::Jwks(cluster_key.jwks()),
            "system:serviceaccount:payments:worker",
            &worker,
        ),
    )
    .await;
    let token = cluster_key.jwt_with(json!({}), &k8s(now, "payments", "worker"));
    assert_eq!(
        issued_to(assertion(&s, &worker, &token).await, "k8s").await,
        worker
    );
    // Reused, as a workload reuses its projected token until the kubelet rotates it.
    assert_eq!(
        issued_to(assertion(&s, &worker, &token).await, "k8s again").await,
        worker
    );
    for (what, claims) in [
        ("another namespace", k8s(now, "billing", "worker")),
        ("another account", k8s(now, "payments", "worker2")),
        ("wrong audience", {
            let mut c = k8s(now, "payments", "worker");
            c["aud"] = json!(["https://kubernetes.default.svc"]);
            c
        }),
        ("expired", {
            let mut c = k8s(now - 7200, "payments", "worker");
            c["exp"] = json!(now - 60);
            c
        }),
        ("no exp", {
            let mut c = k8s(now, "payments", "worker");
            c.as_object_mut().unwrap().remove("exp");
            c
        }),
    ] {
        let t = cluster_key.jwt_with(json!({}), &claims);
        refused(assertion(&s, &worker, &t).await, 401, "invalid_client", what).await;
    }
    let stranger = TestKey::new("RS256", "k8s-2026");
    let forged = stranger.jwt_with(json!({}), &k8s(now, "payments", "worker"));
    refused(
        assertion(&s, &worker, &forged).await,
        401,
        "invalid_client",
        "another key",
    )
    .await;

    // GitHub Actions: keys through the issuer's discovery document; the JWT bearer grant,
    // without client authentication; a condition on the repository owner.
    // (The issuer publishes one key set for its GitHub-shaped and its SPIFFE-shaped tokens.)
    let gh_key = TestKey::new("RS256", "gh-1");
    let svid_key = TestKey::new("ES256", "spire-1");
    *idp.keys.lock().unwrap() = vec![gh_key.jwk(), svid_key.jwk()];
    let deployer = workload_client(&s, "billing deploys", &[JWT_BEARER]).await;
    let mut gh = policy(
        &idp.base,
        TrustKeys::Discovery,
        "repo:acme/billing:ref:refs/heads/main",
        &deployer,
    );
    gh.claims.insert("repository_owner".into(), "acme".into());
    gh.claims.insert(
        "job_workflow_ref".into(),
        "acme/billing/.github/workflows/*".into(),
    );
    trust(&s, gh).await;
    let main = gh_key.jwt(&github(now, &idp.base, "acme/billing", "refs/heads/main"));
    assert_eq!(
        issued_to(bearer_grant(&s, &main, None).await, "github").await,
        deployer
    );
    assert_eq!(
        issued_to(
            bearer_grant(&s, &main, Some(&deployer)).await,
            "github + client_id"
        )
        .await,
        deployer
    );
    for (what, claims) in [
        (
            "another branch",
            github(now, &idp.base, "acme/billing", "refs/heads/dev"),
        ),
        (
            "another repository",
            github(now, &idp.base, "acme/billing-fork", "refs/heads/main"),
        ),
        (
            "another issuer",
            github(
                now,
                "https://token.actions.example",
                "acme/billing",
                "refs/heads/main",
            ),
        ),
        ("another owner", {
            let mut c = github(now, &idp.base, "acme/billing", "refs/heads/main");
            c["repository_owner"] = json!("evil");
            c
        }),
    ] {
        let t = gh_key.jwt(&claims);
        refused(bearer_grant(&s, &t, None).await, 400, "invalid_grant", what).await;
    }
    // Named for another client, the token is refused.
    refused(
        bearer_grant(&s, &main, Some(&worker)).await,
        400,
        "invalid_grant",
        "another client",
    )
    .await;

    // SPIFFE: a JWT-SVID (ES256), keys at the trust domain's JWKS address, the bearer grant
    // with the client named.
    let spire = format!("{}/spire", idp.base);
    let svc = workload_client(&s, "payments service", &[JWT_BEARER]).await;
    trust(
        &s,
        policy(
            &spire,
            TrustKeys::JwksUri(format!("{}/jwks", idp.base)),
            "spiffe://prod.acme/ns/payments/sa/*",
            &svc,
        ),
    )
    .await;
    let svid = svid_key.jwt(&spiffe(now, &spire, "spiffe://prod.acme/ns/payments/sa/api"));
    assert_eq!(
        issued_to(bearer_grant(&s, &svid, Some(&svc)).await, "spiffe").await,
        svc
    );
    let other_domain = svid_key.jwt(&spiffe(now, &spire, "spiffe://dev.acme/ns/payments/sa/api"));
    refused(
        bearer_grant(&s, &other_domain, Some(&svc)).await,
        400,
        "invalid_grant",
        "another trust domain",
    )
    .await;

    // The issuer rotates: the new key is picked up on first sight (once the fetch interval
    // allows), and the retired one stops working.
    let rotated = TestKey::new("RS256", "gh-2");
    *idp.keys.lock().unwrap() = vec![rotated.jwk(), svid_key.jwk()];
    s.advance(tessera::client_keys::MIN_INTERVAL + Duration::from_secs(1));
    let now = s.app().clock.now();
    let fresh = rotated.jwt(&github(now, &idp.base, "acme/billing", "refs/heads/main"));
    assert_eq!(
        issued_to(bearer_grant(&s, &fresh, None).await, "rotated key").await,
        deployer
    );
    let old = gh_key.jwt(&github(now, &idp.base, "acme/billing", "refs/heads/main"));
    refused(
        bearer_grant(&s, &old, None).await,
        400,
        "invalid_grant",
        "retired key",
    )
    .await;

    // A disabled policy admits nothing.
    let all = s.app().store.trust_policies().await.unwrap();
    let gh_policy = all.iter().find(|p| p.client_id == deployer).unwrap();
    tessera::admin::trust::update(
        &s.app().store,
        &s.actor(),
        &gh_policy.id,
        TrustPolicyUpdate {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.app()
        .trust
        .replace(s.app().store.trust_policies().await.unwrap());
    refused(
        bearer_grant(&s, &fresh, None).await,
        400,
        "invalid_grant",
        "disabled policy",
    )
    .await;
}

#[tokio::test]
async fn a_token_that_two_clients_trust_must_name_its_client() {
    let s = lenient().await;
    let now = s.app().clock.now();
    let key = TestKey::new("ES256", "k");
    let a = workload_client(&s, "a", &[JWT_BEARER]).await;
    let b = workload_client(&s, "b", &[JWT_BEARER]).await;
    for client in [&a, &b] {
        trust(
            &s,
            policy(
                K8S_ISSUER,
                TrustKeys::Jwks(key.jwks()),
                "system:serviceaccount:*:worker",
                client,
            ),
        )
        .await;
    }
    let token = key.jwt_with(json!({}), &k8s(now, "payments", "worker"));
    refused(
        bearer_grant(&s, &token, None).await,
        400,
        "invalid_grant",
        "ambiguous",
    )
    .await;
    assert_eq!(
        issued_to(bearer_grant(&s, &token, Some(&b)).await, "named").await,
        b
    );
}

#[tokio::test]
async fn trust_policies_through_the_cli_and_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(kit::cli(dir.path(), &["migrate"]).0, 0);
    let key = TestKey::new("RS256", "k8s");
    let jwks = dir.path().join("cluster-jwks.json");
    std::fs::write(&jwks, key.jwks().to_string()).unwrap();
    let secret_client = kit::cli_json(dir.path(), &["client", "create", "--name", "old", "--json"]);
    let secret_id = secret_client["client"]["client_id"].as_str().unwrap();
    let args = |client: &str| {
        vec![
            "trust".to_string(),
            "create".into(),
            "--name".into(),
            "payments worker".into(),
            "--issuer".into(),
            K8S_ISSUER.into(),
            "--jwks-file".into(),
            jwks.display().to_string(),
            "--audience".into(),
            AUD.into(),
            "--subject".into(),
            "system:serviceaccount:payments:worker".into(),
            "--client".into(),
            client.into(),
            "--json".into(),
        ]
    };
    let (code, _, err) = kit::cli(
        dir.path(),
        &args(secret_id).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_ne!(code, 0);
    assert!(err.contains("--auth-method private_key_jwt"), "{err}");
    let keyed = kit::cli_json(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "worker",
            "--auth-method",
            "private_key_jwt",
            "--json",
        ],
    );
    let keyed_id = keyed["client"]["client_id"].as_str().unwrap();
    let created = kit::cli_json(
        dir.path(),
        &args(keyed_id).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["keys"]["jwks"]["keys"][0]["kid"], "k8s");
    let listed = kit::cli_json(dir.path(), &["trust", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let updated = kit::cli_json(
        dir.path(),
        &[
            "trust",
            "update",
            id,
            "--claim",
            "kubernetes.io=x",
            "--enabled",
            "false",
            "--json",
        ],
    );
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["claims"]["kubernetes.io"], "x");
    let audit = kit::cli_json(dir.path(), &["audit", "list", "--json"]);
    let text = audit.to_string();
    assert!(
        text.contains("trust.create") && text.contains("trust.disable"),
        "{text}"
    );
    assert!(
        !text.contains(key.jwk()["n"].as_str().unwrap()),
        "no key material in the audit trail"
    );
    assert_eq!(kit::cli(dir.path(), &["trust", "delete", id]).0, 0);
    assert_eq!(kit::cli(dir.path(), &["trust", "show", id]).0, 1);

    // The admin API, and the node putting a new policy in force at once.
    let s = kit::start(Default::default()).await;
    let (admin_id, admin_secret) = s
        .client_with(NewClient {
            name: "admin".into(),
            admin: true,
            ..Default::default()
        })
        .await;
    let admin = s.token(&admin_id, &admin_secret).await;
    let worker = workload_client(&s, "worker", &["client_credentials"]).await;
    let r = s
        .http
        .post(s.url("/admin/v1/trust-policies"))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "payments worker", "issuer": K8S_ISSUER, "keys": {"jwks": key.jwks()},
            "audience": AUD, "subject": "system:serviceaccount:payments:worker", "client_id": worker,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let policy: Value = r.json().await.unwrap();
    let now = s.app().clock.now();
    let token = key.jwt_with(json!({}), &k8s(now, "payments", "worker"));
    assert_eq!(
        issued_to(assertion(&s, &worker, &token).await, "admin API policy").await,
        worker
    );
    let path = format!("/admin/v1/trust-policies/{}", policy["id"].as_str().unwrap());
    let r = s
        .http
        .patch(s.url(&path))
        .bearer_auth(&admin)
        .json(&json!({"subject": "system:serviceaccount:payments:other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused(
        assertion(&s, &worker, &token).await,
        401,
        "invalid_client",
        "narrowed at once",
    )
    .await;
    let r = s
        .http
        .delete(s.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s.http.get(s.url(&path)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .http
        .post(s.url("/admin/v1/trust-policies"))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "anything", "issuer": K8S_ISSUER, "keys": "discovery",
            "audience": AUD, "subject": "*", "client_id": worker,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a subject that matches anything");
}
