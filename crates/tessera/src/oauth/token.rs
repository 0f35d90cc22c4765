//! The token endpoint (RFC 6749 §3.2): admission, client authentication, then the grant that
//! `grant_type` names (`super::grants`).

use std::net::IpAddr;

use bytes::Bytes;
use http::HeaderMap;

use super::admission::{BoxError, admit, authenticate_on, read_token_request};
use super::{Answer, OAuthError};
use crate::app::App;
use crate::model::paths::PathRules;

/// Answers a token request that came in on a path with `rules`: admission, client
/// authentication, then the grant.
pub async fn handle<B>(
    app: &App,
    peer: IpAddr,
    headers: &HeaderMap,
    body: B,
    rules: &PathRules,
) -> Result<Answer, OAuthError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let address = admit(app, peer, headers)?;
    let form = read_token_request(app, headers, body, rules).await?;
    let (grant_type, client, method) =
        authenticate_on(app, address, headers, &form, "grant_type", rules).await?;
    let answer = super::grants::dispatch(app, &client, &form, rules, grant_type).await?;
    tracing::debug!(client_id = %client.id, method = method.name(), grant_type, "token issued");
    Ok(answer)
}
