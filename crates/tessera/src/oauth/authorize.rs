//! The authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2), checked: what the
//! authorization endpoint accepts once the client and its redirect URI are known good, and the
//! errors it sends back to the client (RFC 6749 §4.1.2.1). The pages that sign a person in and
//! ask for consent are `http::interaction`'s.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::model::scope::parse_scope;
use crate::model::{ClientRecord, CodeRecord, Grant};
use crate::oauth::form::Form;
use crate::store::StoreError;

/// What `prompt` asked for (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Prompt {
    /// Never show a page: fail with `login_required` or `consent_required` instead.
    pub none: bool,
    /// Ask for the password even with a session.
    pub login: bool,
    /// Ask for consent even if it was given before.
    pub consent: bool,
}

/// A checked authorization request, sealed into the forms between the pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// Where the answer goes, as presented (it matched a registered URI).
    pub redirect_uri: String,
    /// Asked-for scopes.
    pub scope: Vec<String>,
    /// The client's `state`, returned as is.
    pub state: Option<String>,
    /// The `nonce` for the ID token.
    pub nonce: Option<String>,
    /// PKCE `S256` challenge.
    pub code_challenge: String,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age`, seconds.
    pub max_age: Option<i64>,
    /// `login_hint`: the email to fill in.
    pub login_hint: Option<String>,
    /// When the request arrived (sealed requests expire).
    pub issued_at: i64,
    /// The `resource`s asked for (RFC 8707 §2.1): the grant's tokens may be for these only.
    #[serde(default)]
    pub resources: Vec<String>,
    /// `dpop_jkt` (RFC 9449 §10): the code may be redeemed only with a proof of this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// For a device's request (RFC 8628): which one, and its user code as shown. The person's
    /// answer goes to that request instead of a redirect URI (there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInteraction>,
}

/// The device request a sign-in is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceInteraction {
    /// The stored request's id (the SHA-256 of its device code).
    pub id: String,
    /// Its user code, as shown (`BCDF-GHJK`), for the person to compare with the device's.
    pub user_code: String,
}

/// An authorization error sent back to the client (RFC 6749 §4.1.2.1).
pub struct Denied {
    /// The error code.
    pub error: &'static str,
    /// Its description.
    pub description: String,
}

impl Denied {
    /// Where the browser goes with this error: the client's redirect URI with `error`,
    /// `error_description`, `state` and `iss` (RFC 6749 §4.1.2.1, RFC 9207).
    pub fn location(&self, app: &App, redirect_uri: &str, state: Option<&str>) -> String {
        let mut params = vec![
            ("error", self.error),
            ("error_description", self.description.as_str()),
        ];
        if let Some(s) = state {
            params.push(("state", s));
        }
        params.push(("iss", &app.settings.issuer));
        super::oidc::with_query(redirect_uri, &params)
    }
}

/// An authorization error with its description.
pub fn denied(error: &'static str, description: impl Into<String>) -> Denied {
    Denied {
        error,
        description: description.into(),
    }
}

/// Checks everything after the client and redirect URI.
pub fn check(
    app: &App,
    client: &ClientRecord,
    redirect_uri: &str,
    form: &Form,
) -> Result<AuthRequest, Denied> {
    if form.get("request").is_some() {
        return Err(denied(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if form.get("request_uri").is_some() {
        return Err(denied(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match form.get("response_type") {
        None => return Err(denied("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => return Err(denied("unsupported_response_type", "response_type must be code")),
    }
    if form.get("response_mode").is_some_and(|m| m != "query") {
        return Err(denied("invalid_request", "response_mode must be query"));
    }
    let cached = app.registry.get(&client.id);
    let Some(cached) = cached.filter(|c| c.enabled && c.may_use(crate::model::flows::AUTHORIZATION_CODE))
    else {
        return Err(denied(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    };
    let Some(scope) = form.get("scope") else {
        return Err(denied("invalid_scope", "scope is required"));
    };
    let (scope, resources) = person_scope(&cached, scope, form)?;
    // PKCE with S256 for every client (RFC 9700 §2.1.1); `plain` would give nothing.
    let Some(challenge) = form.get("code_challenge") else {
        return Err(denied(
            "invalid_request",
            "code_challenge is required (PKCE, S256)",
        ));
    };
    if form.get("code_challenge_method") != Some("S256") {
        return Err(denied("invalid_request", "code_challenge_method must be S256"));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(denied(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 (43 characters)",
        ));
    }
    let mut prompt = Prompt::default();
    if let Some(p) = form.get("prompt") {
        for v in p.split(' ') {
            match v {
                "none" => prompt.none = true,
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                _ => {
                    return Err(denied(
                        "invalid_request",
                        "prompt must be none, login, consent or select_account",
                    ));
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(denied(
                "invalid_request",
                "prompt=none cannot be combined with another value",
            ));
        }
    }
    let max_age = match form.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .map_err(|_| denied("invalid_request", "max_age must be a number of seconds"))?
                .into(),
        ),
    };
    // RFC 9449 §10: the thumbprint of the key the client will prove at the token endpoint.
    let dpop_jkt = form.get("dpop_jkt").map(str::to_string);
    if dpop_jkt.as_ref().is_some_and(|j| {
        j.len() != 43
            || !j
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        return Err(denied(
            "invalid_request",
            "dpop_jkt must be a base64url SHA-256 JWK thumbprint (43 characters)",
        ));
    }
    let bounded = |name: &str, max: usize| -> Result<Option<String>, Denied> {
        match form.get(name) {
            Some(v) if v.len() > max || v.chars().any(char::is_control) => Err(denied(
                "invalid_request",
                format!("{name} is longer than {max} bytes or holds control characters"),
            )),
            v => Ok(v.map(str::to_string)),
        }
    };
    Ok(AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scope,
        state: bounded("state", 1024)?,
        nonce: bounded("nonce", 512)?,
        code_challenge: challenge.to_string(),
        prompt,
        max_age,
        login_hint: bounded("login_hint", 320)?,
        issued_at: app.clock.now(),
        resources,
        dpop_jkt,
        device: None,
    })
}

/// The scope and resources a request that signs a person in asks for (an authorization request,
/// a device's request): each scope one of the client's or of OpenID Connect's (never the admin
/// scope; `offline_access` only for a client that may refresh), each resource one of the
/// client's audiences (RFC 8707 §2.1).
pub fn person_scope(
    cached: &crate::clients::CachedClient,
    scope: &str,
    form: &Form,
) -> Result<(Vec<String>, Vec<String>), Denied> {
    let scope = parse_scope(scope).map_err(|_| denied("invalid_scope", "scope is malformed"))?;
    if scope.iter().any(|s| s == crate::model::ADMIN_SCOPE) {
        return Err(denied(
            "invalid_scope",
            "the admin scope is for machine clients, never for people",
        ));
    }
    for s in &scope {
        let oidc = super::oidc::OIDC_SCOPES.contains(&s.as_str())
            && (s != "offline_access" || cached.may_use(crate::model::flows::REFRESH_TOKEN));
        if !oidc && !cached.grants.scopes.iter().any(|a| **a == **s) {
            let s = if s.len() > 64 { "requested" } else { s.as_str() };
            return Err(denied(
                "invalid_scope",
                format!("scope {s} is not allowed for this client"),
            ));
        }
    }
    // RFC 8707 §2.1: each resource one of the client's audiences (never the admin API's, which
    // is for machines); the grant remembers them, so no later token request can widen them.
    let mut resources: Vec<String> = Vec::new();
    for r in form.all("resource") {
        if !crate::model::client::is_absolute_uri(r) {
            return Err(denied(
                "invalid_target",
                "resource must be an absolute URI without a fragment",
            ));
        }
        if r == crate::model::ADMIN_AUDIENCE || !cached.grants.audiences.iter().any(|a| &**a == r) {
            return Err(denied(
                "invalid_target",
                "resource is not allowed for this client",
            ));
        }
        if !resources.iter().any(|x| x == r) {
            resources.push(r.to_string());
        }
    }
    Ok((scope, resources))
}

/// Issues a code for a checked request and the person who signed in at `auth_time`, stores it
/// (as its digest), and answers where the browser goes with it: the redirect URI with `code`,
/// `state` and `iss` (RFC 6749 §4.1.2, RFC 9207).
pub async fn issue_code(
    app: &App,
    req: &AuthRequest,
    user_id: &str,
    auth_time: i64,
) -> Result<String, StoreError> {
    let code = super::oidc::random_token();
    let t = app.clock.now();
    let record = CodeRecord {
        id: super::oidc::digest(&code),
        grant: Grant {
            client_id: req.client_id.clone(),
            user_id: user_id.to_string(),
            scope: req.scope.clone(),
            auth_time,
            nonce: req.nonce.clone(),
            redirect_uri: Some(req.redirect_uri.clone()),
            code_challenge: Some(req.code_challenge.clone()),
            resources: req.resources.clone(),
            dpop_jkt: req.dpop_jkt.clone(),
        },
        expires_at: t + super::oidc::CODE_TTL,
        keep_until: t + super::oidc::CODE_TTL,
    };
    app.store.insert_code(&record).await?;
    tracing::info!(client_id = %req.client_id, sub = %user_id, "authorization code issued");
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    params.push(("iss", &app.settings.issuer));
    Ok(super::oidc::with_query(&req.redirect_uri, &params))
}
