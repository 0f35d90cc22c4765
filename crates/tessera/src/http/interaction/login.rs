//! `POST /oauth2/login`: the password, throttled, and the device cookie that lets a known
//! browser past the account-wide ceiling.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::authorize::{LOGIN_LABEL, after_login, login_page, posted, store_page};
use super::{Cookies, SESSION_COOKIE};
use crate::app::App;
use crate::limits::Subject;
use crate::model::SessionRecord;

/// `POST /oauth2/login`: checks the password, throttled per account and per address, with the
/// same answer and the same cost whether the account exists or not.
pub async fn login(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let (form, req, client, address) = match posted(
        &app,
        crate::http::peer(&parts.extensions),
        headers,
        body,
        LOGIN_LABEL,
        None,
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let email = form.get("email").unwrap_or_default().trim();
    let password = form.get("password").unwrap_or_default();
    let account_key = crate::model::email_key(email);
    let account = Subject::Account(&account_key);
    let cookies = Cookies::for_issuer(&app.settings.issuer);
    let known_browser = cookies
        .get(headers, DEVICE_COOKIE)
        .is_some_and(|c| device_cookie_ok(&app, c, &account_key, app.clock.now()));
    if let Some(refused) = app.guard.backoff(account, address, known_browser) {
        let mut r = login_page(
            &app,
            headers,
            &req,
            &client,
            StatusCode::TOO_MANY_REQUESTS,
            Some(email),
            Some("Too many failed attempts. Wait a moment, then try again."),
        );
        let secs = crate::limits::retry_after_seconds(refused.retry_after);
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let user = if email.is_empty() || email.len() > 320 {
        None
    } else {
        match app.store.user_by_email(email).await {
            Ok(u) => u,
            Err(e) => return store_page(&e),
        }
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let password_ok = if password.len() > crate::model::user::MAX_PASSWORD {
        app.registry.check_password(None, "").await
    } else {
        app.registry.check_password(hash, password).await
    };
    let user = match user {
        Some(u) if password_ok && u.enabled => u,
        other => {
            app.guard.failed(account, address);
            let why = match other {
                None => "unknown email",
                Some(u) if !u.enabled && password_ok => "user disabled",
                Some(_) => "wrong password",
            };
            tracing::info!(client_id = %req.client_id, reason = why, "sign-in failed");
            return login_page(
                &app,
                headers,
                &req,
                &client,
                StatusCode::OK,
                Some(email),
                Some("Wrong email or password."),
            );
        }
    };
    app.guard.succeeded(account, address);
    // A new session on every sign-in (never one the browser brought: no session fixation).
    let cookie = crate::oauth::oidc::random_token();
    let t = app.clock.now();
    let ttl = app.settings.sign_in.session_ttl as i64;
    let session = SessionRecord {
        id: crate::oauth::oidc::digest(&cookie),
        user_id: user.id.clone(),
        auth_time: t,
        created_at: t,
        expires_at: t + ttl,
    };
    if let Err(e) = app.store.insert_session(&session).await {
        return store_page(&e);
    }
    tracing::info!(client_id = %req.client_id, sub = %user.id, "signed in");
    let set = cookies.set(SESSION_COOKIE, &cookie, Some(ttl));
    let device =
        device_cookie(&app, &account_key, t).and_then(|v| cookies.set(DEVICE_COOKIE, &v, Some(DEVICE_TTL)));
    let mut response = after_login(&app, headers, req, &client, &user, &session, set).await;
    if let Some(d) = device {
        response.headers_mut().append(header::SET_COOKIE, d);
    }
    response
}

/// The device cookie's base name: a browser that signed in to an account before carries it,
/// and is let through while the account's ceiling on failed sign-ins holds strangers out
/// (guessing from many addresses cannot lock the owner out of a browser they used).
const DEVICE_COOKIE: &str = "tessera_device";

/// How long a device cookie is honoured: 90 days.
const DEVICE_TTL: i64 = 90 * 86_400;

const DEVICE_LABEL: &[u8] = b"tessera device cookie";

/// What a device cookie names: the account, as a digest (the cookie never carries the email).
fn device_account(account_key: &str) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("device\0{account_key}").as_bytes(),
    );
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &d.as_ref()[..16],
    )
}

/// A device cookie for the account, sealed (only this server's master keys open it).
fn device_cookie(app: &App, account_key: &str, at: i64) -> Option<String> {
    super::seal(
        app,
        DEVICE_LABEL,
        format!("{}.{at}", device_account(account_key)).as_bytes(),
    )
}

/// Whether `cookie` is an unexpired device cookie for this account.
fn device_cookie_ok(app: &App, cookie: &str, account_key: &str, now: i64) -> bool {
    let Some(plain) = super::open(app, DEVICE_LABEL, cookie) else {
        return false;
    };
    let plain = String::from_utf8_lossy(&plain);
    let Some((account, at)) = plain.split_once('.') else {
        return false;
    };
    let fresh = at
        .parse::<i64>()
        .is_ok_and(|at| at <= now && now < at + DEVICE_TTL);
    fresh && subtle::ConstantTimeEq::ct_eq(account.as_bytes(), device_account(account_key).as_bytes()).into()
}
