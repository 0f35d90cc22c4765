//! `/admin/v1/registration-tokens` (initial access tokens for RFC 7591 registration) and
//! `/admin/v1/clients/{id}/approve` (vouching for a self-registered client).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::admin::registration as ops;
use crate::app::App;
use crate::views;

use super::{body, caller, no_store};

pub(super) async fn list(State(app): State<Arc<App>>) -> Response {
    match ops::initial_tokens(&app.store).await {
        Ok(all) => Json(json!({"registration_tokens": all.iter().map(views::registration_token_json).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    /// Seconds it works (60 to 90 days).
    #[serde(default = "one_day")]
    expires_in: u64,
    /// Registrations it allows.
    #[serde(default = "one")]
    uses: u32,
    #[serde(default)]
    note: String,
}

fn one_day() -> u64 {
    86_400
}

fn one() -> u32 {
    1
}

pub(super) async fn create(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    payload: Result<Json<CreateToken>, JsonRejection>,
) -> Response {
    let c = match body(payload) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let lifetime = std::time::Duration::from_secs(c.expires_in);
    match ops::create_initial_token(&app.store, &caller(&ext), &c.note, lifetime, c.uses).await {
        Ok((token, value)) => {
            let mut v = views::registration_token_json(&token);
            v["token"] = value.into();
            no_store((StatusCode::CREATED, Json(v)).into_response())
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn delete_one(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    match ops::revoke_initial_token(&app.store, &caller(&ext), &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(crate::operation::AdminError::Invalid(m)) => super::error(StatusCode::NOT_FOUND, "not_found", &m),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Approve {
    #[serde(default = "yes")]
    approved: bool,
}

fn yes() -> bool {
    true
}

pub(super) async fn approve(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
    payload: Result<Json<Approve>, JsonRejection>,
) -> Response {
    let approved = match payload {
        Ok(Json(a)) => a.approved,
        // No body: approve.
        Err(JsonRejection::MissingJsonContentType(_)) => true,
        Err(e) => return super::error(StatusCode::BAD_REQUEST, "invalid_request", &e.body_text()),
    };
    match ops::approve(&app.store, &caller(&ext), &id, approved).await {
        Ok(c) => {
            app.apply_client(&id).await;
            Json(views::client_json(&c)).into_response()
        }
        Err(e) => e.into_response(),
    }
}
