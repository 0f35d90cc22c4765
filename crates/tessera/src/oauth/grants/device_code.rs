//! The device code grant (RFC 8628 §3.4–3.5): a device polls with its device code until a
//! person has allowed or denied its request on another screen. Polls are paced in the store (any
//! node answers any poll): one sooner than the interval gets `slow_down` and a longer interval.

use super::sign_in::{end_family, granted_audience, kept_scope, person_audience, signed_in_user};
use super::{Grant, Issuing, TokenRequest};
use crate::model::device::Poll;
use crate::model::{Grant as SignIn, RefreshRecord};
use crate::oauth::mint::{UserTokens, issue_for_user, new_jti};
use crate::oauth::{Answer, DevicePoll, OAuthError};

/// How much sooner than the interval a poll may come and not be too soon: clocks of a
/// cluster's nodes differ a little, and a poll's arrival is timed in whole seconds.
const POLL_SLACK: i64 = 1;

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
pub struct DeviceCode;

impl Grant for DeviceCode {
    fn name(&self) -> &'static str {
        crate::model::flows::DEVICE_CODE
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("device_code", "device_code is required")]
    }

    fn issue<'a>(&'a self, request: TokenRequest<'a>) -> Issuing<'a> {
        Box::pin(async move { poll(&request).await })
    }
}

/// Answers a poll: pending, too soon, expired, denied, or the tokens (the device code spent in
/// the store transaction that stores the first refresh token).
async fn poll(r: &TokenRequest<'_>) -> Result<Answer, OAuthError> {
    let (app, client, form) = (r.app, r.client, r.form);
    let code = r.required("device_code")?;
    if code.len() > 128 {
        return Err(OAuthError::InvalidGrant("the device code is not valid".into()));
    }
    let cnf = r.confirmation()?;
    crate::signing::ensure_id_key(&app.store, &app.master, &app.keys, app.clock.now())
        .await
        .map_err(|e| OAuthError::internal(&e))?;
    let t = app.clock.now();
    let jti = new_jti();
    let access_expires_at = t + i64::from(client.token_ttl) + 1;
    let family_id = crate::oauth::oidc::random_token();
    let refresh_value = crate::oauth::oidc::random_token();
    // As for codes: `offline_access` for OpenID Connect, any plain OAuth request otherwise.
    let wants_refresh = |g: &SignIn| {
        client.may_use(crate::model::flows::REFRESH_TOKEN)
            && (g.scope.iter().any(|s| s == "offline_access") || !g.scope.iter().any(|s| s == "openid"))
    };
    let sign_in = &app.settings.sign_in;
    // Why an approved request was not honoured for this poll (the code then stays unspent).
    let mut refused: Option<OAuthError> = None;
    let matches = |g: &SignIn| {
        if kept_scope(client, &g.scope).is_empty() {
            refused = Some(OAuthError::InvalidGrant(
                "none of the scopes allowed is still allowed for this client".into(),
            ));
        } else if let Err(e) =
            granted_audience(app, client, form, &g.resources).and_then(|a| person_audience(&a))
        {
            refused = Some(e);
        }
        refused.is_none()
    };
    let outcome = app
        .store
        .poll_device(
            &crate::oauth::oidc::digest(code),
            &client.id,
            POLL_SLACK,
            matches,
            |g| {
                let family_expires_at = t + sign_in.refresh_token_ttl as i64;
                wants_refresh(g).then(|| RefreshRecord {
                    id: crate::oauth::oidc::digest(&refresh_value),
                    family_id: family_id.clone(),
                    grant: SignIn {
                        scope: kept_scope(client, &g.scope),
                        // RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
                        dpop_jkt: if client.public { cnf.jkt.clone() } else { None },
                        ..g.clone()
                    },
                    created_at: t,
                    expires_at: (t + sign_in.refresh_token_idle_ttl as i64).min(family_expires_at),
                    family_expires_at,
                    access_jti: Some(jti.clone()),
                    access_expires_at: Some(access_expires_at),
                })
            },
        )
        .await
        .map_err(|e| OAuthError::store(&e))?;
    let mut grant = match outcome {
        Poll::Approved(g) => g,
        Poll::Pending => return Err(OAuthError::Device(DevicePoll::AuthorizationPending)),
        Poll::SlowDown(_) => return Err(OAuthError::Device(DevicePoll::SlowDown)),
        Poll::Expired => return Err(OAuthError::Device(DevicePoll::ExpiredToken)),
        Poll::Denied => return Err(OAuthError::Device(DevicePoll::AccessDenied)),
        Poll::Spent => {
            return Err(OAuthError::InvalidGrant(
                "the device code was used already".into(),
            ));
        }
        Poll::Refused => {
            return Err(
                refused.unwrap_or_else(|| OAuthError::InvalidGrant("the device code cannot be used".into()))
            );
        }
        Poll::Unknown => {
            return Err(OAuthError::InvalidGrant(
                "the device code is not valid or was issued to another client".into(),
            ));
        }
    };
    // The client may have changed since the person allowed it: what it may have now, or
    // nothing (and the refresh token stored with the poll goes).
    let user = match signed_in_user(app, &grant).await {
        Ok(u) => u,
        Err(e) => {
            end_family(app, &refresh_value, client).await;
            return Err(e);
        }
    };
    grant.scope = kept_scope(client, &grant.scope);
    // Checked under the store's lock already; here for the audience it yields.
    let audience = granted_audience(app, client, form, &grant.resources);
    let audience = match audience {
        Ok(a) => a,
        Err(e) => {
            end_family(app, &refresh_value, client).await;
            return Err(e);
        }
    };
    let refresh = wants_refresh(&grant).then_some(refresh_value);
    tracing::info!(client_id = %client.id, sub = %user.id, "device code redeemed");
    let minted = UserTokens {
        grant: &grant,
        user: &user,
        audience: &audience,
        jti: &jti,
        at: t,
        with_nonce: false,
        cnf: &cnf,
    };
    issue_for_user(app, client, &minted, refresh)
}
