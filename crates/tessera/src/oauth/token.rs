//! The token endpoint (RFC 6749 §3.2) and the client credentials grant (§4.4).
//!
//! The hot path reads only memory: the client comes from the registry cache, the key from the key
//! ring. Nothing is written to the store for an issued token.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::OAuthError;
use super::admission::{admit, authenticate_on, read_token_request};
use super::form::Form;
use super::mint::{AudienceRef, issue, token_response};
use super::resource::grant_audience;
use crate::app::App;
use crate::clients::CachedClient;
use crate::model::paths::{PathRules, uri_host};
use crate::model::scope::parse_scope;

/// `POST /oauth2/token`: strict RFC 6749.
pub async fn token(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&app, &parts.headers, body, &PathRules::STRICT).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// The token endpoint on an extra path, with that path's rules.
pub async fn token_at(app: Arc<App>, request: Request, rules: Arc<PathRules>) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&app, &parts.headers, body, &rules).await {
        Ok(response) => response,
        Err(e) if rules.camel_case_errors => e.into_camel_case_response(),
        Err(e) => e.into_response(),
    }
}

/// Any other method on the token endpoint.
pub async fn method_not_allowed() -> Response {
    OAuthError::MethodNotAllowed.into_response()
}

async fn handle(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    rules: &PathRules,
) -> Result<Response, OAuthError> {
    let address = admit(app, headers)?;
    let form = read_token_request(app, headers, body, rules).await?;
    let (grant_type, client, method) =
        authenticate_on(app, address, headers, &form, "grant_type", rules).await?;
    match grant_type {
        "client_credentials" => {}
        "authorization_code" => return crate::oidc::grants::exchange_code(app, &client, &form).await,
        "refresh_token" => return crate::oidc::grants::refresh(app, &client, &form).await,
        _ => {
            return Err(OAuthError::UnsupportedGrantType(
                "grant_type must be client_credentials, authorization_code or refresh_token".into(),
            ));
        }
    }
    if !client.client_credentials {
        // RFC 6749 §5.2: an authenticated client not allowed this grant type.
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use client_credentials".into(),
        ));
    }
    if rules.scope_required && form.get("scope").is_none() {
        return Err(OAuthError::InvalidRequest(
            "scope is required at this endpoint".into(),
        ));
    }
    let (scope, audience) = if rules.scope_selects_audience {
        scope_as_audience(&client, &form)?
    } else {
        (
            grant_scope(&client, form.get("scope"))?,
            grant_audience(app, &client, &form)?,
        )
    };
    let keys = app.keys.get();
    let issued = issue(
        &keys,
        &app.settings.issuer,
        &client,
        scope,
        &audience,
        crate::store::now(),
    )?;
    let response = token_response(issued)?;
    tracing::debug!(client_id = %client.id, ?method, "token issued");
    Ok(response)
}

/// The scope to grant: as asked, if every token is allowed; all allowed scopes when none is asked.
fn grant_scope<'a>(
    client: &'a CachedClient,
    requested: Option<&str>,
) -> Result<Option<Cow<'a, str>>, OAuthError> {
    let Some(requested) = requested else {
        let all = &*client.grants.all_scopes;
        return Ok((!all.is_empty()).then_some(Cow::Borrowed(all)));
    };
    let tokens = parse_scope(requested).map_err(|_| {
        OAuthError::InvalidScope("scope is not a space-delimited list of scope tokens".into())
    })?;
    for t in &tokens {
        if !client.grants.scopes.iter().any(|s| **s == **t) {
            let t = if t.len() > 64 { "requested" } else { t.as_str() };
            return Err(OAuthError::InvalidScope(
                format!("scope {t} is not allowed for this client").into(),
            ));
        }
    }
    Ok(Some(Cow::Owned(tokens.join(" "))))
}

/// Where `scope` names the audience (`scope=example.com` for the registered audience
/// `https://example.com`): that audience, and every scope the client has.
fn scope_as_audience<'a>(
    client: &'a CachedClient,
    form: &'a Form,
) -> Result<(Option<Cow<'a, str>>, AudienceRef<'a>), OAuthError> {
    if form.all("resource").next().is_some() {
        return Err(OAuthError::InvalidRequest(
            "at this endpoint scope names the audience; resource is not accepted".into(),
        ));
    }
    let wanted = form.get("scope").unwrap_or_default();
    let mut matching = client
        .grants
        .audiences
        .iter()
        .filter(|a| &***a == wanted || uri_host(a) == Some(wanted));
    let audience = matching.next().ok_or_else(|| {
        OAuthError::InvalidScope("scope must name a host this client may get tokens for".into())
    })?;
    if matching.next().is_some() {
        // Two audiences on one host (http and https, two paths): never guess which one.
        return Err(OAuthError::InvalidScope(
            "scope names a host with several of this client's audiences; ask with the whole URI".into(),
        ));
    }
    let all = &*client.grants.all_scopes;
    Ok((
        (!all.is_empty()).then_some(Cow::Borrowed(all)),
        AudienceRef::One(audience),
    ))
}
