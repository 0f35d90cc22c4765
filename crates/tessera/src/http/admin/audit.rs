//! `/admin/v1/audit`: the audit trail.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::App;
use crate::operation::AdminError;
use crate::views;

use super::paged;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    since: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

impl super::Paged for AuditQuery {
    fn limit(&self) -> Option<u32> {
        self.limit
    }
}

pub(super) async fn list_audit(
    State(app): State<Arc<App>>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (q, limit) = match paged(q) {
        Ok(p) => p,
        Err(r) => return *r,
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
