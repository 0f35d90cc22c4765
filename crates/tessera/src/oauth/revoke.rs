//! Token revocation (RFC 7009).

use bytes::Bytes;
use http::HeaderMap;

use super::admission::{BoxError, Connection, admit, authenticate_request, read_form};
use super::validate::{active, authentic};
use super::{Answer, OAuthError};
use crate::app::App;

/// Answers `POST /oauth2/revoke`. A client revokes its own tokens. A token that is invalid,
/// unknown, expired or already revoked gets 200 as well (§2.2): there is nothing left to do. A
/// valid token of another client is refused (§2.1).
pub async fn handle<B>(
    app: &App,
    connection: &Connection,
    headers: &HeaderMap,
    body: B,
) -> Result<Answer, OAuthError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let address = admit(app, connection.peer, headers)?;
    let form = read_form(app, headers, body).await?;
    let (token, caller, _) = authenticate_request(app, address, connection, headers, &form, "token").await?;
    let ok = || Answer::Empty;
    // A refresh token (opaque, never a JWT): its family ends, with the access tokens issued
    // beside it (RFC 7009 §2.1). Another client's, or an unknown one: nothing to do.
    if !token.contains('.') {
        let revoked = app
            .store
            .revoke_refresh(&crate::oauth::oidc::digest(token), &caller.id)
            .await
            .map_err(|e| OAuthError::store(&e))?;
        if let Some(revoked) = revoked {
            app.revocations.extend(revoked);
            tracing::info!(client_id = %caller.id, "refresh token family revoked");
        }
        return Ok(ok());
    }
    // Ownership is decided on authentic claims alone, before expiry or revocation, so that the
    // answer to another client's token says nothing about whether that token is active.
    let Ok(claims) = authentic(app, token) else {
        return Ok(ok());
    };
    if *claims.client_id != *caller.id {
        return Err(OAuthError::UnauthorizedClient(
            "a client may revoke only its own tokens".into(),
        ));
    }
    let Ok(active) = active(app, claims, app.clock.now()) else {
        // Expired, already revoked, or its client disabled: nothing left to do.
        return Ok(ok());
    };
    let c = &active.claims;
    let cap = app.guard.settings().max_revocations_per_client;
    match app
        .store
        .revoke_token_capped(&c.jti, &c.client_id, c.exp as i64, cap)
        .await
    {
        Ok(()) => {}
        Err(crate::store::StoreError::Limit(why)) => {
            // The client keeps its tokens until they expire; it may come back when some of
            // its revocations have (the shortest token lifetime is a minute).
            tracing::warn!(client_id = %caller.id, reason = %why, "revocation refused: cap reached");
            return Err(OAuthError::TooManyRequests {
                limit: "revocations_per_client",
                retry_after: 60,
            });
        }
        Err(e) => return Err(OAuthError::store(&e)),
    }
    app.revocations.extend([(c.jti.clone(), c.exp as i64)]);
    tracing::info!(client_id = %caller.id, jti = %c.jti, "token revoked");
    Ok(ok())
}
