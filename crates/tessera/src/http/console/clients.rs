//! Clients: a searchable, paged list (index ranges, never a count of the table), one client's
//! page, editing, rotating a secret (shown once), approving, disabling, revoking and deleting
//! (each asked first). Making one: `client_new`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::client_new::{Secret, admin_error, ttl, words};
use super::{Frame, Session, Signed, confirm, path_segment, render, store_error, when};
use crate::admin::ClientUpdate;
use crate::app::App;
use crate::model::ClientRecord;
use crate::operation::AdminError;

/// Rows on a page.
const PAGE: u32 = 50;

/// A client as the list shows it.
pub(super) struct Row {
    name: String,
    id: String,
    path: String,
    kind: String,
    enabled: bool,
}

/// What kind of client it is, in the words of the console's "new client" form.
fn kind_of(c: &ClientRecord) -> String {
    let f = &c.flows;
    let has = |g: &str| f.allows(g);
    let mut kind = if has(crate::model::flows::DEVICE_CODE) && !has(crate::model::flows::AUTHORIZATION_CODE) {
        "device or command-line app".to_string()
    } else if has(crate::model::flows::AUTHORIZATION_CODE) {
        if f.public {
            "single-page or native app".to_string()
        } else {
            "web app".to_string()
        }
    } else {
        "service".to_string()
    };
    if c.registration.is_some() {
        kind.push_str(" (registered itself)");
    }
    kind
}

fn row(c: &ClientRecord) -> Row {
    Row {
        name: c.name.clone(),
        id: c.id.clone(),
        path: path_segment(&c.id),
        kind: kind_of(c),
        enabled: c.enabled,
    }
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct List<'a> {
    frame: Frame<'a>,
    q: String,
    rows: Vec<Row>,
    next: Option<String>,
}

/// `GET /console/clients[?q=…][&after_name=…&after_id=…]`: by name (and, on the first page of a
/// search, the clients whose id starts with it).
pub(super) async fn list(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    uri: Uri,
) -> Response {
    let q = super::query(&uri);
    let text = q
        .get("q")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(200)
        .collect::<String>();
    let after = match (q.get("after_name"), q.get("after_id")) {
        (Some(n), Some(i)) => Some((n.to_string(), i.to_string())),
        (None, Some(i)) => Some((String::new(), i.to_string())),
        _ => None,
    };
    let mut rows: Vec<ClientRecord> = Vec::new();
    if after.is_none() && !text.is_empty() {
        match app.store.clients_by_id_prefix(&text, 10).await {
            Ok(found) => rows.extend(found),
            Err(e) => return store_error(&e),
        }
    }
    let by_name = app
        .store
        .clients_by_name(&text, after.as_ref().map(|(n, i)| (n.as_str(), i.as_str())), PAGE)
        .await;
    let by_name = match by_name {
        Ok(found) => found,
        Err(e) => return store_error(&e),
    };
    let next = (by_name.len() == PAGE as usize)
        .then(|| by_name.last())
        .flatten()
        .map(|last| {
            crate::oauth::oidc::with_query(
                &super::url(&app, "/console/clients"),
                &[
                    ("q", &text),
                    ("after_name", &crate::model::client::name_key(&last.name)),
                    ("after_id", &last.id),
                ],
            )
        });
    for c in by_name {
        if !rows.iter().any(|r| r.id == c.id) {
            rows.push(c);
        }
    }
    render(
        StatusCode::OK,
        &List {
            frame: Frame::new(&app, &signed, "Clients", "clients"),
            q: text,
            rows: rows.iter().map(row).collect(),
            next,
        },
    )
}

#[derive(Template)]
#[template(path = "console/client.html")]
struct Show<'a> {
    frame: Frame<'a>,
    c: &'a ClientRecord,
    path: String,
    kind: String,
    auth: &'static str,
    secrets: String,
    has_secret: bool,
    created: String,
    origin: &'static str,
    claims: String,
    approved: Option<bool>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

async fn show_page(
    app: &App,
    signed: &Signed,
    id: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let c = match crate::admin::get_client(&app.store, id).await {
        Ok(c) => c,
        Err(e) => return admin_error(&e),
    };
    let t = app.clock.now();
    let live: Vec<_> = c
        .secrets
        .iter()
        .filter(|s| s.expires_at.is_none_or(|e| e > t))
        .collect();
    let secrets = match live.as_slice() {
        [] => "none".to_string(),
        [one] if one.expires_at.is_none() => "one".to_string(),
        many => many
            .iter()
            .map(|s| match s.expires_at {
                Some(e) => format!("one until {}", when(e)),
                None => "one without end".to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(
        status,
        &Show {
            frame: Frame::new(app, signed, "Client", "clients"),
            path: path_segment(&c.id),
            kind: kind_of(&c),
            auth: if c.flows.public {
                "none (public client)"
            } else {
                c.flows.auth.name()
            },
            has_secret: !c.flows.public && c.flows.auth.is_secret(),
            secrets,
            created: when(c.created_at),
            origin: match &c.registration {
                None => "made by an operator",
                Some(r) if r.origin == crate::model::registration::Origin::MetadataDocument => {
                    "a client ID metadata document"
                }
                Some(_) => "registered itself (RFC 7591)",
            },
            claims: if c.claims.is_empty() {
                String::new()
            } else {
                serde_json::Value::Object(c.claims.clone()).to_string()
            },
            approved: c.registration.as_ref().map(|r| r.approved),
            c: &c,
            notice,
            error,
        },
    )
}

/// `GET /console/clients/{id}`.
pub(super) async fn show(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    Path(id): Path<String>,
) -> Response {
    show_page(&app, &signed, &id, None, None).await
}

/// `POST /console/clients/{id}/{action}`: update, rotate, disable, enable, revoke, delete.
pub(super) async fn act(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let form = signed.form.clone().unwrap_or_default();
    let confirmed = form.get("confirm") == Some("yes");
    let here = super::url(&app, &format!("/console/clients/{}", path_segment(&id)));
    let action_url = format!("{here}/{action}");
    let ask = |title: &str, question: &str, button: &str, fields: &[(&str, &str)]| {
        confirm(&app, &signed, title, question, button, &action_url, fields, &here)
    };
    let actor = &signed.actor;
    // The console's own client is the way in: the console does not break it.
    if id == super::CONSOLE_CLIENT_ID && action != "enable" {
        return show_page(
            &app,
            &signed,
            &id,
            None,
            Some("The console signs people in with this client; change it with the CLI if you must."),
        )
        .await;
    }
    let done: Result<String, AdminError> = match action.as_str() {
        "update" => {
            let token_ttl = match ttl(form.get("token_ttl").unwrap_or_default()) {
                Ok(t) => t,
                Err(m) => return show_page(&app, &signed, &id, None, Some(&m)).await,
            };
            let claims_text = form.get("claims").unwrap_or_default().trim();
            let claims = if claims_text.is_empty() {
                None
            } else {
                match serde_json::from_str::<serde_json::Value>(claims_text) {
                    Ok(serde_json::Value::Object(m)) => Some(m),
                    _ => {
                        return show_page(&app, &signed, &id, None, Some("Claims must be a JSON object."))
                            .await;
                    }
                }
            };
            let update = ClientUpdate {
                // The textarea is the whole set: what was taken out of it goes.
                clear_claims: true,
                claims,
                name: form.get("name").map(str::to_string),
                scope: Some(form.get("scope").unwrap_or_default().to_string()),
                audiences: Some(words(form.get("audiences").unwrap_or_default())),
                redirect_uris: Some(words(form.get("redirect_uris").unwrap_or_default())),
                token_ttl,
                ..Default::default()
            };
            crate::admin::update_client(&app.store, actor, &id, update)
                .await
                .map(|_| "Saved.".to_string())
        }
        "rotate" => {
            let grace = form
                .get("grace")
                .and_then(|g| g.parse::<u64>().ok())
                .unwrap_or(3600);
            if !confirmed {
                let grace_s = grace.to_string();
                return ask(
                    "Rotate the secret",
                    &format!(
                        "Make a new secret now? The old one keeps working for {grace} seconds, then stops. The new one is shown once."
                    ),
                    "Rotate",
                    &[("grace", &grace_s)],
                );
            }
            match crate::admin::rotate_secret(&app.store, actor, &id, std::time::Duration::from_secs(grace))
                .await
            {
                Ok(created) => {
                    app.apply_client(&id).await;
                    return render(
                        StatusCode::OK,
                        &Secret {
                            frame: Frame::new(&app, &signed, "Secret rotated", "clients"),
                            what: "The secret is rotated.",
                            secret: &created.secret,
                            client_id: &created.client.id,
                            client_path: path_segment(&created.client.id),
                        },
                    );
                }
                Err(e) => Err(e),
            }
        }
        "disable" | "enable" => {
            let enable = action == "enable";
            if !enable && !confirmed {
                return ask(
                    "Disable the client",
                    "Disable it now? It gets no more tokens, and every token it holds stops working at once.",
                    "Disable",
                    &[],
                );
            }
            let update = ClientUpdate {
                enabled: Some(enable),
                ..Default::default()
            };
            crate::admin::update_client(&app.store, actor, &id, update)
                .await
                .map(|_| {
                    if enable {
                        "Enabled."
                    } else {
                        "Disabled; its tokens no longer work."
                    }
                    .to_string()
                })
        }
        "approve" | "unapprove" => {
            crate::admin::registration::approve(&app.store, actor, &id, action == "approve")
                .await
                .map(|_| {
                    if action == "approve" {
                        "Approved: people no longer see a warning about it.".to_string()
                    } else {
                        "No longer approved.".to_string()
                    }
                })
        }
        "revoke" => {
            if !confirmed {
                return ask(
                    "Revoke its tokens",
                    "Revoke every token it holds now? It can get new ones.",
                    "Revoke",
                    &[],
                );
            }
            crate::admin::revoke_tokens(&app.store, actor, &id)
                .await
                .map(|_| "Its tokens are revoked.".to_string())
        }
        "delete" => {
            if !confirmed {
                return ask(
                    "Delete the client",
                    "Delete it for good? Its tokens stop working, and its id cannot be used again.",
                    "Delete",
                    &[],
                );
            }
            return match crate::admin::delete_client(&app.store, actor, &id).await {
                Ok(()) => {
                    app.apply_client(&id).await;
                    super::redirect(&super::url(&app, "/console/clients"))
                }
                Err(e) => admin_error(&e),
            };
        }
        _ => return super::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such action."),
    };
    app.apply_client(&id).await;
    match done {
        Ok(notice) => show_page(&app, &signed, &id, Some(&notice), None).await,
        Err(AdminError::Invalid(m)) => show_page(&app, &signed, &id, None, Some(&m)).await,
        Err(e) => admin_error(&e),
    }
}
