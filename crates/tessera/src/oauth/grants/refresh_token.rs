//! The `refresh_token` grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700
//! §4.14.2): every use spends the token and issues the next of its family; a token used twice
//! ends the family.

use super::sign_in::{end_family, granted_audience, kept_scope, person_audience, signed_in_user};
use super::{Grant, Issuing, TokenRequest};
use crate::model::{Grant as SignIn, Refresh, RefreshRecord};
use crate::oauth::mint::{UserTokens, issue_for_user, new_jti};
use crate::oauth::{Answer, OAuthError};

/// `grant_type=refresh_token`.
pub struct RefreshToken;

impl Grant for RefreshToken {
    fn name(&self) -> &'static str {
        crate::model::flows::REFRESH_TOKEN
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("refresh_token", "refresh_token is required")]
    }

    fn issue<'a>(&'a self, request: TokenRequest<'a>) -> Issuing<'a> {
        Box::pin(async move { refresh(&request).await })
    }
}

/// The token is spent and replaced by a new one of its family.
async fn refresh(r: &TokenRequest<'_>) -> Result<Answer, OAuthError> {
    let (app, client, form) = (r.app, r.client, r.form);
    let presented = r.required("refresh_token")?;
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
    let cnf = r.confirmation()?;
    crate::signing::ensure_id_key(&app.store, &app.master, &app.keys, app.clock.now())
        .await
        .map_err(|e| OAuthError::internal(&e))?;
    let t = app.clock.now();
    let value = crate::oauth::oidc::random_token();
    let jti = new_jti();
    let access_expires_at = t + i64::from(client.token_ttl) + 1;
    let idle = app.settings.sign_in.refresh_token_idle_ttl as i64;
    // What is refused is refused before the token is spent (RFC 6749 §6): a scope wider than
    // granted, or than the client may have now; a resource the grant did not name. What the
    // client lost since is gone from the new token of the family too.
    let mut refused: Option<OAuthError> = None;
    let outcome = app
        .store
        .rotate_refresh(&crate::oauth::oidc::digest(presented), &client.id, |old| {
            if old.grant.dpop_jkt.is_some() && old.grant.dpop_jkt != cnf.jkt {
                // RFC 9449 §5: only the holder of the key may use a bound refresh token.
                refused = Some(OAuthError::InvalidGrant(
                    "the refresh token is bound to a DPoP key: send a proof made with it".into(),
                ));
                return None;
            }
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
                id: crate::oauth::oidc::digest(&value),
                family_id: old.family_id.clone(),
                grant: SignIn {
                    scope: kept,
                    // RFC 9449 §5: a public client's refresh token is bound to the key of the
                    // proof it was issued with (a bound one stays bound to its key).
                    dpop_jkt: match (&old.grant.dpop_jkt, client.public) {
                        (Some(bound), _) => Some(bound.clone()),
                        (None, true) => cnf.jkt.clone(),
                        (None, false) => None,
                    },
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
    let minted = UserTokens {
        grant: &grant,
        user: &user,
        audience: &audience,
        jti: &jti,
        at: t,
        with_nonce: false,
        cnf: &cnf,
    };
    issue_for_user(app, client, &minted, Some(value))
}
