//! `/admin/v1/users`: the user directory over the admin API, with the same operations as
//! `tessera user`. A password may be sent in a request body (never in a URL) and is never
//! returned.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Page, body, caller, paged};
use crate::app::App;
use crate::users::{self, NewUser, UserUpdate};
use crate::views;

pub(super) async fn list(
    State(app): State<Arc<App>>,
    q: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (page, limit) = match paged(q) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match app.store.users_page(page.after.as_deref(), limit).await {
        Ok(list) => Json(views::page("users", &list, limit, views::UserView::from, |u| {
            u.id.as_str()
        }))
        .into_response(),
        Err(e) => crate::operation::AdminError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    email: String,
    #[serde(default)]
    email_verified: bool,
    given_name: Option<String>,
    family_name: Option<String>,
    name: Option<String>,
    password: Option<String>,
    #[serde(default)]
    attributes: crate::claims::Claims,
    #[serde(default)]
    roles: Vec<String>,
}

pub(super) async fn create(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    payload: Result<Json<CreateUser>, JsonRejection>,
) -> Response {
    let c = match body(payload) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let new = NewUser {
        email: c.email,
        email_verified: c.email_verified,
        given_name: c.given_name,
        family_name: c.family_name,
        name: c.name,
        password: c.password,
        attributes: c.attributes,
        roles: c.roles,
    };
    match users::create_user(&app.store, &caller(&ext), new).await {
        Ok(u) => (StatusCode::CREATED, Json(views::user_json(&u))).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn get_one(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.store.user(&id).await {
        Ok(Some(u)) => Json(views::user_json(&u)).into_response(),
        Ok(None) => crate::operation::AdminError::NoUser(id).into_response(),
        Err(e) => crate::operation::AdminError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchUser {
    email: Option<String>,
    email_verified: Option<bool>,
    given_name: Option<String>,
    family_name: Option<String>,
    name: Option<String>,
    attributes: Option<crate::claims::Claims>,
    roles: Option<Vec<String>>,
}

pub(super) async fn update(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
    payload: Result<Json<PatchUser>, JsonRejection>,
) -> Response {
    let p = match body(payload) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    // PATCH replaces the attributes whole.
    let remove_attributes = match (&p.attributes, app.store.user(&id).await) {
        (Some(_), Ok(Some(u))) => u.attributes.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let update = UserUpdate {
        email: p.email,
        email_verified: p.email_verified,
        given_name: p.given_name,
        family_name: p.family_name,
        name: p.name,
        attributes: p.attributes.clone(),
        remove_attributes: remove_attributes
            .into_iter()
            .filter(|k: &String| !p.attributes.as_ref().is_some_and(|a| a.contains_key(k)))
            .collect(),
        roles: p.roles,
    };
    match users::update_user(&app.store, &caller(&ext), &id, update).await {
        Ok(u) => Json(views::user_json(&u)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn set_enabled(app: &App, ext: &axum::http::Extensions, id: &str, enabled: bool) -> Response {
    match users::set_enabled(&app.store, &caller(ext), id, enabled).await {
        Ok((u, ended)) => {
            // This node stops accepting the revoked tokens at once; the others within a poll.
            app.revocations.extend(ended.revoked.clone());
            let mut view = views::user_json(&u);
            if !enabled {
                view["sign_ins_ended"] = views::ended_json(&ended);
            }
            Json(view).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn disable(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    set_enabled(&app, &ext, &id, false).await
}

pub(super) async fn enable(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    set_enabled(&app, &ext, &id, true).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetPassword {
    password: String,
}

pub(super) async fn set_password(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
    payload: Result<Json<SetPassword>, JsonRejection>,
) -> Response {
    let p = match body(payload) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match users::set_password(&app.store, &caller(&ext), &id, &p.password).await {
        Ok((_, ended)) => {
            app.revocations.extend(ended.revoked.clone());
            Json(serde_json::json!({"sign_ins_ended": views::ended_json(&ended)})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn delete_one(
    State(app): State<Arc<App>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    match users::delete_user(&app.store, &caller(&ext), &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
