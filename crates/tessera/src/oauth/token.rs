//! The token endpoint (RFC 6749 §3.2): admission, client authentication, then the grant that
//! `grant_type` names (`super::grants`).

use bytes::Bytes;
use http::HeaderMap;
use tessera_verify::dpop::Proof;

use super::admission::{BoxError, Connection, admit, authenticate_on, read_token_request};
use super::client_auth;
use super::grants::{Caller, jwt_bearer};
use super::{Answer, OAuthError};
use crate::app::App;
use crate::clients::CachedClient;
use crate::model::flows::JWT_BEARER;
use crate::model::paths::PathRules;

/// Answers a token request that came in at `path` with `rules`: admission, client
/// authentication, the DPoP proof if any, then the grant.
pub async fn handle<B>(
    app: &App,
    connection: &Connection,
    headers: &HeaderMap,
    body: B,
    path: &str,
    rules: &PathRules,
) -> Result<Answer, OAuthError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let address = admit(app, connection.peer, headers)?;
    let form = read_token_request(app, headers, body, rules).await?;
    // RFC 7523 §2.1: a JWT bearer grant may come without client authentication; its assertion
    // then names the client.
    if form.get("grant_type") == Some(JWT_BEARER)
        && !client_auth::presented(headers, &form)
        && connection.certificate.is_none()
    {
        let Some(assertion) = form.get("assertion") else {
            return Err(OAuthError::InvalidRequest("assertion is required".into()));
        };
        let client = jwt_bearer::identify(app, address, assertion, form.get("client_id")).await?;
        app.guard.check_client(&client.id).map_err(OAuthError::refused)?;
        let dpop = dpop_proof(app, headers, path, &client).await?;
        let caller = Caller {
            client: &client,
            address,
            certificate: connection.certificate.as_deref(),
            identified_by_assertion: true,
            dpop: dpop.as_ref(),
        };
        return super::grants::dispatch(app, caller, &form, rules, JWT_BEARER).await;
    }
    let (grant_type, client, method) =
        authenticate_on(app, address, connection, headers, &form, "grant_type", rules).await?;
    let dpop = dpop_proof(app, headers, path, &client).await?;
    let caller = Caller {
        client: &client,
        address,
        certificate: connection.certificate.as_deref(),
        identified_by_assertion: false,
        dpop: dpop.as_ref(),
    };
    let answer = super::grants::dispatch(app, caller, &form, rules, grant_type).await?;
    tracing::debug!(client_id = %client.id, method = method.name(), grant_type, "token issued");
    Ok(answer)
}

/// The request's DPoP proof for the token endpoint at `path` (RFC 9449 §5), checked and its
/// `jti` recorded; required of a client registered with `dpop_bound_access_tokens`.
async fn dpop_proof(
    app: &App,
    headers: &HeaderMap,
    path: &str,
    client: &CachedClient,
) -> Result<Option<Proof>, OAuthError> {
    let proof = super::dpop::token_request_proof(app, headers, path)
        .await
        .map_err(|why| super::dpop::refusal(app, why))?;
    if proof.is_none() && client.requires_dpop {
        return Err(OAuthError::InvalidRequest(
            "this client's tokens are bound to a DPoP key: send a DPoP proof".into(),
        ));
    }
    Ok(proof)
}
