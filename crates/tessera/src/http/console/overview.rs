//! The overview (the node, its store, its keys) and the keys page (rotation).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{Frame, Session, render, store_error, when};
use crate::app::App;
use crate::model::KeyRecord;

/// A key as the pages show it.
pub(super) struct KeyRow {
    kid: String,
    purpose: &'static str,
    alg: String,
    created: String,
    age: String,
    state: &'static str,
}

fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn rows(keys: &[KeyRecord], t: i64) -> Vec<KeyRow> {
    let mut rows: Vec<KeyRow> = keys
        .iter()
        .map(|k| KeyRow {
            kid: k.kid.clone(),
            purpose: match k.purpose {
                crate::model::KeyPurpose::Access => "access tokens",
                crate::model::KeyPurpose::IdToken => "ID tokens",
            },
            alg: k.alg.clone(),
            created: when(k.created_at),
            age: age(t - k.created_at),
            state: match k.retired_at {
                Some(r) if r <= t => "retired",
                Some(_) => "retiring (still published)",
                None if k.activates_at > t => "published, signs soon",
                None => "signing",
            },
        })
        .collect();
    rows.sort_by(|a, b| b.created.cmp(&a.created));
    rows
}

/// When the schedule rotates next, in words.
fn schedule(app: &App, keys: &[KeyRecord], t: i64) -> String {
    match app.settings.key_rotation_interval {
        None => "off: keys rotate when an operator rotates them".into(),
        Some(every) => {
            let newest = keys
                .iter()
                .filter(|k| k.purpose == crate::model::KeyPurpose::Access && k.retired_at.is_none())
                .map(|k| k.created_at)
                .max()
                .unwrap_or(t);
            let next = newest + every.as_secs() as i64;
            format!("every {}, next at {}", age(every.as_secs() as i64), when(next))
        }
    }
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Overview<'a> {
    frame: Frame<'a>,
    issuer: &'a str,
    version: &'static str,
    store_ok: bool,
    synced_ago: i64,
    problem: Option<String>,
    requests: u64,
    errors: u64,
    per_minute: String,
    errors_per_minute: String,
    uptime: String,
    keys: Vec<KeyRow>,
    next_rotation: String,
}

/// `GET /console`.
pub(super) async fn overview(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    let t = app.clock.now();
    let keys = match app.store.live_keys(t).await {
        Ok(k) => k,
        Err(e) => return store_error(&e),
    };
    let (requests, errors, up) = app.metrics.totals();
    let minutes = (up.as_secs_f64() / 60.0).max(1.0 / 60.0);
    let rate = |n: u64| format!("{:.1}", n as f64 / minutes);
    render(
        StatusCode::OK,
        &Overview {
            frame: Frame::new(&app, &signed, "Overview", "overview"),
            issuer: &app.settings.issuer,
            version: env!("CARGO_PKG_VERSION"),
            store_ok: app.store.ping().await,
            synced_ago: (t - app.synced.at()).max(0),
            problem: app.readiness.problem(),
            per_minute: rate(requests),
            errors_per_minute: rate(errors),
            uptime: age(up.as_secs() as i64),
            requests,
            errors,
            next_rotation: schedule(&app, &keys, t),
            keys: rows(&keys, t),
        },
    )
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct Keys<'a> {
    frame: Frame<'a>,
    keys: Vec<KeyRow>,
    schedule: String,
    notice: Option<String>,
}

async fn keys_page(app: &App, signed: &super::Signed, notice: Option<String>) -> Response {
    let t = app.clock.now();
    let keys = match app.store.all_keys().await {
        Ok(k) => k,
        Err(e) => return store_error(&e),
    };
    render(
        StatusCode::OK,
        &Keys {
            frame: Frame::new(app, signed, "Signing keys", "keys"),
            schedule: schedule(app, &keys, t),
            keys: rows(&keys, t),
            notice,
        },
    )
}

/// `GET /console/keys`.
pub(super) async fn keys(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    keys_page(&app, &signed, None).await
}

/// `POST /console/keys/rotate`: asks first, then rotates the key for access or ID tokens.
pub(super) async fn rotate_key(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    let form = signed.form.clone().unwrap_or_default();
    let purpose = match form.get("purpose") {
        Some("id_token") => crate::model::KeyPurpose::IdToken,
        _ => crate::model::KeyPurpose::Access,
    };
    if form.get("confirm") != Some("yes") {
        return super::confirm(
            &app,
            &signed,
            "Rotate a signing key",
            &format!(
                "Make a new key for {} now? It is published at once and signs once every cache has seen it; the old key keeps verifying the tokens it signed until they expire.",
                if purpose == crate::model::KeyPurpose::IdToken {
                    "ID tokens"
                } else {
                    "access tokens"
                }
            ),
            "Rotate",
            &super::url(&app, "/console/keys/rotate"),
            &[("purpose", purpose.as_str())],
            &super::url(&app, "/console/keys"),
        );
    }
    let alg = match purpose {
        crate::model::KeyPurpose::IdToken => crate::signing::ID_TOKEN_ALG,
        crate::model::KeyPurpose::Access => app.settings.signing_alg,
    };
    let rotated = crate::signing::rotate(
        &app.store,
        &app.master,
        &signed.actor,
        alg,
        purpose,
        app.settings.jwks_max_age,
        None,
    )
    .await;
    let notice = match rotated {
        Ok(Some(r)) => format!("Key {} made; it signs from {}.", r.kid, when(r.activates_at)),
        Ok(None) => "Another rotation happened first; nothing was changed.".to_string(),
        Err(e) => {
            tracing::error!(error = %e, "console key rotation failed");
            "The rotation failed; the server's log says why. Nothing was changed.".to_string()
        }
    };
    keys_page(&app, &signed, Some(notice)).await
}
