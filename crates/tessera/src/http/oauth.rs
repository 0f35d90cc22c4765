//! The protocol's HTTP face: the axum handlers of the token, introspection, revocation and
//! userinfo endpoints, which hand the request's headers and body to `crate::oauth` and turn
//! its [`Answer`] or [`OAuthError`] into a response (status, `Cache-Control: no-store`,
//! challenges, `Retry-After`, the metrics' outcome).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::peer::connection;
use crate::app::App;
use crate::model::paths::PathRules;
use crate::oauth::userinfo::UserinfoError;
use crate::oauth::{Answer, BASIC_CHALLENGE, OAuthError, RETRY_AFTER_SECONDS, sanitize};

/// `POST /oauth2/token`: strict RFC 6749.
pub async fn token(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    answer(
        crate::oauth::token::handle(
            &app,
            &connection(&app, &parts.extensions, &parts.headers),
            &parts.headers,
            body,
            parts.uri.path(),
            &PathRules::STRICT,
        )
        .await,
    )
}

/// The token endpoint on an extra path, with that path's rules.
pub async fn token_at(app: Arc<App>, request: Request, rules: Arc<PathRules>) -> Response {
    let (parts, body) = request.into_parts();
    let connection = connection(&app, &parts.extensions, &parts.headers);
    match crate::oauth::token::handle(&app, &connection, &parts.headers, body, parts.uri.path(), &rules).await
    {
        Ok(a) => a.into_response(),
        Err(e) if rules.camel_case_errors => camel_case_error(e),
        Err(e) => e.into_response(),
    }
}

/// Any other method on the token endpoint and the other form targets.
pub async fn method_not_allowed() -> Response {
    OAuthError::MethodNotAllowed.into_response()
}

/// `POST /oauth2/device_authorization` (RFC 8628 §3.1).
pub async fn device_authorization(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let connection = connection(&app, &parts.extensions, &parts.headers);
    answer(crate::oauth::device::handle(&app, &connection, &parts.headers, body).await)
}

/// `POST /oauth2/introspect` (RFC 7662).
pub async fn introspect(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let connection = connection(&app, &parts.extensions, &parts.headers);
    answer(crate::oauth::introspect::handle(&app, &connection, &parts.headers, body).await)
}

/// `POST /oauth2/revoke` (RFC 7009).
pub async fn revoke(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let connection = connection(&app, &parts.extensions, &parts.headers);
    answer(crate::oauth::revoke::handle(&app, &connection, &parts.headers, body).await)
}

/// `GET` or `POST /oauth2/userinfo` (OpenID Connect Core §5.3).
pub async fn userinfo(State(app): State<Arc<App>>, request: Request) -> Response {
    let connection = connection(&app, request.extensions(), request.headers());
    match crate::oauth::userinfo::handle(
        &app,
        &connection,
        request.method().as_str(),
        request.headers(),
        request.uri().query(),
    )
    .await
    {
        Ok(a) => a.into_response(),
        Err(UserinfoError::OAuth(e)) => e.into_response(),
        Err(UserinfoError::Binding { error, nonce }) => binding_error(&error, nonce, "tessera"),
        Err(UserinfoError::Bearer {
            status,
            error,
            description,
        }) => bearer_error(status, error, description),
    }
}

fn answer(result: Result<Answer, OAuthError>) -> Response {
    match result {
        Ok(a) => a.into_response(),
        Err(e) => e.into_response(),
    }
}

/// A bearer-token refusal (RFC 6750 §3.1), with its `WWW-Authenticate` challenge.
fn bearer_error(status: StatusCode, error: Option<&str>, description: &str) -> Response {
    let challenge = match error {
        Some(e) => format!(r#"Bearer realm="tessera", error="{e}", error_description="{description}""#),
        None => r#"Bearer realm="tessera""#.to_string(),
    };
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    no_store(&mut r);
    r
}

/// A bound token refused at a protected resource (RFC 9449 §7.1, RFC 8705 §3): 401 with a
/// `DPoP` challenge naming the error and the algorithms, and the nonce to use if one is required.
pub fn binding_error(
    error: &tessera_verify::dpop::BindingError,
    nonce: Option<String>,
    realm: &str,
) -> Response {
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    // RFC 9449 §7.2: a bound token sent as Bearer hears of it on that scheme too.
    if *error == tessera_verify::dpop::BindingError::BoundAsBearer {
        let bearer = format!(r#"Bearer realm="{realm}", error="invalid_token", error_description="{error}""#);
        if let Ok(v) = HeaderValue::from_str(&bearer) {
            r.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    let challenge = tessera_verify::dpop::challenge(realm, Some(*error));
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().append(header::WWW_AUTHENTICATE, v);
    }
    if let Some(v) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        r.headers_mut().insert("dpop-nonce", v);
    }
    no_store(&mut r);
    r
}

/// Headers every token-endpoint answer carries (RFC 6749 §5.1).
pub fn no_store(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The response with `errorDescription` beside `error_description`, for clients written against
/// APIs that use that name (a path's `camel_case_errors`).
pub fn camel_case_error(e: OAuthError) -> Response {
    let description = sanitize(&e.description());
    let body = serde_json::json!({
        "error": e.code(),
        "error_description": description,
        "errorDescription": description,
    });
    respond(e, body)
}

fn respond(e: OAuthError, body: impl serde::Serialize) -> Response {
    let mut response = (e.status(), axum::Json(body)).into_response();
    no_store(&mut response);
    response
        .extensions_mut()
        .insert(crate::metrics::Outcome(e.code()));
    if let OAuthError::TooManyRequests { limit, .. } = e {
        response.extensions_mut().insert(crate::metrics::Limited(limit));
    } else if e == OAuthError::Overloaded {
        response
            .extensions_mut()
            .insert(crate::metrics::Limited("concurrency"));
    }
    match e {
        OAuthError::InvalidClient(_) => {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
        }
        OAuthError::MethodNotAllowed => {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        OAuthError::TemporarilyUnavailable => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        OAuthError::TooManyRequests { retry_after, .. } => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        OAuthError::Overloaded => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        OAuthError::Dpop { nonce: Some(n), .. } => {
            if let Ok(v) = HeaderValue::from_str(&n) {
                response.headers_mut().insert("dpop-nonce", v);
            }
        }
        _ => {}
    }
    response
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = match self {
            Answer::Json(body) => {
                let mut r = Response::new(axum::body::Body::from(body));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            Answer::Empty => StatusCode::OK.into_response(),
        };
        no_store(&mut response);
        response
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = tessera_proto::ErrorResponse {
            error: self.code().to_string(),
            error_description: Some(sanitize(&self.description())),
            error_uri: None,
        };
        respond(self, body)
    }
}
