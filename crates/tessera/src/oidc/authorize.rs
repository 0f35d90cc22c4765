//! The authorization endpoint (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2), the login and
//! consent forms, and sign-out (OpenID Connect RP-Initiated Logout).
//!
//! Until the client and its redirect URI are known good, errors are shown on a page here and
//! never redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.1); after that, they go back to the client
//! with `state` and `iss` (RFC 9207).

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::pages::{self, Consent, Login};
use super::{CSRF_COOKIE, Cookies, SESSION_COOKIE};
use crate::app::App;
use crate::limits::Subject;
use crate::model::scope::parse_scope;
use crate::model::{ClientRecord, CodeRecord, Grant, SessionRecord, UserRecord};
use crate::oauth::OAuthError;
use crate::oauth::form::Form;
use crate::store::now;

/// Longest query string or form the authorization endpoint reads.
const MAX_REQUEST: usize = 8 * 1024;

/// What `prompt` asked for (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Prompt {
    /// Never show a page: fail with `login_required` or `consent_required` instead.
    pub none: bool,
    /// Ask for the password even with a session.
    pub login: bool,
    /// Ask for consent even if it was given before.
    pub consent: bool,
}

/// A checked authorization request, sealed into the forms between the pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// Where the answer goes, as presented (it matched a registered URI).
    pub redirect_uri: String,
    /// Asked-for scopes.
    pub scope: Vec<String>,
    /// The client's `state`, returned as is.
    pub state: Option<String>,
    /// The `nonce` for the ID token.
    pub nonce: Option<String>,
    /// PKCE `S256` challenge.
    pub code_challenge: String,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age`, seconds.
    pub max_age: Option<i64>,
    /// `login_hint`: the email to fill in.
    pub login_hint: Option<String>,
    /// When the request arrived (sealed requests expire).
    pub issued_at: i64,
    /// The `resource`s asked for (RFC 8707 §2.1): the grant's tokens may be for these only.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// What a sealed request may be posted to: each page's request opens only at its own form, so
/// the login page's request cannot be posted as a consent.
const LOGIN_LABEL: &[u8] = b"tessera authorization request: login";
const CONSENT_LABEL: &[u8] = b"tessera authorization request: consent";

/// An authorization error sent back to the client (RFC 6749 §4.1.2.1).
struct Denied {
    error: &'static str,
    description: String,
}

fn denied(error: &'static str, description: impl Into<String>) -> Denied {
    Denied {
        error,
        description: description.into(),
    }
}

/// `GET` or `POST /oauth2/authorize`.
pub async fn authorize(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let address = match crate::oauth::admission::admit(&app, &parts.headers) {
        Ok(a) => a,
        Err(e) => return refused_page(e),
    };
    let form = if parts.method == Method::GET || parts.method == Method::HEAD {
        let query = parts.uri.query().unwrap_or_default();
        if query.len() > MAX_REQUEST {
            return bad_request("The request is too long.");
        }
        Form::parse(query.as_bytes()).map_err(|_| ())
    } else if parts.method == Method::POST {
        crate::oauth::admission::read_form(&app, &parts.headers, body)
            .await
            .map_err(|_| ())
    } else {
        let mut r = pages::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Use GET or POST.",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return r;
    };
    let Ok(form) = form else {
        return bad_request("The request is malformed: a parameter is repeated or badly encoded.");
    };
    // The client and its redirect URI first: until both are good, nothing is redirected.
    let Some(client_id) = form.get("client_id") else {
        return bad_request("The request does not name its application (client_id).");
    };
    let client = match app.store.client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return bad_request("The application is not registered here."),
        Err(e) => return store_page(&e),
    };
    let Some(redirect_uri) = form.get("redirect_uri") else {
        return bad_request("The request does not say where to return to (redirect_uri).");
    };
    if !crate::model::redirect::matches(&client.flows.redirect_uris, redirect_uri) {
        return bad_request("The address to return to is not registered for this application.");
    }
    let state = form.get("state").map(str::to_string);
    let req = match check(&app, &client, redirect_uri, &form) {
        Ok(r) => r,
        Err(d) => return redirect_error(&app, redirect_uri, state.as_deref(), &d, StatusCode::FOUND),
    };
    proceed(&app, &parts.headers, address, req, &client).await
}

/// Checks everything after the client and redirect URI.
fn check(app: &App, client: &ClientRecord, redirect_uri: &str, form: &Form) -> Result<AuthRequest, Denied> {
    if form.get("request").is_some() {
        return Err(denied(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if form.get("request_uri").is_some() {
        return Err(denied(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match form.get("response_type") {
        None => return Err(denied("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => return Err(denied("unsupported_response_type", "response_type must be code")),
    }
    if form.get("response_mode").is_some_and(|m| m != "query") {
        return Err(denied("invalid_request", "response_mode must be query"));
    }
    let cached = app.registry.get(&client.id);
    let Some(cached) = cached.filter(|c| c.enabled && c.may_use(crate::model::flows::AUTHORIZATION_CODE))
    else {
        return Err(denied(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    };
    let Some(scope) = form.get("scope") else {
        return Err(denied("invalid_scope", "scope is required"));
    };
    let scope = parse_scope(scope).map_err(|_| denied("invalid_scope", "scope is malformed"))?;
    if scope.iter().any(|s| s == crate::model::ADMIN_SCOPE) {
        return Err(denied(
            "invalid_scope",
            "the admin scope is for machine clients, never for people",
        ));
    }
    for s in &scope {
        let oidc = super::OIDC_SCOPES.contains(&s.as_str())
            && (s != "offline_access" || cached.may_use(crate::model::flows::REFRESH_TOKEN));
        if !oidc && !cached.grants.scopes.iter().any(|a| **a == **s) {
            let s = if s.len() > 64 { "requested" } else { s.as_str() };
            return Err(denied(
                "invalid_scope",
                format!("scope {s} is not allowed for this client"),
            ));
        }
    }
    // RFC 8707 §2.1: each resource one of the client's audiences (never the admin API's, which
    // is for machines); the grant remembers them, so no later token request can widen them.
    let mut resources: Vec<String> = Vec::new();
    for r in form.all("resource") {
        if !crate::oauth::resource::is_absolute_uri(r) {
            return Err(denied(
                "invalid_target",
                "resource must be an absolute URI without a fragment",
            ));
        }
        if r == crate::model::ADMIN_AUDIENCE || !cached.grants.audiences.iter().any(|a| &**a == r) {
            return Err(denied(
                "invalid_target",
                "resource is not allowed for this client",
            ));
        }
        if !resources.iter().any(|x| x == r) {
            resources.push(r.to_string());
        }
    }
    // PKCE with S256 for every client (RFC 9700 §2.1.1); `plain` would give nothing.
    let Some(challenge) = form.get("code_challenge") else {
        return Err(denied(
            "invalid_request",
            "code_challenge is required (PKCE, S256)",
        ));
    };
    if form.get("code_challenge_method") != Some("S256") {
        return Err(denied("invalid_request", "code_challenge_method must be S256"));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(denied(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 (43 characters)",
        ));
    }
    let mut prompt = Prompt::default();
    if let Some(p) = form.get("prompt") {
        for v in p.split(' ') {
            match v {
                "none" => prompt.none = true,
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                _ => {
                    return Err(denied(
                        "invalid_request",
                        "prompt must be none, login, consent or select_account",
                    ));
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(denied(
                "invalid_request",
                "prompt=none cannot be combined with another value",
            ));
        }
    }
    let max_age = match form.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .map_err(|_| denied("invalid_request", "max_age must be a number of seconds"))?
                .into(),
        ),
    };
    let bounded = |name: &str, max: usize| -> Result<Option<String>, Denied> {
        match form.get(name) {
            Some(v) if v.len() > max || v.chars().any(char::is_control) => Err(denied(
                "invalid_request",
                format!("{name} is longer than {max} bytes or holds control characters"),
            )),
            v => Ok(v.map(str::to_string)),
        }
    };
    Ok(AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scope,
        state: bounded("state", 1024)?,
        nonce: bounded("nonce", 512)?,
        code_challenge: challenge.to_string(),
        prompt,
        max_age,
        login_hint: bounded("login_hint", 320)?,
        issued_at: now(),
        resources,
    })
}

/// With a checked request: sign in (a session or the login page), then consent, then the code.
async fn proceed(
    app: &App,
    headers: &HeaderMap,
    address: IpAddr,
    req: AuthRequest,
    client: &ClientRecord,
) -> Response {
    let _ = address;
    let cookies = Cookies::for_issuer(&app.settings.issuer);
    let session = match current_session(app, &cookies, headers).await {
        Ok(s) => s,
        Err(e) => return store_page(&e),
    };
    let fresh_enough = |s: &SessionRecord| req.max_age.is_none_or(|m| now() - s.auth_time <= m);
    match session {
        Some((s, user)) if !req.prompt.login && fresh_enough(&s) => {
            after_login(app, headers, req, client, &user, &s, None).await
        }
        _ if req.prompt.none => redirect_error(
            app,
            &req.redirect_uri,
            req.state.as_deref(),
            &denied("login_required", "the user is not signed in"),
            StatusCode::FOUND,
        ),
        _ => login_page(app, headers, &req, client, StatusCode::OK, None, None),
    }
}

/// The session the browser holds, with its user, if both are still good.
async fn current_session(
    app: &App,
    cookies: &Cookies,
    headers: &HeaderMap,
) -> Result<Option<(SessionRecord, UserRecord)>, crate::store::StoreError> {
    let Some(value) = cookies.get(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = app.store.session(&super::digest(value)).await? else {
        return Ok(None);
    };
    let user = app.store.user(&session.user_id).await?;
    Ok(user.filter(|u| u.enabled).map(|u| (session, u)))
}

/// `req` sealed for the form of the page `label` names.
fn seal_request(app: &App, label: &[u8], req: &AuthRequest) -> Option<String> {
    super::seal(app, label, &serde_json::to_vec(req).ok()?)
}

/// The login page for `req`, with a CSRF cookie (reused, or set now).
fn login_page(
    app: &App,
    headers: &HeaderMap,
    req: &AuthRequest,
    client: &ClientRecord,
    status: StatusCode,
    email: Option<&str>,
    error: Option<&str>,
) -> Response {
    let Some(sealed) = seal_request(app, LOGIN_LABEL, req) else {
        return pages::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Something went wrong.",
        );
    };
    let cookies = Cookies::for_issuer(&app.settings.issuer);
    let (csrf_cookie, set) = cookies.csrf(headers);
    let csrf = super::csrf_token(app, &csrf_cookie, &sealed).unwrap_or_default();
    let action = app.settings.endpoint(super::LOGIN_PATH);
    let mut r = pages::login(
        status,
        &Login {
            action: &action,
            request: &sealed,
            csrf: &csrf,
            client_name: &client.name,
            email: email.or(req.login_hint.as_deref()).unwrap_or_default(),
            error,
        },
    );
    if let Some(set) = set {
        r.headers_mut().append(header::SET_COOKIE, set);
    }
    r
}

/// Signed in: ask for consent where needed, then send the code.
async fn after_login(
    app: &App,
    headers: &HeaderMap,
    req: AuthRequest,
    client: &ClientRecord,
    user: &UserRecord,
    session: &SessionRecord,
    set_session: Option<HeaderValue>,
) -> Response {
    let status = if set_session.is_some() {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let mut response = if client.flows.first_party {
        send_code(app, &req, user, session, status).await
    } else {
        let given = match app.store.consent(&user.id, &client.id).await {
            Ok(g) => g.unwrap_or_default(),
            Err(e) => return store_page(&e),
        };
        let covered = req.scope.iter().all(|s| given.contains(s));
        if covered && !req.prompt.consent {
            send_code(app, &req, user, session, status).await
        } else if req.prompt.none {
            redirect_error(
                app,
                &req.redirect_uri,
                req.state.as_deref(),
                &denied("consent_required", "the user has not allowed this application"),
                status,
            )
        } else {
            consent_page(app, headers, &req, client, user, &session.id)
        }
    };
    if let Some(set) = set_session {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    response
}

fn consent_page(
    app: &App,
    headers: &HeaderMap,
    req: &AuthRequest,
    client: &ClientRecord,
    user: &UserRecord,
    session_id: &str,
) -> Response {
    let cookies = Cookies::for_issuer(&app.settings.issuer);
    let Some(sealed) = seal_request(app, CONSENT_LABEL, req) else {
        return pages::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Something went wrong.",
        );
    };
    // The CSRF cookie was checked on the login form; a browser with a session but no cookie
    // (it was cleared) gets a new one.
    let (csrf_cookie, set) = cookies.csrf(headers);
    // Bound to the session too: a consent form works only for the session it was shown to.
    let binding = consent_binding(&sealed, session_id);
    let csrf = super::csrf_token(app, &csrf_cookie, &binding).unwrap_or_default();
    let action = app.settings.endpoint(super::CONSENT_PATH);
    let origin = origin_of(&req.redirect_uri);
    let mut r = pages::consent(&Consent {
        action: &action,
        request: &sealed,
        csrf: &csrf,
        client_name: &client.name,
        client_origin: &origin,
        email: &user.email,
        scopes: &req.scope,
    });
    if let Some(set) = set {
        r.headers_mut().append(header::SET_COOKIE, set);
    }
    r
}

/// The scheme and authority of a URI (what the consent page shows beside the client's name).
fn origin_of(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            format!("{scheme}://{}", &rest[..end])
        }
        None => uri.split(':').next().unwrap_or_default().to_string() + ":",
    }
}

/// Stores a code and sends the browser back with it.
async fn send_code(
    app: &App,
    req: &AuthRequest,
    user: &UserRecord,
    session: &SessionRecord,
    status: StatusCode,
) -> Response {
    let code = super::random_token();
    let t = now();
    let record = CodeRecord {
        id: super::digest(&code),
        grant: Grant {
            client_id: req.client_id.clone(),
            user_id: user.id.clone(),
            scope: req.scope.clone(),
            auth_time: session.auth_time,
            nonce: req.nonce.clone(),
            redirect_uri: Some(req.redirect_uri.clone()),
            code_challenge: Some(req.code_challenge.clone()),
            resources: req.resources.clone(),
        },
        expires_at: t + super::CODE_TTL,
        keep_until: t + super::CODE_TTL,
    };
    if let Err(e) = app.store.insert_code(&record).await {
        return store_page(&e);
    }
    tracing::info!(client_id = %req.client_id, sub = %user.id, "authorization code issued");
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    params.push(("iss", &app.settings.issuer));
    redirect(&super::with_query(&req.redirect_uri, &params), status)
}

fn redirect(location: &str, status: StatusCode) -> Response {
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

fn redirect_error(
    app: &App,
    redirect_uri: &str,
    state: Option<&str>,
    d: &Denied,
    status: StatusCode,
) -> Response {
    let mut params = vec![("error", d.error), ("error_description", d.description.as_str())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", &app.settings.issuer));
    redirect(&super::with_query(redirect_uri, &params), status)
}

fn bad_request(message: &str) -> Response {
    pages::error(
        StatusCode::BAD_REQUEST,
        "This sign-in request cannot be used",
        message,
    )
}

fn store_page(e: &crate::store::StoreError) -> Response {
    let (status, msg) = match OAuthError::store(e) {
        OAuthError::TemporarilyUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable for a moment. Try again shortly.".to_string(),
        ),
        other => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Something went wrong ({}).", other.code()),
        ),
    };
    pages::error(status, "Try again later", &msg)
}

fn refused_page(e: OAuthError) -> Response {
    let retry = match &e {
        OAuthError::TooManyRequests { retry_after, .. } => Some(*retry_after),
        _ => None,
    };
    let mut r = pages::error(e.status(), "Too many attempts", "Wait a moment, then try again.");
    if let Some(s) = retry {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

fn consent_binding(sealed: &str, session_id: &str) -> String {
    format!("{sealed}\0{session_id}")
}

fn forbidden_form() -> Response {
    pages::error(
        StatusCode::FORBIDDEN,
        "This form cannot be used",
        "It has expired or was not sent from this page. Go back to the application and sign in again.",
    )
}

/// Whether a form post comes from another site: `Sec-Fetch-Site: cross-site`, or an `Origin`
/// other than the issuer's (browsers send one or both; `null` says nothing).
fn cross_site(app: &App, headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return true;
    }
    let own = origin_of(&app.settings.issuer);
    headers
        .get(header::ORIGIN)
        .is_some_and(|o| o.as_bytes() != b"null" && o.as_bytes() != own.as_bytes())
}

/// A posted form of the flow: origin and CSRF checked (the token bound to the session for a
/// consent), the request unsealed under `label`, the client looked up and checked again (a
/// redirect URI or grant taken away meanwhile ends the sign-in).
async fn posted(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    label: &[u8],
    session_id: Option<&str>,
) -> Result<(Form, AuthRequest, ClientRecord, IpAddr), Response> {
    let address = crate::oauth::admission::admit(app, headers).map_err(refused_page)?;
    if cross_site(app, headers) {
        return Err(forbidden_form());
    }
    let form = crate::oauth::admission::read_form(app, headers, body)
        .await
        .map_err(|_| bad_request("The form is malformed."))?;
    let sealed = form.get("request").unwrap_or_default();
    let cookies = Cookies::for_issuer(&app.settings.issuer);
    let binding = match session_id {
        Some(s) => consent_binding(sealed, s),
        None => sealed.to_string(),
    };
    if !super::csrf_ok(app, cookies.get(headers, CSRF_COOKIE), &binding, form.get("csrf")) {
        return Err(forbidden_form());
    }
    let req: AuthRequest = super::open(app, label, sealed)
        .and_then(|json| serde_json::from_slice(&json).ok())
        .filter(|r: &AuthRequest| now() - r.issued_at <= super::INTERACTION_TTL)
        .ok_or_else(|| {
            pages::error(
                StatusCode::BAD_REQUEST,
                "This sign-in has expired",
                "Go back to the application and start again.",
            )
        })?;
    let client = match app.store.client(&req.client_id).await {
        Ok(Some(c))
            if c.enabled
                && c.flows.allows(crate::model::flows::AUTHORIZATION_CODE)
                && crate::model::redirect::matches(&c.flows.redirect_uris, &req.redirect_uri) =>
        {
            c
        }
        Ok(_) => {
            return Err(bad_request(
                "The application changed or is no longer registered here. Go back to it and start again.",
            ));
        }
        Err(e) => return Err(store_page(&e)),
    };
    Ok((form, req, client, address))
}

/// `POST /oauth2/login`: checks the password, throttled per account and per address, with the
/// same answer and the same cost whether the account exists or not.
pub async fn login(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let (form, req, client, address) = match posted(&app, headers, body, LOGIN_LABEL, None).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let email = form.get("email").unwrap_or_default().trim();
    let password = form.get("password").unwrap_or_default();
    let account_key = crate::model::email_key(email);
    let account = Subject::Account(&account_key);
    let cookies = Cookies::for_issuer(&app.settings.issuer);
    let known_browser = cookies
        .get(headers, DEVICE_COOKIE)
        .is_some_and(|c| device_cookie_ok(&app, c, &account_key, now()));
    if let Some(refused) = app.guard.backoff(account, address, known_browser) {
        let mut r = login_page(
            &app,
            headers,
            &req,
            &client,
            StatusCode::TOO_MANY_REQUESTS,
            Some(email),
            Some("Too many failed attempts. Wait a moment, then try again."),
        );
        let secs = crate::limits::retry_after_seconds(refused.retry_after);
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let user = if email.is_empty() || email.len() > 320 {
        None
    } else {
        match app.store.user_by_email(email).await {
            Ok(u) => u,
            Err(e) => return store_page(&e),
        }
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let password_ok = if password.len() > crate::users::MAX_PASSWORD {
        app.registry.check_password(None, "").await
    } else {
        app.registry.check_password(hash, password).await
    };
    let user = match user {
        Some(u) if password_ok && u.enabled => u,
        other => {
            app.guard.failed(account, address);
            let why = match other {
                None => "unknown email",
                Some(u) if !u.enabled && password_ok => "user disabled",
                Some(_) => "wrong password",
            };
            tracing::info!(client_id = %req.client_id, reason = why, "sign-in failed");
            return login_page(
                &app,
                headers,
                &req,
                &client,
                StatusCode::OK,
                Some(email),
                Some("Wrong email or password."),
            );
        }
    };
    app.guard.succeeded(account, address);
    // A new session on every sign-in (never one the browser brought: no session fixation).
    let cookie = super::random_token();
    let t = now();
    let ttl = app.settings.sign_in.session_ttl as i64;
    let session = SessionRecord {
        id: super::digest(&cookie),
        user_id: user.id.clone(),
        auth_time: t,
        created_at: t,
        expires_at: t + ttl,
    };
    if let Err(e) = app.store.insert_session(&session).await {
        return store_page(&e);
    }
    tracing::info!(client_id = %req.client_id, sub = %user.id, "signed in");
    let set = cookies.set(SESSION_COOKIE, &cookie, Some(ttl));
    let device =
        device_cookie(&app, &account_key, t).and_then(|v| cookies.set(DEVICE_COOKIE, &v, Some(DEVICE_TTL)));
    let mut response = after_login(&app, headers, req, &client, &user, &session, set).await;
    if let Some(d) = device {
        response.headers_mut().append(header::SET_COOKIE, d);
    }
    response
}

/// The device cookie's base name: a browser that signed in to an account before carries it,
/// and is let through while the account's ceiling on failed sign-ins holds strangers out
/// (guessing from many addresses cannot lock the owner out of a browser they used).
const DEVICE_COOKIE: &str = "tessera_device";
/// How long a device cookie is honoured: 90 days.
const DEVICE_TTL: i64 = 90 * 86_400;
const DEVICE_LABEL: &[u8] = b"tessera device cookie";

/// What a device cookie names: the account, as a digest (the cookie never carries the email).
fn device_account(account_key: &str) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("device\0{account_key}").as_bytes(),
    );
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &d.as_ref()[..16],
    )
}

/// A device cookie for the account, sealed (only this server's master keys open it).
fn device_cookie(app: &App, account_key: &str, at: i64) -> Option<String> {
    super::seal(
        app,
        DEVICE_LABEL,
        format!("{}.{at}", device_account(account_key)).as_bytes(),
    )
}

/// Whether `cookie` is an unexpired device cookie for this account.
fn device_cookie_ok(app: &App, cookie: &str, account_key: &str, now: i64) -> bool {
    let Some(plain) = super::open(app, DEVICE_LABEL, cookie) else {
        return false;
    };
    let plain = String::from_utf8_lossy(&plain);
    let Some((account, at)) = plain.split_once('.') else {
        return false;
    };
    let fresh = at
        .parse::<i64>()
        .is_ok_and(|at| at <= now && now < at + DEVICE_TTL);
    fresh && subtle::ConstantTimeEq::ct_eq(account.as_bytes(), device_account(account_key).as_bytes()).into()
}

/// `POST /oauth2/consent`: the signed-in user allows or denies.
pub async fn consent(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let cookies = Cookies::for_issuer(&app.settings.issuer);
    let (session, user) = match current_session(&app, &cookies, headers).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return pages::error(
                StatusCode::BAD_REQUEST,
                "You are not signed in",
                "Go back to the application and sign in again.",
            );
        }
        Err(e) => return store_page(&e),
    };
    let posted = posted(&app, headers, body, CONSENT_LABEL, Some(&session.id)).await;
    let (form, req, client, _) = match posted {
        Ok(p) => p,
        Err(r) => return r,
    };
    // prompt=login and max_age hold here too: the session must be the sign-in this request
    // asked for (or recent enough), not an older one the browser still has.
    let signed_in_for_it = session.auth_time >= req.issued_at;
    let recent = req.max_age.is_none_or(|m| now() - session.auth_time <= m);
    if !signed_in_for_it && (req.prompt.login || !recent) {
        return forbidden_form();
    }
    match form.get("decision") {
        Some("allow") => {
            let mut scopes = match app.store.consent(&user.id, &client.id).await {
                Ok(g) => g.unwrap_or_default(),
                Err(e) => return store_page(&e),
            };
            for s in &req.scope {
                if !scopes.contains(s) {
                    scopes.push(s.clone());
                }
            }
            if let Err(e) = app.store.grant_consent(&user.id, &client.id, &scopes).await {
                return store_page(&e);
            }
            send_code(&app, &req, &user, &session, StatusCode::SEE_OTHER).await
        }
        Some("deny") => redirect_error(
            &app,
            &req.redirect_uri,
            req.state.as_deref(),
            &denied("access_denied", "the user denied the request"),
            StatusCode::SEE_OTHER,
        ),
        _ => bad_request("The form is malformed."),
    }
}

const LOGOUT_LABEL: &str = "logout";

/// `GET` or `POST /oauth2/logout` (OpenID Connect RP-Initiated Logout 1.0). With an
/// `id_token_hint` this server issued to the signed-in user, the session ends at once; without
/// one, the user confirms on a page first (a link elsewhere cannot sign anyone out). A
/// `post_logout_redirect_uri` must be one of the client's registered redirect URIs.
pub async fn logout(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    if crate::oauth::admission::admit(&app, headers).is_err() {
        return pages::error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Try again shortly.",
        );
    }
    let form = if parts.method == Method::POST {
        crate::oauth::admission::read_form(&app, headers, body).await.ok()
    } else {
        let q = parts.uri.query().unwrap_or_default();
        (q.len() <= MAX_REQUEST)
            .then(|| Form::parse(q.as_bytes()).ok())
            .flatten()
    };
    let Some(form) = form else {
        return bad_request("The sign-out request is malformed.");
    };
    let hint = match form.get("id_token_hint") {
        Some(t) => match crate::oauth::validate::id_token_claims(&app, t) {
            Some(c) => Some(c),
            None => return bad_request("The id_token_hint was not issued by this server."),
        },
        None => None,
    };
    let hint_client = hint
        .as_ref()
        .and_then(|c| c.get("aud"))
        .and_then(|a| a.as_str().map(str::to_string));
    let client_id = form.get("client_id").map(str::to_string).or(hint_client.clone());
    if hint_client.is_some() && client_id != hint_client {
        return bad_request("client_id does not match the id_token_hint.");
    }
    let target = match form.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(id) = &client_id else {
                return bad_request("post_logout_redirect_uri needs id_token_hint or client_id.");
            };
            match app.store.client(id).await {
                Ok(Some(c)) if crate::model::redirect::matches(&c.flows.redirect_uris, uri) => {
                    Some(uri.to_string())
                }
                Ok(_) => {
                    return bad_request("post_logout_redirect_uri is not registered for this application.");
                }
                Err(e) => return store_page(&e),
            }
        }
    };
    let cookies = Cookies::for_issuer(&app.settings.issuer);
    let session = match current_session(&app, &cookies, headers).await {
        Ok(s) => s,
        Err(e) => return store_page(&e),
    };
    let hint_sub = hint.as_ref().and_then(|c| c.get("sub")).and_then(|s| s.as_str());
    let proven = match (&session, hint_sub) {
        (Some((_, user)), Some(sub)) => user.id == sub,
        (None, Some(_)) => true,
        _ => false,
    };
    let confirmed = parts.method == Method::POST
        && form.get("confirm") == Some("yes")
        && super::csrf_ok(
            &app,
            cookies.get(headers, CSRF_COOKIE),
            LOGOUT_LABEL,
            form.get("csrf"),
        );
    if !proven && !confirmed && session.is_some() {
        let (csrf_cookie, set) = cookies.csrf(headers);
        let csrf = super::csrf_token(&app, &csrf_cookie, LOGOUT_LABEL).unwrap_or_default();
        let mut fields = vec![("csrf", csrf.as_str()), ("confirm", "yes")];
        if let Some(t) = &target {
            fields.push(("post_logout_redirect_uri", t));
        }
        if let Some(id) = &client_id {
            fields.push(("client_id", id));
        }
        if let Some(s) = form.get("state") {
            fields.push(("state", s));
        }
        let mut r = pages::confirm_logout(&app.settings.endpoint(super::LOGOUT_PATH), &fields);
        if let Some(set) = set {
            r.headers_mut().append(header::SET_COOKIE, set);
        }
        return r;
    }
    if let Some((s, user)) = &session {
        if let Err(e) = app.store.delete_session(&s.id).await {
            return store_page(&e);
        }
        tracing::info!(sub = %user.id, "signed out");
    }
    let mut r = match target {
        Some(uri) => {
            let mut params = Vec::new();
            if let Some(s) = form.get("state") {
                params.push(("state", s));
            }
            redirect(&super::with_query(&uri, &params), StatusCode::SEE_OTHER)
        }
        None => pages::signed_out(),
    };
    if let Some(clear) = cookies.set(SESSION_COOKIE, "", Some(0)) {
        r.headers_mut().append(header::SET_COOKIE, clear);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(origin_of("https://app.example/cb?x=1"), "https://app.example");
        assert_eq!(origin_of("http://127.0.0.1:9/cb"), "http://127.0.0.1:9");
        assert_eq!(origin_of("com.example.app:/cb"), "com.example.app:");
    }
}
