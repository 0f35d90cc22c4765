//! What lets clients in without an operator's secret: trust policies (listed, disabled,
//! deleted) and self-registration (its settings, and the initial access tokens: issued, shown
//! once, withdrawn).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{Frame, Session, Signed, confirm, path_segment, render, store_error, when};
use crate::app::App;
use crate::operation::AdminError;

pub(super) struct PolicyRow {
    name: String,
    issuer: String,
    subject: String,
    audience: String,
    client_id: String,
    client_path: String,
    path: String,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "console/trust.html")]
struct Trust<'a> {
    frame: Frame<'a>,
    rows: Vec<PolicyRow>,
    notice: Option<&'a str>,
}

async fn trust_page(app: &App, signed: &Signed, notice: Option<&str>) -> Response {
    let all = match app.store.trust_policies().await {
        Ok(a) => a,
        Err(e) => return store_error(&e),
    };
    let rows = all
        .iter()
        .map(|p| PolicyRow {
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            audience: p.audience.clone(),
            client_id: p.client_id.clone(),
            client_path: path_segment(&p.client_id),
            path: path_segment(&p.id),
            enabled: p.enabled,
        })
        .collect();
    render(
        StatusCode::OK,
        &Trust {
            frame: Frame::new(app, signed, "Trust policies", "trust"),
            rows,
            notice,
        },
    )
}

/// `GET /console/trust`.
pub(super) async fn trust(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    trust_page(&app, &signed, None).await
}

/// `POST /console/trust/{id}/{action}`: disable, enable, delete.
pub(super) async fn trust_act(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let confirmed = signed.form.as_ref().and_then(|f| f.get("confirm")) == Some("yes");
    let action_url = super::url(&app, &format!("/console/trust/{}/{action}", path_segment(&id)));
    let back = super::url(&app, "/console/trust");
    let ask = |title: &str, question: &str, button: &str| {
        confirm(&app, &signed, title, question, button, &action_url, &[], &back)
    };
    let done = match action.as_str() {
        "disable" if !confirmed => {
            return ask(
                "Disable the trust policy",
                "Disable it now? Tokens of its issuer stop authenticating its client at once.",
                "Disable",
            );
        }
        "delete" if !confirmed => {
            return ask(
                "Delete the trust policy",
                "Delete it for good? Tokens of its issuer stop authenticating its client at once.",
                "Delete",
            );
        }
        "disable" | "enable" => {
            let update = crate::admin::trust::TrustPolicyUpdate {
                enabled: Some(action == "enable"),
                ..Default::default()
            };
            crate::admin::trust::update(&app.store, &signed.actor, &id, update)
                .await
                .map(|_| {
                    if action == "enable" {
                        "Enabled."
                    } else {
                        "Disabled."
                    }
                })
        }
        "delete" => crate::admin::trust::delete(&app.store, &signed.actor, &id)
            .await
            .map(|()| "Deleted."),
        _ => return super::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such action."),
    };
    match done {
        Ok(notice) => {
            // In force on this node at once; the others follow within a poll.
            match app.store.trust_policies().await {
                Ok(all) => app.trust.replace(all),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot re-read trust policies; the next poll brings them")
                }
            }
            trust_page(&app, &signed, Some(notice)).await
        }
        Err(AdminError::Store(e)) => store_error(&e),
        Err(e) => super::error_page(StatusCode::BAD_REQUEST, "Cannot do that", &e.to_string()),
    }
}

pub(super) struct TokenRow {
    note: String,
    id: String,
    path: String,
    expires: String,
    uses_left: i64,
}

#[derive(Template)]
#[template(path = "console/registration.html")]
struct Registration<'a> {
    frame: Frame<'a>,
    mode: &'static str,
    documents: bool,
    rows: Vec<TokenRow>,
    token: Option<&'a str>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

async fn registration_page(
    app: &App,
    signed: &Signed,
    token: Option<&str>,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let all = match crate::admin::registration::initial_tokens(&app.store).await {
        Ok(a) => a,
        Err(AdminError::Store(e)) => return store_error(&e),
        Err(e) => return super::error_page(StatusCode::BAD_REQUEST, "Cannot do that", &e.to_string()),
    };
    let rows = all
        .iter()
        .map(|t| TokenRow {
            note: t.note.clone(),
            id: t.id.clone(),
            path: path_segment(&t.id),
            expires: when(t.expires_at),
            uses_left: t.uses_left,
        })
        .collect();
    let settings = &app.settings.registration;
    render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &Registration {
            frame: Frame::new(app, signed, "Registration", "registration"),
            mode: match settings.mode {
                crate::config::RegistrationMode::Off => "off",
                crate::config::RegistrationMode::Open => "open to anyone",
                crate::config::RegistrationMode::Token => "with an initial access token",
            },
            documents: settings.metadata_documents,
            rows,
            token,
            notice,
            error,
        },
    )
}

/// `GET /console/registration`.
pub(super) async fn registration(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    registration_page(&app, &signed, None, None, None).await
}

/// `POST /console/registration`: issues an initial access token, shown in this answer once.
pub(super) async fn issue_token(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    let form = signed.form.clone().unwrap_or_default();
    let number = |name: &str| form.get(name).unwrap_or_default().trim().parse::<u64>().ok();
    let (Some(uses), Some(days)) = (number("uses"), number("days")) else {
        return registration_page(
            &app,
            &signed,
            None,
            None,
            Some("Uses and days are whole numbers."),
        )
        .await;
    };
    let made = crate::admin::registration::create_initial_token(
        &app.store,
        &signed.actor,
        form.get("note").unwrap_or_default(),
        std::time::Duration::from_secs(days.saturating_mul(86_400)),
        u32::try_from(uses).unwrap_or(u32::MAX),
    )
    .await;
    match made {
        Ok((_, value)) => registration_page(&app, &signed, Some(&value), Some("Issued."), None).await,
        Err(AdminError::Invalid(m)) => registration_page(&app, &signed, None, None, Some(&m)).await,
        Err(AdminError::Store(e)) => store_error(&e),
        Err(e) => super::error_page(StatusCode::BAD_REQUEST, "Cannot do that", &e.to_string()),
    }
}

/// `POST /console/registration/{id}/revoke`: withdraws an initial access token (asked first).
pub(super) async fn revoke_token(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    Path(id): Path<String>,
) -> Response {
    let confirmed = signed.form.as_ref().and_then(|f| f.get("confirm")) == Some("yes");
    if !confirmed {
        let action = super::url(
            &app,
            &format!("/console/registration/{}/revoke", path_segment(&id)),
        );
        return confirm(
            &app,
            &signed,
            "Withdraw the initial access token",
            "Withdraw it now? No client can register with it any more.",
            "Withdraw",
            &action,
            &[],
            &super::url(&app, "/console/registration"),
        );
    }
    match crate::admin::registration::revoke_initial_token(&app.store, &signed.actor, &id).await {
        Ok(()) => registration_page(&app, &signed, None, Some("Withdrawn."), None).await,
        Err(AdminError::Store(e)) => store_error(&e),
        Err(e) => registration_page(&app, &signed, None, None, Some(&e.to_string())).await,
    }
}
