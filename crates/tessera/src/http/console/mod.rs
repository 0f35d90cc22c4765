//! The admin console at `/console`: pages for people who run Tessera, over the same operations
//! as the CLI and the admin API (`crate::admin`, `crate::users`, `crate::signing`), so
//! validation, hashing and the audit trail have one implementation.
//!
//! - **Signing in** ([`signin`]): Tessera's own authorization code flow with PKCE, as the
//!   first-party public client `tessera-console` (made when first needed); no second password
//!   store. A person needs the `admin` or `auditor` role (`tessera user update … --role admin`).
//! - **The session**: a cookie of its own (`tessera_console`, `SameSite=Lax`, path
//!   `/console`), sealed under the master key, ending after `[console] idle_timeout` without a
//!   request and `session_ttl` after signing in; the person's roles are read from the store at
//!   every request, so taking a role away takes effect at once. Changes are audited as
//!   `user:ID`.
//! - **Safe by construction**: pages rendered from compile-checked templates
//!   (`templates/console/`, escaping on), no script, one stylesheet served as a file; a strict
//!   Content-Security-Policy, `frame-ancestors 'none'`, `no-store`; every form carries a CSRF
//!   token bound to the session and is refused from another site; an auditor's forms are
//!   refused; secrets are shown once, in the answer to the form that made them, never in a URL.

mod audit;
mod client_new;
mod clients;
mod federation;
mod overview;
mod signin;
mod users;

use std::net::IpAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::model::UserRecord;
use crate::oauth::form::Form;
use crate::operation::Actor;

/// The console's client id.
pub const CONSOLE_CLIENT_ID: &str = "tessera-console";

/// Where the console starts.
pub const CONSOLE_PATH: &str = "/console";

/// The session cookie's name (distinct from the sign-in session's).
const SESSION_COOKIE: &str = "tessera_console";

const SESSION_LABEL: &[u8] = b"tessera console session";

/// The one stylesheet.
const STYLE: &str = include_str!("../../../templates/console/console.css");

/// The console's routes (when `[console] enabled`).
pub fn routes(app: &Arc<App>) -> Router<Arc<App>> {
    let signed_in = Router::new()
        .route(CONSOLE_PATH, get(overview::overview))
        .route("/console/signout", post(signin::signout))
        .route("/console/clients", get(clients::list).post(client_new::create))
        .route("/console/clients/new", get(client_new::new_form))
        .route("/console/clients/{id}", get(clients::show))
        .route("/console/clients/{id}/{action}", post(clients::act))
        .route("/console/users", get(users::list).post(users::create))
        .route("/console/users/new", get(users::new_form))
        .route("/console/users/{id}", get(users::show))
        .route("/console/users/{id}/{action}", post(users::act))
        .route("/console/keys", get(overview::keys))
        .route("/console/keys/rotate", post(overview::rotate_key))
        .route("/console/trust", get(federation::trust))
        .route("/console/trust/{id}/{action}", post(federation::trust_act))
        .route(
            "/console/registration",
            get(federation::registration).post(federation::issue_token),
        )
        .route(
            "/console/registration/{id}/revoke",
            post(federation::revoke_token),
        )
        .route("/console/audit", get(audit::list))
        .route("/console/audit.jsonl", get(audit::export))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), gate));
    Router::new()
        .route("/console/signin", get(signin::start))
        .route("/console/callback", get(signin::callback))
        .route("/console/console.css", get(style))
        .merge(signed_in)
}

async fn style() -> Response {
    let mut r = STYLE.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// What a person may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read everything, change nothing.
    Auditor,
}

impl Role {
    /// The strongest console role of `user`, if any.
    pub fn of(user: &UserRecord) -> Option<Role> {
        let has = |r: &str| user.roles.iter().any(|x| x == r);
        if has(crate::model::user::ROLE_ADMIN) {
            Some(Role::Admin)
        } else if has(crate::model::user::ROLE_AUDITOR) {
            Some(Role::Auditor)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

/// The sealed content of the session cookie.
#[derive(Serialize, Deserialize)]
struct SessionState {
    /// A random id: what the CSRF tokens are bound to.
    sid: String,
    /// The person.
    user: String,
    /// When they signed in.
    created: i64,
    /// Their last request.
    seen: i64,
}

/// The signed-in person, for the handlers (put in the request by [`gate`]).
#[derive(Clone)]
pub struct Signed {
    /// Who.
    pub user: Arc<UserRecord>,
    /// With which role.
    pub role: Role,
    /// The CSRF token of this session's forms.
    pub csrf: String,
    /// Who acts, for the audit trail: `user:ID`, from the request's address.
    pub actor: Actor,
    /// The posted form (a `POST`, its CSRF token checked).
    pub form: Option<Arc<Form>>,
    /// When the person signed in for this session (what signing out ends, with the sign-in
    /// session it came from).
    auth_time: i64,
}

/// Cookie attributes: `HttpOnly`, `SameSite=Lax` (a console on its own origin is reached back
/// from the sign-in page by a cross-site redirect, and a link to a console page from elsewhere
/// should open it; every change is a form with a CSRF token), path `/console` (under the issuer's
/// path), `Secure` unless on loopback HTTP.
fn cookie(app: &App, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    let rules = crate::http::interaction::Cookies::for_issuer(base_url(app));
    let path = format!("{}{CONSOLE_PATH}", base_path(app));
    let secure = rules.is_secure();
    let prefix = if secure { "__Secure-" } else { "" };
    let mut c = format!("{prefix}{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

/// The value of the console cookie `name` in the request (exactly one).
fn cookie_value<'h>(app: &App, headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let rules = crate::http::interaction::Cookies::for_issuer(base_url(app));
    let prefix = if rules.is_secure() { "__Secure-" } else { "" };
    crate::http::interaction::cookie_named(headers, &format!("{prefix}{name}")).filter(|v| v.len() <= 4096)
}

/// A session cookie for `state`.
fn session_cookie(app: &App, state: &SessionState) -> Option<HeaderValue> {
    let sealed = crate::http::interaction::seal(app, SESSION_LABEL, &serde_json::to_vec(state).ok()?)?;
    cookie(
        app,
        SESSION_COOKIE,
        &sealed,
        app.settings.console.session_ttl as i64,
    )
}

/// The CSRF token of session `sid`'s forms.
fn csrf_of(app: &App, sid: &str) -> String {
    crate::http::interaction::csrf_token(app, sid, CSRF_BINDING).unwrap_or_default()
}

/// What the console's CSRF tokens are bound to, beside the session.
const CSRF_BINDING: &str = "tessera console";

/// Every console page passes here first: the session (or a redirect to sign in), its idle and
/// absolute limits, the person and role as the store holds them now; for a `POST`, the origin,
/// the form and its CSRF token, and the admin role (but to sign out). The answer gets the
/// renewed session cookie and the console's security headers.
async fn gate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let peer = crate::http::peer(req.extensions());
    let address = match crate::oauth::admission::admit(&app, peer, req.headers()) {
        Ok(a) => a,
        Err(e) => {
            return secured(error_page(
                e.status(),
                "Too many requests",
                "Wait a moment, then try again.",
            ));
        }
    };
    let t = app.clock.now();
    let settings = &app.settings.console;
    let state: Option<SessionState> = cookie_value(&app, req.headers(), SESSION_COOKIE)
        .and_then(|c| crate::http::interaction::open(&app, SESSION_LABEL, c))
        .and_then(|json| serde_json::from_slice(&json).ok())
        .filter(|s: &SessionState| {
            s.created + settings.session_ttl as i64 > t && s.seen + settings.idle_timeout as i64 > t
        });
    let Some(mut state) = state else {
        return to_sign_in(&app, &req);
    };
    // The session must still be in the store (signing out, a new password or disabling the
    // account removes it) and be this person's.
    let auth_time = match app.store.session(&crate::oauth::oidc::digest(&state.sid)).await {
        Ok(Some(s)) if s.user_id == state.user => s.auth_time,
        Ok(_) => return to_sign_in(&app, &req),
        Err(e) => return secured(store_error(&e)),
    };
    let user = match app.store.user(&state.user).await {
        Ok(Some(u)) if u.enabled => u,
        Ok(_) => return to_sign_in(&app, &req),
        Err(e) => return secured(store_error(&e)),
    };
    let Some(role) = Role::of(&user) else {
        return secured(error_page(
            StatusCode::FORBIDDEN,
            "No access",
            "Your account has no console role (admin or auditor).",
        ));
    };
    let csrf = csrf_of(&app, &state.sid);
    if csrf.is_empty() {
        return secured(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Something went wrong.",
        ));
    }
    let mut form = None;
    if req.method() == Method::POST {
        if cross_site(&app, req.headers()) {
            return secured(forbidden());
        }
        let (parts, body) = req.into_parts();
        let Ok(f) = crate::oauth::admission::read_form(&app, &parts.headers, body).await else {
            return secured(error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The form is malformed.",
            ));
        };
        // Any of the node's master keys (a form shown before a key rotation still posts).
        let ok = crate::http::interaction::csrf_ok(&app, Some(&state.sid), CSRF_BINDING, f.get("csrf"));
        if !ok {
            return secured(forbidden());
        }
        let signing_out = parts.uri.path() == "/console/signout";
        if role != Role::Admin && !signing_out {
            return secured(error_page(
                StatusCode::FORBIDDEN,
                "Read only",
                "An auditor can look at everything and change nothing.",
            ));
        }
        form = Some(Arc::new(f));
        req = Request::from_parts(parts, axum::body::Body::empty());
    }
    let actor = Actor {
        id: format!("user:{}", user.id),
        source: address.to_string(),
        clock: app.clock.clone(),
    };
    req.extensions_mut().insert(Signed {
        user: Arc::new(user),
        role,
        csrf,
        actor,
        form,
        auth_time,
    });
    let mut response = next.run(req).await;
    if !response.headers().contains_key(header::SET_COOKIE) {
        state.seen = t;
        if let Some(c) = session_cookie(&app, &state) {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    secured(response)
}

/// A redirect to sign in, coming back to this page after (a `GET`'s path), or the overview.
fn to_sign_in(app: &App, req: &Request) -> Response {
    let back = if req.method() == Method::GET {
        // The path as the browser asked for it (under the issuer's path, when nested there).
        let uri = req
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or(req.uri(), |o| &o.0);
        uri.path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mut location = url(app, "/console/signin");
    if !back.is_empty() {
        location = crate::oauth::oidc::with_query(&location, &[("next", &back)]);
    }
    secured(redirect(&location))
}

/// A 303 to `location`.
fn redirect(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The headers every console answer carries.
fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// What every page's frame shows: the person, their role, the sign-out form and where they are.
pub struct Frame<'a> {
    /// The page's title.
    pub title: &'a str,
    /// Which section of the navigation is current.
    pub section: &'a str,
    /// Who is signed in.
    pub email: &'a str,
    /// As what.
    pub role: &'static str,
    /// Whether they may change things.
    pub admin: bool,
    /// The forms' CSRF token.
    pub csrf: &'a str,
    /// The issuer's path (`""` for none): links are relative to it.
    pub base: &'a str,
}

impl<'a> Frame<'a> {
    fn new(app: &'a App, signed: &'a Signed, title: &'a str, section: &'a str) -> Self {
        Frame {
            title,
            section,
            email: &signed.user.email,
            role: signed.role.name(),
            admin: signed.role == Role::Admin,
            csrf: &signed.csrf,
            base: base_path(app),
        }
    }
}

/// Renders a page.
fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut r = (status, html).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "a console page did not render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A page with a heading and one message, outside the frame.
#[derive(Template)]
#[template(path = "console/message.html")]
struct Message<'a> {
    title: &'a str,
    message: &'a str,
    base: &'a str,
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &Message {
            title,
            message,
            base: "",
        },
    )
}

fn forbidden() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form cannot be used",
        "It has expired or was not sent from this console. Go back, reload the page and try again.",
    )
}

fn store_error(e: &crate::store::StoreError) -> Response {
    if e.is_unavailable() {
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            "The store is unavailable; nothing was changed.",
        )
    } else {
        let reference = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(reference = %reference, error = %e, "console store error");
        error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            &format!("Reference {reference} is in the server's log."),
        )
    }
}

/// The signed-in person of a request that passed [`gate`].
type Session = Extension<Signed>;

/// A query string read leniently (a console link), each value bounded.
fn query(uri: &axum::http::Uri) -> Form {
    uri.query()
        .filter(|q| q.len() <= 4096)
        .and_then(|q| Form::parse(q.as_bytes()).ok())
        .unwrap_or_default()
}

pub use crate::model::clock::rfc3339 as when;

/// The address a console request came from.
fn address_of(app: &App, req_ext: &axum::http::Extensions, headers: &HeaderMap) -> IpAddr {
    app.guard.client_address(crate::http::peer(req_ext), headers)
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
struct Confirm<'a> {
    frame: Frame<'a>,
    question: &'a str,
    button: &'a str,
    action: &'a str,
    fields: &'a [(&'a str, &'a str)],
    back: &'a str,
}

/// The page that asks before a destructive action: its form posts `fields` and `confirm=yes`
/// to `action`; Cancel goes `back`.
#[allow(clippy::too_many_arguments)]
fn confirm(
    app: &App,
    signed: &Signed,
    title: &str,
    question: &str,
    button: &str,
    action: &str,
    fields: &[(&str, &str)],
    back: &str,
) -> Response {
    let section = ["users", "keys", "trust", "registration"]
        .into_iter()
        .find(|s| action.contains(&format!("/console/{s}")))
        .unwrap_or("clients");
    render(
        StatusCode::OK,
        &Confirm {
            frame: Frame::new(app, signed, title, section),
            question,
            button,
            action,
            fields,
            back,
        },
    )
}

/// `id` as one segment of a URL path: unreserved characters kept, every other byte
/// percent-encoded (client ids may be URLs).
pub fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The console's base URL: its own listener's (`[console] url`), or the issuer.
pub fn base_url(app: &App) -> &str {
    app.settings
        .console
        .url
        .as_deref()
        .unwrap_or(&app.settings.issuer)
}

/// The path every console URL starts with before `/console`: the issuer's path, or none on
/// the console's own listener.
fn base_path(app: &App) -> &str {
    if app.settings.console.url.is_some() {
        ""
    } else {
        app.settings.issuer_path().unwrap_or_default()
    }
}

/// The console's absolute URL for `path` (`/console/…`).
fn url(app: &App, path: &str) -> String {
    format!("{}{path}", base_url(app))
}

/// Whether a form post comes from another site than the console's.
fn cross_site(app: &App, headers: &HeaderMap) -> bool {
    crate::http::interaction::cross_site_of(&crate::http::interaction::origin_of(base_url(app)), headers)
}
