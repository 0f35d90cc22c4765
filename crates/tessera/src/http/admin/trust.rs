//! `/admin/v1/trust-policies`: workload identity federation's trust policies.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::admin::trust::{self, NewTrustPolicy, TrustPolicyUpdate};
use crate::app::App;
use crate::model::trust::TrustKeys;
use crate::operation::AdminError;
use crate::views;

use super::{body, caller};

/// Puts the store's policies in force on this node at once (other nodes follow within a poll).
async fn reload(app: &App) {
    match app.store.trust_policies().await {
        Ok(all) => app.trust.replace(all),
        Err(e) => tracing::warn!(error = %e, "cannot re-read trust policies; the next poll brings them"),
    }
}

pub(super) async fn list(State(app): State<Arc<App>>) -> Response {
    match app.store.trust_policies().await {
        Ok(all) => Json(json!({"trust_policies": all.iter().map(views::trust_json).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => AdminError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTrustPolicy {
    name: String,
    issuer: String,
    keys: TrustKeys,
    audience: String,
    subject: String,
    #[serde(default)]
    claims: BTreeMap<String, String>,
    client_id: String,
}

pub(super) async fn create(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    payload: Result<Json<CreateTrustPolicy>, JsonRejection>,
) -> Response {
    let c = match body(payload) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let new = NewTrustPolicy {
        name: c.name,
        issuer: c.issuer,
        keys: c.keys,
        audience: c.audience,
        subject: c.subject,
        claims: c.claims,
        client_id: c.client_id,
    };
    match trust::create(&app.store, &caller(&ext), new).await {
        Ok(p) => {
            reload(&app).await;
            (StatusCode::CREATED, Json(views::trust_json(&p))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn get_one(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match trust::get(&app.store, &id).await {
        Ok(p) => Json(views::trust_json(&p)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchTrustPolicy {
    name: Option<String>,
    keys: Option<TrustKeys>,
    audience: Option<String>,
    subject: Option<String>,
    claims: Option<BTreeMap<String, String>>,
    client_id: Option<String>,
    enabled: Option<bool>,
}

pub(super) async fn update(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
    payload: Result<Json<PatchTrustPolicy>, JsonRejection>,
) -> Response {
    let p = match body(payload) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let update = TrustPolicyUpdate {
        name: p.name,
        keys: p.keys,
        audience: p.audience,
        subject: p.subject,
        claims: p.claims,
        client_id: p.client_id,
        enabled: p.enabled,
    };
    match trust::update(&app.store, &caller(&ext), &id, update).await {
        Ok(p) => {
            reload(&app).await;
            Json(views::trust_json(&p)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn delete_one(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    match trust::delete(&app.store, &caller(&ext), &id).await {
        Ok(()) => {
            reload(&app).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}
