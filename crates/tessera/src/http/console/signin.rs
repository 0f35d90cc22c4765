//! Signing in to the console through Tessera's own authorization code flow (PKCE `S256`,
//! `state`, `nonce`, `iss`), as the first-party public client `tessera-console`, and signing out.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{
    CONSOLE_CLIENT_ID, CONSOLE_PATH, Role, SESSION_COOKIE, Session, SessionState, cookie, cookie_value,
    error_page, redirect, secured, session_cookie, store_error,
};
use crate::admin::NewClient;
use crate::app::App;
use crate::oauth::oidc::random_token;

/// The cookie that carries a sign-in in progress (state, PKCE verifier, nonce, where to go).
const FLOW_COOKIE: &str = "tessera_console_flow";

const FLOW_LABEL: &[u8] = b"tessera console sign-in";

/// How long a sign-in may take.
const FLOW_TTL: i64 = 600;

/// How recent the sign-in behind a console session must be, in seconds (`max_age`).
const FRESH_SIGN_IN: &str = "300";

#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    verifier: String,
    nonce: String,
    next: String,
    at: i64,
}

/// Where the console's authorization responses come back.
fn callback_uri(app: &App) -> String {
    super::url(app, "/console/callback")
}

/// Makes sure the console's client exists, enabled or not as an operator left it, with this
/// node's callback (the issuer may have changed), and that this node knows it.
async fn ensure_client(app: &App) -> Result<(), crate::operation::AdminError> {
    let callback = callback_uri(app);
    let actor = crate::operation::Actor::server();
    match app.store.client(CONSOLE_CLIENT_ID).await? {
        Some(c) if c.flows.redirect_uris.contains(&callback) => {}
        Some(c) => {
            // This node's callback beside the others' (nodes may reach the console at
            // different addresses), never in their place.
            let mut uris = c.flows.redirect_uris.clone();
            uris.push(callback);
            let keep = uris.len().saturating_sub(crate::model::flows::MAX_REDIRECT_URIS);
            uris.drain(..keep);
            let update = crate::admin::ClientUpdate {
                redirect_uris: Some(uris),
                ..Default::default()
            };
            crate::admin::update_client(&app.store, &actor, CONSOLE_CLIENT_ID, update).await?;
        }
        None => {
            let mut created = crate::admin::build_client(
                NewClient {
                    name: "Tessera console".into(),
                    public: true,
                    first_party: true,
                    grant_types: Some(vec![crate::model::flows::AUTHORIZATION_CODE.into()]),
                    redirect_uris: vec![callback],
                    ..Default::default()
                },
                actor.now(),
            )?;
            created.client.id = CONSOLE_CLIENT_ID.into();
            let audit = actor.entry(
                "client.create",
                CONSOLE_CLIENT_ID,
                serde_json::json!({"name": "Tessera console"}),
            );
            // Another node may have made it a moment ago: the store refuses the second.
            if let Err(e) = app.store.insert_client(&created.client, None, &audit).await {
                if app.store.client(CONSOLE_CLIENT_ID).await?.is_none() {
                    return Err(e.into());
                }
            }
        }
    }
    app.apply_client(CONSOLE_CLIENT_ID).await;
    Ok(())
}

/// `GET /console/signin[?next=/console/…]`: starts the authorization code flow.
pub(super) async fn start(State(app): State<Arc<App>>, request: Request) -> Response {
    if let Err(e) =
        crate::oauth::admission::admit(&app, crate::http::peer(request.extensions()), request.headers())
    {
        return secured(error_page(
            e.status(),
            "Too many requests",
            "Wait a moment, then try again.",
        ));
    }
    if let Err(e) = ensure_client(&app).await {
        tracing::error!(error = %e, "the console's client could not be made");
        return secured(error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The console is unavailable",
            "Its sign-in client could not be prepared; the server's log says why.",
        ));
    }
    let next = super::query(request.uri())
        .get("next")
        .filter(|n| safe_next(&app, n))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}{CONSOLE_PATH}", super::base_path(&app)));
    let flow = Flow {
        state: random_token(),
        verifier: random_token(),
        nonce: random_token(),
        next,
        at: app.clock.now(),
    };
    let challenge = URL_SAFE_NO_PAD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, flow.verifier.as_bytes()).as_ref());
    let callback = callback_uri(&app);
    let location = crate::oauth::oidc::with_query(
        &app.settings.endpoint(crate::http::discovery::AUTHORIZE_PATH),
        &[
            ("response_type", "code"),
            ("client_id", CONSOLE_CLIENT_ID),
            ("redirect_uri", &callback),
            ("scope", "openid"),
            ("state", &flow.state),
            ("nonce", &flow.nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            // A console session starts from a sign-in of the last few minutes, not an old one.
            ("max_age", FRESH_SIGN_IN),
        ],
    );
    let Some(sealed) = serde_json::to_vec(&flow)
        .ok()
        .and_then(|json| crate::http::interaction::seal(&app, FLOW_LABEL, &json))
    else {
        return secured(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Something went wrong.",
        ));
    };
    let mut r = redirect(&location);
    if let Some(c) = cookie(&app, FLOW_COOKIE, &sealed, FLOW_TTL) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    secured(r)
}

/// Whether `next` is a console page of this issuer: `{base}/console`, or a path under it
/// (with a query), without anything a browser would resolve elsewhere (dot segments, in any
/// encoding, backslashes, doubled slashes).
fn safe_next(app: &App, next: &str) -> bool {
    let home = format!("{}{CONSOLE_PATH}", super::base_path(app));
    under_home(&home, next)
}

fn under_home(home: &str, next: &str) -> bool {
    let under = next == home
        || next
            .strip_prefix(home)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'));
    let path = next.split('?').next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    under
        && next.len() <= 1024
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && !path.contains("//")
        && !lower.contains("%2e")
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !path.split('/').any(|seg| seg == "." || seg == "..")
}

/// `GET /console/callback?code=…&state=…&iss=…`: redeems the code (in this process, through the
/// token endpoint's own code), checks the ID token's `nonce`, and signs the person in to the
/// console if they have a console role.
pub(super) async fn callback(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let q = super::query(&parts.uri);
    let flow: Option<Flow> = cookie_value(&app, &parts.headers, FLOW_COOKIE)
        .and_then(|c| crate::http::interaction::open(&app, FLOW_LABEL, c))
        .and_then(|json| serde_json::from_slice(&json).ok())
        .filter(|f: &Flow| app.clock.now() - f.at <= FLOW_TTL);
    let Some(flow) = flow else {
        return secured(error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Start again from the console.",
        ));
    };
    let state_ok = q
        .get("state")
        .is_some_and(|s| subtle::ConstantTimeEq::ct_eq(s.as_bytes(), flow.state.as_bytes()).into());
    if !state_ok || q.get("iss") != Some(app.settings.issuer.as_str()) {
        return secured(error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be used",
            "It was not started here. Start again from the console.",
        ));
    }
    let Some(code) = q.get("code") else {
        return secured(error_page(
            StatusCode::FORBIDDEN,
            "Not signed in",
            "The sign-in was refused or cancelled.",
        ));
    };
    let (sub, auth_time) = match redeem(&app, &parts, code, &flow).await {
        Some(found) => found,
        None => {
            return secured(error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in cannot be used",
                "The code was refused. Start again from the console.",
            ));
        }
    };
    let user = match app.store.user(&sub).await {
        Ok(Some(u)) if u.enabled => u,
        Ok(_) => {
            return secured(error_page(
                StatusCode::FORBIDDEN,
                "No access",
                "This account cannot sign in.",
            ));
        }
        Err(e) => return secured(store_error(&e)),
    };
    if Role::of(&user).is_none() {
        tracing::info!(sub = %user.id, "console sign-in refused: no console role");
        return secured(error_page(
            StatusCode::FORBIDDEN,
            "No access",
            "Your account has no console role (admin or auditor). Ask an administrator.",
        ));
    }
    let t = app.clock.now();
    let state = SessionState {
        sid: random_token(),
        user: user.id.clone(),
        created: t,
        seen: t,
    };
    // Kept in the store beside the sign-in sessions, so signing out, a new password or a
    // disabled account ends it wherever its cookie went.
    let record = crate::model::SessionRecord {
        id: crate::oauth::oidc::digest(&state.sid),
        user_id: user.id.clone(),
        auth_time,
        created_at: t,
        expires_at: t + app.settings.console.session_ttl as i64,
    };
    if let Err(e) = app.store.insert_session(&record).await {
        return secured(store_error(&e));
    }
    let address = super::address_of(&app, &parts.extensions, &parts.headers);
    let actor = crate::operation::Actor {
        id: format!("user:{}", user.id),
        source: address.to_string(),
        clock: app.clock.clone(),
    };
    if let Err(e) = app
        .store
        .audit(&actor.entry(
            "console.sign_in",
            &user.id,
            serde_json::json!({"email": user.email}),
        ))
        .await
    {
        return secured(store_error(&e));
    }
    tracing::info!(sub = %user.id, "signed in to the console");
    let origin = crate::http::interaction::origin_of(super::base_url(&app));
    let mut r = redirect(&format!("{origin}{}", flow.next));
    if let Some(c) = session_cookie(&app, &state) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    if let Some(c) = cookie(&app, FLOW_COOKIE, "", 0) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    secured(r)
}

/// Redeems the code as the console's client would at the token endpoint; the ID token's
/// subject and `auth_time`, if the answer holds one with the flow's nonce and a recent sign-in.
async fn redeem(
    app: &App,
    parts: &axum::http::request::Parts,
    code: &str,
    flow: &Flow,
) -> Option<(String, i64)> {
    let callback = callback_uri(app);
    let query = crate::oauth::oidc::with_query(
        "",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &callback),
            ("code_verifier", &flow.verifier),
            ("client_id", CONSOLE_CLIENT_ID),
        ],
    );
    let body = query.trim_start_matches('?').to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    // The browser's address (for the token endpoint's limits), never its TLS certificate.
    let connection = crate::oauth::admission::Connection::plain(crate::http::peer(&parts.extensions));
    let answer = crate::oauth::token::handle(
        app,
        &connection,
        &headers,
        http_body_util::Full::new(bytes::Bytes::from(body)),
        crate::http::discovery::TOKEN_PATH,
        &crate::model::paths::PathRules::STRICT,
    )
    .await;
    let json = match answer {
        Ok(crate::oauth::Answer::Json(json)) => json,
        Ok(_) => return None,
        Err(e) => {
            tracing::info!(error = e.code(), "console sign-in: the code was refused");
            return None;
        }
    };
    let tokens: serde_json::Value = serde_json::from_slice(&json).ok()?;
    // Minted by this process a moment ago: its claims are read, not verified again.
    let payload = tokens["id_token"].as_str()?.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let nonce_ok = claims["nonce"]
        .as_str()
        .is_some_and(|n| subtle::ConstantTimeEq::ct_eq(n.as_bytes(), flow.nonce.as_bytes()).into());
    let auth_time = claims["auth_time"].as_i64()?;
    let fresh = app.clock.now() - auth_time <= FRESH_SIGN_IN.parse::<i64>().unwrap_or(300) + 5;
    if !nonce_ok || claims["aud"] != CONSOLE_CLIENT_ID || !fresh {
        return None;
    }
    Some((claims["sub"].as_str()?.to_string(), auth_time))
}

/// `POST /console/signout`: ends the console session and the sign-in session of this browser.
pub(super) async fn signout(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    headers: HeaderMap,
) -> Response {
    // The console's session and the sign-in it began with, wherever that sign-in's cookie is
    // (on a console of its own origin, the browser never sends it here): one write ends both,
    // as they share the person and the sign-in's time.
    if let Err(e) = app
        .store
        .delete_sessions_of_sign_in(&signed.user.id, signed.auth_time)
        .await
    {
        return store_error(&e);
    }
    let interaction = crate::http::interaction::Cookies::for_issuer(&app.settings.issuer);
    if let Some(value) = interaction.get(&headers, crate::http::interaction::SESSION_COOKIE) {
        if let Err(e) = app.store.delete_session(&crate::oauth::oidc::digest(value)).await {
            return store_error(&e);
        }
    }
    let _ = app
        .store
        .audit(
            &signed
                .actor
                .entry("console.sign_out", &signed.user.id, serde_json::json!({})),
        )
        .await;
    let mut r = error_page(
        StatusCode::OK,
        "Signed out",
        "You are signed out of the console and of this server's sign-in.",
    );
    if let Some(c) = cookie(&app, SESSION_COOKIE, "", 0) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    if let Some(c) = interaction.set(crate::http::interaction::SESSION_COOKIE, "", Some(0)) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::under_home;

    #[test]
    fn only_console_pages_are_places_to_come_back_to() {
        for ok in [
            "/console",
            "/console/clients?q=a",
            "/console/clients/abc",
            "/console?x=1",
        ] {
            assert!(under_home("/console", ok), "{ok}");
        }
        assert!(under_home("/t/console", "/t/console/users"));
        for bad in [
            "/consoles",
            "/console/../oauth2/logout",
            "/console/%2e%2e/oauth2/authorize",
            "/console/%2E%2E/x",
            "/console/./x/../../y",
            "//evil.example/console",
            "/console//evil.example",
            "/console/%2fevil",
            "/console\\evil",
            "https://evil.example/console",
            "/t/console/x",
        ] {
            assert!(!under_home("/console", bad), "{bad}");
        }
    }
}
