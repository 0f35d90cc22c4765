//! The device authorization endpoint (RFC 8628 §3.1–3.2): a client registered for the device
//! code grant gets a device code to poll the token endpoint with, and a user code for a person
//! to enter at the verification page (`crate::http::interaction`), where they sign in and allow
//! or deny. The poll is the grant's (`super::grants`).

use bytes::Bytes;
use http::HeaderMap;
use serde_json::json;

use super::admission::{BoxError, Connection, admit, authenticate_client, read_form};
use super::{Answer, OAuthError};
use crate::app::App;
use crate::model::device::{DeviceRecord, DeviceStatus, display_user_code, user_code_from};
use crate::model::flows::DEVICE_CODE;

/// Path of the device authorization endpoint.
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth2/device_authorization";

/// Path of the page where a person enters a user code (`verification_uri`).
pub const VERIFICATION_PATH: &str = "/oauth2/device";

/// How many user codes are drawn before giving up (a collision with a live one is rare: one in
/// 2^34 per live request).
const DRAWS: usize = 4;

/// `POST /oauth2/device_authorization`: admission, client authentication (a public client
/// names itself with `client_id`), the scope and resources, then a new request.
pub async fn handle<B>(
    app: &App,
    connection: &Connection,
    headers: &HeaderMap,
    body: B,
) -> Result<Answer, OAuthError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let address = admit(app, connection.peer, headers)?;
    let form = read_form(app, headers, body).await?;
    let client = authenticate_client(app, address, connection, headers, &form).await?;
    if !client.may_use(DEVICE_CODE) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use device authorization".into(),
        ));
    }
    // RFC 8628 §3.1: scope is optional; without one, the client's own scopes.
    let scope = match form.get("scope") {
        Some(s) => s.to_string(),
        None => client
            .grants
            .scopes
            .iter()
            .map(|s| &**s)
            .collect::<Vec<_>>()
            .join(" "),
    };
    if scope.is_empty() {
        return Err(OAuthError::InvalidScope(
            "scope is required (this client has no scopes of its own)".into(),
        ));
    }
    let (scope, resources) = super::authorize::person_scope(&client, &scope, &form).map_err(|d| {
        if d.error == "invalid_target" {
            OAuthError::InvalidTarget(d.description.into())
        } else {
            OAuthError::InvalidScope(d.description.into())
        }
    })?;
    let device_code = super::oidc::random_token();
    let t = app.clock.now();
    let settings = &app.settings.sign_in;
    let ttl = settings.device_code_ttl as i64;
    let interval = settings.device_poll_interval as i64;
    for _ in 0..DRAWS {
        let Some(user_code) = new_user_code() else {
            continue;
        };
        let record = DeviceRecord {
            id: super::oidc::digest(&device_code),
            user_code: super::oidc::digest(&user_code),
            grant: crate::model::Grant {
                client_id: client.id.to_string(),
                user_id: String::new(),
                scope: scope.clone(),
                auth_time: 0,
                nonce: None,
                redirect_uri: None,
                code_challenge: None,
                resources: resources.clone(),
                dpop_jkt: None,
            },
            status: DeviceStatus::Pending,
            created_at: t,
            expires_at: t + ttl,
            interval,
            last_polled_at: None,
        };
        if !app
            .store
            .insert_device(&record)
            .await
            .map_err(|e| OAuthError::store(&e))?
        {
            continue;
        }
        tracing::info!(client_id = %client.id, "device authorization started");
        let shown = display_user_code(&user_code);
        let verification_uri = app.settings.endpoint(VERIFICATION_PATH);
        let complete = super::oidc::with_query(&verification_uri, &[("user_code", &shown)]);
        return Answer::json(&json!({
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": verification_uri,
            "verification_uri_complete": complete,
            "expires_in": ttl,
            "interval": interval,
        }));
    }
    Err(OAuthError::internal(&"no free user code after several draws"))
}

/// A new random user code (RFC 8628 §6.1), normalized.
fn new_user_code() -> Option<String> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut random = [0u8; 32];
    SystemRandom::new().fill(&mut random).ok()?;
    user_code_from(&random)
}
