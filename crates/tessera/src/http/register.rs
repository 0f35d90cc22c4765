//! The registration endpoint's HTTP face: `POST /oauth2/register` (RFC 7591) and the client
//! configuration endpoint `GET`/`PUT`/`DELETE /oauth2/register/{client_id}` (RFC 7592). The
//! rules are `crate::admin::registration`'s; this reads the request (admission, a rate per
//! address, a bounded JSON body, the bearer token) and writes the answer.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{Map, Value, json};

use crate::admin::registration::{self as ops, REGISTER_PATH, RegisterError};
use crate::app::App;
use crate::config::RegistrationMode;
use crate::oauth::OAuthError;
use crate::operation::Actor;

/// Largest registration request read.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The rate for `per_hour` registrations an hour from one address (`None`: no limit).
pub fn rate(per_hour: u32) -> Option<Arc<DefaultKeyedRateLimiter<IpAddr>>> {
    let n = NonZeroU32::new(per_hour)?;
    Some(Arc::new(RateLimiter::keyed(Quota::per_hour(n).allow_burst(n))))
}

/// The routes, when registration is on.
pub fn routes(app: &App, cors: tower_http::cors::CorsLayer) -> Router<Arc<App>> {
    if app.settings.registration.mode == RegistrationMode::Off {
        return Router::new();
    }
    Router::new()
        .route(
            REGISTER_PATH,
            post(register)
                .fallback(crate::http::oauth::method_not_allowed)
                .layer(cors.clone()),
        )
        .route(
            &format!("{REGISTER_PATH}/{{id}}"),
            get(configuration)
                .put(configuration)
                .delete(configuration)
                .layer(cors),
        )
}

/// An answer with JSON `body`, never cached.
fn json_answer(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    crate::http::oauth::no_store(&mut r);
    r
}

fn failure(e: RegisterError) -> Response {
    match e {
        RegisterError::Metadata(r) => json_answer(
            StatusCode::BAD_REQUEST,
            &json!({"error": r.error, "error_description": crate::oauth::sanitize(&r.description)}),
        ),
        RegisterError::InvalidToken => {
            let mut r = json_answer(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "invalid_token", "error_description": "the access token is missing, unknown, expired or used up"}),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="tessera", error="invalid_token""#),
            );
            r
        }
        RegisterError::Forbidden => json_answer(
            StatusCode::FORBIDDEN,
            &json!({"error": "access_denied", "error_description": "this client is not managed through registration"}),
        ),
        RegisterError::Full => json_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "temporarily_unavailable", "error_description": "registration is full; retry later"}),
        ),
        RegisterError::Store(e) => OAuthError::store(&e).into_response(),
    }
}

/// The bearer token in `Authorization`, if one is there; `Err` for anything else there (read by
/// `tessera_verify::bearer`, as every bearer endpoint reads it).
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    use tessera_verify::bearer::{Presented, presented};
    let values = headers.get_all(header::AUTHORIZATION);
    match presented(values.iter().map(|v| v.as_bytes()), None) {
        Presented::Token(t) if t.len() <= 512 => Ok(Some(t)),
        Presented::None if values.iter().next().is_none() => Ok(None),
        _ => Err(()),
    }
}

/// The request's JSON object (RFC 7591 §3.1: `application/json`), read within bounds.
async fn metadata(app: &App, headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, Response> {
    let bad = |d: &str| {
        failure(RegisterError::Metadata(crate::model::client_metadata::Refusal {
            error: "invalid_client_metadata",
            description: d.into(),
        }))
    };
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(bad("the body must be application/json"));
    }
    let bytes = crate::oauth::admission::read_body(body, MAX_METADATA_BYTES, app.settings.request_timeout)
        .await
        .map_err(|e| bad(&e.description()))?;
    match crate::json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be one JSON object")),
        Err(e) => Err(bad(&format!("not JSON: {e}"))),
    }
}

fn actor(app: &App, address: IpAddr, who: &str) -> Actor {
    Actor {
        id: who.to_string(),
        source: address.to_string(),
        clock: app.clock.clone(),
    }
}

/// `POST /oauth2/register`.
async fn register(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let address =
        match crate::oauth::admission::admit(&app, crate::http::peer(&parts.extensions), &parts.headers) {
            Ok(a) => a,
            Err(e) => return e.into_response(),
        };
    let Ok(token) = bearer(&parts.headers) else {
        return failure(RegisterError::InvalidToken);
    };
    if let Err(refused) = app.admit_registration(address) {
        return OAuthError::refused(refused).into_response();
    }
    let metadata = match metadata(&app, &parts.headers, body).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let settings = &app.settings.registration;
    match ops::register(
        &app.store,
        &actor(&app, address, "registration"),
        settings,
        &app.settings.issuer,
        &metadata,
        token,
    )
    .await
    {
        Ok(answer) => {
            tracing::info!(client = %answer.client.id, %address, "a client registered itself");
            app.apply_client(&answer.client.id).await;
            json_answer(StatusCode::CREATED, &answer.body)
        }
        Err(e) => failure(e),
    }
}

/// `GET`, `PUT` or `DELETE /oauth2/register/{client_id}` (RFC 7592).
async fn configuration(State(app): State<Arc<App>>, Path(id): Path<String>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let address =
        match crate::oauth::admission::admit(&app, crate::http::peer(&parts.extensions), &parts.headers) {
            Ok(a) => a,
            Err(e) => return e.into_response(),
        };
    let Ok(token) = bearer(&parts.headers) else {
        return failure(RegisterError::InvalidToken);
    };
    let actor = actor(&app, address, &format!("registration:{id}"));
    let issuer = &app.settings.issuer;
    let result = match parts.method {
        Method::GET => ops::read(&app.store, &actor, issuer, &id, token)
            .await
            .map(|a| json_answer(StatusCode::OK, &a.body)),
        Method::PUT => {
            let metadata = match metadata(&app, &parts.headers, body).await {
                Ok(m) => m,
                Err(r) => return r,
            };
            ops::update(
                &app.store,
                &actor,
                &app.settings.registration,
                issuer,
                &id,
                token,
                &metadata,
            )
            .await
            .map(|a| json_answer(StatusCode::OK, &a.body))
        }
        _ => ops::delete(&app.store, &actor, &id, token)
            .await
            .map(|()| StatusCode::NO_CONTENT.into_response()),
    };
    match result {
        Ok(r) => {
            app.apply_client(&id).await;
            r
        }
        Err(e) => failure(e),
    }
}
