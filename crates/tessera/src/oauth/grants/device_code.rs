//! The device code grant (RFC 8628 §3.4–3.5): a device polls with its device code until a
//! person has allowed or denied its request on another screen. Polls are paced in the store (any
//! node answers any poll): one sooner than the interval gets `slow_down` and a longer interval.

use super::sign_in::FirstTokens;
use super::{Grant, Issuing, TokenRequest};
use crate::model::device::Poll;
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
    let (app, client) = (r.app, r.client);
    let code = r.required("device_code")?;
    if code.len() > 128 {
        return Err(OAuthError::InvalidGrant("the device code is not valid".into()));
    }
    let first = FirstTokens::settle(r).await?;
    // Why an approved request was not honoured for this poll (the code then stays unspent).
    let mut refused: Option<OAuthError> = None;
    let outcome = app
        .store
        .poll_device(
            &crate::oauth::oidc::digest(code),
            &client.id,
            POLL_SLACK,
            |g| {
                refused = first.refusal(g, "none of the scopes allowed is still allowed for this client");
                refused.is_none()
            },
            |g| first.first_refresh(g),
        )
        .await
        .map_err(|e| OAuthError::store(&e))?;
    let grant = match outcome {
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
    first.issue(grant, false, "device code").await
}
