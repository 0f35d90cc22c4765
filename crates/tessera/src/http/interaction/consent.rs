//! `POST /oauth2/consent`: the signed-in person allows or denies.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Cookies;
use super::authorize::{
    CONSENT_LABEL, bad_request, current_session, forbidden_form, posted, redirect_error, send_code,
    store_page,
};
use super::pages::{self};
use crate::app::App;
use crate::oauth::authorize::denied;

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
    let posted = posted(
        &app,
        crate::http::peer(&parts.extensions),
        headers,
        body,
        CONSENT_LABEL,
        Some(&session.id),
    )
    .await;
    let (form, req, client, _) = match posted {
        Ok(p) => p,
        Err(r) => return r,
    };
    // prompt=login and max_age hold here too: the session must be the sign-in this request
    // asked for (or recent enough), not an older one the browser still has.
    let signed_in_for_it = session.auth_time >= req.issued_at;
    let recent = req
        .max_age
        .is_none_or(|m| app.clock.now() - session.auth_time <= m);
    if !signed_in_for_it && (req.prompt.login || !recent) {
        return forbidden_form();
    }
    match (form.get("decision"), &req.device) {
        // A device's request is answered on its own: nothing is remembered for later sign-ins
        // (a device approval must not become consent another flow skips its page for).
        (Some(decision @ ("allow" | "deny")), Some(device)) => {
            let allowed =
                (decision == "allow").then_some((user.id.as_str(), session.auth_time, req.scope.as_slice()));
            super::device::answer(&app, device, allowed).await
        }
        (Some("allow"), None) => {
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
        (Some("deny"), None) => redirect_error(
            &app,
            &req.redirect_uri,
            req.state.as_deref(),
            &denied("access_denied", "the user denied the request"),
            StatusCode::SEE_OTHER,
        ),
        _ => bad_request("The form is malformed."),
    }
}
