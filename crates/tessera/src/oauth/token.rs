//! The token endpoint (RFC 6749 §3.2) and the client credentials grant (§4.4).
//!
//! The hot path reads only memory: the client comes from the registry cache, the key from the key
//! ring. Nothing is written to the store for an issued token.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use std::borrow::Cow;

#[cfg(doc)]
use tessera_proto::AccessTokenClaims;

use super::OAuthError;
use super::client_auth::{Credentials, Method, credentials};
use super::form::{Form, FormError};
use crate::app::App;
use crate::clients::{AuthFailure, CachedClient};
use crate::keys::KeySet;
use crate::limits::Subject;
use crate::model::paths::{PathRules, uri_host};
use crate::model::scope::parse_scope;
use crate::oauth::resource::is_absolute_uri;

/// `POST /oauth2/token`: strict RFC 6749.
pub async fn token(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&app, &parts.headers, body, &PathRules::STRICT).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// The token endpoint on an extra path, with that path's rules.
pub async fn token_at(app: Arc<App>, request: Request, rules: Arc<PathRules>) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&app, &parts.headers, body, &rules).await {
        Ok(response) => response,
        Err(e) if rules.camel_case_errors => e.into_camel_case_response(),
        Err(e) => e.into_response(),
    }
}

/// Any other method on the token endpoint.
pub async fn method_not_allowed() -> Response {
    OAuthError::MethodNotAllowed.into_response()
}

fn is_form_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return false;
    }
    parts.all(|p| match p.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        Some(_) => true,
        None => p.trim().is_empty(),
    })
}

/// Reads the body within the size limit and the request deadline.
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, OAuthError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(OAuthError::InvalidRequest(
            format!("request body unreadable or larger than {limit} bytes").into(),
        )),
        Err(_) => Err(OAuthError::InvalidRequest(
            "request body not received in time".into(),
        )),
    }
}

/// Parses a form body, mapping failures to `invalid_request`.
pub fn parse_form(bytes: &[u8]) -> Result<Form, OAuthError> {
    Form::parse(bytes).map_err(form_error)
}

fn form_error(e: FormError) -> OAuthError {
    match e {
        FormError::Malformed => OAuthError::InvalidRequest("malformed form encoding".into()),
        FormError::Repeated(name) => {
            let name = if name.len() > 64 {
                "a parameter".to_string()
            } else {
                name
            };
            OAuthError::InvalidRequest(format!("parameter {name} repeated").into())
        }
        FormError::TooMany => OAuthError::InvalidRequest("too many parameters".into()),
    }
}

fn is_multipart(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("multipart/form-data").then_some(value)
}

/// Reads the token request's body: a form, or (where the path allows it) `multipart/form-data`
/// with the same rules.
async fn read_token_request(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    rules: &PathRules,
) -> Result<Form, OAuthError> {
    let Some(content_type) = is_multipart(headers).filter(|_| rules.multipart) else {
        return read_form(app, headers, body).await;
    };
    let bytes = read_body(body, app.settings.max_body_bytes, app.settings.request_timeout).await?;
    Form::parse_multipart(content_type, bytes)
        .await
        .map_err(form_error)
}

/// Reads an `application/x-www-form-urlencoded` request body strictly, within the size limit
/// and the request deadline.
pub async fn read_form(app: &App, headers: &HeaderMap, body: Body) -> Result<Form, OAuthError> {
    if !is_form_content_type(headers) {
        return Err(OAuthError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ));
    }
    let bytes = read_body(body, app.settings.max_body_bytes, app.settings.request_timeout).await?;
    parse_form(&bytes)
}

/// The common start of every client-authenticated endpoint (token, introspection, revocation):
/// the client's credentials are found, then the endpoint's `required` parameter, then the secret
/// is checked, so a malformed request is refused before any secret check. Returns the
/// parameter's value, the client and how it authenticated.
pub async fn authenticate_request<'f>(
    app: &App,
    address: IpAddr,
    headers: &HeaderMap,
    form: &'f Form,
    required: &'static str,
) -> Result<(&'f str, Arc<CachedClient>, Method), OAuthError> {
    authenticate_on(app, address, headers, form, required, &PathRules::STRICT).await
}

/// The first step of every client-authenticated endpoint: the client's address (the peer's, or
/// from a trusted proxy's header), counted against its rate before anything is read.
pub fn admit(app: &App, headers: &HeaderMap) -> Result<IpAddr, OAuthError> {
    let peer = crate::http::PEER
        .try_with(|p| p.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let address = app.guard.client_address(peer, headers);
    app.guard.check_address(address).map_err(OAuthError::refused)?;
    Ok(address)
}

/// [`authenticate_request`] on a path that may accept only some authentication methods.
async fn authenticate_on<'f>(
    app: &App,
    address: IpAddr,
    headers: &HeaderMap,
    form: &'f Form,
    required: &'static str,
    rules: &PathRules,
) -> Result<(&'f str, Arc<CachedClient>, Method), OAuthError> {
    let creds = credentials(headers, form)?;
    match creds.method {
        Method::Basic if !rules.basic => {
            return Err(OAuthError::InvalidClient(
                "this endpoint accepts client_secret_post only".into(),
            ));
        }
        Method::Post | Method::None if !rules.post => {
            return Err(OAuthError::InvalidClient(
                "this endpoint accepts HTTP Basic (client_secret_basic) only".into(),
            ));
        }
        _ => {}
    }
    let Some(value) = form.get(required) else {
        return Err(OAuthError::InvalidRequest(
            format!("{required} is required").into(),
        ));
    };
    let client = authenticate(app, &creds, address).await?;
    Ok((value, client, creds.method))
}

/// Authenticates the client that sent `creds`; every failure is the same `invalid_client`. While
/// a back-off runs for the client id or the address, only a check that costs nothing is made,
/// and anything it does not accept gets 429, whether the id exists or not.
async fn authenticate(
    app: &App,
    creds: &Credentials,
    address: IpAddr,
) -> Result<Arc<CachedClient>, OAuthError> {
    if creds.method == Method::None {
        // A public client has no secret to guess: it is known and public, or refused.
        return match app.registry.get(&creds.client_id) {
            Some(client) if client.public && client.enabled => {
                app.guard.check_client(&client.id).map_err(OAuthError::refused)?;
                Ok(client)
            }
            _ => {
                tracing::info!(client = %log_id(&creds.client_id, AuthFailure::UnknownClient), "public client authentication failed");
                Err(OAuthError::InvalidClient(
                    "client authentication failed (a confidential client must send its secret)".into(),
                ))
            }
        };
    }
    let subject = Subject::Client(&creds.client_id);
    let result = match app.guard.backoff(subject, address, false) {
        Some(refused) => match app.registry.authenticate_cheaply(&creds.client_id, &creds.secret) {
            Some(client) => Ok(client),
            None => return Err(OAuthError::refused(refused)),
        },
        None => app.registry.authenticate(&creds.client_id, &creds.secret).await,
    };
    match result {
        Ok(client) => {
            app.guard.succeeded(subject, address);
            app.guard.check_client(&client.id).map_err(OAuthError::refused)?;
            Ok(client)
        }
        Err(why) => {
            app.guard.failed(subject, address);
            tracing::info!(client = %log_id(&creds.client_id, why), method = ?creds.method, reason = why.as_str(), "client authentication failed");
            Err(OAuthError::InvalidClient("client authentication failed".into()))
        }
    }
}

async fn handle(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    rules: &PathRules,
) -> Result<Response, OAuthError> {
    let address = admit(app, headers)?;
    let form = read_token_request(app, headers, body, rules).await?;
    let (grant_type, client, method) =
        authenticate_on(app, address, headers, &form, "grant_type", rules).await?;
    match grant_type {
        "client_credentials" => {}
        "authorization_code" => return crate::oidc::grants::exchange_code(app, &client, &form).await,
        "refresh_token" => return crate::oidc::grants::refresh(app, &client, &form).await,
        _ => {
            return Err(OAuthError::UnsupportedGrantType(
                "grant_type must be client_credentials, authorization_code or refresh_token".into(),
            ));
        }
    }
    if !client.client_credentials {
        // RFC 6749 §5.2: an authenticated client not allowed this grant type.
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use client_credentials".into(),
        ));
    }
    if rules.scope_required && form.get("scope").is_none() {
        return Err(OAuthError::InvalidRequest(
            "scope is required at this endpoint".into(),
        ));
    }
    let (scope, audience) = if rules.scope_selects_audience {
        scope_as_audience(&client, &form)?
    } else {
        (
            grant_scope(&client, form.get("scope"))?,
            grant_audience(app, &client, &form)?,
        )
    };
    let keys = app.keys.get();
    let issued = issue(
        &keys,
        &app.settings.issuer,
        &client,
        scope,
        &audience,
        crate::store::now(),
    )?;
    let response = token_response(issued)?;
    tracing::debug!(client_id = %client.id, ?method, "token issued");
    Ok(response)
}

/// How a presented client id appears in the log. A registered id is public (it is in every token
/// the client holds); an unknown one may be a secret pasted in the wrong field, so only a short
/// digest of it is logged, enough to correlate repeated attempts.
pub fn log_id(client_id: &str, why: AuthFailure) -> String {
    if why == AuthFailure::UnknownClient {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, client_id.as_bytes());
        let hex: String = d.as_ref().iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("unknown:{hex}")
    } else {
        client_id.to_string()
    }
}

/// The scope to grant: as asked, if every token is allowed; all allowed scopes when none is asked.
fn grant_scope<'a>(
    client: &'a CachedClient,
    requested: Option<&str>,
) -> Result<Option<Cow<'a, str>>, OAuthError> {
    let Some(requested) = requested else {
        let all = &*client.grants.all_scopes;
        return Ok((!all.is_empty()).then_some(Cow::Borrowed(all)));
    };
    let tokens = parse_scope(requested).map_err(|_| {
        OAuthError::InvalidScope("scope is not a space-delimited list of scope tokens".into())
    })?;
    for t in &tokens {
        if !client.grants.scopes.iter().any(|s| **s == **t) {
            let t = if t.len() > 64 { "requested" } else { t.as_str() };
            return Err(OAuthError::InvalidScope(
                format!("scope {t} is not allowed for this client").into(),
            ));
        }
    }
    Ok(Some(Cow::Owned(tokens.join(" "))))
}

/// Where `scope` names the audience (`scope=example.com` for the registered audience
/// `https://example.com`): that audience, and every scope the client has.
fn scope_as_audience<'a>(
    client: &'a CachedClient,
    form: &'a Form,
) -> Result<(Option<Cow<'a, str>>, AudienceRef<'a>), OAuthError> {
    if form.all("resource").next().is_some() {
        return Err(OAuthError::InvalidRequest(
            "at this endpoint scope names the audience; resource is not accepted".into(),
        ));
    }
    let wanted = form.get("scope").unwrap_or_default();
    let mut matching = client
        .grants
        .audiences
        .iter()
        .filter(|a| &***a == wanted || uri_host(a) == Some(wanted));
    let audience = matching.next().ok_or_else(|| {
        OAuthError::InvalidScope("scope must name a host this client may get tokens for".into())
    })?;
    if matching.next().is_some() {
        // Two audiences on one host (http and https, two paths): never guess which one.
        return Err(OAuthError::InvalidScope(
            "scope names a host with several of this client's audiences; ask with the whole URI".into(),
        ));
    }
    let all = &*client.grants.all_scopes;
    Ok((
        (!all.is_empty()).then_some(Cow::Borrowed(all)),
        AudienceRef::One(audience),
    ))
}

/// The audience: the requested `resource`s (RFC 8707), each one the client may ask for; without
/// any, the client's default audience, or the issuer for a client that has none.
pub(crate) fn grant_audience<'a>(
    app: &'a App,
    client: &'a CachedClient,
    form: &'a Form,
) -> Result<AudienceRef<'a>, OAuthError> {
    let mut wanted: Vec<&'a str> = Vec::new();
    for r in form.all("resource") {
        if !is_absolute_uri(r) {
            return Err(OAuthError::InvalidTarget(
                "resource must be an absolute URI without a fragment".into(),
            ));
        }
        if !client.grants.audiences.iter().any(|a| &**a == r) {
            return Err(OAuthError::InvalidTarget(
                "resource is not allowed for this client".into(),
            ));
        }
        if !wanted.contains(&r) {
            wanted.push(r);
        }
    }
    Ok(match wanted.len() {
        0 => AudienceRef::One(
            client
                .grants
                .audiences
                .first()
                .map_or(app.settings.issuer.as_str(), |a| &**a),
        ),
        1 => AudienceRef::One(wanted[0]),
        _ => AudienceRef::Many(wanted),
    })
}

/// A fresh token id: 128 random bits.
pub fn new_jti() -> String {
    let mut buf = [0u8; JTI_LEN];
    fill_jti(&mut buf).to_string()
}

/// Length of a token id: 16 bytes in base64url.
const JTI_LEN: usize = 22;

/// Writes a fresh token id into `buf` and returns it.
fn fill_jti(buf: &mut [u8; JTI_LEN]) -> &str {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let n = URL_SAFE_NO_PAD.encode_slice(bytes, buf).unwrap_or(0);
    // base64url is ASCII; 16 bytes always take exactly 22 characters.
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

/// An audience claim borrowed from the client, the request or the settings.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum AudienceRef<'a> {
    /// One audience, serialized as a string.
    One(&'a str),
    /// Several, serialized as an array.
    Many(Vec<&'a str>),
}

/// The claims of a token being minted: the same JSON as [`AccessTokenClaims`], from borrowed
/// strings (a test checks that they agree).
#[derive(serde::Serialize)]
struct ClaimsRef<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a AudienceRef<'a>,
    exp: u64,
    iat: u64,
    jti: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

/// A freshly signed access token.
pub struct Issued<'a> {
    /// The JWT.
    pub access_token: String,
    /// Its lifetime in seconds (`exp - iat`).
    pub expires_in: u64,
    /// The granted scope.
    pub scope: Option<Cow<'a, str>>,
}

/// The claims of a token about to be signed.
pub struct Minted<'a> {
    /// Their JSON.
    pub claims_json: Vec<u8>,
    /// Issue time.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// The granted scope.
    pub scope: Option<Cow<'a, str>>,
}

/// When a token for `client` minted at `now` by a key retiring at `retire_at` is issued and
/// expires: the one rule for every token Tessera signs (access tokens of every grant, ID tokens).
pub fn lifetime(client: &CachedClient, now: i64, retire_at: Option<i64>) -> (i64, i64) {
    // Tokens issued at or before `tokens_revoked_before` count as revoked. A token minted in the
    // same second as a revocation is newer than it, so it is dated one second later.
    let iat = now.max(client.tokens_revoked_before + 1).max(0);
    let mut exp = iat + i64::from(client.token_ttl);
    // A key scheduled to retire never signs a token that outlives it (a client's lifetime may
    // have been raised after the rotation was planned).
    if let Some(retire_at) = retire_at {
        exp = exp.min(retire_at).max(iat + 1);
    }
    (iat, exp)
}

/// Mints the claims of a token for `client` at time `now`, to be signed by a key that retires
/// at `retire_at`, if scheduled.
pub fn mint<'a>(
    issuer: &str,
    client: &CachedClient,
    scope: Option<Cow<'a, str>>,
    aud: &AudienceRef<'_>,
    now: i64,
    retire_at: Option<i64>,
) -> Result<Minted<'a>, serde_json::Error> {
    let (iat, exp) = lifetime(client, now, retire_at);
    let mut jti = [0u8; JTI_LEN];
    let claims = ClaimsRef {
        iss: issuer,
        sub: &client.id,
        aud,
        exp: exp as u64,
        iat: iat as u64,
        jti: fill_jti(&mut jti),
        client_id: &client.id,
        scope: scope.as_deref(),
    };
    let mut claims_json = serde_json::to_vec(&claims)?;
    if let Some(extra) = &client.claims {
        // The client's own claims, serialized once when it was cached; their names never clash
        // with the ones above (`crate::claims::RESERVED`).
        claims_json.pop();
        claims_json.push(b',');
        claims_json.extend_from_slice(extra.as_bytes());
        claims_json.push(b'}');
    }
    Ok(Minted {
        claims_json,
        iat,
        exp,
        scope,
    })
}

/// Builds and signs an access token for `client` at time `now` with the key active then.
fn issue<'a>(
    keys: &KeySet,
    issuer: &str,
    client: &CachedClient,
    scope: Option<Cow<'a, str>>,
    aud: &AudienceRef<'_>,
    now: i64,
) -> Result<Issued<'a>, OAuthError> {
    let slot = keys
        .current(now)
        .ok_or_else(|| OAuthError::internal(&"no active signing key"))?;
    let minted =
        mint(issuer, client, scope, aud, now, slot.retire_at).map_err(|e| OAuthError::internal(&e))?;
    let access_token = slot
        .signer
        .sign_jwt(&minted.claims_json)
        .map_err(|e| OAuthError::internal(&e))?;
    Ok(Issued {
        access_token,
        expires_in: (minted.exp - minted.iat) as u64,
        scope: minted.scope,
    })
}

/// The RFC 6749 §5.1 response for an issued token.
pub fn token_response(issued: Issued<'_>) -> Result<Response, OAuthError> {
    let json = token_response_json(&issued).map_err(|e| OAuthError::internal(&e))?;
    let mut response = Response::new(Body::from(json));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    super::no_store(&mut response);
    Ok(response)
}

/// The JSON of a token response, written directly: the access token is a compact JWS (base64url
/// and dots, nothing to escape), so it is copied instead of going through serde_json's escaping
/// scan, which cost more instructions than the rest of the response (bench/instructions.sh).
/// The scope still goes through serde_json.
pub fn token_response_json(issued: &Issued<'_>) -> Result<Vec<u8>, serde_json::Error> {
    debug_assert!(
        issued
            .access_token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    );
    let scope_len = issued.scope.as_ref().map_or(0, |s| s.len() + 12);
    let mut out = Vec::with_capacity(issued.access_token.len() + scope_len + 64);
    out.extend_from_slice(br#"{"access_token":""#);
    out.extend_from_slice(issued.access_token.as_bytes());
    out.extend_from_slice(br#"","token_type":"Bearer","expires_in":"#);
    out.extend_from_slice(issued.expires_in.to_string().as_bytes());
    if let Some(scope) = &issued.scope {
        out.extend_from_slice(br#","scope":"#);
        serde_json::to_writer(&mut out, scope)?;
    }
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_proto::{AccessTokenClaims, Audience, TokenResponse};

    #[test]
    fn borrowed_claims_are_access_token_claims() {
        let many = AudienceRef::Many(vec!["https://a", "https://b"]);
        let one = AudienceRef::One("https://a");
        for (aud, expected, scope) in [
            (&one, Audience::One("https://a".into()), Some("x y")),
            (
                &many,
                Audience::Many(vec!["https://a".into(), "https://b".into()]),
                None,
            ),
        ] {
            let mut buf = [0u8; JTI_LEN];
            let jti = fill_jti(&mut buf).to_string();
            assert_eq!(jti.len(), JTI_LEN);
            let claims = ClaimsRef {
                iss: "https://issuer",
                sub: "c\"1",
                aud,
                exp: 20,
                iat: 10,
                jti: &jti,
                client_id: "c\"1",
                scope,
            };
            let json = serde_json::to_vec(&claims).unwrap();
            let owned = AccessTokenClaims {
                iss: "https://issuer".into(),
                sub: "c\"1".into(),
                aud: expected,
                exp: 20,
                iat: 10,
                jti: jti.clone(),
                client_id: "c\"1".into(),
                scope: scope.map(String::from),
                extra: Default::default(),
            };
            assert_eq!(json, serde_json::to_vec(&owned).unwrap());
        }
        assert_ne!(new_jti(), new_jti());
    }

    #[test]
    fn token_response_json_matches_the_wire_type() {
        for scope in [None, Some("demo:read demo:write".to_string())] {
            let issued = Issued {
                access_token: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_".into(),
                expires_in: 3600,
                scope: scope.clone().map(Cow::Owned),
            };
            let json = token_response_json(&issued).unwrap();
            let parsed: TokenResponse = serde_json::from_slice(&json).unwrap();
            assert_eq!(parsed.access_token, issued.access_token);
            assert_eq!(parsed.token_type, "Bearer");
            assert_eq!(parsed.expires_in, Some(3600));
            assert_eq!(parsed.scope, scope);
            let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let fields = if scope.is_some() { 4 } else { 3 };
            assert_eq!(value.as_object().map(|o| o.len()), Some(fields), "{value}");
        }
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_form_content_type(&h));
        for (v, ok) in [
            ("application/x-www-form-urlencoded", true),
            ("application/x-www-form-urlencoded; charset=UTF-8", true),
            ("Application/X-WWW-Form-Urlencoded;charset=\"utf-8\"", true),
            ("application/x-www-form-urlencoded; charset=latin1", false),
            ("application/json", false),
            ("multipart/form-data", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            assert_eq!(is_form_content_type(&h), ok, "{v}");
        }
    }
}
