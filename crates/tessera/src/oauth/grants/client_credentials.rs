//! The client credentials grant (RFC 6749 §4.4): a client's token for itself. The hot path: it
//! reads only memory (the client from the registry cache, the key from the key ring) and writes
//! nothing to the store.

use std::borrow::Cow;

use super::{Grant, Issuing, TokenRequest};
use crate::clients::CachedClient;
use crate::model::paths::uri_host;
use crate::model::scope::parse_scope;
use crate::oauth::form::Form;
use crate::oauth::mint::{AudienceRef, issue, token_response};
use crate::oauth::resource::grant_audience;
use crate::oauth::{Answer, OAuthError};

/// `grant_type=client_credentials`.
pub struct ClientCredentials;

impl Grant for ClientCredentials {
    fn name(&self) -> &'static str {
        crate::model::flows::CLIENT_CREDENTIALS
    }

    fn issue<'a>(&'a self, request: TokenRequest<'a>) -> Issuing<'a> {
        Box::pin(async move { client_credentials(&request) })
    }
}

/// A token for the client itself, as the request narrows it (shared with the JWT bearer grant).
pub(super) fn client_credentials(r: &TokenRequest<'_>) -> Result<Answer, OAuthError> {
    let (app, client, form) = (r.app, r.client, r.form);
    if r.rules.scope_required && form.get("scope").is_none() {
        return Err(OAuthError::InvalidRequest(
            "scope is required at this endpoint".into(),
        ));
    }
    let (scope, audience) = if r.rules.scope_selects_audience {
        scope_as_audience(client, form)?
    } else {
        (
            grant_scope(client, form.get("scope"))?,
            grant_audience(app, client, form)?,
        )
    };
    let binding = r.confirmation()?;
    let keys = app.keys.get();
    let issued = issue(
        &keys,
        &app.settings.issuer,
        client,
        scope,
        &audience,
        app.clock.now(),
        &binding,
    )?;
    token_response(issued)
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
