//! Signing people in: the authorization endpoint, the login and consent pages, the code and
//! refresh grants, ID tokens, userinfo and sign-out, against a real server over real HTTP;
//! then the same flow driven by two independent relying-party libraries (openid-client in
//! Node, authlib in Python) and by a real browser (headless Chromium).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::admin::NewClient;
use tessera::operation::Actor;
use tessera::users::NewUser;

use crate::kit::{self, Opts, Server};

pub(crate) const PASSWORD: &str = "correct horse battery staple";
pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A browser without JavaScript: a cookie jar, no redirects followed.
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    pub(crate) jar: HashMap<String, String>,
}

/// One answer: status, headers, body.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> String {
        self.headers
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// The value of the hidden input `name`.
    pub(crate) fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].replace("&#38;", "&")
    }

    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
}

impl Browser {
    pub(crate) fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: HashMap::new(),
        }
    }

    pub(crate) async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie.join("; "))
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        for c in headers.get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status,
            headers,
            body: r.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, url: &str) -> Page {
        let req = self.http.get(url);
        self.send(req).await
    }

    /// Posts the login form `login` shows, at `url`, with `email` and `password`.
    pub(crate) async fn log_in(&mut self, url: &str, login: &Page, email: &str, password: &str) -> Page {
        self.post(
            url,
            &[
                ("request", &login.hidden("request")),
                ("csrf", &login.hidden("csrf")),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    pub(crate) async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let req = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(kit::encode_form(form));
        self.send(req).await
    }
}

/// A PKCE pair: (verifier, S256 challenge).
pub(crate) fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand_bytes());
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(d.as_ref()))
}

fn rand_bytes() -> [u8; 32] {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 32];
    SystemRandom::new().fill(&mut b).unwrap();
    b
}

/// The query parameters of a URL.
pub(crate) fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// An authorization request URL with sensible parameters, `extra` replacing or adding some.
pub(crate) fn authorize_url(s: &Server, client_id: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email offline_access"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(p, _)| p != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    format!("{}?{}", s.url("/oauth2/authorize"), kit::encode_form(&params))
}

pub(crate) async fn user(s: &Server, email: &str) -> String {
    tessera::users::create_user(
        &s.app().store,
        &Actor::server(),
        NewUser {
            email: email.into(),
            email_verified: true,
            given_name: Some("Ada".into()),
            name: Some("Ada Lovelace".into()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .id
}

/// A client that signs people in: (id, secret; empty for a public client).
pub(crate) async fn app_client(s: &Server, name: &str, public: bool, first_party: bool) -> (String, String) {
    s.client_with(NewClient {
        name: name.into(),
        scope: "orders:read".into(),
        public,
        first_party,
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        redirect_uris: vec![REDIRECT.into()],
        ..Default::default()
    })
    .await
}

/// Signs in through the login form (unless the browser has a session) and the consent form
/// (when one comes); returns the redirect to the client.
/// A new browser signs `email` in to client `id` (default scopes, PKCE): the browser, the
/// PKCE verifier and the code it came back with.
pub(crate) async fn first_code(s: &Server, id: &str, email: &str) -> (Browser, String, String) {
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();
    let back = sign_in(&mut b, s, &authorize_url(s, id, &challenge, &[]), email).await;
    let code = query(&back)["code"].clone();
    (b, verifier, code)
}

pub(crate) async fn sign_in(b: &mut Browser, s: &Server, url: &str, email: &str) -> String {
    sign_in_with(b, s, url, email, PASSWORD).await
}

/// Signs in with `password`, consents if asked, and returns where the browser was sent.
pub(crate) async fn sign_in_with(
    b: &mut Browser,
    s: &Server,
    url: &str,
    email: &str,
    password: &str,
) -> String {
    let mut page = b.get(url).await;
    if page.status == 200 && page.body.contains("<h1>Sign in</h1>") {
        page = b.log_in(&s.url("/oauth2/login"), &page, email, password).await;
    }
    if page.status == 200 && page.body.contains("Allow access?") {
        page = b
            .post(
                &s.url("/oauth2/consent"),
                &[
                    ("request", &page.hidden("request")),
                    ("csrf", &page.hidden("csrf")),
                    ("decision", "allow"),
                ],
            )
            .await;
    }
    assert!(page.status == 303 || page.status == 302, "{}", page.body);
    page.location()
}

/// Redeems `code`; returns the status and body.
pub(crate) async fn redeem(s: &Server, id: &str, secret: &str, code: &str, verifier: &str) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    let r = if secret.is_empty() {
        form.push(("client_id", id));
        s.http
            .post(s.url("/oauth2/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(kit::encode_form(&form))
            .send()
            .await
            .unwrap()
    } else {
        s.token_basic(id, secret, &form).await
    };
    (r.status().as_u16(), r.json().await.unwrap())
}

pub(crate) async fn refresh(s: &Server, id: &str, secret: &str, token: &str) -> (u16, Value) {
    let r = s
        .token_basic(
            id,
            secret,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Verifies an ID token with an independent JWT library: RS256 against the JWKS, issuer,
/// audience, expiry.
async fn verify_id_token(s: &Server, token: &str, audience: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let jwks: JwkSet = serde_json::from_value(s.get_json("/.well-known/jwks.json").await).unwrap();
    let header = decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let key = DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[s.base.as_str()]);
    v.set_audience(&[audience]);
    v.leeway = 0;
    decode::<Value>(token, &key, &v).unwrap().claims
}

#[tokio::test]
async fn a_web_app_signs_a_person_in_and_keeps_them_signed_in() {
    let s = kit::start(Opts::default()).await;
    let sub = user(&s, "ada@example.com").await;
    let (id, secret) = app_client(&s, "Orders <script>alert(1)</script>", false, false).await;
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();

    // The login page: no script, nothing framed, nothing cached, the name escaped.
    let url = authorize_url(
        &s,
        &id,
        &challenge,
        &[("scope", "openid profile email offline_access orders:read")],
    );
    let login = b.get(&url).await;
    assert_eq!(login.status, 200);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(login.headers["x-frame-options"], "DENY");
    assert_eq!(login.headers["cache-control"], "no-store");
    assert!(!login.body.contains("<script>"), "{}", login.body);
    assert!(
        login
            .body
            .contains("Orders &#60;script&#62;alert(1)&#60;/script&#62;")
    );
    let csrf_cookie = login.set_cookies().join(" | ");
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"),
        "{csrf_cookie}"
    );
    assert!(
        !csrf_cookie.contains("Secure"),
        "loopback over http: no Secure, {csrf_cookie}"
    );

    // Password, then consent (a third-party app).
    let consent = b
        .log_in(&s.url("/oauth2/login"), &login, "ADA@example.com", PASSWORD)
        .await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("Allow access?") && consent.body.contains("orders:read"));
    assert!(!consent.body.contains("<script>"));
    let session_cookie = consent.set_cookies().join(" | ");
    assert!(
        session_cookie.contains("tessera_session=") && session_cookie.contains("HttpOnly"),
        "{session_cookie}"
    );
    assert!(session_cookie.contains("SameSite=Lax"), "{session_cookie}");
    let back = b
        .post(
            &s.url("/oauth2/consent"),
            &[
                ("request", &consent.hidden("request")),
                ("csrf", &consent.hidden("csrf")),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(back.status, 303);
    let location = back.location();
    assert!(location.starts_with(REDIRECT), "{location}");
    let q = query(&location);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], s.base, "RFC 9207");
    let code = q["code"].clone();

    // The code, with PKCE: an access token for the person, an ID token, a refresh token.
    let (status, tokens) = redeem(&s, &id, &secret, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email offline_access orders:read");
    let access = tokens["access_token"].as_str().unwrap();
    let (header, claims) = kit::decode_unverified(access);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    let idt = verify_id_token(&s, tokens["id_token"].as_str().unwrap(), &id).await;
    assert_eq!(idt["sub"], sub.as_str());
    assert_eq!(idt["nonce"], "n-1");
    assert_eq!(idt["azp"], id.as_str());
    assert!(idt["auth_time"].as_i64().unwrap() <= idt["iat"].as_i64().unwrap());
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    assert_eq!(idt["at_hash"], URL_SAFE_NO_PAD.encode(&d.as_ref()[..16]));

    // userinfo: the claims the scopes allow.
    let info = s
        .http
        .get(s.url("/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["name"], "Ada Lovelace");

    // The code again: refused, and what it issued is revoked.
    let (status, again) = redeem(&s, &id, &secret, &code, &verifier).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "{again}"
    );
    let active = s.introspect(&id, &secret, access).await;
    assert_eq!(active["active"], false, "a reused code revokes its access token");
    let first_refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&s, &id, &secret, first_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "and its refresh tokens: {body}"
    );

    // A new sign-in: the session and the consent are remembered, so no page at all.
    let (verifier, challenge) = pkce();
    let url = authorize_url(&s, &id, &challenge, &[("scope", "openid email offline_access")]);
    let quick = b.get(&url).await;
    assert_eq!(quick.status, 302, "{}", quick.body);
    let code = query(&quick.location())["code"].clone();
    let (status, tokens) = redeem(&s, &id, &secret, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");

    // Refresh: rotated every time; a token used twice ends the whole family.
    let r1 = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, t2) = refresh(&s, &id, &secret, &r1).await;
    assert_eq!(status, 200, "{t2}");
    let r2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    let idt2 = verify_id_token(&s, t2["id_token"].as_str().unwrap(), &id).await;
    assert_eq!(idt2["sub"], sub.as_str());
    assert!(idt2.get("nonce").is_none(), "no nonce on refresh");
    let (status, reused) = refresh(&s, &id, &secret, &r1).await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant")),
        "{reused}"
    );
    let (status, family) = refresh(&s, &id, &secret, &r2).await;
    assert_eq!(
        (status, family["error"].as_str()),
        (400, Some("invalid_grant")),
        "{family}"
    );
    let t2_access = t2["access_token"].as_str().unwrap();
    assert_eq!(s.introspect(&id, &secret, t2_access).await["active"], false);

    // prompt=consent and prompt=login bring the pages back.
    let (_, challenge) = pkce();
    let p = b
        .get(&authorize_url(&s, &id, &challenge, &[("prompt", "consent")]))
        .await;
    assert!(p.status == 200 && p.body.contains("Allow access?"), "{}", p.body);
    let p = b
        .get(&authorize_url(&s, &id, &challenge, &[("prompt", "login")]))
        .await;
    assert!(p.status == 200 && p.body.contains("Sign in"), "{}", p.body);

    // Sign-out with the ID token as hint: the session ends, prompt=none now needs a login.
    let logout = format!(
        "{}?{}",
        s.url("/oauth2/logout"),
        kit::encode_form(&[
            ("id_token_hint", t2["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", REDIRECT),
            ("state", "bye"),
        ])
    );
    let out = b.get(&logout).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(out.location(), format!("{REDIRECT}?state=bye"));
    let p = b
        .get(&authorize_url(&s, &id, &challenge, &[("prompt", "none")]))
        .await;
    assert_eq!(p.status, 302);
    let q = query(&p.location());
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "st-1");
}

#[tokio::test]
async fn a_single_page_app_is_a_public_client_with_pkce() {
    let s = kit::start(Opts::default()).await;
    user(&s, "grace@example.com").await;
    let (id, secret) = app_client(&s, "SPA", true, true).await;
    assert!(secret.is_empty());
    // First party: no consent page.
    let (mut b, verifier, code) = first_code(&s, &id, "grace@example.com").await;
    // Without the verifier, with a wrong one: refused, and the code still works after.
    let (_, wrong) = pkce();
    let (status, body) = redeem(&s, &id, "", &code, &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let r = s
        .http
        .post(s.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &id),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "invalid_request", "error_description": "code_verifier is required (PKCE)"})
    );
    let (status, tokens) = redeem(&s, &id, "", &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    // A public client cannot use client credentials, nor introspect (it has no secret).
    let cc = post_public(&s, &[("grant_type", "client_credentials"), ("client_id", &id)]).await;
    assert_eq!(
        (cc.0, cc.1["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{}",
        cc.1
    );
    let access = tokens["access_token"].as_str().unwrap();
    let r = s
        .http
        .post(s.url("/oauth2/introspect"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&[("token", access), ("client_id", &id)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // An ID token is not an access token: userinfo and introspection refuse it.
    let id_token = tokens["id_token"].as_str().unwrap();
    let r = s
        .http
        .get(s.url("/oauth2/userinfo"))
        .bearer_auth(id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (machine, machine_secret) = s.client("x", &[]).await;
    let m = s.token(&machine, &machine_secret).await;
    let r = s
        .http
        .get(s.url("/oauth2/userinfo"))
        .bearer_auth(&m)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a machine token has no openid scope");
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // Refresh: no secret needed; another client's refresh is refused and spends nothing; a
    // wider scope is refused and spends nothing.
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let (other, _) = app_client(&s, "Other SPA", true, true).await;
    let r = post_public(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &other),
        ],
    )
    .await;
    assert_eq!(
        (r.0, r.1["error"].as_str()),
        (400, Some("invalid_grant")),
        "{}",
        r.1
    );
    let r = post_public(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &id),
            ("scope", "openid orders:read"),
        ],
    )
    .await;
    assert_eq!(
        (r.0, r.1["error"].as_str()),
        (400, Some("invalid_scope")),
        "{}",
        r.1
    );
    let r = post_public(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &id),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["scope"], "openid", "a narrower scope for this access token");

    // Sign-out: an access token is no id_token_hint, an unregistered return address is
    // refused, and without a hint the person confirms (with a CSRF token) first.
    let logout = s.url("/oauth2/logout");
    let p = b
        .get(&format!(
            "{logout}?{}",
            kit::encode_form(&[("id_token_hint", access)])
        ))
        .await;
    assert_eq!(p.status, 400, "{}", p.body);
    let p = b
        .get(&format!(
            "{logout}?{}",
            kit::encode_form(&[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://evil.example/")
            ])
        ))
        .await;
    assert_eq!(p.status, 400);
    assert!(p.headers.get("location").is_none());
    let confirm = b.get(&logout).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Sign out?"), "{}", confirm.body);
    let p = b.post(&logout, &[("confirm", "yes"), ("csrf", "forged")]).await;
    assert!(p.body.contains("Sign out?"), "a forged confirmation asks again");
    let p = b
        .post(&logout, &[("confirm", "yes"), ("csrf", &confirm.hidden("csrf"))])
        .await;
    assert!(p.body.contains("You are signed out"), "{}", p.body);
    let (_, challenge) = pkce();
    let p = b
        .get(&authorize_url(&s, &id, &challenge, &[("prompt", "none")]))
        .await;
    assert_eq!(query(&p.location())["error"], "login_required");
}

#[tokio::test]
async fn the_screening_eagle_path_takes_codes_and_refresh_tokens_with_basic() {
    // Screening Eagle ID's token endpoint takes authorization_code beside client_credentials,
    // with HTTP Basic, and answers with an ID token and a refresh token (the seed's example).
    let s = kit::start(Opts {
        presets: Some("screening-eagle"),
        ..Default::default()
    })
    .await;
    let sub = user(&s, "ada@example.com").await;
    let (id, secret) = app_client(&s, "Inspect", false, true).await;
    let (_, verifier, code) = first_code(&s, &id, "ada@example.com").await;
    let path = "/api/id/v1/auth/token";
    let r = s
        .post_form(
            path,
            &id,
            &secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["scope"], "openid profile email offline_access");
    let idt = verify_id_token(&s, tokens["id_token"].as_str().unwrap(), &id).await;
    assert_eq!(idt["sub"], sub.as_str());
    let old = tokens["refresh_token"].as_str().unwrap();
    let r = s
        .post_form(
            path,
            &id,
            &secret,
            &[("grant_type", "refresh_token"), ("refresh_token", old)],
        )
        .await;
    assert_eq!(r.status(), 200);
    // The path's own error style: errorDescription beside error_description.
    let r = s
        .post_form(
            path,
            &id,
            &secret,
            &[("grant_type", "refresh_token"), ("refresh_token", old)],
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["errorDescription"].is_string(), "{body}");
    // Basic only at this path: client_id alone (a public client's way) is refused.
    let r = s
        .http
        .post(s.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old),
            ("client_id", &id),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn browsers_may_call_the_token_and_userinfo_endpoints_across_origins() {
    let s = kit::start(Opts::default()).await;
    for path in [
        "/oauth2/token",
        "/oauth2/userinfo",
        "/oauth2/revoke",
        "/.well-known/jwks.json",
    ] {
        let r = s
            .http
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
        assert!(r.headers().get("access-control-allow-credentials").is_none());
    }
    // Not the pages, not introspection, not the admin API.
    for path in ["/oauth2/login", "/oauth2/introspect", "/admin/v1/clients"] {
        let r = s
            .http
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("access-control-allow-origin").is_none(), "{path}");
    }
}

/// POSTs a form to the token endpoint without client authentication (a public client).
async fn post_public(s: &Server, form: &[(&str, &str)]) -> (u16, Value) {
    let r = s
        .http
        .post(s.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(form))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn bad_authorization_requests_are_refused_precisely() {
    let s = kit::start(Opts::default()).await;
    let ada = user(&s, "ada@example.com").await;
    let (id, secret) = app_client(&s, "Orders", false, false).await;
    let (other, other_secret) = app_client(&s, "Other", false, true).await;
    let (machine, machine_secret) = s.client("orders:read", &[]).await;
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();

    // Nowhere safe to send an error: a page, never a redirect.
    for (what, url) in [
        (
            "unregistered redirect",
            authorize_url(
                &s,
                &id,
                &challenge,
                &[("redirect_uri", "https://evil.example/cb")],
            ),
        ),
        (
            "altered redirect",
            authorize_url(
                &s,
                &id,
                &challenge,
                &[("redirect_uri", "http://127.0.0.1:9/callback/x")],
            ),
        ),
        (
            "no redirect",
            authorize_url(&s, &id, &challenge, &[("redirect_uri", "")]),
        ),
        ("unknown client", authorize_url(&s, "nobody", &challenge, &[])),
        (
            "no client",
            authorize_url(&s, "", &challenge, &[("client_id", "")]),
        ),
    ] {
        let p = b.get(&url).await;
        assert_eq!(p.status, 400, "{what}: {}", p.body);
        assert!(p.headers.get("location").is_none(), "{what}");
        assert_eq!(p.headers["content-type"], "text/html; charset=utf-8", "{what}");
    }
    // Errors for a known client and redirect go back there, with state and iss.
    for (what, extra, error) in [
        ("no PKCE", vec![("code_challenge", "")], "invalid_request"),
        (
            "plain PKCE",
            vec![("code_challenge_method", "plain")],
            "invalid_request",
        ),
        (
            "short challenge",
            vec![("code_challenge", "abc")],
            "invalid_request",
        ),
        (
            "implicit",
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        ("no response type", vec![("response_type", "")], "invalid_request"),
        ("unknown scope", vec![("scope", "openid admin")], "invalid_scope"),
        ("no scope", vec![("scope", "")], "invalid_scope"),
        ("bad prompt", vec![("prompt", "none login")], "invalid_request"),
        (
            "request object",
            vec![("request", "eyJ.x.y")],
            "request_not_supported",
        ),
        ("no session", vec![("prompt", "none")], "login_required"),
    ] {
        let p = b.get(&authorize_url(&s, &id, &challenge, &extra)).await;
        assert_eq!(p.status, 302, "{what}: {}", p.body);
        let loc = p.location();
        assert!(loc.starts_with(REDIRECT), "{what}: {loc}");
        let q = query(&loc);
        assert_eq!(q["error"], error, "{what}");
        assert_eq!(q["state"], "st-1", "{what}");
        assert_eq!(q["iss"], s.base, "{what}");
        assert!(!q.contains_key("code"));
    }
    // A machine client has no redirect URI at all: a page.
    let p = b.get(&authorize_url(&s, &machine, &challenge, &[])).await;
    assert_eq!(p.status, 400);

    // The login form without its CSRF token, or with another browser's: refused, no session.
    let login = b.get(&authorize_url(&s, &id, &challenge, &[])).await;
    let request = login.hidden("request");
    for (what, csrf) in [("none", ""), ("forged", "AAAA")] {
        let p = b
            .post(
                &s.url("/oauth2/login"),
                &[
                    ("request", &request),
                    ("csrf", csrf),
                    ("email", "ada@example.com"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(p.status, 403, "{what}");
        assert!(
            p.set_cookies().iter().all(|c| !c.contains("tessera_session")),
            "{what}"
        );
    }
    let mut stranger = Browser::new();
    let p = stranger
        .post(
            &s.url("/oauth2/login"),
            &[
                ("request", &request),
                ("csrf", &login.hidden("csrf")),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, 403, "the token is bound to the browser's cookie");
    // A tampered sealed request is refused even with a CSRF token made for it.
    let mut tampered = request.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cookie = b.jar["tessera_csrf"].clone();
    let forged_csrf = tessera::http::interaction::csrf_token(s.app(), &cookie, &tampered).unwrap();
    let p = b
        .post(
            &s.url("/oauth2/login"),
            &[
                ("request", &tampered),
                ("csrf", &forged_csrf),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, 400, "the seal does not open: {}", p.body);
    assert!(no_session(&p));
    // A post from another site is refused before anything else.
    let req = b
        .http
        .post(s.url("/oauth2/login"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(kit::encode_form(&[
            ("request", &request),
            ("csrf", &login.hidden("csrf")),
        ]));
    assert_eq!(b.send(req).await.status, 403);
    // The login page's request cannot be posted as a consent.
    let back = sign_in(
        &mut b,
        &s,
        &authorize_url(&s, &other, &challenge, &[]),
        "ada@example.com",
    )
    .await;
    assert!(back.starts_with(REDIRECT));
    let login = b
        .get(&authorize_url(&s, &id, &challenge, &[("prompt", "login")]))
        .await;
    let p = b
        .post(
            &s.url("/oauth2/consent"),
            &[
                ("request", &login.hidden("request")),
                ("csrf", &login.hidden("csrf")),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(p.status, 403, "{}", p.body);
    // The admin scope is never for people.
    let (admin_app, _) = s
        .client_with(NewClient {
            name: "admin app".into(),
            admin: true,
            grant_types: Some(vec!["authorization_code".into()]),
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let p = b
        .get(&authorize_url(
            &s,
            &admin_app,
            &challenge,
            &[("scope", "openid tessera:admin")],
        ))
        .await;
    assert_eq!(query(&p.location())["error"], "invalid_scope");
    // A redirect URI removed while a sign-in is under way ends it.
    let (moving, _) = app_client(&s, "Moving", false, true).await;
    let login = b
        .get(&authorize_url(&s, &moving, &challenge, &[("prompt", "login")]))
        .await;
    tessera::admin::update_client(
        &s.app().store,
        &Actor::server(),
        &moving,
        tessera::admin::ClientUpdate {
            redirect_uris: Some(vec!["https://other.example/cb".into()]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let p = b
        .log_in(&s.url("/oauth2/login"), &login, "ada@example.com", PASSWORD)
        .await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.headers.get("location").is_none());

    // Codes: another client, another redirect URI, a wrong verifier: refused, the code kept.
    let back = sign_in(
        &mut b,
        &s,
        &authorize_url(&s, &id, &challenge, &[]),
        "ada@example.com",
    )
    .await;
    let code = query(&back)["code"].clone();
    let (status, body) = redeem(&s, &other, &other_secret, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let r = s
        .token_basic(
            &id,
            &secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:10/callback"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let (status, body) = redeem(&s, &id, &secret, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    // An expired code (stored as the server stores them, already past its time).
    let expired = "expired-code-value-expired-code-value-1234";
    s.app()
        .store
        .insert_code(&tessera::model::CodeRecord {
            id: tessera::oauth::oidc::digest(expired),
            grant: tessera::model::Grant {
                client_id: id.clone(),
                user_id: ada.clone(),
                scope: vec!["openid".into()],
                auth_time: 0,
                nonce: None,
                redirect_uri: Some(REDIRECT.into()),
                code_challenge: Some(challenge.clone()),
                resources: Vec::new(),
                dpop_jkt: None,
            },
            expires_at: tessera::model::clock::unix_now() - 1,
            keep_until: tessera::model::clock::unix_now() + 60,
        })
        .await
        .unwrap();
    let (status, body) = redeem(&s, &id, &secret, expired, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(
        body["error_description"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    // A client that may not redeem codes; a grant type nobody has.
    let (status, body) = redeem(&s, &machine, &machine_secret, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    let r = s.token_basic(&id, &secret, &[("grant_type", "password")]).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );

    // userinfo: no token, a client-credentials token (no openid), a forged one.
    let r = s.http.get(s.url("/oauth2/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let r = s
        .http
        .get(s.url("/oauth2/userinfo"))
        .bearer_auth("a.b.c")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

/// Posts the login form of a fresh authorization request.
pub(crate) async fn try_login(
    b: &mut Browser,
    s: &Server,
    client_id: &str,
    email: &str,
    password: &str,
) -> Page {
    let (_, challenge) = pkce();
    let login = b.get(&authorize_url(s, client_id, &challenge, &[])).await;
    b.log_in(&s.url("/oauth2/login"), &login, email, password).await
}

pub(crate) fn no_session(p: &Page) -> bool {
    p.set_cookies().iter().all(|c| !c.contains("tessera_session"))
}

#[tokio::test]
async fn passwords_are_throttled_and_disabled_users_cannot_sign_in() {
    let s = kit::start(Opts::default()).await;
    let ada = user(&s, "ada@example.com").await;
    user(&s, "bob@example.com").await;
    user(&s, "carol@example.com").await;
    let (id, _) = app_client(&s, "Orders", false, true).await;
    let mut b = Browser::new();
    // A wrong password and an unknown email get the same page.
    let wrong = try_login(&mut b, &s, &id, "ada@example.com", "not the password").await;
    let unknown = try_login(&mut b, &s, &id, "nobody@example.com", "not the password").await;
    for p in [&wrong, &unknown] {
        assert_eq!(p.status, 200);
        assert!(p.body.contains("Wrong email or password."), "{}", p.body);
        assert!(no_session(p));
    }
    // A disabled user with the right password: the same answer, no session.
    tessera::users::set_enabled(&s.app().store, &Actor::server(), &ada, false)
        .await
        .unwrap();
    let disabled = try_login(&mut b, &s, &id, "ada@example.com", PASSWORD).await;
    assert_eq!(disabled.status, 200);
    assert!(disabled.body.contains("Wrong email or password."));
    assert!(no_session(&disabled));
    // Failures for one account start a back-off after five: then 429 with Retry-After, even
    // for the right password, for that account only.
    let mut held = None;
    for attempt in 1..=8 {
        let p = try_login(&mut b, &s, &id, "bob@example.com", "still wrong").await;
        if p.status == 429 {
            held = Some(attempt);
            break;
        }
        assert!(p.body.contains("Wrong email or password."));
    }
    // The sixth attempt is held; on a slow machine the first back-off (1 s) may end before it
    // arrives, and the next failure starts a longer one.
    assert!(held.is_some_and(|n| (6..=8).contains(&n)), "held at {held:?}");
    let right = try_login(&mut b, &s, &id, "bob@example.com", PASSWORD).await;
    assert_eq!(right.status, 429, "{}", right.body);
    assert!(right.headers.get("retry-after").is_some());
    assert!(no_session(&right));
    let carol = try_login(&mut b, &s, &id, "carol@example.com", PASSWORD).await;
    assert_eq!(carol.status, 303, "another account is not held: {}", carol.body);
}

// ---- third-party relying parties and a real browser ------------------------------------------

fn rp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rp")
}

/// Whether the tool a test needs is installed; says loudly when not. Under CI a missing tool
/// fails the test (`.ci/run` installs them all).
pub(crate) fn tool_ready(test: &str, ready: bool, how: &str) -> bool {
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: not installed under CI ({how})"
        );
        eprintln!("DID NOT RUN {test}: {how}");
    }
    ready
}

/// Runs an RP script with `env`; returns the JSON object on its last stdout line.
pub(crate) fn run_script(program: &str, script: &str, env: &[(&str, &str)]) -> Value {
    let out = std::process::Command::new(program)
        .arg(rp_dir().join(script))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{script}: {e}: {stdout}"))
}

pub(crate) fn node_ready(test: &str) -> bool {
    tool_ready(
        test,
        rp_dir().join("node_modules/openid-client").exists(),
        "run `npm ci --prefix crates/tessera/tests/rp`",
    )
}

fn check_rp_result(r: &Value, sub: &str, library: &str) {
    assert_eq!(r["library"], library);
    assert_eq!(r["sub"], sub);
    assert_eq!(r["id_token_claims"]["sub"], sub);
    assert_eq!(r["userinfo"]["sub"], sub);
    assert_eq!(r["userinfo"]["email"], "ada@example.com");
    assert_eq!(r["refresh_rotated"], true, "{r}");
    assert_eq!(r["old_refresh_error"], "invalid_grant", "{r}");
    assert_eq!(r["family_revoked_error"], "invalid_grant", "{r}");
}

#[tokio::test]
async fn openid_client_signs_in_with_a_public_client() {
    if !node_ready("openid_client_signs_in_with_a_public_client") {
        return;
    }
    let s = kit::start(Opts::default()).await;
    let sub = user(&s, "ada@example.com").await;
    let (id, _) = app_client(&s, "SPA", true, true).await;
    let base = s.base.clone();
    let r = tokio::task::spawn_blocking(move || {
        run_script(
            "node",
            "openid_client_flow.mjs",
            &[
                ("ISSUER", &base),
                ("CLIENT_ID", &id),
                ("REDIRECT_URI", REDIRECT),
                ("EMAIL", "ada@example.com"),
                ("PASSWORD", PASSWORD),
            ],
        )
    })
    .await
    .unwrap();
    check_rp_result(&r, &sub, "openid-client");
    assert_eq!(r["consent_shown"], false, "first party");
}

#[tokio::test]
async fn authlib_signs_in_with_a_confidential_client() {
    let ready = std::process::Command::new("python3")
        .args(["-c", "import authlib, joserfc, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !tool_ready(
        "authlib_signs_in_with_a_confidential_client",
        ready,
        "run `pip install -r crates/tessera/tests/rp/requirements.txt`",
    ) {
        return;
    }
    let s = kit::start(Opts::default()).await;
    let sub = user(&s, "ada@example.com").await;
    let (id, secret) = app_client(&s, "Web app", false, false).await;
    let base = s.base.clone();
    let r = tokio::task::spawn_blocking(move || {
        run_script(
            "python3",
            "authlib_flow.py",
            &[
                ("ISSUER", &base),
                ("CLIENT_ID", &id),
                ("CLIENT_SECRET", &secret),
                ("REDIRECT_URI", REDIRECT),
                ("EMAIL", "ada@example.com"),
                ("PASSWORD", PASSWORD),
            ],
        )
    })
    .await
    .unwrap();
    check_rp_result(&r, &sub, "authlib");
    assert_eq!(r["consent_shown"], true, "third party");
}

/// Set `TESSERA_SCREENSHOTS=docs/screenshots` to refresh the pictures in the README.
#[tokio::test]
async fn a_real_browser_signs_in_and_consents() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).exists() && rp_dir().join("node_modules/playwright-core").exists();
    if !tool_ready(
        "a_real_browser_signs_in_and_consents",
        ready,
        "install Debian's chromium and run `npm ci --prefix crates/tessera/tests/rp`",
    ) {
        return;
    }
    let s = kit::start(Opts::default()).await;
    user(&s, "ada@example.com").await;
    let (id, secret) = app_client(&s, "Orders", false, false).await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &s,
        &id,
        &challenge,
        &[("scope", "openid profile email orders:read")],
    );
    let shots = std::env::var("TESSERA_SCREENSHOTS").ok().map(|d| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(d);
        p.display().to_string()
    });
    let r = tokio::task::spawn_blocking(move || {
        let mut env = vec![
            ("AUTHORIZE_URL", url.as_str()),
            ("REDIRECT_URI", REDIRECT),
            ("EMAIL", "ada@example.com"),
            ("PASSWORD", PASSWORD),
            ("CHROMIUM", chromium.as_str()),
        ];
        if let Some(d) = &shots {
            env.push(("SCREENSHOT_DIR", d));
        }
        run_script("node", "chromium_flow.mjs", &env)
    })
    .await
    .unwrap();
    assert_eq!(r["consent_shown"], true);
    let callback = r["callback"].as_str().unwrap();
    let q = query(callback);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], s.base);
    // The code the browser brought back works.
    let (status, tokens) = redeem(&s, &id, &secret, &q["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());
}
