//! `/admin/v1/audit`: the audit trail.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::{self};
use crate::app::App;
use crate::operation::AdminError;

use super::{error, query};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    since: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

pub(super) async fn list_audit(
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
