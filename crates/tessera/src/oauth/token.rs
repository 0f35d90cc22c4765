//! The token endpoint (RFC 6749 §3.2): admission, client authentication, then the grant that
//! `grant_type` names (`super::grants`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::OAuthError;
use super::admission::{admit, authenticate_on, read_token_request};
use crate::app::App;
use crate::model::paths::PathRules;

/// `POST /oauth2/token`: strict RFC 6749.
pub async fn token(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&app, &parts.headers, body, &PathRules::STRICT).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// The token endpoint on an extra path, with that path's rules.
pub async fn token_at(app: Arc<App>, request: Request, rules: Arc<PathRules>) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&app, &parts.headers, body, &rules).await {
        Ok(response) => response,
        Err(e) if rules.camel_case_errors => e.into_camel_case_response(),
        Err(e) => e.into_response(),
    }
}

/// Any other method on the token endpoint.
pub async fn method_not_allowed() -> Response {
    OAuthError::MethodNotAllowed.into_response()
}

async fn handle(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    rules: &PathRules,
) -> Result<Response, OAuthError> {
    let address = admit(app, headers)?;
    let form = read_token_request(app, headers, body, rules).await?;
    let (grant_type, client, method) =
        authenticate_on(app, address, headers, &form, "grant_type", rules).await?;
    let answer = super::grants::dispatch(app, &client, &form, rules, grant_type).await?;
    tracing::debug!(client_id = %client.id, method = method.name(), grant_type, "token issued");
    Ok(answer.into_response())
}
