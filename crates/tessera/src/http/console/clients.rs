//! Clients: a searchable, paged list (index ranges, never a count of the table), one client's
//! page, making one by kind, editing, rotating a secret (shown once), disabling, revoking and
//! deleting (each asked first).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::{Frame, Session, Signed, confirm, path_segment, render, store_error, when};
use crate::admin::{ClientUpdate, NewClient};
use crate::app::App;
use crate::model::ClientRecord;
use crate::model::auth::TokenAuth;
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
                &app.settings.endpoint("/console/clients"),
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

/// Errors of the new-client form, each next to its field.
#[derive(Default)]
pub(super) struct FieldErrors {
    form: Option<String>,
    name: Option<String>,
    scope: Option<String>,
    audiences: Option<String>,
    redirect_uris: Option<String>,
    jwks: Option<String>,
    token_ttl: Option<String>,
}

impl FieldErrors {
    /// Puts `message` next to the field it is about.
    fn place(message: String) -> Self {
        let m = message.to_ascii_lowercase();
        let mut e = FieldErrors::default();
        if m.contains("audience") || m.contains("resource") {
            e.audiences = Some(message);
        } else if m.contains("redirect") || m.contains("://") || m.contains("uri") {
            e.redirect_uris = Some(message);
        } else if m.contains("scope") || m.contains("claim") {
            e.scope = Some(message);
        } else if m.contains("jwk") || m.contains("key") {
            e.jwks = Some(message);
        } else if m.contains("ttl") || m.contains("lifetime") {
            e.token_ttl = Some(message);
        } else if m.contains("name") {
            e.name = Some(message);
        } else {
            e.form = Some(message);
        }
        e
    }
}

/// The kinds the form offers: (value, label, hint).
const KINDS: &[(&str, &str, &str)] = &[
    (
        "service",
        "Service",
        "a machine with a secret (client credentials)",
    ),
    (
        "service_key",
        "Service with a key",
        "a machine that signs assertions with its own key: no shared secret (private_key_jwt)",
    ),
    (
        "web",
        "Web app",
        "signs people in; a server that keeps a secret (authorization code)",
    ),
    (
        "spa",
        "Single-page app",
        "signs people in from the browser; no secret (authorization code with PKCE)",
    ),
    (
        "native",
        "Native app",
        "signs people in from a phone or desktop app; no secret",
    ),
    (
        "device",
        "Device or command-line app",
        "signs people in on another screen (device authorization)",
    ),
];

#[derive(Template)]
#[template(path = "console/client_new.html")]
struct NewForm<'a> {
    frame: Frame<'a>,
    kinds: &'static [(&'static str, &'static str, &'static str)],
    kind: &'a str,
    name: &'a str,
    scope: &'a str,
    audiences: &'a str,
    redirect_uris: &'a str,
    jwks: &'a str,
    token_ttl: &'a str,
    errors: FieldErrors,
}

/// `GET /console/clients/new`.
pub(super) async fn new_form(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    if signed.role != super::Role::Admin {
        return super::error_page(
            StatusCode::FORBIDDEN,
            "Read only",
            "An auditor cannot make clients.",
        );
    }
    render(
        StatusCode::OK,
        &NewForm {
            frame: Frame::new(&app, &signed, "New client", "clients"),
            kinds: KINDS,
            kind: "service",
            name: "",
            scope: "",
            audiences: "",
            redirect_uris: "",
            jwks: "",
            token_ttl: "",
            errors: FieldErrors::default(),
        },
    )
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn ttl(s: &str) -> Result<Option<u32>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u32>()
        .map(Some)
        .map_err(|_| "token lifetime must be a whole number of seconds".to_string())
}

/// What the form asks for, as a [`NewClient`].
fn new_client(form: &crate::oauth::form::Form) -> Result<NewClient, String> {
    let kind = form.get("kind").unwrap_or("service");
    let mut new = NewClient {
        name: form.get("name").unwrap_or_default().to_string(),
        scope: form.get("scope").unwrap_or_default().to_string(),
        audiences: words(form.get("audiences").unwrap_or_default()),
        token_ttl: ttl(form.get("token_ttl").unwrap_or_default())?,
        ..Default::default()
    };
    let redirects = words(form.get("redirect_uris").unwrap_or_default());
    let code = || {
        vec![
            crate::model::flows::AUTHORIZATION_CODE.to_string(),
            crate::model::flows::REFRESH_TOKEN.to_string(),
        ]
    };
    match kind {
        "service" => {}
        "service_key" => {
            let jwks = form.get("jwks").unwrap_or_default();
            let value: serde_json::Value =
                serde_json::from_str(jwks).map_err(|_| "public keys must be a JWK Set (JSON)".to_string())?;
            new.auth = TokenAuth::PrivateKeyJwt;
            new.jwks = Some(value);
        }
        "web" => {
            new.grant_types = Some(code());
            new.redirect_uris = redirects;
        }
        "spa" | "native" => {
            new.public = true;
            new.grant_types = Some(code());
            new.redirect_uris = redirects;
        }
        "device" => {
            new.public = true;
            new.grant_types = Some(vec![
                crate::model::flows::DEVICE_CODE.to_string(),
                crate::model::flows::REFRESH_TOKEN.to_string(),
            ]);
        }
        _ => return Err("choose a kind".into()),
    }
    Ok(new)
}

#[derive(Template)]
#[template(path = "console/secret.html")]
struct Secret<'a> {
    frame: Frame<'a>,
    what: &'a str,
    secret: &'a str,
    client_id: &'a str,
    client_path: String,
}

/// `POST /console/clients`: makes the client; a secret is shown in this answer, once.
pub(super) async fn create(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    let form = signed.form.clone().unwrap_or_default();
    let made = match new_client(&form) {
        Ok(new) => crate::admin::create_client(&app.store, &signed.actor, new)
            .await
            .map_err(|e| match e {
                AdminError::Invalid(m) => Ok(m),
                other => Err(other),
            }),
        Err(m) => Err(Ok(m)),
    };
    match made {
        Ok(created) => {
            app.apply_client(&created.client.id).await;
            if created.secret.is_empty() {
                return super::redirect(
                    &app.settings
                        .endpoint(&format!("/console/clients/{}", path_segment(&created.client.id))),
                );
            }
            render(
                StatusCode::CREATED,
                &Secret {
                    frame: Frame::new(&app, &signed, "Client created", "clients"),
                    what: "The client is created.",
                    secret: &created.secret,
                    client_id: &created.client.id,
                    client_path: path_segment(&created.client.id),
                },
            )
        }
        Err(Ok(message)) => render(
            StatusCode::BAD_REQUEST,
            &NewForm {
                frame: Frame::new(&app, &signed, "New client", "clients"),
                kinds: KINDS,
                kind: form.get("kind").unwrap_or("service"),
                name: form.get("name").unwrap_or_default(),
                scope: form.get("scope").unwrap_or_default(),
                audiences: form.get("audiences").unwrap_or_default(),
                redirect_uris: form.get("redirect_uris").unwrap_or_default(),
                jwks: form.get("jwks").unwrap_or_default(),
                token_ttl: form.get("token_ttl").unwrap_or_default(),
                errors: FieldErrors::place(message),
            },
        ),
        Err(Err(e)) => admin_error(&e),
    }
}

fn admin_error(e: &AdminError) -> Response {
    match e {
        AdminError::Store(s) => store_error(s),
        AdminError::NotFound(_) => {
            super::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such client.")
        }
        other => super::error_page(StatusCode::BAD_REQUEST, "Cannot do that", &other.to_string()),
    }
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
    let here = app
        .settings
        .endpoint(&format!("/console/clients/{}", path_segment(&id)));
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
                clear_claims: claims.is_none(),
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
                    super::redirect(&app.settings.endpoint("/console/clients"))
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
