//! The token endpoint (RFC 6749 §3.2): admission, client authentication, then the grant that
//! `grant_type` names (`super::grants`).

use bytes::Bytes;
use http::HeaderMap;

use super::admission::{BoxError, Connection, admit, authenticate_on, read_token_request};
use super::client_auth;
use super::grants::{Caller, jwt_bearer};
use super::{Answer, OAuthError};
use crate::app::App;
use crate::model::flows::JWT_BEARER;
use crate::model::paths::PathRules;

/// Answers a token request that came in on a path with `rules`: admission, client
/// authentication, then the grant.
pub async fn handle<B>(
    app: &App,
    connection: &Connection,
    headers: &HeaderMap,
    body: B,
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
        let caller = Caller {
            client: &client,
            address,
            certificate: connection.certificate.as_deref(),
            identified_by_assertion: true,
        };
        return super::grants::dispatch(app, caller, &form, rules, JWT_BEARER).await;
    }
    let (grant_type, client, method) =
        authenticate_on(app, address, connection, headers, &form, "grant_type", rules).await?;
    let caller = Caller {
        client: &client,
        address,
        certificate: connection.certificate.as_deref(),
        identified_by_assertion: false,
    };
    let answer = super::grants::dispatch(app, caller, &form, rules, grant_type).await?;
    tracing::debug!(client_id = %client.id, method = method.name(), grant_type, "token issued");
    Ok(answer)
}
