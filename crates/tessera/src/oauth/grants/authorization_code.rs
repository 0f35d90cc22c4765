//! The `authorization_code` grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6), ID tokens
//! beside the access token when `openid` was granted (OpenID Connect Core §3.1.3).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::sign_in::{FirstTokens, person_audience};
use super::{Grant, Issuing, TokenRequest};
use crate::model::{Issued, Redemption};
use crate::oauth::{Answer, OAuthError};

/// `grant_type=authorization_code`.
pub struct AuthorizationCode;

impl Grant for AuthorizationCode {
    fn name(&self) -> &'static str {
        crate::model::flows::AUTHORIZATION_CODE
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("code", "code is required"),
            ("redirect_uri", "redirect_uri is required"),
            // RFC 7636 §4.5: PKCE is required of every client.
            ("code_verifier", "code_verifier is required (PKCE)"),
        ]
    }

    fn issue<'a>(&'a self, request: TokenRequest<'a>) -> Issuing<'a> {
        Box::pin(async move { exchange_code(&request).await })
    }
}

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

/// Redeems the code: spent once, in one store transaction with what it issues.
async fn exchange_code(r: &TokenRequest<'_>) -> Result<Answer, OAuthError> {
    let (app, client, form) = (r.app, r.client, r.form);
    let code = r.required("code")?;
    let redirect_uri = r.required("redirect_uri")?;
    let verifier = r.required("code_verifier")?;
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
    let first = FirstTokens::settle(r).await?;
    // What this redemption will issue, recorded with the code, so that a second redemption
    // racing this one revokes it; the refresh token is stored in the same transaction.
    let issued = Issued {
        access_jti: first.jti.clone(),
        access_expires_at: first.access_expires_at,
        family_id: Some(first.family_id.clone()),
    };
    // Why a code that is the client's was not redeemed (the client changed since it was issued).
    let mut refused: Option<OAuthError> = None;
    let outcome = app
        .store
        .redeem_code(
            &crate::oauth::oidc::digest(code),
            |g| {
                let its_own = g.client_id == *client.id
                    && g.redirect_uri.as_deref() == Some(redirect_uri)
                    && pkce_ok(g.code_challenge.as_deref(), verifier);
                if !its_own {
                    return false;
                }
                refused = if g.dpop_jkt.is_some() && g.dpop_jkt != first.cnf.jkt {
                    // RFC 9449 §10: the token request's proof uses the key the authorization
                    // request named.
                    Some(OAuthError::InvalidGrant(
                        "the code is bound to a DPoP key (dpop_jkt): send a proof made with it".into(),
                    ))
                } else {
                    first.refusal(
                        g,
                        "none of the scopes the code grants is still allowed for this client",
                    )
                };
                refused.is_none()
            },
            &issued,
            |g| first.first_refresh(g),
        )
        .await
        .map_err(|e| OAuthError::store(&e))?;
    let grant = match outcome {
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
    first.issue(grant, true, "authorization code").await
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
