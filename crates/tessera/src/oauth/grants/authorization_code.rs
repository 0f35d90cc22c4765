//! The `authorization_code` grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6), ID tokens
//! beside the access token when `openid` was granted (OpenID Connect Core §3.1.3).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::sign_in::{end_family, granted_audience, kept_scope, person_audience, signed_in_user};
use super::{Grant, Issuing, TokenRequest};
use crate::model::{Grant as SignIn, Issued, Redemption, RefreshRecord};
use crate::oauth::mint::{UserTokens, issue_for_user, new_jti};
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
    let cnf = r.confirmation()?;
    // Everything that can fail is done before the code is spent: a spent code the client never
    // got tokens for would make its retry look like a replay.
    crate::signing::ensure_id_key(&app.store, &app.master, &app.keys, app.clock.now())
        .await
        .map_err(|e| OAuthError::internal(&e))?;
    // What this redemption will issue, recorded with the code, so that a second redemption
    // racing this one revokes it; the refresh token is stored in the same transaction.
    let t = app.clock.now();
    let issued = Issued {
        access_jti: new_jti(),
        access_expires_at: t + i64::from(client.token_ttl) + 1,
        family_id: Some(crate::oauth::oidc::random_token()),
    };
    let refresh_value = crate::oauth::oidc::random_token();
    // OpenID Connect asks for refresh tokens with `offline_access` (Core §11); a plain OAuth
    // request (no `openid`, as MCP clients send) gets one when the client may refresh (RFC 6749
    // §4.1.4).
    let wants_refresh = |g: &SignIn| {
        client.may_use(crate::model::flows::REFRESH_TOKEN)
            && (g.scope.iter().any(|s| s == "offline_access") || !g.scope.iter().any(|s| s == "openid"))
    };
    let sign_in = &app.settings.sign_in;
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
                if g.dpop_jkt.is_some() && g.dpop_jkt != cnf.jkt {
                    // RFC 9449 §10: the token request's proof uses the key the authorization
                    // request named.
                    refused = Some(OAuthError::InvalidGrant(
                        "the code is bound to a DPoP key (dpop_jkt): send a proof made with it".into(),
                    ));
                } else if kept_scope(client, &g.scope).is_empty() {
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
                    id: crate::oauth::oidc::digest(&refresh_value),
                    family_id: issued.family_id.clone().unwrap_or_default(),
                    grant: SignIn {
                        redirect_uri: None,
                        code_challenge: None,
                        scope: kept_scope(client, &g.scope),
                        // RFC 9449 §5: a public client's refresh token is bound to its DPoP
                        // key; a confidential client's is bound by its authentication already.
                        dpop_jkt: if client.public { cnf.jkt.clone() } else { None },
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
    let minted = UserTokens {
        grant: &grant,
        user: &user,
        audience: &audience,
        jti: &issued.access_jti,
        at: t,
        with_nonce: true,
        cnf: &cnf,
    };
    issue_for_user(app, client, &minted, refresh)
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
