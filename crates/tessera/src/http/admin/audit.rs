//! `/admin/v1/audit`: the audit trail.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::App;
use crate::operation::AdminError;
use crate::views;

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
    let limit = match views::page_limit(q.limit) {
        Ok(l) => l,
        Err(why) => return error(StatusCode::BAD_REQUEST, "invalid_input", &why),
    };
    match app
        .store
        .audit_events(q.since.unwrap_or(0), q.after.unwrap_or(0), limit)
        .await
    {
        Ok(events) => Json(views::page(
            "events",
            &events,
            limit,
            views::AuditView::from,
            |e| e.id,
        ))
        .into_response(),
        Err(e) => AdminError::from(e).into_response(),
    }
}
