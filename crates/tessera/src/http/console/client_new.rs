//! Making a client: the form, by kind (service, service with a key, web, single-page, native,
//! device), with errors beside their fields; and the page that shows a new secret once.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{Frame, Session, path_segment, render, store_error};
use crate::admin::NewClient;
use crate::app::App;
use crate::model::auth::TokenAuth;
use crate::operation::AdminError;

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

pub(super) fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub(super) fn ttl(s: &str) -> Result<Option<u32>, String> {
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
pub(super) struct Secret<'a> {
    pub(super) frame: Frame<'a>,
    pub(super) what: &'a str,
    pub(super) secret: &'a str,
    pub(super) client_id: &'a str,
    pub(super) client_path: String,
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
                return super::redirect(&super::url(
                    &app,
                    &format!("/console/clients/{}", path_segment(&created.client.id)),
                ));
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

pub(super) fn admin_error(e: &AdminError) -> Response {
    match e {
        AdminError::Store(s) => store_error(s),
        AdminError::NotFound(_) => {
            super::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such client.")
        }
        other => super::error_page(StatusCode::BAD_REQUEST, "Cannot do that", &other.to_string()),
    }
}
