//! The authorization endpoint's HTTP face: it reads the request, shows errors on a page until the
//! client and its redirect URI are known good (RFC 6749 §4.1.2.1, RFC 9700 §4.1) and sends them
//! back to the client after that with `state` and `iss` (RFC 9207), signs the person in (a
//! session or the login page), asks for consent, and sends the code.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::pages::{self, Consent, Login};
use super::{CSRF_COOKIE, Cookies, SESSION_COOKIE};
use crate::app::App;
use crate::model::{ClientRecord, SessionRecord, UserRecord};
use crate::oauth::OAuthError;
use crate::oauth::authorize::{AuthRequest, Denied, check, denied};
use crate::oauth::form::Form;

/// Longest query string or form the authorization endpoint reads.
pub(super) const MAX_REQUEST: usize = 8 * 1024;

/// What a sealed request may be posted to: each page's request opens only at its own form, so
/// the login page's request cannot be posted as a consent.
pub(super) const LOGIN_LABEL: &[u8] = b"tessera authorization request: login";

pub(super) const CONSENT_LABEL: &[u8] = b"tessera authorization request: consent";

/// `GET` or `POST /oauth2/authorize`.
pub async fn authorize(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let address =
        match crate::oauth::admission::admit(&app, crate::http::peer(&parts.extensions), &parts.headers) {
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
        return pages::get_or_post_only();
    };
    let Ok(form) = form else {
        return bad_request("The request is malformed: a parameter is repeated or badly encoded.");
    };
    // The client and its redirect URI first: until both are good, nothing is redirected.
    let Some(client_id) = form.get("client_id") else {
        return bad_request("The request does not name its application (client_id).");
    };
    let client = if app.settings.registration.metadata_documents
        && crate::model::client_metadata::is_document_url(client_id)
    {
        match from_document(&app, address, client_id).await {
            Ok(c) => c,
            Err(page) => return page,
        }
    } else {
        match app.store.client(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return bad_request("The application is not registered here."),
            Err(e) => return store_page(&e),
        }
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

/// The client whose id is the URL of its metadata document, fetched when new or stale; or the
/// page that says why it cannot be used.
async fn from_document(app: &App, address: IpAddr, url: &str) -> Result<ClientRecord, Response> {
    use crate::client_documents::{DocumentError, Rules, resolve};
    let settings = &app.settings.registration;
    let rules = Rules {
        policy: &settings.policy,
        cache_max: settings.document_cache_max,
        approved: &settings.approved_documents,
        max_clients: settings.max_clients,
    };
    let admit = || app.admit_registration(address).is_ok();
    let actor = crate::operation::Actor {
        id: "metadata_document".into(),
        source: address.to_string(),
        clock: app.clock.clone(),
    };
    let audit = |action: &str| actor.entry(action, url, serde_json::json!({}));
    match resolve(
        &app.store,
        &app.documents,
        &rules,
        url,
        app.clock.now(),
        admit,
        audit,
    )
    .await
    {
        Ok(client) => {
            app.apply_client(url).await;
            Ok(client)
        }
        Err(DocumentError::Store(e)) => Err(store_page(&e)),
        Err(e) => {
            tracing::info!(client = %url, reason = %e, "a client metadata document was refused");
            let status = match e {
                DocumentError::Limited => StatusCode::TOO_MANY_REQUESTS,
                DocumentError::Full => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            Err(pages::error(
                status,
                "Cannot continue",
                &format!("This application cannot sign you in: {e}."),
            ))
        }
    }
}

/// With a checked request: sign in (a session or the login page), then consent, then the code.
pub(super) async fn proceed(
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
    let fresh_enough = |s: &SessionRecord| req.max_age.is_none_or(|m| app.clock.now() - s.auth_time <= m);
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
pub(super) async fn current_session(
    app: &App,
    cookies: &Cookies,
    headers: &HeaderMap,
) -> Result<Option<(SessionRecord, UserRecord)>, crate::store::StoreError> {
    let Some(value) = cookies.get(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = app.store.session(&crate::oauth::oidc::digest(value)).await? else {
        return Ok(None);
    };
    let user = app.store.user(&session.user_id).await?;
    Ok(user.filter(|u| u.enabled).map(|u| (session, u)))
}

/// `req` sealed for the form of the page `label` names.
pub(super) fn seal_request(app: &App, label: &[u8], req: &AuthRequest) -> Option<String> {
    super::seal(app, label, &serde_json::to_vec(req).ok()?)
}

/// The login page for `req`, with a CSRF cookie (reused, or set now).
pub(super) fn login_page(
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
    let action = app.settings.endpoint(crate::oauth::oidc::LOGIN_PATH);
    super::with_csrf(app, headers, &sealed, |csrf| {
        pages::login(
            status,
            &Login {
                action: &action,
                request: &sealed,
                csrf,
                client_name: &client.name,
                email: email.or(req.login_hint.as_deref()).unwrap_or_default(),
                error,
            },
        )
    })
}

/// Signed in: ask for consent where needed, then send the code.
pub(super) async fn after_login(
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
    // A device's request is always confirmed, with its user code in view (RFC 8628 §5.4: a
    // code sent by someone else must not sign the person in to that someone's device).
    let mut response = if req.device.is_some() {
        consent_page(app, headers, &req, client, user, &session.id)
    } else if client.flows.first_party {
        send_code(app, &req, user, session, status).await
    } else {
        let given = match app.store.consent(&user.id, &client.id).await {
            Ok(g) => g.unwrap_or_default(),
            Err(e) => return store_page(&e),
        };
        // A client that registered itself, and that no operator vouched for, is asked about
        // every time: a consent once given does not carry over to whoever registers next with
        // the same name.
        let covered = !client.unvetted() && req.scope.iter().all(|s| given.contains(s));
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

pub(super) fn consent_page(
    app: &App,
    headers: &HeaderMap,
    req: &AuthRequest,
    client: &ClientRecord,
    user: &UserRecord,
    session_id: &str,
) -> Response {
    let Some(sealed) = seal_request(app, CONSENT_LABEL, req) else {
        return pages::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Something went wrong.",
        );
    };
    let action = app.settings.endpoint(crate::oauth::oidc::CONSENT_PATH);
    let origin = origin_of(&req.redirect_uri);
    // The CSRF cookie was checked on the login form; a browser with a session but no cookie
    // (it was cleared) gets a new one. The token is bound to the session too: a consent form
    // works only for the session it was shown to.
    super::with_csrf(app, headers, &consent_binding(&sealed, session_id), |csrf| {
        pages::consent(&Consent {
            action: &action,
            request: &sealed,
            csrf,
            client_name: &client.name,
            client_origin: &origin,
            unvetted: client.unvetted(),
            // A plain OAuth request gets a refresh token without asking for `offline_access`.
            stays: client.flows.allows(crate::model::flows::REFRESH_TOKEN)
                && !req.scope.iter().any(|s| s == "openid" || s == "offline_access"),
            client_id_host: client
                .registration
                .as_ref()
                .filter(|r| r.origin == crate::model::registration::Origin::MetadataDocument)
                .map(|_| origin_of(&client.id)),
            email: &user.email,
            scopes: &req.scope,
            device_code: req.device.as_ref().map(|d| d.user_code.as_str()),
        })
    })
}

/// The scheme and authority of a URI (what the consent page shows beside the client's name).
pub fn origin_of(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            format!("{scheme}://{}", &rest[..end])
        }
        None => uri.split(':').next().unwrap_or_default().to_string() + ":",
    }
}

/// Stores a code and sends the browser back with it.
pub(super) async fn send_code(
    app: &App,
    req: &AuthRequest,
    user: &UserRecord,
    session: &SessionRecord,
    status: StatusCode,
) -> Response {
    match crate::oauth::authorize::issue_code(app, req, &user.id, session.auth_time).await {
        Ok(location) => redirect(&location, status),
        Err(e) => store_page(&e),
    }
}

pub(super) fn redirect(location: &str, status: StatusCode) -> Response {
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

pub(super) fn redirect_error(
    app: &App,
    redirect_uri: &str,
    state: Option<&str>,
    d: &Denied,
    status: StatusCode,
) -> Response {
    redirect(&d.location(app, redirect_uri, state), status)
}

pub(super) fn bad_request(message: &str) -> Response {
    pages::error(
        StatusCode::BAD_REQUEST,
        "This sign-in request cannot be used",
        message,
    )
}

pub(super) fn store_page(e: &crate::store::StoreError) -> Response {
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

pub(super) fn refused_page(e: OAuthError) -> Response {
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

pub(super) fn consent_binding(sealed: &str, session_id: &str) -> String {
    format!("{sealed}\0{session_id}")
}

pub(super) fn forbidden_form() -> Response {
    pages::error(
        StatusCode::FORBIDDEN,
        "This form cannot be used",
        "It has expired or was not sent from this page. Go back to the application and sign in again.",
    )
}

/// Whether a form post comes from another site than the issuer's pages (see
/// [`cross_site_of`]).
pub fn cross_site(app: &App, headers: &HeaderMap) -> bool {
    cross_site_of(&origin_of(&app.settings.issuer), headers)
}

/// Whether a form post comes from another site than `own` (an origin): `Sec-Fetch-Site:
/// cross-site`, or an `Origin` other than it (browsers send one or both; `null` says nothing).
pub fn cross_site_of(own: &str, headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return true;
    }
    headers
        .get(header::ORIGIN)
        .is_some_and(|o| o.as_bytes() != b"null" && o.as_bytes() != own.as_bytes())
}

/// A posted form of the flow: origin and CSRF checked (the token bound to the session for a
/// consent), the request unsealed under `label`, the client looked up and checked again (a
/// redirect URI or grant taken away meanwhile ends the sign-in).
pub(super) async fn posted(
    app: &App,
    peer: IpAddr,
    headers: &HeaderMap,
    body: Body,
    label: &[u8],
    session_id: Option<&str>,
) -> Result<(Form, AuthRequest, ClientRecord, IpAddr), Response> {
    let address = crate::oauth::admission::admit(app, peer, headers).map_err(refused_page)?;
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
        .filter(|r: &AuthRequest| app.clock.now() - r.issued_at <= crate::oauth::oidc::INTERACTION_TTL)
        .ok_or_else(|| {
            pages::error(
                StatusCode::BAD_REQUEST,
                "This sign-in has expired",
                "Go back to the application and start again.",
            )
        })?;
    let still_good = |c: &ClientRecord| match req.device {
        Some(_) => c.flows.allows(crate::model::flows::DEVICE_CODE),
        None => {
            c.flows.allows(crate::model::flows::AUTHORIZATION_CODE)
                && crate::model::redirect::matches(&c.flows.redirect_uris, &req.redirect_uri)
        }
    };
    let client = match app.store.client(&req.client_id).await {
        Ok(Some(c)) if c.enabled && still_good(&c) => c,
        Ok(_) => {
            return Err(bad_request(
                "The application changed or is no longer registered here. Go back to it and start again.",
            ));
        }
        Err(e) => return Err(store_page(&e)),
    };
    Ok((form, req, client, address))
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
