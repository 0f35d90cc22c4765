//! The admin console, over HTTP as a browser without JavaScript uses it: signing in through
//! Tessera's own authorization code flow, a client made, used, rotated and disabled, a user
//! made, the audit trail read and exported, signing out; people without a role refused,
//! auditors read only; forms guarded (CSRF, origin), values escaped, the session apart from the
//! admin API, idle sessions ended.

use std::time::Duration;

use serde_json::Value;
use tessera::admin::NewClient;
use tessera::users::NewUser;

use crate::kit::{self, Opts, Server};
use crate::oidc::{Browser, PASSWORD, Page};

async fn person(s: &Server, email: &str, roles: &[&str]) -> String {
    tessera::users::create_user(
        &s.app().store,
        &s.actor(),
        NewUser {
            email: email.into(),
            password: Some(PASSWORD.into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .id
}

/// Follows redirects (the browser's cookies kept) from `page`; the last page.
async fn follow(b: &mut Browser, mut page: Page) -> Page {
    for _ in 0..10 {
        if !(page.status == 302 || page.status == 303) {
            break;
        }
        let to = page.location();
        page = b.get(&to).await;
    }
    page
}

/// Signs `email` in to the console from a new browser; the browser and the page it ends on.
async fn sign_in(s: &Server, email: &str) -> (Browser, Page) {
    let mut b = Browser::new();
    let start = b.get(&s.url("/console")).await;
    assert_eq!(start.status, 303, "{}", start.body);
    assert!(
        start.location().contains("/console/signin"),
        "{}",
        start.location()
    );
    let login = follow(&mut b, start).await;
    assert!(login.body.contains("<h1>Sign in</h1>"), "{}", login.body);
    let posted = b.log_in(&s.url("/oauth2/login"), &login, email, PASSWORD).await;
    let end = follow(&mut b, posted).await;
    (b, end)
}

/// The secret a page shows once.
fn shown_secret(p: &Page) -> String {
    let start = p.body.find("id=\"secret\">").expect("a secret") + "id=\"secret\">".len();
    let end = p.body[start..].find('<').unwrap() + start;
    p.body[start..end].to_string()
}

/// The client id a secret page names.
fn shown_client_id(p: &Page) -> String {
    let marker = "<dt>Client id</dt><dd><code>";
    let start = p.body.find(marker).expect("a client id") + marker.len();
    let end = p.body[start..].find('<').unwrap() + start;
    p.body[start..end].to_string()
}

async fn post(b: &mut Browser, s: &Server, path: &str, csrf: &str, form: &[(&str, &str)]) -> Page {
    let mut all = vec![("csrf", csrf)];
    all.extend_from_slice(form);
    b.post(&s.url(path), &all).await
}

#[tokio::test]
async fn an_admin_manages_a_client_and_a_user_and_reads_the_audit_trail() {
    let s = kit::start(Opts::default()).await;
    let admin = person(&s, "root@example.com", &["admin"]).await;
    let (introspector, introspector_secret) = s
        .client_with(NewClient {
            name: "api".into(),
            introspect: true,
            ..Default::default()
        })
        .await;
    let (mut b, overview) = sign_in(&s, "root@example.com").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("<h1>Overview</h1>"), "{}", overview.body);
    assert!(overview.body.contains("root@example.com (admin)"));
    for (name, value) in [("x-frame-options", "DENY"), ("cache-control", "no-store")] {
        assert_eq!(overview.headers[name], value);
    }
    let csp = overview.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("default-src 'none'")
            && !csp.contains("unsafe-inline")
    );
    let csrf = overview.hidden("csrf");

    // A service client, made and used.
    let form = b.get(&s.url("/console/clients/new")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<label for=\"scope\">"), "labelled fields");
    let made = post(
        &mut b,
        &s,
        "/console/clients",
        &csrf,
        &[
            ("name", "Billing"),
            ("kind", "service"),
            ("scope", "invoices:read"),
        ],
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let (id, secret) = (shown_client_id(&made), shown_secret(&made));
    assert!(secret.len() >= 32);
    let token = s.token(&id, &secret).await;
    assert_eq!(
        s.introspect(&introspector, &introspector_secret, &token).await["active"],
        true
    );

    // Found by name and by id.
    for q in ["bill", &id[..8]] {
        let list = b.get(&s.url(&format!("/console/clients?q={q}"))).await;
        assert!(list.body.contains(&id), "{q}: {}", list.body);
    }

    // A field's error is shown next to it.
    let bad = post(
        &mut b,
        &s,
        "/console/clients",
        &csrf,
        &[
            ("name", "Web"),
            ("kind", "web"),
            ("redirect_uris", "http://example.com/cb"),
        ],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("id=\"redirect-error\""), "{}", bad.body);

    // Rotated without grace: asked first, the new secret shown once, the old one refused.
    let path = format!("/console/clients/{id}");
    let ask = post(&mut b, &s, &format!("{path}/rotate"), &csrf, &[("grace", "0")]).await;
    assert!(
        ask.body.contains("Rotate the secret") && ask.body.contains("name=\"confirm\""),
        "{}",
        ask.body
    );
    let rotated = post(
        &mut b,
        &s,
        &format!("{path}/rotate"),
        &csrf,
        &[("grace", "0"), ("confirm", "yes")],
    )
    .await;
    let new_secret = shown_secret(&rotated);
    assert_ne!(new_secret, secret);
    let old = s
        .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(old.status(), 401);
    let fresh = s.token(&id, &new_secret).await;

    // Disabled: asked first; then its tokens are refused at introspection.
    let ask = post(&mut b, &s, &format!("{path}/disable"), &csrf, &[]).await;
    assert!(ask.body.contains("Disable the client"), "{}", ask.body);
    let off = post(
        &mut b,
        &s,
        &format!("{path}/disable"),
        &csrf,
        &[("confirm", "yes")],
    )
    .await;
    assert!(off.body.contains("Disabled"), "{}", off.body);
    assert_eq!(
        s.introspect(&introspector, &introspector_secret, &fresh).await["active"],
        false
    );

    // A user, made with a password.
    let user = post(
        &mut b,
        &s,
        "/console/users",
        &csrf,
        &[
            ("email", "ada@example.com"),
            ("name", "Ada"),
            ("password", "a long enough password"),
        ],
    )
    .await;
    assert_eq!(user.status, 303, "{}", user.body);
    let shown = b.get(&user.location()).await;
    assert!(shown.body.contains("ada@example.com"));
    let users = b.get(&s.url("/console/users?q=ADA")).await;
    assert!(users.body.contains("ada@example.com"), "{}", users.body);

    // The audit trail names the person, not a shared client; filters and export agree.
    let trail = b.get(&s.url(&format!("/console/audit?actor=user:{admin}"))).await;
    for event in [
        "client.create",
        "client.rotate_secret",
        "user.create",
        "console.sign_in",
    ] {
        assert!(trail.body.contains(event), "{event}: {}", trail.body);
    }
    let on_client = b.get(&s.url(&format!("/console/audit?target={id}"))).await;
    assert!(!on_client.body.contains("user.create"), "{}", on_client.body);
    let export = b
        .get(&s.url(&format!(
            "/console/audit.jsonl?actor=user:{admin}&action=client.create"
        )))
        .await;
    assert_eq!(export.status, 200);
    let lines: Vec<Value> = export
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|l| l["action"] == "client.create" && l["actor"] == format!("user:{admin}"))
    );
    assert!(
        !export.body.contains(&new_secret) && !trail.body.contains(&new_secret),
        "no secret in the trail"
    );

    // Keys: asked, then rotated.
    let ask = post(
        &mut b,
        &s,
        "/console/keys/rotate",
        &csrf,
        &[("purpose", "access")],
    )
    .await;
    assert!(ask.body.contains("Rotate a signing key"));
    let rotated = post(
        &mut b,
        &s,
        "/console/keys/rotate",
        &csrf,
        &[("purpose", "access"), ("confirm", "yes")],
    )
    .await;
    assert!(rotated.body.contains("made; it signs from"), "{}", rotated.body);

    // Signed out: the console asks to sign in again.
    let out = post(&mut b, &s, "/console/signout", &csrf, &[]).await;
    assert!(out.body.contains("Signed out"), "{}", out.body);
    let again = b.get(&s.url("/console")).await;
    assert_eq!(again.status, 303);
    assert!(again.location().contains("/console/signin"));
}

#[tokio::test]
async fn people_without_a_role_are_refused_and_auditors_only_read() {
    let s = kit::start(Opts::default()).await;
    person(&s, "nobody@example.com", &[]).await;
    person(&s, "reader@example.com", &["auditor"]).await;
    let (_, refused) = sign_in(&s, "nobody@example.com").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("no console role"));

    let (mut b, overview) = sign_in(&s, "reader@example.com").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("(auditor)"));
    let csrf = overview.hidden("csrf");
    let list = b.get(&s.url("/console/clients")).await;
    assert_eq!(list.status, 200);
    assert!(!list.body.contains("New client"), "no forms that change things");
    for page in ["/console/users", "/console/keys", "/console/audit"] {
        assert_eq!(b.get(&s.url(page)).await.status, 200, "{page}");
    }
    let tried = post(
        &mut b,
        &s,
        "/console/clients",
        &csrf,
        &[("name", "x"), ("kind", "service")],
    )
    .await;
    assert_eq!(tried.status, 403);
    assert!(tried.body.contains("Read only"));
    assert!(
        s.app()
            .store
            .clients_by_name("x", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // An auditor may still sign out.
    let out = post(&mut b, &s, "/console/signout", &csrf, &[]).await;
    assert_eq!(out.status, 200);
}

#[tokio::test]
async fn console_forms_and_sessions_are_guarded() {
    let s = kit::start(Opts::default()).await;
    let admin = person(&s, "root@example.com", &["admin"]).await;
    let (mut b, overview) = sign_in(&s, "root@example.com").await;
    let csrf = overview.hidden("csrf");

    // Without the CSRF token, with another session's, or from another site: refused, nothing made.
    let (mut other, other_page) = sign_in(&s, "root@example.com").await;
    let other_csrf = other_page.hidden("csrf");
    assert_ne!(csrf, other_csrf);
    let form = [("name", "Forged"), ("kind", "service")];
    assert_eq!(b.post(&s.url("/console/clients"), &form).await.status, 403);
    assert_eq!(
        post(&mut b, &s, "/console/clients", &other_csrf, &form)
            .await
            .status,
        403
    );
    let req = b
        .http
        .post(s.url("/console/clients"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&[
            ("csrf", csrf.as_str()),
            ("name", "Forged"),
            ("kind", "service"),
        ]));
    assert_eq!(b.send(req).await.status, 403);
    assert!(
        s.app()
            .store
            .clients_by_name("forged", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let _ = other.get(&s.url("/console")).await;

    // Script in every field is shown as text.
    let evil = "<script>alert(1)</script>";
    let made = post(
        &mut b,
        &s,
        "/console/clients",
        &csrf,
        &[("name", evil), ("kind", "service"), ("scope", "a:b")],
    )
    .await;
    let id = shown_client_id(&made);
    let shown = b.get(&s.url(&format!("/console/clients/{id}"))).await;
    let list = b.get(&s.url("/console/clients?q=%3Cscript")).await;
    let bad_user = post(&mut b, &s, "/console/users", &csrf, &[("email", evil)]).await;
    let audit = b.get(&s.url(&format!("/console/audit?action={evil}"))).await;
    for p in [&shown, &list, &bad_user, &audit] {
        assert!(!p.body.contains("<script>"), "{}", p.body);
    }
    assert!(
        shown.body.contains("&#60;script&#62;") || shown.body.contains("&lt;script&gt;"),
        "{}",
        shown.body
    );

    // A callback with another state than this browser's sign-in started is refused.
    let mut f = Browser::new();
    let started = f.get(&s.url("/console/signin")).await;
    assert!(started.location().contains("/oauth2/authorize"));
    let iss = kit::encode_form(&[("iss", s.base.as_str())]);
    let forged = f
        .get(&s.url(&format!("/console/callback?code=x&state=not-it&{iss}")))
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(forged.body.contains("not started here"), "{}", forged.body);

    // A place to come back to outside the console is ignored.
    let mut c = Browser::new();
    let away = c
        .get(&s.url("/console/signin?next=/console/../oauth2/logout"))
        .await;
    let login = follow(&mut c, away).await;
    let back = c
        .log_in(&s.url("/oauth2/login"), &login, "root@example.com", PASSWORD)
        .await;
    let callback = c.get(&back.location()).await;
    assert_eq!(callback.location(), s.url("/console"), "{}", callback.body);

    // Nobody takes the last admin role away.
    let own = post(
        &mut b,
        &s,
        &format!("/console/users/{admin}/roles"),
        &csrf,
        &[("role_auditor", "yes")],
    )
    .await;
    assert!(own.body.contains("last enabled administrator"), "{}", own.body);

    // The console's cookie opens no admin API.
    let cookies: Vec<String> = b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let api = s
        .http
        .get(s.url("/admin/v1/clients"))
        .header("cookie", cookies.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);

    // Signing out ends the session for every copy of its cookie (another person's browser:
    // signing out also ends the sign-in it began with, and that is the person's).
    person(&s, "other@example.com", &["auditor"]).await;
    let copied = b.jar.clone();
    let (mut d, page) = sign_in(&s, "other@example.com").await;
    let d_csrf = page.hidden("csrf");
    let kept = d.jar.clone();
    post(&mut d, &s, "/console/signout", &d_csrf, &[]).await;
    d.jar = kept;
    let replayed = d.get(&s.url("/console")).await;
    assert_eq!(
        replayed.status, 303,
        "a signed-out session is gone: {}",
        replayed.body
    );
    b.jar = copied;

    // Taking the role away ends access at the next request.
    tessera::users::update_user(
        &s.app().store,
        &s.actor(),
        &admin,
        tessera::users::UserUpdate {
            roles: Some(Vec::new()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(b.get(&s.url("/console")).await.status, 403);

    // An idle session ends.
    let reader = person(&s, "reader@example.com", &["auditor"]).await;
    let (mut r, _) = sign_in(&s, "reader@example.com").await;
    assert_eq!(r.get(&s.url("/console/users")).await.status, 200);
    s.advance(Duration::from_secs(15 * 60 + 1));
    let idle = r.get(&s.url("/console/users")).await;
    assert_eq!(idle.status, 303, "{reader}: {}", idle.body);
    assert!(idle.location().contains("/console/signin"));
}

/// The issue's journey in a real browser, with axe-core on every page. Set
/// `TESSERA_SCREENSHOTS=docs/screenshots` to refresh the console's pictures in the README.
#[tokio::test]
async fn the_console_in_a_real_browser_passes_its_journey_and_an_accessibility_check() {
    use std::path::Path;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).exists() && crate::oidc::node_ready("console journey");
    if !crate::oidc::tool_ready(
        "the_console_in_a_real_browser_passes_its_journey_and_an_accessibility_check",
        ready,
        "install Debian's chromium and run `npm ci --prefix crates/tessera/tests/rp`",
    ) {
        return;
    }
    let s = kit::start(Opts::default()).await;
    person(&s, "root@example.com", &["admin"]).await;
    person(&s, "reader@example.com", &["auditor"]).await;
    person(&s, "nobody@example.com", &[]).await;
    let (introspector, introspector_secret) = s
        .client_with(NewClient {
            name: "api".into(),
            introspect: true,
            ..Default::default()
        })
        .await;
    let base = s.base.clone();
    let shots = std::env::var("TESSERA_SCREENSHOTS").ok().map(|d| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(d);
        p.display().to_string()
    });
    let r = tokio::task::spawn_blocking(move || {
        let mut env = vec![
            ("BASE", base.as_str()),
            ("ADMIN_EMAIL", "root@example.com"),
            ("AUDITOR_EMAIL", "reader@example.com"),
            ("NOBODY_EMAIL", "nobody@example.com"),
            ("PASSWORD", PASSWORD),
            ("INTROSPECT_ID", introspector.as_str()),
            ("INTROSPECT_SECRET", introspector_secret.as_str()),
            ("CHROMIUM", chromium.as_str()),
        ];
        if let Some(d) = &shots {
            env.push(("SCREENSHOT_DIR", d));
        }
        crate::oidc::run_script("node", "console_journey.mjs", &env)
    })
    .await
    .unwrap();
    assert_eq!(r["violations"], serde_json::json!([]), "accessibility: {r}");
    assert!(r["pages_checked"].as_array().unwrap().len() >= 10, "{r}");
    assert_eq!(r["overview_heading"], "Overview");
    assert_eq!(r["token_status"], 200, "{r}");
    assert_eq!(r["rotated"], true);
    assert_eq!(r["old_secret_status"], 401);
    assert_eq!(r["new_secret_status"], 200);
    assert_eq!(r["active_before_disable"], true);
    assert_eq!(r["active_after_disable"], false, "{r}");
    assert_eq!(r["user_heading"], "ada@example.com");
    let id = r["client_id"].as_str().unwrap();
    assert!(
        r["audit_for_client"].as_str().unwrap().contains("client.create"),
        "{r}"
    );
    assert!(r["audit_for_client"].as_str().unwrap().contains(id));
    assert!(
        r["audit_for_user"].as_str().unwrap().contains("user.create"),
        "{r}"
    );
    assert_ne!(r["focus_outline"], "none", "visible focus: {r}");
    assert_eq!(r["signed_out"], "Signed out");
    assert!(r["nobody"].as_str().unwrap().contains("no console role"), "{r}");
    assert_eq!(r["auditor_heading"], "Overview");
    assert_eq!(r["auditor_new_client_links"], 0);
    assert_eq!(r["auditor_forms"], 0, "{r}");
    assert_eq!(r["auditor_new_form"], "Read only");
}

/// Trust policies disabled and deleted, initial access tokens issued (shown once) and
/// withdrawn, a self-registered client approved, claims and attributes edited; each asked first
/// where it takes something away.
#[tokio::test]
async fn trust_registration_claims_and_attributes_are_managed() {
    use tessera::admin::trust::NewTrustPolicy;
    use tessera::model::auth::TokenAuth;
    use tessera::model::trust::TrustKeys;
    let s = kit::start(Opts {
        registration: Some(crate::registration::open()),
        ..Default::default()
    })
    .await;
    let admin = person(&s, "root@example.com", &["admin"]).await;
    let (workload, _) = s
        .client_with(NewClient {
            name: "deployer".into(),
            scope: "deploy".into(),
            auth: TokenAuth::PrivateKeyJwt,
            ..Default::default()
        })
        .await;
    let key = kit::keys::TestKey::new("ES256", "ci-1");
    let policy = tessera::admin::trust::create(
        &s.app().store,
        &s.actor(),
        NewTrustPolicy {
            name: "ci <b>".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            keys: TrustKeys::Jwks(key.jwks()),
            audience: s.base.clone(),
            subject: "repo:acme/app:ref:refs/heads/main".into(),
            claims: Default::default(),
            client_id: workload.clone(),
        },
    )
    .await
    .unwrap();
    let (mut b, overview) = sign_in(&s, "root@example.com").await;
    let csrf = overview.hidden("csrf");

    let list = b.get(&s.url("/console/trust")).await;
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains("token.actions.githubusercontent.com") && list.body.contains("ci &#60;b&#62;"),
        "{}",
        list.body
    );
    let path = format!("/console/trust/{}", policy.id);
    let ask = post(&mut b, &s, &format!("{path}/disable"), &csrf, &[]).await;
    assert!(ask.body.contains("Disable the trust policy"));
    let off = post(
        &mut b,
        &s,
        &format!("{path}/disable"),
        &csrf,
        &[("confirm", "yes")],
    )
    .await;
    assert!(off.body.contains("Disabled."), "{}", off.body);
    assert!(!s.app().store.trust_policies().await.unwrap()[0].enabled);
    let gone = post(
        &mut b,
        &s,
        &format!("{path}/delete"),
        &csrf,
        &[("confirm", "yes")],
    )
    .await;
    assert!(
        gone.body.contains("Deleted.") && gone.body.contains("No trust policy"),
        "{}",
        gone.body
    );

    // An initial access token, shown once.
    let issued = post(
        &mut b,
        &s,
        "/console/registration",
        &csrf,
        &[("note", "partner"), ("uses", "3"), ("days", "2")],
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let value = {
        let start = issued.body.find("id=\"secret\">").unwrap() + "id=\"secret\">".len();
        issued.body[start..start + issued.body[start..].find('<').unwrap()].to_string()
    };
    assert!(value.len() >= 32);
    let again = b.get(&s.url("/console/registration")).await;
    assert!(
        again.body.contains("partner") && !again.body.contains(&value),
        "shown once"
    );
    let tokens = tessera::admin::registration::initial_tokens(&s.app().store)
        .await
        .unwrap();
    assert_eq!(tokens[0].uses_left, 3);
    let withdraw = format!("/console/registration/{}/revoke", tokens[0].id);
    assert!(
        post(&mut b, &s, &withdraw, &csrf, &[])
            .await
            .body
            .contains("Withdraw the initial access token")
    );
    let done = post(&mut b, &s, &withdraw, &csrf, &[("confirm", "yes")]).await;
    assert!(done.body.contains("Withdrawn."), "{}", done.body);
    assert!(
        tessera::admin::registration::initial_tokens(&s.app().store)
            .await
            .unwrap()
            .is_empty()
    );
    let bad = post(
        &mut b,
        &s,
        "/console/registration",
        &csrf,
        &[("uses", "x"), ("days", "1")],
    )
    .await;
    assert_eq!(bad.status, 400);

    // A client that registered itself, approved.
    let registered: Value = s
        .http
        .post(s.url("/oauth2/register"))
        .json(&serde_json::json!({
            "client_name": "Agent",
            "redirect_uris": ["http://127.0.0.1:9/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent = registered["client_id"].as_str().unwrap();
    let page = b.get(&s.url(&format!("/console/clients/{agent}"))).await;
    assert!(
        page.body.contains("registered itself") && page.body.contains("Approve (vouch for it)"),
        "{}",
        page.body
    );
    let approved = post(
        &mut b,
        &s,
        &format!("/console/clients/{agent}/approve"),
        &csrf,
        &[],
    )
    .await;
    assert!(approved.body.contains("Approved"), "{}", approved.body);
    let stored = s.app().store.client(agent).await.unwrap().unwrap();
    assert!(stored.registration.unwrap().approved);

    // Claims on a client, attributes on a user.
    let (id, _) = s.client("orders:read", &[]).await;
    let saved = post(
        &mut b,
        &s,
        &format!("/console/clients/{id}/update"),
        &csrf,
        &[
            ("name", "orders"),
            ("scope", "orders:read"),
            ("claims", r#"{"tenant": "acme"}"#),
        ],
    )
    .await;
    assert!(saved.body.contains("Saved."), "{}", saved.body);
    assert_eq!(
        s.app().store.client(&id).await.unwrap().unwrap().claims["tenant"],
        "acme"
    );
    let refused = post(
        &mut b,
        &s,
        &format!("/console/clients/{id}/update"),
        &csrf,
        &[("name", "orders"), ("claims", "[1]")],
    )
    .await;
    assert_eq!(refused.status, 400);
    // The textarea is the whole set: a claim taken out of it goes.
    let emptied = post(
        &mut b,
        &s,
        &format!("/console/clients/{id}/update"),
        &csrf,
        &[("name", "orders"), ("scope", "orders:read"), ("claims", "")],
    )
    .await;
    assert!(emptied.body.contains("Saved."), "{}", emptied.body);
    assert!(
        s.app()
            .store
            .client(&id)
            .await
            .unwrap()
            .unwrap()
            .claims
            .is_empty()
    );
    let attrs = post(
        &mut b,
        &s,
        &format!("/console/users/{admin}/attributes"),
        &csrf,
        &[("attributes", r#"{"department": "ops"}"#)],
    )
    .await;
    assert!(attrs.body.contains("Attributes saved."), "{}", attrs.body);
    assert_eq!(
        s.app().store.user(&admin).await.unwrap().unwrap().attributes["department"],
        "ops"
    );
    let replaced = post(
        &mut b,
        &s,
        &format!("/console/users/{admin}/attributes"),
        &csrf,
        &[("attributes", r#"{"team": "red"}"#)],
    )
    .await;
    assert!(replaced.body.contains("Attributes saved."));
    let attributes = s.app().store.user(&admin).await.unwrap().unwrap().attributes;
    assert_eq!(attributes.len(), 1, "replaced, not merged: {attributes:?}");
    assert_eq!(attributes["team"], "red");
}

/// `[console] listen`: the console on an address of its own (an admin network, a tunnel), not on
/// the main listener; its sign-in goes through the issuer's pages and comes back to it.
#[tokio::test]
async fn the_console_can_have_a_listener_of_its_own() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let console = format!("http://{addr}");
    let s = kit::start(Opts {
        console: Some(tessera::config::ConsoleSettings {
            listen: Some(addr),
            url: Some(console.clone()),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    person(&s, "root@example.com", &["admin"]).await;
    let mut b = Browser::new();
    assert_eq!(
        b.get(&s.url("/console")).await.status,
        404,
        "not on the main listener"
    );
    let start = b.get(&format!("{console}/console")).await;
    assert_eq!(start.status, 303);
    assert!(
        start.location().starts_with(&format!("{console}/console/signin")),
        "{}",
        start.location()
    );
    let login = follow(&mut b, start).await;
    assert!(
        login.body.contains("<h1>Sign in</h1>"),
        "the issuer's page: {}",
        login.body
    );
    let posted = b
        .log_in(&s.url("/oauth2/login"), &login, "root@example.com", PASSWORD)
        .await;
    assert!(
        posted
            .location()
            .starts_with(&format!("{console}/console/callback")),
        "{}",
        posted.location()
    );
    let overview = follow(&mut b, posted).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("<h1>Overview</h1>"));
    let csrf = overview.hidden("csrf");
    let made = b
        .post(
            &format!("{console}/console/users"),
            &[("csrf", csrf.as_str()), ("email", "ada@example.com")],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    // The issuer's origin is another site for the console.
    let req = b
        .http
        .post(format!("{console}/console/users"))
        .header("origin", kit_origin(&s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&[
            ("csrf", csrf.as_str()),
            ("email", "bob@example.com"),
        ]));
    assert_eq!(b.send(req).await.status, 403);
    // Signing out of the console ends the issuer's sign-in too, though its cookie never comes
    // to the console's origin: signing in again asks for the password.
    let out = b
        .post(&format!("{console}/console/signout"), &[("csrf", csrf.as_str())])
        .await;
    assert!(out.body.contains("Signed out"), "{}", out.body);
    let again = b.get(&format!("{console}/console")).await;
    let page = follow(&mut b, again).await;
    assert!(page.body.contains("<h1>Sign in</h1>"), "{}", page.body);
}

fn kit_origin(base: &str) -> String {
    base.trim_end_matches('/').to_string()
}
