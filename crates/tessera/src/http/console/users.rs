//! Users: a list searched by the start of their email (one range of the unique index), making
//! one, roles, a new password, disabling and deleting (each destructive one asked first).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::{Frame, Session, Signed, confirm, path_segment, render, store_error, when};
use crate::app::App;
use crate::model::UserRecord;
use crate::operation::AdminError;
use crate::users::{NewUser, UserUpdate};

const PAGE: u32 = 50;

pub(super) struct Row {
    email: String,
    name: String,
    path: String,
    roles: String,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct List<'a> {
    frame: Frame<'a>,
    q: String,
    rows: Vec<Row>,
    next: Option<String>,
}

/// `GET /console/users[?q=…][&after=…]`.
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
        .take(254)
        .collect::<String>();
    let found = match app.store.users_by_email(&text, q.get("after"), PAGE).await {
        Ok(f) => f,
        Err(e) => return store_error(&e),
    };
    let next = (found.len() == PAGE as usize)
        .then(|| found.last())
        .flatten()
        .map(|last| {
            crate::oauth::oidc::with_query(
                &super::url(&app, "/console/users"),
                &[("q", &text), ("after", &crate::model::email_key(&last.email))],
            )
        });
    let rows = found
        .iter()
        .map(|u| Row {
            email: u.email.clone(),
            name: u.name.clone().unwrap_or_default(),
            path: path_segment(&u.id),
            roles: u.roles.join(", "),
            enabled: u.enabled,
        })
        .collect();
    render(
        StatusCode::OK,
        &List {
            frame: Frame::new(&app, &signed, "Users", "users"),
            q: text,
            rows,
            next,
        },
    )
}

#[derive(Template)]
#[template(path = "console/user_new.html")]
struct NewForm<'a> {
    frame: Frame<'a>,
    email: &'a str,
    name: &'a str,
    error_form: Option<String>,
    error_email: Option<String>,
    error_password: Option<String>,
}

/// `GET /console/users/new`.
pub(super) async fn new_form(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    if signed.role != super::Role::Admin {
        return super::error_page(
            StatusCode::FORBIDDEN,
            "Read only",
            "An auditor cannot make users.",
        );
    }
    render(
        StatusCode::OK,
        &NewForm {
            frame: Frame::new(&app, &signed, "New user", "users"),
            email: "",
            name: "",
            error_form: None,
            error_email: None,
            error_password: None,
        },
    )
}

/// The roles a form's checkboxes ask for.
fn roles(form: &crate::oauth::form::Form) -> Vec<String> {
    let mut roles = Vec::new();
    if form.get("role_admin") == Some("yes") {
        roles.push(crate::model::user::ROLE_ADMIN.to_string());
    }
    if form.get("role_auditor") == Some("yes") {
        roles.push(crate::model::user::ROLE_AUDITOR.to_string());
    }
    roles
}

/// `POST /console/users`.
pub(super) async fn create(State(app): State<Arc<App>>, axum::Extension(signed): Session) -> Response {
    let form = signed.form.clone().unwrap_or_default();
    let new = NewUser {
        email: form.get("email").unwrap_or_default().to_string(),
        name: form.get("name").map(str::to_string),
        password: form.get("password").map(str::to_string),
        roles: roles(&form),
        ..Default::default()
    };
    match crate::users::create_user(&app.store, &signed.actor, new).await {
        Ok(u) => super::redirect(&super::url(
            &app,
            &format!("/console/users/{}", path_segment(&u.id)),
        )),
        Err(e @ (AdminError::Invalid(_) | AdminError::Store(crate::store::StoreError::Conflict(_)))) => {
            let message = match &e {
                AdminError::Invalid(m) => m.clone(),
                other => other.to_string(),
            };
            let lower = message.to_ascii_lowercase();
            let (mut error_email, mut error_password, mut error_form) = (None, None, None);
            if lower.contains("password") {
                error_password = Some(message);
            } else if lower.contains("email") {
                error_email = Some(message);
            } else {
                error_form = Some(message);
            }
            render(
                StatusCode::BAD_REQUEST,
                &NewForm {
                    frame: Frame::new(&app, &signed, "New user", "users"),
                    email: form.get("email").unwrap_or_default(),
                    name: form.get("name").unwrap_or_default(),
                    error_form,
                    error_email,
                    error_password,
                },
            )
        }
        Err(e) => admin_error(&e),
    }
}

fn admin_error(e: &AdminError) -> Response {
    match e {
        AdminError::Store(s) => store_error(s),
        AdminError::NoUser(_) => {
            super::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such user.")
        }
        other => super::error_page(StatusCode::BAD_REQUEST, "Cannot do that", &other.to_string()),
    }
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct Show<'a> {
    frame: Frame<'a>,
    u: &'a UserRecord,
    path: String,
    attributes: String,
    created: String,
    is_admin: bool,
    is_auditor: bool,
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
    let u = match app.store.user(id).await {
        Ok(Some(u)) => u,
        Ok(None) => return admin_error(&AdminError::NoUser(id.to_string())),
        Err(e) => return store_error(&e),
    };
    let attributes = if u.attributes.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(u.attributes.clone()).to_string()
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(
        status,
        &Show {
            frame: Frame::new(app, signed, "User", "users"),
            path: path_segment(&u.id),
            attributes,
            created: when(u.created_at),
            is_admin: u.roles.iter().any(|r| r == crate::model::user::ROLE_ADMIN),
            is_auditor: u.roles.iter().any(|r| r == crate::model::user::ROLE_AUDITOR),
            u: &u,
            notice,
            error,
        },
    )
}

/// `GET /console/users/{id}`.
pub(super) async fn show(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    Path(id): Path<String>,
) -> Response {
    show_page(&app, &signed, &id, None, None).await
}

/// `POST /console/users/{id}/{action}`: roles, password, disable, enable, delete.
pub(super) async fn act(
    State(app): State<Arc<App>>,
    axum::Extension(signed): Session,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let form = signed.form.clone().unwrap_or_default();
    let confirmed = form.get("confirm") == Some("yes");
    let here = super::url(&app, &format!("/console/users/{}", path_segment(&id)));
    let action_url = format!("{here}/{action}");
    let actor = &signed.actor;
    // Whatever happens, someone can still sign in to change things.
    let takes_admin_away = match action.as_str() {
        "roles" => !roles(&form).iter().any(|r| r == crate::model::user::ROLE_ADMIN),
        "disable" | "delete" => confirmed,
        _ => false,
    };
    if takes_admin_away {
        match last_admin(&app, &id).await {
            Ok(true) => {
                return show_page(
                    &app,
                    &signed,
                    &id,
                    None,
                    Some("This is the last enabled administrator: make another one first."),
                )
                .await;
            }
            Ok(false) => {}
            Err(e) => return store_error(&e),
        }
    }
    let done: Result<String, AdminError> = match action.as_str() {
        "roles" => {
            let roles = roles(&form);
            if id == signed.user.id && !roles.iter().any(|r| r == crate::model::user::ROLE_ADMIN) {
                return show_page(
                    &app,
                    &signed,
                    &id,
                    None,
                    Some("You cannot take your own admin role away (ask another administrator)."),
                )
                .await;
            }
            let update = UserUpdate {
                roles: Some(roles),
                ..Default::default()
            };
            crate::users::update_user(&app.store, actor, &id, update)
                .await
                .map(|_| "Roles saved.".to_string())
        }
        "attributes" => {
            let text = form.get("attributes").unwrap_or_default().trim();
            let wanted = if text.is_empty() {
                crate::claims::Claims::new()
            } else {
                match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => {
                        return show_page(
                            &app,
                            &signed,
                            &id,
                            None,
                            Some("Attributes must be a JSON object."),
                        )
                        .await;
                    }
                }
            };
            let current = match app.store.user(&id).await {
                Ok(Some(u)) => u.attributes,
                Ok(None) => return admin_error(&AdminError::NoUser(id.clone())),
                Err(e) => return store_error(&e),
            };
            let update = UserUpdate {
                remove_attributes: current
                    .keys()
                    .filter(|k| !wanted.contains_key(*k))
                    .cloned()
                    .collect(),
                attributes: Some(wanted),
                ..Default::default()
            };
            crate::users::update_user(&app.store, actor, &id, update)
                .await
                .map(|_| "Attributes saved.".to_string())
        }
        "password" => {
            // No confirmation page: a password is never carried through one (the form that
            // holds it is the confirmation).
            let password = form.get("password").unwrap_or_default().to_string();
            crate::users::set_password(&app.store, actor, &id, &password)
                .await
                .map(|_| "Password set; the user is signed out everywhere.".to_string())
        }
        "disable" | "enable" => {
            let enable = action == "enable";
            if !enable && !confirmed {
                return confirm(
                    &app,
                    &signed,
                    "Disable the user",
                    "Disable this user now? They are signed out everywhere and cannot sign in until enabled.",
                    "Disable",
                    &action_url,
                    &[],
                    &here,
                );
            }
            if !enable && id == signed.user.id {
                return show_page(&app, &signed, &id, None, Some("You cannot disable yourself.")).await;
            }
            crate::users::set_enabled(&app.store, actor, &id, enable)
                .await
                .map(|_| {
                    if enable {
                        "Enabled."
                    } else {
                        "Disabled; signed out everywhere."
                    }
                    .to_string()
                })
        }
        "delete" => {
            if !confirmed {
                return confirm(
                    &app,
                    &signed,
                    "Delete the user",
                    "Delete this user for good? Their sessions, consents and refresh tokens go too.",
                    "Delete",
                    &action_url,
                    &[],
                    &here,
                );
            }
            if id == signed.user.id {
                return show_page(&app, &signed, &id, None, Some("You cannot delete yourself.")).await;
            }
            return match crate::users::delete_user(&app.store, actor, &id).await {
                Ok(()) => super::redirect(&super::url(&app, "/console/users")),
                Err(e) => admin_error(&e),
            };
        }
        _ => return super::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such action."),
    };
    match done {
        Ok(notice) => show_page(&app, &signed, &id, Some(&notice), None).await,
        Err(AdminError::Invalid(m)) => show_page(&app, &signed, &id, None, Some(&m)).await,
        Err(e) => admin_error(&e),
    }
}

/// Whether user `id` is the only enabled administrator.
async fn last_admin(app: &App, id: &str) -> Result<bool, crate::store::StoreError> {
    let Some(user) = app.store.user(id).await? else {
        return Ok(false);
    };
    let admin = |u: &UserRecord| u.enabled && u.roles.iter().any(|r| r == crate::model::user::ROLE_ADMIN);
    if !admin(&user) {
        return Ok(false);
    }
    Ok(app.store.count_admins().await? <= 1)
}
