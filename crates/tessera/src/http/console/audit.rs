//! The audit trail: newest first, filtered by who, what, on what and when, paged by event id,
//! and exported as JSON Lines (the same filters, streamed a page at a time).

use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::{Frame, Session, render, store_error, when};
use crate::app::App;
use crate::model::{AuditEvent, AuditFilter};

const PAGE: u32 = 50;

/// Most events one export holds.
const EXPORT_MAX: usize = 1_000_000;

pub(super) struct Row {
    at: String,
    actor: String,
    action: String,
    target: String,
    source: String,
    details: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct List<'a> {
    frame: Frame<'a>,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    since: &'a str,
    until: &'a str,
    error: Option<&'a str>,
    rows: Vec<Row>,
    next: Option<String>,
    export: String,
}

/// A day (`YYYY-MM-DD`) or a time (RFC 3339) as a Unix time; `end` takes a day's last second.
fn time(s: &str, end: bool) -> Result<Option<i64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let full = if s.len() == 10 {
        format!("{s}T{}Z", if end { "23:59:59" } else { "00:00:00" })
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Some(d.as_secs() as i64))
        .ok_or_else(|| format!("{s:?} is not a date: write it as YYYY-MM-DD"))
}

/// The filter a query asks for, and its fields as given.
fn filter(q: &crate::oauth::form::Form) -> (AuditFilter, Option<String>) {
    let exact = |name: &str| {
        q.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(300).collect::<String>())
    };
    let mut error = None;
    let since = time(q.get("since").unwrap_or_default(), false).unwrap_or_else(|e| {
        error = Some(e);
        None
    });
    let until = time(q.get("until").unwrap_or_default(), true).unwrap_or_else(|e| {
        error.get_or_insert(e);
        None
    });
    (
        AuditFilter {
            actor: exact("actor"),
            action: exact("action"),
            target: exact("target"),
            since,
            until,
        },
        error,
    )
}

fn row(e: &AuditEvent) -> Row {
    Row {
        at: when(e.at),
        actor: e.entry.actor.clone(),
        action: e.entry.action.clone(),
        target: e.entry.target.clone(),
        source: e.entry.source.clone(),
        details: e.entry.details.to_string(),
    }
}

/// `GET /console/audit[?actor=…&action=…&target=…&since=…&until=…&before=ID]`.
pub(super) async fn list(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    uri: Uri,
) -> Response {
    let q = super::query(&uri);
    let (f, error) = filter(&q);
    let before = q.get("before").and_then(|b| b.parse::<i64>().ok());
    let events = match app.store.audit_page(&f, before, PAGE).await {
        Ok(e) => e,
        Err(e) => return store_error(&e),
    };
    let params = |extra: Option<(&'static str, String)>| {
        let mut p: Vec<(&'static str, String)> = ["actor", "action", "target", "since", "until"]
            .iter()
            .filter_map(|k| q.get(k).map(|v| (*k, v.to_string())))
            .collect();
        p.extend(extra);
        p
    };
    let link = |path: &str, p: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::oauth::oidc::with_query(&super::url(&app, path), &pairs)
    };
    let next = (events.len() == PAGE as usize)
        .then(|| events.last())
        .flatten()
        .map(|last| link("/console/audit", params(Some(("before", last.id.to_string())))));
    let export = link("/console/audit.jsonl", params(None));
    render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &List {
            frame: Frame::new(&app, &signed, "Audit trail", "audit"),
            actor: q.get("actor").unwrap_or_default(),
            action: q.get("action").unwrap_or_default(),
            target: q.get("target").unwrap_or_default(),
            since: q.get("since").unwrap_or_default(),
            until: q.get("until").unwrap_or_default(),
            error: error.as_deref(),
            rows: events.iter().map(row).collect(),
            next,
            export,
        },
    )
}

/// `GET /console/audit.jsonl?…`: every event the filters match, newest first, one JSON object
/// a line, as the admin API shows them; read from the store a page at a time while it is sent.
pub(super) async fn export(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    uri: Uri,
) -> Response {
    let q = super::query(&uri);
    let (f, error) = filter(&q);
    if let Some(e) = error {
        return super::error_page(StatusCode::BAD_REQUEST, "Cannot export", &e);
    }
    let _ = app
        .store
        .audit(&signed.actor.entry(
            "audit.export",
            "audit",
            serde_json::json!({"actor": f.actor, "action": f.action, "target": f.target, "since": f.since, "until": f.until}),
        ))
        .await;
    let stream = futures_util::stream::unfold(
        (app.clone(), f, None::<i64>, 0usize, false),
        |(app, f, before, sent, done)| async move {
            if done || sent >= EXPORT_MAX {
                return None;
            }
            match app.store.audit_page(&f, before, 1000).await {
                Ok(events) if events.is_empty() => None,
                Ok(events) => {
                    let last = events.last().map(|e| e.id);
                    let mut chunk = String::new();
                    for e in &events {
                        chunk.push_str(&crate::views::json(crate::views::AuditView::from(e)).to_string());
                        chunk.push('\n');
                    }
                    let n = events.len();
                    Some((Ok::<_, std::io::Error>(chunk), (app, f, last, sent + n, n < 1000)))
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export stopped");
                    Some((Err(std::io::Error::other("store")), (app, f, before, sent, true)))
                }
            }
        },
    );
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"tessera-audit.jsonl\""),
    );
    r
}
