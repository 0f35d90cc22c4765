//! `GET`/`POST /oauth2/device`: the verification page of device authorization (RFC 8628 §3.3).
//! A person enters the user code a device shows (or arrives with it filled in from
//! `verification_uri_complete`, and confirms it); then the usual sign-in and a consent page that
//! shows the code again; their answer goes to the device's request, which its next poll reads.
//! Wrong codes count as failed authentications of the address (and, across addresses, of user
//! codes as a whole), so guessing is slowed down like password guessing.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use super::authorize::{bad_request, cross_site, forbidden_form, proceed, refused_page, store_page};
use super::pages::{self, DeviceEntry};
use super::{CSRF_COOKIE, Cookies};
use crate::app::App;
use crate::limits::Subject;
use crate::model::device::{display_user_code, normalize_user_code};
use crate::oauth::authorize::{AuthRequest, DeviceInteraction, Prompt};
use crate::oauth::form::Form;

/// What the entry form's CSRF token is bound to (beside the browser's CSRF cookie).
const ENTRY_BINDING: &str = "tessera device code entry";

/// `GET /oauth2/device[?user_code=…]` shows the form; `POST` takes the code.
pub async fn device(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let address =
        match crate::oauth::admission::admit(&app, crate::http::peer(&parts.extensions), &parts.headers) {
            Ok(a) => a,
            Err(e) => return refused_page(e),
        };
    let headers = &parts.headers;
    if parts.method == Method::GET || parts.method == Method::HEAD {
        let query = parts.uri.query().unwrap_or_default();
        let typed = Form::parse(query.as_bytes())
            .ok()
            .and_then(|f| f.get("user_code").map(str::to_string))
            .unwrap_or_default();
        // Only a well-formed code is filled in: the field never echoes arbitrary input.
        let shown = normalize_user_code(&typed)
            .map(|c| display_user_code(&c))
            .unwrap_or_default();
        return entry_page(&app, headers, StatusCode::OK, &shown, None);
    }
    if parts.method != Method::POST {
        return pages::get_or_post_only();
    }
    if cross_site(&app, headers) {
        return forbidden_form();
    }
    let Ok(form) = crate::oauth::admission::read_form(&app, headers, body).await else {
        return bad_request("The form is malformed.");
    };
    let cookies = Cookies::for_issuer(&app.settings.issuer);
    if !super::csrf_ok(
        &app,
        cookies.get(headers, CSRF_COOKIE),
        ENTRY_BINDING,
        form.get("csrf"),
    ) {
        return forbidden_form();
    }
    // A signed-in person is let past the ceiling on wrong codes from everywhere (guessing from
    // many addresses cannot lock them out), not past their own address's count.
    let signed_in = match super::authorize::current_session(&app, &cookies, headers).await {
        Ok(s) => s.is_some(),
        Err(e) => return store_page(&e),
    };
    if let Some(refused) = app.guard.backoff(Subject::UserCode, address, signed_in) {
        let mut r = entry_page(
            &app,
            headers,
            StatusCode::TOO_MANY_REQUESTS,
            "",
            Some("Too many wrong codes. Wait a moment, then try again."),
        );
        let secs = crate::limits::retry_after_seconds(refused.retry_after);
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let typed = form.get("user_code").unwrap_or_default();
    let found = match normalize_user_code(typed) {
        None => None,
        Some(code) => match app.store.pending_device(&crate::oauth::oidc::digest(&code)).await {
            Ok(d) => d.map(|d| (d, code)),
            Err(e) => return store_page(&e),
        },
    };
    let Some((device, code)) = found else {
        return wrong_code(&app, headers, address);
    };
    let client = match app.store.client(&device.grant.client_id).await {
        Ok(Some(c)) if c.enabled && c.flows.allows(crate::model::flows::DEVICE_CODE) => c,
        Ok(_) => return wrong_code(&app, headers, address),
        Err(e) => return store_page(&e),
    };
    tracing::info!(client_id = %client.id, "device user code entered");
    let req = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: String::new(),
        scope: device.grant.scope.clone(),
        state: None,
        nonce: None,
        code_challenge: String::new(),
        prompt: Prompt::default(),
        max_age: None,
        login_hint: None,
        issued_at: app.clock.now(),
        resources: device.grant.resources.clone(),
        dpop_jkt: None,
        device: Some(DeviceInteraction {
            id: device.id,
            user_code: display_user_code(&code),
        }),
    };
    proceed(&app, headers, address, req, &client).await
}

/// A code that is not one (malformed, unknown, expired, answered): counted, and the form again.
fn wrong_code(app: &App, headers: &HeaderMap, address: IpAddr) -> Response {
    app.guard.failed(Subject::UserCode, address);
    tracing::info!("a wrong device user code was entered");
    entry_page(
        app,
        headers,
        StatusCode::OK,
        "",
        Some("That code is not right, or it has expired. Check the code on your device and try again."),
    )
}

/// The entry form, with a CSRF cookie (reused, or set now).
fn entry_page(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    user_code: &str,
    error: Option<&str>,
) -> Response {
    let action = app.settings.endpoint(crate::oauth::device::VERIFICATION_PATH);
    super::with_csrf(app, headers, ENTRY_BINDING, |csrf| {
        pages::device_entry(
            status,
            &DeviceEntry {
                action: &action,
                csrf,
                user_code,
                error,
            },
        )
    })
}

/// Records the person's answer to a device's request (`allowed`: who, when they signed in, the
/// scopes) and says what happens next.
pub(super) async fn answer(
    app: &App,
    device: &DeviceInteraction,
    allowed: Option<(&str, i64, &[String])>,
) -> Response {
    let approve = allowed.is_some();
    match app.store.decide_device(&device.id, allowed).await {
        Ok(true) if approve => {
            tracing::info!("device request allowed");
            pages::error(
                StatusCode::OK,
                "Device connected",
                "You are signed in on your device. You can close this window.",
            )
        }
        Ok(true) => {
            tracing::info!("device request denied");
            pages::error(
                StatusCode::OK,
                "Request denied",
                "The device will not be signed in. You can close this window.",
            )
        }
        Ok(false) => pages::error(
            StatusCode::BAD_REQUEST,
            "This code cannot be used",
            "It has expired or was answered already. Start again on your device.",
        ),
        Err(e) => store_page(&e),
    }
}
