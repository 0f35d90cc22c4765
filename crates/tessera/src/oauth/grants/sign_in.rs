//! What the grants that carry a person's sign-in share (`authorization_code`, `refresh_token`):
//! what of a grant the client may still have (RFC 6749 §6, RFC 8707 §2.2), the grant's user,
//! and ending a family that cannot be honoured.

use crate::app::App;
use crate::clients::CachedClient;
use crate::model::{Grant, UserRecord};
use crate::oauth::OAuthError;
use crate::oauth::form::Form;
use crate::oauth::mint::AudienceRef;

/// Refuses audiences a person's token may never carry: the admin API is for machines.
pub(super) fn person_audience(audience: &AudienceRef<'_>) -> Result<(), OAuthError> {
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
        "offline_access" => client.may_use(crate::model::flows::REFRESH_TOKEN),
        s if crate::oauth::oidc::OIDC_SCOPES.contains(&s) => true,
        s => client.grants.scopes.iter().any(|a| &**a == s),
    }
}

/// What of `granted` the client may still have, in the granted order.
pub(super) fn kept_scope(client: &CachedClient, granted: &[String]) -> Vec<String> {
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
pub(super) fn granted_audience<'a>(
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

/// Ends the family of a refresh token just issued (its user is gone, or signing failed).
pub(super) async fn end_family(app: &App, value: &str, client: &CachedClient) {
    if let Ok(Some(revoked)) = app
        .store
        .revoke_refresh(&crate::oauth::oidc::digest(value), &client.id)
        .await
    {
        app.revocations.extend(revoked);
    }
}

/// The grant's user, if it still exists and may sign in.
pub(super) async fn signed_in_user(app: &App, grant: &Grant) -> Result<UserRecord, OAuthError> {
    match app.store.user(&grant.user_id).await {
        Ok(Some(u)) if u.enabled => Ok(u),
        Ok(_) => Err(OAuthError::InvalidGrant(
            "the user no longer exists or is disabled".into(),
        )),
        Err(e) => Err(OAuthError::store(&e)),
    }
}
