//! The userinfo endpoint (OpenID Connect Core §5.3): the claims a person's access token
//! releases, for its scope (§5.4).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::OAuthError;
use crate::app::App;
use crate::model::UserRecord;

/// The claims a user releases for `scope` (OpenID Connect Core §5.4), `sub` always.
pub fn user_claims(user: &UserRecord, scope: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    let has = |s: &str| scope.iter().any(|x| x == s);
    if has("profile") {
        for (k, v) in [
            ("name", &user.name),
            ("given_name", &user.given_name),
            ("family_name", &user.family_name),
        ] {
            if let Some(v) = v {
                out.insert(k.into(), json!(v));
            }
        }
        out.insert("updated_at".into(), json!(user.updated_at));
        // Attributes add claims; they never stand in for a standard one (a user stored before
        // such names were refused may still hold one: it is not released).
        for (k, v) in &user.attributes {
            if !crate::claims::reserved_for_users(k) {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if has("email") {
        out.insert("email".into(), json!(user.email));
        out.insert("email_verified".into(), json!(user.email_verified));
    }
    out
}

/// A userinfo error (RFC 6750 §3.1), with its `WWW-Authenticate` challenge.
fn bearer_error(status: StatusCode, error: Option<&str>, description: &str) -> Response {
    let challenge = match error {
        Some(e) => format!(r#"Bearer realm="tessera", error="{e}", error_description="{description}""#),
        None => r#"Bearer realm="tessera""#.to_string(),
    };
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    super::no_store(&mut r);
    r
}

/// `GET` or `POST /oauth2/userinfo` with a Bearer access token (in the header only).
pub async fn userinfo(State(app): State<Arc<App>>, request: Request) -> Response {
    let headers = request.headers();
    if let Err(e) = super::admission::admit(&app, headers) {
        return e.into_response();
    }
    // One reading of the credentials for every bearer endpoint (RFC 6750 §2, §3.1): another
    // scheme is "no credentials" (401 without an error code), as it is for the admin API.
    let token = match tessera_verify::bearer::presented(
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(|v| v.as_bytes()),
        request.uri().query(),
    ) {
        tessera_verify::bearer::Presented::Token(t) => t,
        tessera_verify::bearer::Presented::None => return bearer_error(StatusCode::UNAUTHORIZED, None, ""),
        tessera_verify::bearer::Presented::Malformed(why) => {
            return bearer_error(StatusCode::BAD_REQUEST, Some("invalid_request"), why);
        }
    };
    let Ok(active) = super::validate::check(&app, token, app.clock.now()) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "the access token is not active",
        );
    };
    let scope: Vec<String> = active
        .claims
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .map(str::to_string)
        .collect();
    if !scope.iter().any(|s| s == "openid") {
        return bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the access token was not granted openid",
        );
    }
    let user = match app.store.user(&active.claims.sub).await {
        Ok(Some(u)) if u.enabled => u,
        Ok(_) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the token's user no longer exists or is disabled",
            );
        }
        Err(e) => return OAuthError::store(&e).into_response(),
    };
    let mut r = axum::Json(Value::Object(user_claims(&user, &scope))).into_response();
    super::no_store(&mut r);
    r
}
