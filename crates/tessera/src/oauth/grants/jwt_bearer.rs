//! The JWT bearer grant (RFC 7523 §2.1): `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
//! with an `assertion` that a trusted external issuer signed (workload identity federation,
//! `oauth::federation`). The token is the mapped client's own, as client credentials would give
//! it (its scopes, audiences and claims; `scope` and `resource` narrow it).
//!
//! The client may authenticate as well (with any method it may use), and the assertion must then
//! map to it; without client authentication, the assertion alone names the client (the token
//! endpoint calls [`identify`] before the grant). Every refusal of the assertion is
//! `invalid_grant` (RFC 7523 §3.1), the reason in the log only; failures count toward the
//! back-off like failed client authentications.

use std::net::IpAddr;
use std::sync::Arc;

use super::client_credentials::client_credentials;
use super::{Grant, Issuing, TokenRequest};
use crate::app::App;
use crate::clients::CachedClient;
use crate::limits::Subject;
use crate::oauth::{OAuthError, federation};

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`.
pub struct JwtBearer;

/// Longest assertion accepted.
const MAX_ASSERTION: usize = 8 * 1024;

impl Grant for JwtBearer {
    fn name(&self) -> &'static str {
        crate::model::flows::JWT_BEARER
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("assertion", "assertion is required")]
    }

    fn issue<'a>(&'a self, request: TokenRequest<'a>) -> Issuing<'a> {
        Box::pin(async move {
            if !request.identified_by_assertion {
                let assertion = request.required("assertion")?;
                verify(request.app, request.address, assertion, Some(&request.client.id)).await?;
            }
            client_credentials(&request)
        })
    }
}

fn refused() -> OAuthError {
    OAuthError::InvalidGrant("the assertion is not accepted".into())
}

/// The client a request's `assertion` authenticates as, for a request without client
/// authentication (`client_id`, if sent, must be that client).
pub async fn identify(
    app: &App,
    address: IpAddr,
    assertion: &str,
    client_id: Option<&str>,
) -> Result<Arc<CachedClient>, OAuthError> {
    verify(app, address, assertion, client_id).await
}

async fn verify(
    app: &App,
    address: IpAddr,
    assertion: &str,
    client_id: Option<&str>,
) -> Result<Arc<CachedClient>, OAuthError> {
    if assertion.len() > MAX_ASSERTION {
        return Err(refused());
    }
    // Failures count against the issuer the token claims (or the client named) and the address.
    let claimed = federation::claimed_issuer(assertion);
    let subject_id = client_id.or(claimed.as_deref()).unwrap_or("jwt-bearer");
    let subject = Subject::Client(subject_id);
    let log = |why: federation::Refusal| {
        tracing::info!(
            issuer = claimed.as_deref().unwrap_or("-"),
            reason = why.as_str(),
            "JWT bearer assertion refused"
        );
    };
    let check = federation::verify(app, assertion, client_id);
    let f = crate::oauth::client_auth::settle(app, subject, address, check, log, refused()).await?;
    tracing::info!(client = %f.client.id, issuer = %f.issuer, subject = %f.subject, policy = %f.policy_id, "workload authenticated by a trust policy (JWT bearer grant)");
    Ok(f.client)
}
