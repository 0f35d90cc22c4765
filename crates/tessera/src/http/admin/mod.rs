//! The admin API under `/admin/v1`, protected by Tessera's own tokens: a bearer token carrying
//! the `tessera:admin` scope. Every handler calls the same operations as the CLI
//! ([`crate::admin`], [`crate::signing`]), so validation, hashing and auditing have one
//! implementation. Errors are JSON with a stable `error` code.

use std::sync::Arc;
use tessera_verify::bearer::Presented;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::model::{ADMIN_AUDIENCE, ADMIN_SCOPE};
use crate::oauth::validate::check;
use crate::operation::{Actor, AdminError};
use crate::views;

mod audit;
mod clients;
mod keys;
mod registration;
mod trust;
mod users;

/// The OpenAPI 3 document describing this API.
pub const OPENAPI: &str = include_str!("openapi.json");

type Make = fn() -> MethodRouter<Arc<App>>;

/// Every admin route: method, path, handler. The router is built from this table and the
/// OpenAPI document is tested against it, so neither can drift from the other.
pub const ROUTES: &[(&str, &str, Make)] = &[
    ("GET", "/admin/v1/clients", || get(clients::list_clients)),
    ("POST", "/admin/v1/clients", || post(clients::create_client)),
    ("GET", "/admin/v1/clients/{id}", || get(clients::get_client)),
    ("PATCH", "/admin/v1/clients/{id}", || {
        patch(clients::update_client)
    }),
    ("DELETE", "/admin/v1/clients/{id}", || {
        delete(clients::delete_client)
    }),
    ("POST", "/admin/v1/clients/{id}/disable", || {
        post(clients::disable_client)
    }),
    ("POST", "/admin/v1/clients/{id}/enable", || {
        post(clients::enable_client)
    }),
    ("POST", "/admin/v1/clients/{id}/rotate-secret", || {
        post(clients::rotate_secret)
    }),
    ("POST", "/admin/v1/clients/{id}/revoke-tokens", || {
        post(clients::revoke_tokens)
    }),
    ("POST", "/admin/v1/clients/{id}/approve", || {
        post(registration::approve)
    }),
    ("GET", "/admin/v1/registration-tokens", || get(registration::list)),
    ("POST", "/admin/v1/registration-tokens", || {
        post(registration::create)
    }),
    ("DELETE", "/admin/v1/registration-tokens/{id}", || {
        delete(registration::delete_one)
    }),
    ("GET", "/admin/v1/keys", || get(keys::list_keys)),
    ("POST", "/admin/v1/keys/rotate", || post(keys::rotate_key)),
    ("GET", "/admin/v1/audit", || get(audit::list_audit)),
    ("GET", "/admin/v1/trust-policies", || get(trust::list)),
    ("POST", "/admin/v1/trust-policies", || post(trust::create)),
    ("GET", "/admin/v1/trust-policies/{id}", || get(trust::get_one)),
    ("PATCH", "/admin/v1/trust-policies/{id}", || patch(trust::update)),
    ("DELETE", "/admin/v1/trust-policies/{id}", || {
        delete(trust::delete_one)
    }),
    ("GET", "/admin/v1/users", || get(users::list)),
    ("POST", "/admin/v1/users", || post(users::create)),
    ("GET", "/admin/v1/users/{id}", || get(users::get_one)),
    ("PATCH", "/admin/v1/users/{id}", || patch(users::update)),
    ("DELETE", "/admin/v1/users/{id}", || delete(users::delete_one)),
    ("POST", "/admin/v1/users/{id}/disable", || post(users::disable)),
    ("POST", "/admin/v1/users/{id}/enable", || post(users::enable)),
    ("POST", "/admin/v1/users/{id}/password", || {
        post(users::set_password)
    }),
];

/// Path of the OpenAPI document (public, like any API description).
pub const OPENAPI_PATH: &str = "/admin/v1/openapi.json";

/// The admin router (state still to be provided).
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    let mut protected = Router::new();
    for (_, path, make) in ROUTES {
        protected = protected.route(path, make());
    }
    let protected = protected
        .route_layer(axum::middleware::from_fn(strict_json))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), require_admin))
        .layer(axum::extract::DefaultBodyLimit::max(super::ADMIN_MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            app.settings.request_timeout * 2,
        ));
    Router::new().route(OPENAPI_PATH, get(openapi)).merge(protected)
}

async fn openapi() -> Response {
    let mut r = OPENAPI.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An admin API error: `{"error": code, "message": text}`.
fn error(status: StatusCode, code: &'static str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

fn bearer_error(status: StatusCode, code: &'static str, challenge: &'static str, message: &str) -> Response {
    let mut r = error(status, code, message);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    r
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match &self {
            AdminError::Invalid(m) => error(StatusCode::BAD_REQUEST, "invalid_input", m),
            AdminError::NotFound(_) | AdminError::NoUser(_) | AdminError::NoTrustPolicy(_) => {
                error(StatusCode::NOT_FOUND, "not_found", &self.to_string())
            }
            AdminError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "store unavailable; admin request refused");
                let mut r = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store is unavailable; nothing was changed, retry later",
                );
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(crate::oauth::RETRY_AFTER_SECONDS),
                );
                r
            }
            AdminError::Store(e @ crate::store::StoreError::Limit(_)) => {
                error(StatusCode::CONFLICT, "limit_reached", &e.to_string())
            }
            AdminError::Store(e @ crate::store::StoreError::Conflict(_)) => {
                error(StatusCode::CONFLICT, "conflict", &e.to_string())
            }
            AdminError::Store(e) => {
                let reference = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(reference = %reference, error = %e, "admin API store error");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    &format!("internal error, reference {reference}"),
                )
            }
        }
    }
}

/// A response holding a secret must not be stored by any cache.
fn no_store(mut r: Response) -> Response {
    crate::http::oauth::no_store(&mut r);
    r
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    AdminError::Store(crate::store::StoreError::Io(e.to_string())).into_response()
}

/// Holds a JSON body to [`crate::json::check`] before any handler reads it: a member name repeated
/// at any depth (inside `claims` or `attributes` too, where serde would keep the last) or a NUL
/// character is `400 invalid_request`.
async fn strict_json(req: Request, next: Next) -> Response {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    if !json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, super::ADMIN_MAX_BODY).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the body is larger than 64 KiB or was not received in time",
        );
    };
    if !bytes.is_empty() {
        if let Err(e) = crate::json::check(&bytes) {
            return error(StatusCode::BAD_REQUEST, "invalid_request", &e);
        }
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// The authenticated caller, put in the request by [`require_admin`].
#[derive(Clone)]
struct Caller(Actor);

/// RFC 6750: the token comes from the `Authorization: Bearer` header only (never the query), is
/// checked like any token this server issued, and must carry `tessera:admin`.
async fn require_admin(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    const REALM: &str = r#"Bearer realm="tessera-admin""#;
    const INVALID: &str = r#"Bearer realm="tessera-admin", error="invalid_token""#;
    const INSUFFICIENT: &str =
        r#"Bearer realm="tessera-admin", error="insufficient_scope", scope="tessera:admin""#;
    const MALFORMED: &str = r#"Bearer realm="tessera-admin", error="invalid_request""#;
    // One reading of the credentials for every bearer endpoint (RFC 6750 §2, §3.1).
    let token = match tessera_verify::bearer::presented(
        req.headers()
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(|v| v.as_bytes()),
        req.uri().query(),
    ) {
        Presented::None => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                REALM,
                "a bearer token is required",
            );
        }
        Presented::Malformed(why) => {
            return bearer_error(StatusCode::BAD_REQUEST, "invalid_request", MALFORMED, why);
        }
        Presented::Token(t) => (t.to_string(), false),
        Presented::Dpop(t) => (t.to_string(), true),
    };
    let (token, dpop_scheme) = (token.0.as_str(), token.1);
    let active = match check(&app, token, app.clock.now()) {
        Ok(a) => a,
        Err(why) => {
            tracing::info!(reason = ?why, "admin API: token refused");
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                INVALID,
                "the token is invalid, expired or revoked",
            );
        }
    };
    // A bound token is used only by the holder of its key (a DPoP proof, RFC 9449 §7) or its
    // certificate (presented on this connection or forwarded by a trusted proxy, RFC 8705 §3).
    let certificate = crate::http::connection(&app, req.extensions(), req.headers())
        .certificate
        .map(|c| c.thumbprint());
    let url = app.settings.endpoint(req.uri().path());
    if let Err(error) = crate::oauth::dpop::check_presented(
        &app,
        req.headers(),
        (req.method().as_str(), &url),
        (token, dpop_scheme),
        active.claims.extra.get("cnf"),
        certificate.as_deref(),
    )
    .await
    {
        if error == tessera_verify::dpop::BindingError::Proof(tessera_verify::dpop::ProofError::Busy) {
            return crate::oauth::OAuthError::TemporarilyUnavailable.into_response();
        }
        tracing::info!(reason = %error, "admin API: a bound token refused");
        let nonce = crate::oauth::dpop::nonce_for(&app, &error);
        return crate::http::oauth::binding_error(&error, nonce, "tessera-admin");
    }
    // The client as the store holds it now, not as this node's cache last saw it: a change made
    // on any node, or by the CLI, binds the admin API at once (these requests are few; the
    // read is cheap beside what they do).
    let client = match app.store.client(&active.claims.client_id).await {
        Ok(Some(c)) if c.enabled && active.claims.iat as i64 > c.tokens_revoked_before => c,
        Ok(_) => {
            tracing::info!(client_id = %active.claims.client_id, "admin API: the token's client is gone, disabled or revoked");
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                INVALID,
                "the token is invalid, expired or revoked",
            );
        }
        Err(e) => return AdminError::from(e).into_response(),
    };
    // RFC 9068 §4: the token must be meant for this API, and its client must still be allowed
    // tokens for it: taking the audience away takes effect at once, not when tokens expire.
    let still_allowed = client.audiences.iter().any(|a| a == ADMIN_AUDIENCE);
    // A token issued to a person (sub is a user, not the client) never opens the admin API,
    // whatever scope its client holds.
    let machine = active.claims.sub == active.claims.client_id;
    if !active.claims.aud.contains(ADMIN_AUDIENCE) || !still_allowed || !machine {
        tracing::info!(client_id = %active.claims.client_id, "admin API: token for another audience");
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            INVALID,
            "the token is not meant for the admin API (audience urn:tessera:admin)",
        );
    }
    // The scope must be in the token, and still be the client's: taking the admin scope away
    // from a client takes effect at once, not when its tokens expire.
    let scopes = active.claims.scope.as_deref().unwrap_or_default();
    let still_admin = client.scopes.iter().any(|s| s == ADMIN_SCOPE);
    if !scopes.split(' ').any(|s| s == ADMIN_SCOPE) || !still_admin {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            INSUFFICIENT,
            "the token lacks the tessera:admin scope",
        );
    }
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    let actor = Actor {
        id: format!("client:{}", active.claims.client_id),
        source: peer,
        clock: app.clock.clone(),
    };
    req.extensions_mut().insert(Caller(actor));
    next.run(req).await
}

fn caller(req_ext: &axum::http::Extensions) -> Actor {
    req_ext
        .get::<Caller>()
        .map(|c| c.0.clone())
        .unwrap_or_else(Actor::server)
}

/// A request the API could not read: 400 `invalid_request`.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, "invalid_request", &self.0)
    }
}

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, BadRequest> {
    payload.map(|Json(v)| v).map_err(|e| BadRequest(e.body_text()))
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, BadRequest> {
    q.map(|Query(v)| v).map_err(|e| BadRequest(e.body_text()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    pub(super) limit: Option<u32>,
    pub(super) after: Option<String>,
}

/// A list request's query: it names how many items a page may hold.
pub(super) trait Paged {
    /// The `limit` asked for.
    fn limit(&self) -> Option<u32>;
}

impl Paged for Page {
    fn limit(&self) -> Option<u32> {
        self.limit
    }
}

/// A list request's query, read strictly, and its page size within the limits (400 otherwise).
pub(super) fn paged<T: Paged>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<(T, u32), Box<Response>> {
    let q = query(q).map_err(|e| Box::new(e.into_response()))?;
    let limit = views::page_limit(q.limit())
        .map_err(|why| Box::new(error(StatusCode::BAD_REQUEST, "invalid_input", &why)))?;
    Ok((q, limit))
}
