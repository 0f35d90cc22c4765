//! The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6), the `refresh_token` grant
//! (§6) with rotation and reuse detection (RFC 9700 §4.14.2), ID tokens (OpenID Connect Core
//! §2, §3.1.3.6) and the userinfo endpoint (§5.3).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::clients::CachedClient;
use crate::oauth::OAuthError;
use crate::oauth::form::Form;
use crate::oauth::mint::{AudienceRef, new_jti};
use crate::store::{Grant, Issued, Redemption, Refresh, RefreshRecord, UserRecord, now};

/// Whether `verifier` (RFC 7636 §4.1: 43 to 128 unreserved characters) hashes to `challenge`.
fn pkce_ok(challenge: Option<&str>, verifier: &str) -> bool {
    let Some(challenge) = challenge else {
        return false;
    };
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let computed = URL_SAFE_NO_PAD.encode(d.as_ref());
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Refuses audiences a person's token may never carry: the admin API is for machines.
fn person_audience(audience: &AudienceRef<'_>) -> Result<(), OAuthError> {
    let admin = match audience {
        AudienceRef::One(a) => *a == crate::model::ADMIN_AUDIENCE,
        AudienceRef::Many(all) => all.contains(&crate::model::ADMIN_AUDIENCE),
    };
    if admin {
        return Err(OAuthError::InvalidTarget(
            "tokens issued to people cannot be for the admin API".into(),
        ));
    }
    Ok(())
}

/// Whether `client` may still be granted `scope` now: one of its scopes, or an OpenID Connect
/// scope (`offline_access` only while it may refresh); never the admin scope. What a code or a
/// refresh token grants is cut to this at every use (RFC 6749 §6: never more than the client
/// may have).
fn still_allowed(client: &CachedClient, scope: &str) -> bool {
    match scope {
        crate::model::ADMIN_SCOPE => false,
        "offline_access" => client.refresh_token,
        s if super::OIDC_SCOPES.contains(&s) => true,
        s => client.grants.scopes.iter().any(|a| &**a == s),
    }
}

/// What of `granted` the client may still have, in the granted order.
fn kept_scope(client: &CachedClient, granted: &[String]) -> Vec<String> {
    granted
        .iter()
        .filter(|s| still_allowed(client, s))
        .cloned()
        .collect()
}

/// The audience of a token from an earlier grant (RFC 8707 §2.2). Each `resource` asked for
/// must be one of the client's audiences now and have been named by the authorization request
/// (a grant that named none covers the client's default audience only); without `resource`,
/// what was named that the client may still have.
fn granted_audience<'a>(
    app: &'a App,
    client: &'a CachedClient,
    form: &'a Form,
    granted: &'a [String],
) -> Result<AudienceRef<'a>, OAuthError> {
    let asked = crate::oauth::resource::grant_audience(app, client, form)?;
    let allowed_now = |r: &str| client.grants.audiences.iter().any(|a| &**a == r);
    if form.all("resource").next().is_none() {
        if granted.is_empty() {
            return Ok(asked);
        }
        let still: Vec<&'a str> = granted
            .iter()
            .map(String::as_str)
            .filter(|r| allowed_now(r))
            .collect();
        return match still.as_slice() {
            [] => Err(OAuthError::InvalidTarget(
                "none of the resources this grant named is still allowed for this client".into(),
            )),
            [one] => Ok(AudienceRef::One(one)),
            _ => Ok(AudienceRef::Many(still)),
        };
    }
    let default = client
        .grants
        .audiences
        .first()
        .map_or(app.settings.issuer.as_str(), |a| &**a);
    let named = |r: &str| {
        if granted.is_empty() {
            r == default
        } else {
            granted.iter().any(|g| g == r)
        }
    };
    let within = match &asked {
        AudienceRef::One(a) => named(a),
        AudienceRef::Many(all) => all.iter().all(|a| named(a)),
    };
    if !within {
        return Err(OAuthError::InvalidTarget(
            "resource was not named by the authorization request this grant comes from".into(),
        ));
    }
    Ok(asked)
}

/// `grant_type=authorization_code`.
pub async fn exchange_code(
    app: &App,
    client: &Arc<CachedClient>,
    form: &Form,
) -> Result<Response, OAuthError> {
    if !client.authorization_code {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use authorization_code".into(),
        ));
    }
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::InvalidRequest("code is required".into()))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::InvalidRequest("redirect_uri is required".into()))?;
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| OAuthError::InvalidRequest("code_verifier is required (PKCE)".into()))?;
    if !valid_verifier(verifier) {
        return Err(OAuthError::InvalidRequest(
            "code_verifier must be 43 to 128 unreserved characters".into(),
        ));
    }
    if code.len() > 128 {
        return Err(OAuthError::InvalidGrant("the code is not valid".into()));
    }
    person_audience(&crate::oauth::resource::grant_audience(app, client, form)?)?;
    // Everything that can fail is done before the code is spent: a spent code the client never
    // got tokens for would make its retry look like a replay.
    crate::signing::ensure_id_key(&app.store, &app.master, &app.keys)
        .await
        .map_err(|e| OAuthError::internal(&e))?;
    // What this redemption will issue, recorded with the code, so that a second redemption
    // racing this one revokes it; the refresh token is stored in the same transaction.
    let t = now();
    let issued = Issued {
        access_jti: new_jti(),
        access_expires_at: t + i64::from(client.token_ttl) + 1,
        family_id: Some(super::random_token()),
    };
    let refresh_value = super::random_token();
    let wants_refresh = |g: &Grant| client.refresh_token && g.scope.iter().any(|s| s == "offline_access");
    let sign_in = &app.settings.sign_in;
    // Why a code that is the client's was not redeemed (the client changed since it was issued).
    let mut refused: Option<OAuthError> = None;
    let outcome = app
        .store
        .redeem_code(
            &super::digest(code),
            |g| {
                let its_own = g.client_id == *client.id
                    && g.redirect_uri.as_deref() == Some(redirect_uri)
                    && pkce_ok(g.code_challenge.as_deref(), verifier);
                if !its_own {
                    return false;
                }
                if kept_scope(client, &g.scope).is_empty() {
                    refused = Some(OAuthError::InvalidGrant(
                        "none of the scopes the code grants is still allowed for this client".into(),
                    ));
                } else if let Err(e) = granted_audience(app, client, form, &g.resources) {
                    refused = Some(e);
                }
                refused.is_none()
            },
            &issued,
            |g| {
                let family_expires_at = t + sign_in.refresh_token_ttl as i64;
                wants_refresh(g).then(|| RefreshRecord {
                    id: super::digest(&refresh_value),
                    family_id: issued.family_id.clone().unwrap_or_default(),
                    grant: Grant {
                        redirect_uri: None,
                        code_challenge: None,
                        scope: kept_scope(client, &g.scope),
                        ..g.clone()
                    },
                    created_at: t,
                    expires_at: (t + sign_in.refresh_token_idle_ttl as i64).min(family_expires_at),
                    family_expires_at,
                    access_jti: Some(issued.access_jti.clone()),
                    access_expires_at: Some(issued.access_expires_at),
                })
            },
        )
        .await
        .map_err(|e| OAuthError::store(&e))?;
    let mut grant = match outcome {
        Redemption::Redeemed(g) => g,
        Redemption::Reused(revoked) => {
            // This node stops accepting them at once; the others within a poll.
            app.revocations.extend(revoked);
            tracing::warn!(client_id = %client.id, "authorization code used twice; what it issued is revoked");
            return Err(OAuthError::InvalidGrant(
                "the code was already used; the tokens it issued are revoked".into(),
            ));
        }
        Redemption::Refused => {
            return Err(refused.unwrap_or_else(|| {
                OAuthError::InvalidGrant(
                    "the code was issued to another client, another redirect_uri, or the code_verifier does not match"
                        .into(),
                )
            }));
        }
        Redemption::Unknown => {
            return Err(OAuthError::InvalidGrant(
                "the code is not valid or has expired".into(),
            ));
        }
    };
    let user = match signed_in_user(app, &grant).await {
        Ok(u) => u,
        Err(e) => {
            end_family(app, &refresh_value, client).await;
            return Err(e);
        }
    };
    grant.scope = kept_scope(client, &grant.scope);
    let audience = match granted_audience(app, client, form, &grant.resources) {
        Ok(a) => a,
        Err(e) => {
            end_family(app, &refresh_value, client).await;
            return Err(e);
        }
    };
    let refresh = wants_refresh(&grant).then_some(refresh_value);
    tracing::info!(client_id = %client.id, sub = %user.id, "authorization code redeemed");
    let minted = Minting {
        grant: &grant,
        user: &user,
        audience: &audience,
        jti: &issued.access_jti,
        at: t,
        with_nonce: true,
    };
    respond(app, client, &minted, refresh)
}

/// Ends the family of a refresh token just issued (its user is gone, or signing failed).
async fn end_family(app: &App, value: &str, client: &CachedClient) {
    if let Ok(Some(revoked)) = app.store.revoke_refresh(&super::digest(value), &client.id).await {
        app.revocations.extend(revoked);
    }
}

/// `grant_type=refresh_token`: the token is spent and replaced by a new one of its family.
pub async fn refresh(app: &App, client: &Arc<CachedClient>, form: &Form) -> Result<Response, OAuthError> {
    if !client.refresh_token {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use refresh_token".into(),
        ));
    }
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".into()))?;
    if presented.len() > 128 {
        return Err(OAuthError::InvalidGrant("the refresh token is not valid".into()));
    }
    let narrower = match form.get("scope") {
        Some(s) => Some(crate::model::scope::parse_scope(s).map_err(|_| {
            OAuthError::InvalidScope("scope is not a space-delimited list of scope tokens".into())
        })?),
        None => None,
    };
    person_audience(&crate::oauth::resource::grant_audience(app, client, form)?)?;
    crate::signing::ensure_id_key(&app.store, &app.master, &app.keys)
        .await
        .map_err(|e| OAuthError::internal(&e))?;
    let t = now();
    let value = super::random_token();
    let jti = new_jti();
    let access_expires_at = t + i64::from(client.token_ttl) + 1;
    let idle = app.settings.sign_in.refresh_token_idle_ttl as i64;
    // What is refused is refused before the token is spent (RFC 6749 §6): a scope wider than
    // granted, or than the client may have now; a resource the grant did not name. What the
    // client lost since is gone from the new token of the family too.
    let mut refused: Option<OAuthError> = None;
    let outcome = app
        .store
        .rotate_refresh(&super::digest(presented), &client.id, |old| {
            let kept = kept_scope(client, &old.grant.scope);
            if kept.is_empty() {
                refused = Some(OAuthError::InvalidGrant(
                    "none of the scopes this refresh token grants is still allowed for this client".into(),
                ));
                return None;
            }
            if let Some(n) = &narrower {
                if n.iter().any(|s| !kept.contains(s)) {
                    refused = Some(OAuthError::InvalidScope(
                        "scope asks for more than was granted, or than the client may have now".into(),
                    ));
                    return None;
                }
            }
            if let Err(e) = granted_audience(app, client, form, &old.grant.resources) {
                refused = Some(e);
                return None;
            }
            Some(RefreshRecord {
                id: super::digest(&value),
                family_id: old.family_id.clone(),
                grant: Grant {
                    scope: kept,
                    ..old.grant.clone()
                },
                created_at: t,
                expires_at: (t + idle).min(old.family_expires_at),
                family_expires_at: old.family_expires_at,
                access_jti: Some(jti.clone()),
                access_expires_at: Some(access_expires_at),
            })
        })
        .await
        .map_err(|e| OAuthError::store(&e))?;
    let old = match outcome {
        Refresh::Rotated(old) => old,
        Refresh::Reused(revoked) => {
            app.revocations.extend(revoked);
            tracing::warn!(client_id = %client.id, "refresh token used twice; its family is revoked");
            return Err(OAuthError::InvalidGrant(
                "the refresh token was already used; every token of its family is revoked".into(),
            ));
        }
        Refresh::Refused if refused.is_some() => {
            return Err(refused.unwrap_or_else(|| OAuthError::InvalidGrant("refused".into())));
        }
        Refresh::Refused | Refresh::Unknown => {
            return Err(OAuthError::InvalidGrant(
                "the refresh token is not valid, has expired or was revoked".into(),
            ));
        }
    };
    let mut grant = old.grant.clone();
    let user = match signed_in_user(app, &grant).await {
        Ok(u) => u,
        Err(e) => {
            if matches!(e, OAuthError::InvalidGrant(_)) {
                // The user is gone or disabled: the family ends here.
                end_family(app, &value, client).await;
            }
            return Err(e);
        }
    };
    grant.scope = match narrower {
        Some(narrower) => narrower,
        None => kept_scope(client, &grant.scope),
    };
    grant.nonce = None;
    let audience = match granted_audience(app, client, form, &old.grant.resources) {
        Ok(a) => a,
        Err(e) => {
            end_family(app, &value, client).await;
            return Err(e);
        }
    };
    let minted = Minting {
        grant: &grant,
        user: &user,
        audience: &audience,
        jti: &jti,
        at: t,
        with_nonce: false,
    };
    respond(app, client, &minted, Some(value))
}

/// The grant's user, if it still exists and may sign in.
async fn signed_in_user(app: &App, grant: &Grant) -> Result<UserRecord, OAuthError> {
    match app.store.user(&grant.user_id).await {
        Ok(Some(u)) if u.enabled => Ok(u),
        Ok(_) => Err(OAuthError::InvalidGrant(
            "the user no longer exists or is disabled".into(),
        )),
        Err(e) => Err(OAuthError::store(&e)),
    }
}

/// What the tokens of one answer are made from.
struct Minting<'a> {
    grant: &'a Grant,
    user: &'a UserRecord,
    audience: &'a AudienceRef<'a>,
    jti: &'a str,
    /// The time the store recorded the access token's expiry from: the one clock reading.
    at: i64,
    with_nonce: bool,
}

/// Signs the access token (and the ID token when `openid` was granted) and builds the answer.
fn respond(
    app: &App,
    client: &CachedClient,
    m: &Minting<'_>,
    refresh_token: Option<String>,
) -> Result<Response, OAuthError> {
    let (grant, user, audience, jti, with_nonce) = (m.grant, m.user, m.audience, m.jti, m.with_nonce);
    let keys = app.keys.get();
    let t = m.at;
    let slot = keys
        .current(t)
        .ok_or_else(|| OAuthError::internal(&"no active signing key"))?;
    let (iat, exp) = crate::oauth::mint::lifetime(client, t, slot.retire_at);
    let scope = grant.scope.join(" ");
    let claims = json!({
        "iss": app.settings.issuer,
        "sub": user.id,
        "aud": audience,
        "exp": exp,
        "iat": iat,
        "jti": jti,
        "client_id": &*client.id,
        "scope": scope,
        "auth_time": grant.auth_time,
    });
    let access_token = slot
        .signer
        .sign_jwt(claims.to_string().as_bytes())
        .map_err(|e| OAuthError::internal(&e))?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": exp - iat,
        "scope": scope,
    });
    if grant.scope.iter().any(|s| s == "openid") {
        let id_slot = keys
            .current_id(t)
            .ok_or_else(|| OAuthError::internal(&"no active ID token signing key"))?;
        // at_hash: the left half of the SHA-256 of the access token (RS256), base64url.
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
        let at_hash = URL_SAFE_NO_PAD.encode(&d.as_ref()[..16]);
        let mut id = Map::new();
        id.insert("iss".into(), json!(app.settings.issuer));
        id.insert("sub".into(), json!(user.id));
        id.insert("aud".into(), json!(&*client.id));
        id.insert("exp".into(), json!(exp));
        id.insert("iat".into(), json!(iat));
        id.insert("auth_time".into(), json!(grant.auth_time));
        id.insert("azp".into(), json!(&*client.id));
        id.insert("at_hash".into(), json!(at_hash));
        if let (true, Some(nonce)) = (with_nonce, &grant.nonce) {
            id.insert("nonce".into(), json!(nonce));
        }
        let id_token = id_slot
            .signer
            .sign_jwt(Value::Object(id).to_string().as_bytes())
            .map_err(|e| OAuthError::internal(&e))?;
        body["id_token"] = json!(id_token);
    }
    if let Some(r) = refresh_token {
        body["refresh_token"] = json!(r);
    }
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    crate::oauth::no_store(&mut response);
    Ok(response)
}

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

/// The claims of an ID token this server signed (signature, `typ`, `iss`), expired or not:
/// what an `id_token_hint` must be.
pub fn id_token_claims(app: &App, token: &str) -> Option<Map<String, Value>> {
    if token.len() > crate::oauth::validate::MAX_TOKEN_LEN {
        return None;
    }
    let parsed = tessera_verify::jws::parse(token).ok()?;
    if parsed.typ.as_deref() != Some("JWT") {
        return None;
    }
    let keys = app.keys.get();
    let key = keys.verifiers.get(parsed.kid.as_deref()?)?;
    let claims: Map<String, Value> = serde_json::from_slice(&parsed.verify(key).ok()?).ok()?;
    (claims.get("iss")?.as_str()? == app.settings.issuer).then_some(claims)
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
    crate::oauth::no_store(&mut r);
    r
}

/// `GET` or `POST /oauth2/userinfo` with a Bearer access token (in the header only).
pub async fn userinfo(State(app): State<Arc<App>>, request: Request) -> Response {
    let headers = request.headers();
    if let Err(e) = crate::oauth::admission::admit(&app, headers) {
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
    let Ok(active) = crate::oauth::validate::check(&app, token, now()) else {
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
    crate::oauth::no_store(&mut r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(valid_verifier(verifier));
        assert!(pkce_ok(
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            verifier
        ));
        assert!(!pkce_ok(
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"),
            verifier
        ));
        assert!(!pkce_ok(None, verifier));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}!", "a".repeat(43))));
    }
}
