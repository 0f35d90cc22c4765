//! What the grants that carry a person's sign-in share (`authorization_code`, `device_code`,
//! `refresh_token`): what of a grant the client may still have (RFC 6749 §6, RFC 8707 §2.2), the
//! grant's user, ending a family that cannot be honoured, and ([`FirstTokens`]) redeeming a
//! one-time grant (a code, an approved device request) into its first tokens.

use std::sync::Arc;

use super::TokenRequest;
use crate::app::App;
use crate::clients::CachedClient;
use crate::model::{Grant, RefreshRecord, UserRecord};
use crate::oauth::dpop::Confirmation;
use crate::oauth::form::Form;
use crate::oauth::mint::{AudienceRef, UserTokens, issue_for_user, new_jti};
use crate::oauth::{Answer, OAuthError};

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

/// What redeeming a one-time grant (an authorization code, an approved device request) will
/// issue, settled before the store spends it: the access token's id and expiry, the refresh
/// token's value and family, one clock reading. The store records them with the spending, so
/// a second redemption racing this one can revoke them, and the first refresh token is stored
/// in the same transaction.
pub(super) struct FirstTokens<'a> {
    app: &'a App,
    client: &'a Arc<CachedClient>,
    form: &'a Form,
    /// What the access token is bound to.
    pub cnf: Confirmation,
    /// The one clock reading.
    pub at: i64,
    /// The access token's id.
    pub jti: String,
    /// When the access token expires.
    pub access_expires_at: i64,
    /// The refresh-token family it starts.
    pub family_id: String,
    refresh_value: String,
}

impl<'a> FirstTokens<'a> {
    /// Settles what `request` will issue; the ID token key is made first if there is none, so
    /// nothing after the spending can fail for want of it.
    pub async fn settle(request: &TokenRequest<'a>) -> Result<Self, OAuthError> {
        let (app, client) = (request.app, request.client);
        let cnf = request.confirmation()?;
        crate::signing::ensure_id_key(&app.store, &app.master, &app.keys, app.clock.now())
            .await
            .map_err(|e| OAuthError::internal(&e))?;
        let at = app.clock.now();
        Ok(FirstTokens {
            app,
            client,
            form: request.form,
            cnf,
            at,
            jti: new_jti(),
            access_expires_at: at + i64::from(client.token_ttl) + 1,
            family_id: crate::oauth::oidc::random_token(),
            refresh_value: crate::oauth::oidc::random_token(),
        })
    }

    /// Whether `grant` brings a refresh token: OpenID Connect asks with `offline_access` (Core
    /// §11); a plain OAuth request (no `openid`, as MCP clients and devices send) gets one when
    /// the client may refresh (RFC 6749 §4.1.4).
    pub fn wants_refresh(&self, grant: &Grant) -> bool {
        self.client.may_use(crate::model::flows::REFRESH_TOKEN)
            && (grant.scope.iter().any(|s| s == "offline_access")
                || !grant.scope.iter().any(|s| s == "openid"))
    }

    /// Why `grant` cannot be honoured for this client as it is now (none of its scopes left:
    /// `no_scope_left`; a resource it may no longer have), checked before the store spends it.
    pub fn refusal(&self, grant: &Grant, no_scope_left: &'static str) -> Option<OAuthError> {
        if kept_scope(self.client, &grant.scope).is_empty() {
            return Some(OAuthError::InvalidGrant(no_scope_left.into()));
        }
        granted_audience(self.app, self.client, self.form, &grant.resources)
            .and_then(|a| person_audience(&a))
            .err()
    }

    /// The first refresh token of the family, when `grant` brings one: the client's scopes of
    /// it now, and for a public client bound to its DPoP key (RFC 9449 §5; a confidential
    /// client's is bound by its authentication already).
    pub fn first_refresh(&self, grant: &Grant) -> Option<RefreshRecord> {
        let sign_in = &self.app.settings.sign_in;
        let family_expires_at = self.at + sign_in.refresh_token_ttl as i64;
        self.wants_refresh(grant).then(|| RefreshRecord {
            id: crate::oauth::oidc::digest(&self.refresh_value),
            family_id: self.family_id.clone(),
            grant: Grant {
                redirect_uri: None,
                code_challenge: None,
                scope: kept_scope(self.client, &grant.scope),
                dpop_jkt: if self.client.public {
                    self.cnf.jkt.clone()
                } else {
                    None
                },
                ..grant.clone()
            },
            created_at: self.at,
            expires_at: (self.at + sign_in.refresh_token_idle_ttl as i64).min(family_expires_at),
            family_expires_at,
            access_jti: Some(self.jti.clone()),
            access_expires_at: Some(self.access_expires_at),
        })
    }

    /// The tokens for `grant`, spent a moment ago: its user (still enabled), the scopes and
    /// audience the client may have now, then the access token, the ID token when `openid` was
    /// granted (with the grant's `nonce` when `with_nonce`) and the refresh token stored with the
    /// spending. If anything refuses, that refresh token's family ends.
    pub async fn issue(self, mut grant: Grant, with_nonce: bool, what: &str) -> Result<Answer, OAuthError> {
        let (app, client) = (self.app, self.client);
        let user = match signed_in_user(app, &grant).await {
            Ok(u) => u,
            Err(e) => {
                end_family(app, &self.refresh_value, client).await;
                return Err(e);
            }
        };
        grant.scope = kept_scope(client, &grant.scope);
        let audience = match granted_audience(app, client, self.form, &grant.resources) {
            Ok(a) => a,
            Err(e) => {
                end_family(app, &self.refresh_value, client).await;
                return Err(e);
            }
        };
        let refresh = self.wants_refresh(&grant).then_some(self.refresh_value.clone());
        tracing::info!(client_id = %client.id, sub = %user.id, "{what} redeemed");
        let minted = UserTokens {
            grant: &grant,
            user: &user,
            audience: &audience,
            jti: &self.jti,
            at: self.at,
            with_nonce,
            cnf: &self.cnf,
        };
        issue_for_user(app, client, &minted, refresh)
    }
}
