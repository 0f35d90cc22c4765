//! `/oauth2/logout`: OpenID Connect RP-Initiated Logout.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;

use super::authorize::{MAX_REQUEST, bad_request, current_session, redirect, store_page};
use super::pages::{self};
use super::{CSRF_COOKIE, Cookies, SESSION_COOKIE};
use crate::app::App;
use crate::oauth::form::Form;

const LOGOUT_LABEL: &str = "logout";

/// `GET` or `POST /oauth2/logout` (OpenID Connect RP-Initiated Logout 1.0). With an
/// `id_token_hint` this server issued to the signed-in user, the session ends at once; without
/// one, the user confirms on a page first (a link elsewhere cannot sign anyone out). A
/// `post_logout_redirect_uri` must be one of the client's registered redirect URIs.
pub async fn logout(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    if crate::oauth::admission::admit(&app, crate::http::peer(&parts.extensions), headers).is_err() {
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
        let mut r = pages::confirm_logout(&app.settings.endpoint(crate::oauth::oidc::LOGOUT_PATH), &fields);
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
            redirect(
                &crate::oauth::oidc::with_query(&uri, &params),
                StatusCode::SEE_OTHER,
            )
        }
        None => pages::signed_out(),
    };
    if let Some(clear) = cookies.set(SESSION_COOKIE, "", Some(0)) {
        r.headers_mut().append(header::SET_COOKIE, clear);
    }
    r
}
