//! The admin API under `/admin/v1`, protected by Tessera's own tokens: a bearer token carrying
//! the `tessera:admin` scope. Every handler calls the same operations as the CLI
//! ([`crate::admin`], [`crate::signing`]), so validation, hashing and auditing have one
//! implementation. Errors are JSON with a stable `error` code.

use std::sync::Arc;
use tessera_verify::bearer::Presented;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::{self, ClientUpdate, NewClient};
use crate::app::App;
use crate::model::{ADMIN_AUDIENCE, ADMIN_SCOPE};
use crate::oauth::validate::check;
use crate::operation::{Actor, AdminError};
use crate::signing;

mod users;

/// The OpenAPI 3 document describing this API.
pub const OPENAPI: &str = include_str!("openapi.json");

type Make = fn() -> MethodRouter<Arc<App>>;

/// Every admin route: method, path, handler. The router is built from this table and the
/// OpenAPI document is tested against it, so neither can drift from the other.
pub const ROUTES: &[(&str, &str, Make)] = &[
    ("GET", "/admin/v1/clients", || get(list_clients)),
    ("POST", "/admin/v1/clients", || post(create_client)),
    ("GET", "/admin/v1/clients/{id}", || get(get_client)),
    ("PATCH", "/admin/v1/clients/{id}", || patch(update_client)),
    ("DELETE", "/admin/v1/clients/{id}", || delete(delete_client)),
    ("POST", "/admin/v1/clients/{id}/disable", || post(disable_client)),
    ("POST", "/admin/v1/clients/{id}/enable", || post(enable_client)),
    ("POST", "/admin/v1/clients/{id}/rotate-secret", || {
        post(rotate_secret)
    }),
    ("POST", "/admin/v1/clients/{id}/revoke-tokens", || {
        post(revoke_tokens)
    }),
    ("GET", "/admin/v1/keys", || get(list_keys)),
    ("POST", "/admin/v1/keys/rotate", || post(rotate_key)),
    ("GET", "/admin/v1/audit", || get(list_audit)),
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
            AdminError::NotFound(_) | AdminError::NoUser(_) => {
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
    crate::oauth::no_store(&mut r);
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
        Presented::Token(t) => t.to_string(),
    };
    let token = token.as_str();
    let active = match check(&app, token, crate::store::now()) {
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
    let peer = crate::app::PEER
        .try_with(|p| p.ip().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let actor = Actor {
        id: format!("client:{}", active.claims.client_id),
        source: peer,
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

async fn list_clients(
    State(app): State<Arc<App>>,
    q: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let page = match query(q) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "limit must be 1 to 1000",
        );
    }
    match app.store.clients_page(page.after.as_deref(), limit).await {
        Ok(clients) => {
            let next = (clients.len() == limit as usize)
                .then(|| clients.last().map(|c| c.id.clone()))
                .flatten();
            Json(json!({"clients": clients.iter().map(admin::client_json).collect::<Vec<_>>(), "next_after": next}))
                .into_response()
        }
        Err(e) => AdminError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateClient {
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    audiences: Vec<String>,
    token_ttl: Option<u32>,
    secret: Option<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    introspect: bool,
    #[serde(default)]
    claims: crate::claims::Claims,
    #[serde(default)]
    client_type: Option<String>,
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    first_party: bool,
}

async fn create_client(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    payload: Result<Json<CreateClient>, JsonRejection>,
) -> Response {
    let c = match body(payload) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let new = NewClient {
        name: c.name,
        scope: c.scope,
        audiences: c.audiences,
        token_ttl: c.token_ttl,
        secret: c.secret,
        admin: c.admin,
        introspect: c.introspect,
        claims: c.claims,
        public: match c.client_type.as_deref() {
            None | Some("confidential") => false,
            Some("public") => true,
            Some(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    "client_type must be confidential or public",
                );
            }
        },
        grant_types: c.grant_types,
        redirect_uris: c.redirect_uris,
        first_party: c.first_party,
    };
    match admin::create_client(&app.store, &caller(&ext), new).await {
        Ok(created) => {
            app.apply_client(&created.client.id).await;
            no_store(
                (
                    StatusCode::CREATED,
                    Json(json!({
                        "client": admin::client_json(&created.client),
                        "client_secret": (!created.client.flows.public).then_some(&created.secret),
                    })),
                )
                    .into_response(),
            )
        }
        Err(e) => e.into_response(),
    }
}

async fn get_client(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match admin::get_client(&app.store, &id).await {
        Ok(c) => Json(admin::client_json(&c)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchClient {
    name: Option<String>,
    scope: Option<String>,
    audiences: Option<Vec<String>>,
    token_ttl: Option<u32>,
    introspect: Option<bool>,
    claims: Option<crate::claims::Claims>,
    grant_types: Option<Vec<String>>,
    redirect_uris: Option<Vec<String>>,
    first_party: Option<bool>,
}

/// Updates a client, and this node's registry before the answer: a client disabled or narrowed
/// here gets nothing more here from the moment the caller hears of it.
async fn apply(app: &App, actor: &Actor, id: &str, update: ClientUpdate) -> Response {
    match admin::update_client(&app.store, actor, id, update).await {
        Ok(c) => {
            app.apply_client(&c.id).await;
            Json(admin::client_json(&c)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn update_client(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
    payload: Result<Json<PatchClient>, JsonRejection>,
) -> Response {
    let p = match body(payload) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let update = ClientUpdate {
        name: p.name,
        scope: p.scope,
        audiences: p.audiences,
        token_ttl: p.token_ttl,
        enabled: None,
        introspect: p.introspect,
        // PATCH replaces the claims whole.
        claims: p.claims.clone(),
        clear_claims: p.claims.is_some(),
        grant_types: p.grant_types,
        redirect_uris: p.redirect_uris,
        first_party: p.first_party,
    };
    apply(&app, &caller(&ext), &id, update).await
}

async fn disable_client(state: State<Arc<App>>, ext: axum::http::Extensions, id: Path<String>) -> Response {
    set_enabled(state, ext, id, false).await
}

async fn enable_client(state: State<Arc<App>>, ext: axum::http::Extensions, id: Path<String>) -> Response {
    set_enabled(state, ext, id, true).await
}

async fn set_enabled(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
    enabled: bool,
) -> Response {
    let update = ClientUpdate {
        enabled: Some(enabled),
        ..Default::default()
    };
    apply(&app, &caller(&ext), &id, update).await
}

async fn delete_client(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    match admin::delete_client(&app.store, &caller(&ext), &id).await {
        Ok(()) => {
            app.apply_client(&id).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateSecret {
    grace_seconds: Option<u64>,
}

async fn rotate_secret(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
    payload: Result<Json<RotateSecret>, JsonRejection>,
) -> Response {
    // An empty body means the defaults.
    let r = match payload {
        Err(JsonRejection::MissingJsonContentType(_)) => RotateSecret::default(),
        other => match body(other) {
            Ok(r) => r,
            Err(resp) => return resp.into_response(),
        },
    };
    let grace = std::time::Duration::from_secs(r.grace_seconds.unwrap_or(86_400));
    match admin::rotate_secret(&app.store, &caller(&ext), &id, grace).await {
        Ok(created) => {
            app.apply_client(&created.client.id).await;
            no_store(
                Json(json!({
                    "client_id": created.client.id,
                    "client_secret": created.secret,
                    "previous_secrets_expire_at": crate::store::now() + grace.as_secs() as i64,
                }))
                .into_response(),
            )
        }
        Err(e) => e.into_response(),
    }
}

async fn revoke_tokens(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    match admin::revoke_tokens(&app.store, &caller(&ext), &id).await {
        Ok(c) => {
            app.apply_client(&c.id).await;
            Json(json!({"client_id": c.id, "tokens_revoked_before": c.tokens_revoked_before})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn list_keys(State(app): State<Arc<App>>) -> Response {
    let t = crate::store::now();
    match app.store.all_keys().await {
        Ok(keys) => Json(json!({"keys": keys.iter().map(|k| signing::key_json(k, t)).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => AdminError::from(e).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateKey {
    alg: Option<String>,
    /// `access` (default) or `id_token`.
    purpose: Option<crate::model::KeyPurpose>,
}

async fn rotate_key(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    payload: Result<Json<RotateKey>, JsonRejection>,
) -> Response {
    let r = match payload {
        Err(JsonRejection::MissingJsonContentType(_)) => RotateKey::default(),
        other => match body(other) {
            Ok(r) => r,
            Err(resp) => return resp.into_response(),
        },
    };
    let purpose = r.purpose.unwrap_or_default();
    let alg = match (purpose, r.alg.as_deref().map(str::parse).transpose()) {
        (crate::model::KeyPurpose::IdToken, Ok(None)) => signing::ID_TOKEN_ALG,
        (crate::model::KeyPurpose::IdToken, _) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "ID token keys are RS256; leave out alg",
            );
        }
        (_, Ok(a)) => a.unwrap_or(app.settings.signing_alg),
        (_, Err(e)) => return error(StatusCode::BAD_REQUEST, "invalid_input", &e),
    };
    let actor = caller(&ext);
    let (store, master, max_age) = (&app.store, &app.master, app.settings.jwks_max_age);
    match signing::rotate(store, master, &actor, alg, purpose, max_age, None).await {
        Ok(Some(r)) => (
            StatusCode::CREATED,
            Json(json!({"kid": r.kid, "alg": r.alg.as_str(), "activates_at": r.activates_at, "previous_retire_at": r.previous_retire_at})),
        )
            .into_response(),
        Ok(None) => error(StatusCode::CONFLICT, "conflict", "another rotation happened first"),
        Err(e) => match e.downcast::<crate::store::StoreError>() {
            Ok(store) => AdminError::Store(store).into_response(),
            Err(e) => internal(&e),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    since: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

async fn list_audit(
    State(app): State<Arc<App>>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "limit must be 1 to 1000",
        );
    }
    match app
        .store
        .audit_events(q.since.unwrap_or(0), q.after.unwrap_or(0), limit)
        .await
    {
        Ok(events) => {
            let next = (events.len() == limit as usize)
                .then(|| events.last().map(|e| e.id))
                .flatten();
            Json(json!({"events": events.iter().map(admin::audit_json).collect::<Vec<Value>>(), "next_after": next}))
                .into_response()
        }
        Err(e) => AdminError::from(e).into_response(),
    }
}
