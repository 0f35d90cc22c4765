//! The userinfo endpoint (OpenID Connect Core §5.3): the claims a person's access token
//! releases, for its scope (§5.4).

use http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value, json};

use super::{Answer, OAuthError};
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

/// Why userinfo refused a request.
#[derive(Debug)]
pub enum UserinfoError {
    /// A bearer-token refusal (RFC 6750 §3.1): `http/` answers with its challenge.
    Bearer {
        /// 400, 401 or 403.
        status: StatusCode,
        /// The error code, none when no credentials came.
        error: Option<&'static str>,
        /// Its description.
        description: &'static str,
    },
    /// Refused before the token was looked at (a limit), or the store failed.
    OAuth(OAuthError),
}

fn bearer_error(status: StatusCode, error: Option<&'static str>, description: &'static str) -> UserinfoError {
    UserinfoError::Bearer {
        status,
        error,
        description,
    }
}

/// Answers `GET` or `POST /oauth2/userinfo` with a Bearer access token (in the header only;
/// `query` is read only to refuse a token there).
pub async fn handle(
    app: &App,
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Answer, UserinfoError> {
    super::admission::admit(app, peer, headers).map_err(UserinfoError::OAuth)?;
    // One reading of the credentials for every bearer endpoint (RFC 6750 §2, §3.1): another
    // scheme is "no credentials" (401 without an error code), as it is for the admin API.
    let token = match tessera_verify::bearer::presented(
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(|v| v.as_bytes()),
        query,
    ) {
        tessera_verify::bearer::Presented::Token(t) => t,
        tessera_verify::bearer::Presented::None => {
            return Err(bearer_error(StatusCode::UNAUTHORIZED, None, ""));
        }
        tessera_verify::bearer::Presented::Malformed(why) => {
            return Err(bearer_error(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                why,
            ));
        }
    };
    let Ok(active) = super::validate::check(app, token, app.clock.now()) else {
        return Err(bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "the access token is not active",
        ));
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
        return Err(bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the access token was not granted openid",
        ));
    }
    let user = match app.store.user(&active.claims.sub).await {
        Ok(Some(u)) if u.enabled => u,
        Ok(_) => {
            return Err(bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the token's user no longer exists or is disabled",
            ));
        }
        Err(e) => return Err(UserinfoError::OAuth(OAuthError::store(&e))),
    };
    Answer::json(&Value::Object(user_claims(&user, &scope))).map_err(UserinfoError::OAuth)
}
