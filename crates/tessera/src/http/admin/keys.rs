//! `/admin/v1/keys`: the signing keys, and rotating them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::operation::AdminError;
use crate::signing;
use crate::views;

use super::{body, caller, error, internal};

pub(super) async fn list_keys(State(app): State<Arc<App>>) -> Response {
    let t = app.clock.now();
    match app.store.all_keys().await {
        Ok(keys) => Json(json!({"keys": keys.iter().map(|k| views::key_json(k, t)).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => AdminError::from(e).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateKey {
    alg: Option<String>,
    /// `access` (default) or `id_token`.
    purpose: Option<crate::model::KeyPurpose>,
}

pub(super) async fn rotate_key(
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
