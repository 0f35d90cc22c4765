//! Device authorization (RFC 8628): a real browser connects a device while openid-client polls;
//! polls paced with `slow_down`, answered once, expired and denied; user-code guessing slowed
//! down; the entry form guarded like the other pages. (Two nodes on PostgreSQL: `cluster`.)

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tessera::admin::NewClient;
use tessera::config::SignInSettings;

use crate::kit::{self, Opts, Server, decode_unverified};
use crate::oidc::{Browser, PASSWORD, Page, node_ready, run_script, tool_ready, user};

pub(crate) const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn opts(ttl: u64, interval: u64) -> Opts {
    Opts {
        sign_in: Some(SignInSettings {
            device_code_ttl: ttl,
            device_poll_interval: interval,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A client registered for the device grant (and refresh tokens): (id, secret; empty when
/// public).
async fn device_client(s: &Server, public: bool) -> (String, String) {
    s.client_with(NewClient {
        name: "Living-room TV".into(),
        scope: "orders:read".into(),
        audiences: vec!["https://orders.example".into()],
        public,
        grant_types: Some(vec![DEVICE.into(), "refresh_token".into()]),
        ..Default::default()
    })
    .await
}

/// POSTs `form` to `path` as the client: Basic for a confidential one, `client_id` for a public.
async fn post_as(s: &Server, path: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = if secret.is_empty() {
        let mut form = form.to_vec();
        form.push(("client_id", id));
        s.post_raw(
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            kit::encode_form(&form),
        )
        .await
    } else {
        s.post_form(path, id, secret, form).await
    };
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap())
}

/// Starts a device request; expects 200.
async fn start(s: &Server, id: &str, secret: &str, scope: &str) -> Value {
    let (status, body) = post_as(s, "/oauth2/device_authorization", id, secret, &[("scope", scope)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn poll(s: &Server, id: &str, secret: &str, device_code: &str) -> (u16, Value) {
    post_as(
        s,
        "/oauth2/token",
        id,
        secret,
        &[("grant_type", DEVICE), ("device_code", device_code)],
    )
    .await
}

/// The error code of a refused poll.
async fn poll_error(s: &Server, id: &str, secret: &str, device_code: &str) -> String {
    let (status, body) = poll(s, id, secret, device_code).await;
    assert_eq!(status, 400, "{body}");
    body["error"].as_str().unwrap().to_string()
}

/// A person, in a browser without JavaScript, at `base` (a node): opens the
/// `verification_uri_complete` path, confirms the code, signs in and answers `decision`;
/// returns the consent page and the last page.
pub(crate) async fn answer(
    b: &mut Browser,
    base: &str,
    complete_path: &str,
    user_code: &str,
    email: &str,
    decision: &str,
) -> (Page, Page) {
    let entry = b.get(&format!("{base}{complete_path}")).await;
    assert_eq!(entry.status, 200, "{}", entry.body);
    assert!(
        entry.body.contains(&format!("value=\"{user_code}\"")),
        "filled in: {}",
        entry.body
    );
    let login = b
        .post(
            &format!("{base}/oauth2/device"),
            &[("csrf", &entry.hidden("csrf")), ("user_code", user_code)],
        )
        .await;
    let consent = if login.body.contains("<h1>Sign in</h1>") {
        b.log_in(&format!("{base}/oauth2/login"), &login, email, PASSWORD)
            .await
    } else {
        login
    };
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("Allow access?"), "{}", consent.body);
    let done = b
        .post(
            &format!("{base}/oauth2/consent"),
            &[
                ("request", &consent.hidden("request")),
                ("csrf", &consent.hidden("csrf")),
                ("decision", decision),
            ],
        )
        .await;
    (consent, done)
}

/// The path and query of a URL.
pub(crate) fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".to_string(), |i| rest[i..].to_string())
}

fn is_user_code(code: &str) -> bool {
    let alphabet = "BCDFGHJKLMNPQRSTVWXZ";
    code.len() == 9
        && code
            .char_indices()
            .all(|(i, c)| if i == 4 { c == '-' } else { alphabet.contains(c) })
}

/// Set `TESSERA_SCREENSHOTS=docs/screenshots` to refresh the pictures in the README.
#[tokio::test]
async fn a_person_connects_a_device_in_a_real_browser_while_openid_client_polls() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).exists() && node_ready("device flow");
    if !tool_ready(
        "a_person_connects_a_device_in_a_real_browser_while_openid_client_polls",
        ready,
        "install Debian's chromium and run `npm ci --prefix crates/tessera/tests/rp`",
    ) {
        return;
    }
    let s = kit::start(opts(600, 1)).await;
    let sub = user(&s, "ada@example.com").await;
    let (id, _) = device_client(&s, true).await;
    let client_id = id.clone();
    let base = s.base.clone();
    let shots = std::env::var("TESSERA_SCREENSHOTS").ok().map(|d| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(d);
        p.display().to_string()
    });
    let r = tokio::task::spawn_blocking(move || {
        let mut env = vec![
            ("ISSUER", base.as_str()),
            ("CLIENT_ID", id.as_str()),
            ("SCOPE", "openid email offline_access orders:read"),
            ("EMAIL", "ada@example.com"),
            ("PASSWORD", PASSWORD),
            ("CHROMIUM", chromium.as_str()),
        ];
        if let Some(d) = &shots {
            env.push(("SCREENSHOT_DIR", d));
        }
        run_script("node", "device_flow.mjs", &env)
    })
    .await
    .unwrap();
    let code = r["user_code"].as_str().unwrap();
    assert!(is_user_code(code), "{code}");
    assert_eq!(r["verification_uri"], s.url("/oauth2/device"));
    assert_eq!(r["interval"], 1);
    assert_eq!(r["expires_in"], 600);
    // The consent page named the device and showed the code to compare.
    let consent = r["consent_text"].as_str().unwrap();
    assert!(consent.contains("Living-room TV"), "{consent}");
    assert!(consent.contains("on a device"), "{consent}");
    assert!(consent.contains(code), "{consent}");
    assert_eq!(r["result_title"], "Device connected");
    let t = &r["tokens"];
    assert!(
        t["token_type"].as_str().unwrap().eq_ignore_ascii_case("bearer"),
        "{t}"
    );
    assert_eq!(t["access_token"]["sub"], sub);
    assert_eq!(t["access_token"]["client_id"], client_id);
    assert_eq!(
        t["access_token"]["scope"],
        "openid email offline_access orders:read"
    );
    assert_eq!(t["id_token"]["sub"], sub);
    assert_eq!(t["id_token"]["aud"], client_id);
    assert_eq!(t["refresh_token"], true);
}

#[tokio::test]
async fn polls_are_paced_answered_once_and_denials_reach_the_device() {
    let s = kit::start(opts(600, 5)).await;
    let sub = user(&s, "ada@example.com").await;
    let (id, secret) = device_client(&s, false).await;

    // Discovery says where, and that clients may be registered for the grant.
    let meta = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        meta["device_authorization_endpoint"],
        s.url("/oauth2/device_authorization")
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == DEVICE)
    );

    let d = start(&s, &id, &secret, "orders:read").await;
    let user_code = d["user_code"].as_str().unwrap();
    assert!(is_user_code(user_code), "{user_code}");
    assert_eq!(d["verification_uri"], s.url("/oauth2/device"));
    assert_eq!(
        d["verification_uri_complete"],
        format!("{}?user_code={user_code}", s.url("/oauth2/device"))
    );
    assert_eq!(d["expires_in"], 600);
    assert_eq!(d["interval"], 5);
    let device_code = d["device_code"].as_str().unwrap();
    assert!(device_code.len() >= 43);

    // Pending, then too fast: slow_down, and the interval grows (a poll 5 s later would be too
    // soon still).
    assert_eq!(
        poll_error(&s, &id, &secret, device_code).await,
        "authorization_pending"
    );
    assert_eq!(poll_error(&s, &id, &secret, device_code).await, "slow_down");
    assert_eq!(poll_error(&s, &id, &secret, device_code).await, "slow_down");

    // Another client cannot redeem it; an unknown code is refused.
    let (other, other_secret) = device_client(&s, false).await;
    assert_eq!(
        poll_error(&s, &other, &other_secret, device_code).await,
        "invalid_grant"
    );
    assert_eq!(
        poll_error(&s, &id, &secret, "not-a-device-code").await,
        "invalid_grant"
    );

    // A person allows it: the next poll gets the tokens, once.
    let mut b = Browser::new();
    let fresh = start(&s, &id, &secret, "orders:read").await;
    let code = fresh["user_code"].as_str().unwrap();
    let (consent, done) = answer(
        &mut b,
        &s.base,
        &path_of(fresh["verification_uri_complete"].as_str().unwrap()),
        code,
        "ada@example.com",
        "allow",
    )
    .await;
    assert!(consent.body.contains(code), "the consent page shows the code");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device connected"), "{}", done.body);
    let fresh_code = fresh["device_code"].as_str().unwrap();
    let (status, tokens) = poll(&s, &id, &secret, fresh_code).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, claims) = decode_unverified(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], sub);
    assert_eq!(claims["aud"], "https://orders.example");
    assert_eq!(tokens["scope"], "orders:read");
    assert!(tokens.get("id_token").is_none(), "no openid, no ID token");
    assert_eq!(
        poll_error(&s, &id, &secret, fresh_code).await,
        "invalid_grant",
        "spent"
    );
    // The refresh token works.
    let (status, renewed) = post_as(
        &s,
        "/oauth2/token",
        &id,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    // Entering the answered code again is a wrong code.
    let again = b.get(&s.url("/oauth2/device")).await;
    let wrong = b
        .post(
            &s.url("/oauth2/device"),
            &[("csrf", &again.hidden("csrf")), ("user_code", code)],
        )
        .await;
    assert!(wrong.body.contains("That code is not right"), "{}", wrong.body);

    // A person denies another: the device hears access_denied.
    let denied = start(&s, &id, &secret, "orders:read").await;
    let (_, done) = answer(
        &mut b,
        &s.base,
        &path_of(denied["verification_uri_complete"].as_str().unwrap()),
        denied["user_code"].as_str().unwrap(),
        "ada@example.com",
        "deny",
    )
    .await;
    assert!(done.body.contains("Request denied"), "{}", done.body);
    assert_eq!(
        poll_error(&s, &id, &secret, denied["device_code"].as_str().unwrap()).await,
        "access_denied"
    );

    // Requests that cannot start: a client not registered for the grant, a scope or resource
    // it may not have, no client authentication.
    let (machine, machine_secret) = s.client("orders:read", &[]).await;
    let (status, body) = post_as(&s, "/oauth2/device_authorization", &machine, &machine_secret, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    for (form, error) in [
        (vec![("scope", "orders:write")], "invalid_scope"),
        (vec![("scope", "tessera:admin")], "invalid_scope"),
        (
            vec![
                ("scope", "orders:read"),
                ("resource", "https://elsewhere.example"),
            ],
            "invalid_target",
        ),
    ] {
        let (status, body) = post_as(&s, "/oauth2/device_authorization", &id, &secret, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{form:?}: {body}"
        );
    }
    let (status, body) = post_as(&s, "/oauth2/device_authorization", &id, "wrong", &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // Without a scope: the client's own.
    let (status, own) = post_as(&s, "/oauth2/device_authorization", &id, &secret, &[]).await;
    assert_eq!(status, 200, "{own}");
    assert!(own["device_code"].is_string());
}

/// A first-party app that also signs people in on its website: the device's consent page is
/// shown all the same (§5.4), allowing a device is not remembered as consent for the website's
/// flow, and a second screen answering the same code is told it was answered already.
#[tokio::test]
async fn a_device_approval_is_always_asked_and_never_remembered() {
    let s = kit::start(opts(600, 5)).await;
    user(&s, "ada@example.com").await;
    let (id, secret) = s
        .client_with(NewClient {
            name: "Orders".into(),
            scope: "orders:read".into(),
            first_party: false,
            grant_types: Some(vec![
                DEVICE.into(),
                "authorization_code".into(),
                "refresh_token".into(),
            ]),
            redirect_uris: vec![crate::oidc::REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let (first_party, fp_secret) = s
        .client_with(NewClient {
            name: "Orders TV".into(),
            scope: "orders:read".into(),
            first_party: true,
            grant_types: Some(vec![DEVICE.into()]),
            ..Default::default()
        })
        .await;
    let mut b = Browser::new();
    let d = start(&s, &first_party, &fp_secret, "orders:read").await;
    let path = path_of(d["verification_uri_complete"].as_str().unwrap());
    let code = d["user_code"].as_str().unwrap();
    // `answer` asserts that the consent page came, first party or not.
    let (consent, done) = answer(&mut b, &s.base, &path, code, "ada@example.com", "allow").await;
    assert!(consent.body.contains(code), "{}", consent.body);
    assert!(done.body.contains("Device connected"));

    // Two screens with one code: the second answer is refused and changes nothing.
    let d = start(&s, &id, &secret, "orders:read").await;
    let path = path_of(d["verification_uri_complete"].as_str().unwrap());
    let code = d["user_code"].as_str().unwrap();
    let entry = b.get(&s.url(&path)).await;
    let second = b
        .post(
            &s.url("/oauth2/device"),
            &[("csrf", &entry.hidden("csrf")), ("user_code", code)],
        )
        .await;
    assert!(second.body.contains("Allow access?"), "{}", second.body);
    let (_, done) = answer(&mut b, &s.base, &path, code, "ada@example.com", "allow").await;
    assert!(done.body.contains("Device connected"));
    let late = b
        .post(
            &s.url("/oauth2/consent"),
            &[
                ("request", &second.hidden("request")),
                ("csrf", &second.hidden("csrf")),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert!(late.body.contains("answered already"), "{}", late.body);
    let (status, tokens) = poll(&s, &id, &secret, d["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the first answer stands: {tokens}");

    // The website's own sign-in still asks: the device approval was not remembered.
    let (_, challenge) = crate::oidc::pkce();
    let url = crate::oidc::authorize_url(&s, &id, &challenge, &[("scope", "orders:read")]);
    let page = b.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Allow access?"), "{}", page.body);
}

#[tokio::test]
async fn device_codes_expire() {
    let s = kit::start(opts(5, 5)).await;
    user(&s, "ada@example.com").await;
    let (id, secret) = device_client(&s, false).await;
    let d = start(&s, &id, &secret, "orders:read").await;
    assert_eq!(d["expires_in"], 5);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        poll_error(&s, &id, &secret, d["device_code"].as_str().unwrap()).await,
        "expired_token"
    );
    let mut b = Browser::new();
    let entry = b.get(&s.url("/oauth2/device")).await;
    let late = b
        .post(
            &s.url("/oauth2/device"),
            &[
                ("csrf", &entry.hidden("csrf")),
                ("user_code", d["user_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert!(
        late.body.contains("That code is not right, or it has expired"),
        "{}",
        late.body
    );
}

#[tokio::test]
async fn user_code_guessing_is_slowed_and_the_form_is_guarded() {
    let s = kit::start(opts(600, 5)).await;
    user(&s, "ada@example.com").await;
    let (id, secret) = device_client(&s, false).await;
    let d = start(&s, &id, &secret, "orders:read").await;
    let real = d["user_code"].as_str().unwrap();

    let mut b = Browser::new();
    let entry = b
        .get(&s.url("/oauth2/device?user_code=%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        .await;
    assert_eq!(entry.status, 200);
    assert!(
        !entry.body.contains("<script"),
        "nothing typed is echoed: {}",
        entry.body
    );
    assert_eq!(entry.headers["x-frame-options"], "DENY");
    let csp = entry.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let csrf = entry.hidden("csrf");

    // Without the CSRF token, with another browser's, or from another site: refused.
    let no_csrf = b.post(&s.url("/oauth2/device"), &[("user_code", real)]).await;
    assert_eq!(no_csrf.status, 403);
    let mut other = Browser::new();
    let foreign = other.get(&s.url("/oauth2/device")).await.hidden("csrf");
    let crossed = b
        .post(
            &s.url("/oauth2/device"),
            &[("csrf", &foreign), ("user_code", real)],
        )
        .await;
    assert_eq!(crossed.status, 403);
    let req = b
        .http
        .post(s.url("/oauth2/device"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&[("csrf", &csrf), ("user_code", real)]));
    assert_eq!(b.send(req).await.status, 403);

    // Wrong codes (well-formed or not) are counted; after a few, this address waits, even with
    // the right code. A right code in between (a guesser's own device request) clears nothing.
    let own = start(&s, &id, &secret, "orders:read").await;
    let mut held = None;
    for attempt in 1..=10 {
        if attempt == 5 {
            let mut other = Browser::new();
            let entry = other.get(&s.url("/oauth2/device")).await;
            let ok = other
                .post(
                    &s.url("/oauth2/device"),
                    &[
                        ("csrf", &entry.hidden("csrf")),
                        ("user_code", own["user_code"].as_str().unwrap()),
                    ],
                )
                .await;
            assert!(ok.body.contains("<h1>Sign in</h1>"), "{}", ok.body);
        }
        let guess = if attempt % 2 == 0 { "BCDF-GHJK" } else { "<b>x</b>" };
        let p = b
            .post(&s.url("/oauth2/device"), &[("csrf", &csrf), ("user_code", guess)])
            .await;
        if p.status == 429 {
            assert!(p.headers.get("retry-after").is_some());
            held = Some(attempt);
            break;
        }
        assert!(p.body.contains("That code is not right"), "{}", p.body);
        assert!(!p.body.contains("<b>x"), "{}", p.body);
    }
    assert!(held.is_some_and(|n| (6..=8).contains(&n)), "held at {held:?}");
    let right = b
        .post(&s.url("/oauth2/device"), &[("csrf", &csrf), ("user_code", real)])
        .await;
    assert_eq!(right.status, 429, "{}", right.body);
    // Signing in from this address is not held by the codes.
    let (web, _) = crate::oidc::app_client(&s, "Orders", false, true).await;
    let login = crate::oidc::try_login(&mut Browser::new(), &s, &web, "ada@example.com", PASSWORD).await;
    assert_eq!(login.status, 303, "{}", login.body);
    // The request itself is untouched: still pending.
    assert_eq!(
        poll_error(&s, &id, &secret, d["device_code"].as_str().unwrap()).await,
        "authorization_pending"
    );
}

/// `tessera login --device` (tessera-client's `DeviceFlow`) as a person uses it: it prints the
/// code and where to enter it, waits, and prints the token once the person allows it; and the
/// library hears `access_denied` when they deny.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tessera_login_device_waits_for_the_person_and_prints_the_token() {
    use std::io::BufRead;
    let s = kit::start(opts(600, 1)).await;
    let sub = user(&s, "ada@example.com").await;
    let (id, _) = device_client(&s, true).await;
    let mut child = kit::tessera_cmd(s.dir.path())
        .args([
            "login",
            "--device",
            "--issuer",
            &s.base,
            "--client-id",
            &id,
            "--json",
        ])
        .args(["--scope", "orders:read"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (uri, code) = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stderr).lines();
        let first = lines.next().unwrap().unwrap();
        // "To sign in, open <uri> and enter the code <code>"
        let rest = first
            .strip_prefix("To sign in, open ")
            .unwrap_or_else(|| panic!("{first}"));
        let (uri, code) = rest.split_once(" and enter the code ").unwrap();
        std::thread::spawn(move || for _ in lines {});
        (uri.to_string(), code.to_string())
    })
    .await
    .unwrap();
    assert_eq!(uri, s.url("/oauth2/device"));
    let mut b = Browser::new();
    let complete = format!("/oauth2/device?user_code={code}");
    let (_, done) = answer(&mut b, &s.base, &complete, &code, "ada@example.com", "allow").await;
    assert!(done.body.contains("Device connected"), "{}", done.body);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    let tokens: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (_, claims) = decode_unverified(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], sub);
    assert!(tokens["refresh_token"].is_string());

    // The library, denied.
    let flow = tessera_client::DeviceFlow::discover(&s.base, &id).await.unwrap();
    let started = flow.start(None).await.unwrap();
    assert!(
        !format!("{started:?}").contains("device_code:"),
        "Debug hides the device code"
    );
    let complete = path_of(started.verification_uri_complete.as_deref().unwrap());
    let waiting = tokio::spawn({
        let (flow, started) = (flow.clone(), started.clone());
        async move { flow.poll(&started).await }
    });
    let (_, done) = answer(
        &mut b,
        &s.base,
        &complete,
        &started.user_code,
        "ada@example.com",
        "deny",
    )
    .await;
    assert!(done.body.contains("Request denied"), "{}", done.body);
    match waiting.await.unwrap() {
        Err(tessera_client::ClientError::Refused { error, .. }) => assert_eq!(error, "access_denied"),
        other => panic!("{other:?}"),
    }
}
