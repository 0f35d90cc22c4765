//! `/admin/v1/clients`: clients over the admin API, with the same operations as `tessera client`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::admin::{self, ClientUpdate, NewClient};
use crate::app::App;
use crate::model::auth::{TlsSubject, TokenAuth};
use crate::operation::{Actor, AdminError};
use crate::views;

use super::{Page, body, caller, error, no_store, paged};

pub(super) async fn list_clients(
    State(app): State<Arc<App>>,
    q: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (page, limit) = match paged(q) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match app.store.clients_page(page.after.as_deref(), limit).await {
        Ok(clients) => Json(views::page(
            "clients",
            &clients,
            limit,
            views::ClientView::from,
            |c| c.id.as_str(),
        ))
        .into_response(),
        Err(e) => AdminError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateClient {
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
    token_endpoint_auth_method: Option<String>,
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
    #[serde(flatten)]
    tls: TlsSubjectFields,
    #[serde(default)]
    tls_client_certificate_thumbprints: Vec<String>,
    #[serde(default)]
    tls_client_certificate_bound_access_tokens: bool,
    #[serde(default)]
    dpop_bound_access_tokens: bool,
    #[serde(default)]
    token_exchange: Option<crate::model::exchange::ExchangePolicy>,
}

/// RFC 8705 §2.1.2's client metadata: at most one of these.
#[derive(Deserialize, Default)]
pub(super) struct TlsSubjectFields {
    tls_client_auth_subject_dn: Option<String>,
    tls_client_auth_san_dns: Option<String>,
    tls_client_auth_san_uri: Option<String>,
    tls_client_auth_san_ip: Option<String>,
    tls_client_auth_san_email: Option<String>,
}

impl TlsSubjectFields {
    fn subject(self) -> Result<Option<TlsSubject>, Box<Response>> {
        let all = [
            self.tls_client_auth_subject_dn.map(TlsSubject::SubjectDn),
            self.tls_client_auth_san_dns.map(TlsSubject::SanDns),
            self.tls_client_auth_san_uri.map(TlsSubject::SanUri),
            self.tls_client_auth_san_ip.map(TlsSubject::SanIp),
            self.tls_client_auth_san_email.map(TlsSubject::SanEmail),
        ];
        let mut given = all.into_iter().flatten();
        let first = given.next();
        if given.next().is_some() {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "give one tls_client_auth_* subject (RFC 8705 §2.1.2)",
            )));
        }
        Ok(first)
    }
}

/// A member that may be absent (leave as it is), `null` (remove) or a value (set).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn auth_method(name: Option<&str>) -> Result<Option<TokenAuth>, Box<Response>> {
    name.map(TokenAuth::parse)
        .transpose()
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, "invalid_input", &e)))
}

pub(super) async fn create_client(
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
        auth: match auth_method(c.token_endpoint_auth_method.as_deref()) {
            Ok(a) => a.unwrap_or_default(),
            Err(r) => return *r,
        },
        jwks: c.jwks,
        jwks_uri: c.jwks_uri,
        tls_client_auth: match c.tls.subject() {
            Ok(t) => t,
            Err(r) => return *r,
        },
        tls_client_certificates: c.tls_client_certificate_thumbprints,
        certificate_bound_tokens: c.tls_client_certificate_bound_access_tokens,
        dpop_bound_tokens: c.dpop_bound_access_tokens,
        token_exchange: c.token_exchange,
    };
    match admin::create_client(&app.store, &caller(&ext), new).await {
        Ok(created) => {
            app.apply_client(&created.client.id).await;
            no_store(
                (
                    StatusCode::CREATED,
                    Json(views::json(views::CreatedClientView::from(&created))),
                )
                    .into_response(),
            )
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn get_client(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match admin::get_client(&app.store, &id).await {
        Ok(c) => Json(views::client_json(&c)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchClient {
    name: Option<String>,
    scope: Option<String>,
    audiences: Option<Vec<String>>,
    token_ttl: Option<u32>,
    introspect: Option<bool>,
    claims: Option<crate::claims::Claims>,
    grant_types: Option<Vec<String>>,
    redirect_uris: Option<Vec<String>>,
    first_party: Option<bool>,
    token_endpoint_auth_method: Option<String>,
    secret_grace_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    jwks: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "present")]
    jwks_uri: Option<Option<String>>,
    #[serde(flatten)]
    tls: TlsSubjectFields,
    tls_client_certificate_thumbprints: Option<Vec<String>>,
    tls_client_certificate_bound_access_tokens: Option<bool>,
    dpop_bound_access_tokens: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    token_exchange: Option<Option<crate::model::exchange::ExchangePolicy>>,
}

/// Updates a client, and this node's registry before the answer: a client disabled or narrowed
/// here gets nothing more here from the moment the caller hears of it.
pub(super) async fn apply(app: &App, actor: &Actor, id: &str, update: ClientUpdate) -> Response {
    match admin::update_client(&app.store, actor, id, update).await {
        Ok(c) => {
            app.apply_client(&c.id).await;
            Json(views::client_json(&c)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn update_client(
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
        auth: match auth_method(p.token_endpoint_auth_method.as_deref()) {
            Ok(a) => a,
            Err(r) => return *r,
        },
        secret_grace: p.secret_grace_seconds.map(std::time::Duration::from_secs),
        jwks: p.jwks,
        jwks_uri: p.jwks_uri,
        tls_client_auth: match p.tls.subject() {
            Ok(t) => t.map(Some),
            Err(r) => return *r,
        },
        tls_client_certificates: p.tls_client_certificate_thumbprints,
        certificate_bound_tokens: p.tls_client_certificate_bound_access_tokens,
        dpop_bound_tokens: p.dpop_bound_access_tokens,
        token_exchange: p.token_exchange,
    };
    apply(&app, &caller(&ext), &id, update).await
}

pub(super) async fn disable_client(
    state: State<Arc<App>>,
    ext: axum::http::Extensions,
    id: Path<String>,
) -> Response {
    set_enabled(state, ext, id, false).await
}

pub(super) async fn enable_client(
    state: State<Arc<App>>,
    ext: axum::http::Extensions,
    id: Path<String>,
) -> Response {
    set_enabled(state, ext, id, true).await
}

pub(super) async fn set_enabled(
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

pub(super) async fn delete_client(
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
pub(super) struct RotateSecret {
    grace_seconds: Option<u64>,
}

pub(super) async fn rotate_secret(
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
                    "previous_secrets_expire_at": app.clock.now() + grace.as_secs() as i64,
                }))
                .into_response(),
            )
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn revoke_tokens(
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
