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
    /// A bound token presented without what it is bound to (RFC 9449 §7, RFC 8705 §3): 401
    /// with a `DPoP` challenge, and a nonce to use when one is required.
    Binding {
        /// Why.
        error: tessera_verify::dpop::BindingError,
        /// For `DPoP-Nonce`.
        nonce: Option<String>,
    },
}

fn bearer_error(status: StatusCode, error: Option<&'static str>, description: &'static str) -> UserinfoError {
    UserinfoError::Bearer {
        status,
        error,
        description,
    }
}

/// Answers `GET` or `POST /oauth2/userinfo` (`method`) with an access token in the header
/// (`query` is read only to refuse a token there): `Bearer`, or `DPoP` with its proof.
pub async fn handle(
    app: &App,
    connection: &super::admission::Connection,
    method: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Answer, UserinfoError> {
    super::admission::admit(app, connection.peer, headers).map_err(UserinfoError::OAuth)?;
    // One reading of the credentials for every bearer endpoint (RFC 6750 §2, §3.1): another
    // scheme is "no credentials" (401 without an error code), as it is for the admin API.
    let (token, dpop_scheme) = match tessera_verify::bearer::presented(
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(|v| v.as_bytes()),
        query,
    ) {
        tessera_verify::bearer::Presented::Token(t) => (t, false),
        tessera_verify::bearer::Presented::Dpop(t) => (t, true),
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
    let url = app.settings.endpoint(super::oidc::USERINFO_PATH);
    let certificate = connection.certificate.as_ref().map(|c| c.thumbprint());
    if let Err(error) = super::dpop::check_presented(
        app,
        headers,
        (method, &url),
        (token, dpop_scheme),
        active.claims.extra.get("cnf"),
        certificate.as_deref(),
    )
    .await
    {
        if error == tessera_verify::dpop::BindingError::Proof(tessera_verify::dpop::ProofError::Busy) {
            return Err(UserinfoError::OAuth(OAuthError::TemporarilyUnavailable));
        }
        tracing::info!(reason = %error, "userinfo: a bound token refused");
        let nonce = super::dpop::nonce_for(app, &error);
        return Err(UserinfoError::Binding { error, nonce });
    }
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
