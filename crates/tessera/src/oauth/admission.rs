//! What every client-facing endpoint does first: admit the request (the client's address and
//! its rate), read the body as a strict form, and authenticate the client with one of the
//! methods the path accepts.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Limited};

use super::OAuthError;
use super::client_auth::{AuthMethod, credentials};
use super::form::{Form, FormError};
use crate::app::App;
use crate::clients::CachedClient;
use crate::model::paths::PathRules;

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

/// What a request body's errors may be turned into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads the body within the size limit and the request deadline.
pub async fn read_body<B>(body: B, limit: usize, timeout: Duration) -> Result<Bytes, OAuthError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
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
pub(crate) async fn read_token_request<B>(
    app: &App,
    headers: &HeaderMap,
    body: B,
    rules: &PathRules,
) -> Result<Form, OAuthError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
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
pub async fn read_form<B>(app: &App, headers: &HeaderMap, body: B) -> Result<Form, OAuthError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if !is_form_content_type(headers) {
        return Err(OAuthError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ));
    }
    let bytes = read_body(body, app.settings.max_body_bytes, app.settings.request_timeout).await?;
    parse_form(&bytes)
}

/// The connection a request came on: the peer's address, and the certificate it presented in
/// the TLS handshake (or that a trusted proxy forwarded), if any.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The peer's address (before any proxy header is read).
    pub peer: IpAddr,
    /// Its TLS client certificate.
    pub certificate: Option<Arc<crate::model::auth::PeerCertificate>>,
}

impl Connection {
    /// A connection from `peer` without a certificate.
    pub fn plain(peer: IpAddr) -> Self {
        Connection {
            peer,
            certificate: None,
        }
    }
}

/// The common start of every client-authenticated endpoint (token, introspection, revocation):
/// the client's credentials are found, then the endpoint's `required` parameter, then the secret
/// is checked, so a malformed request is refused before any secret check. Returns the
/// parameter's value, the client and how it authenticated.
pub async fn authenticate_request<'f>(
    app: &App,
    address: IpAddr,
    connection: &Connection,
    headers: &HeaderMap,
    form: &'f Form,
    required: &'static str,
) -> Result<(&'f str, Arc<CachedClient>, &'static dyn AuthMethod), OAuthError> {
    authenticate_on(
        app,
        address,
        connection,
        headers,
        form,
        required,
        &PathRules::STRICT,
    )
    .await
}

/// The first step of every client-authenticated endpoint: the client's address (the connection's
/// `peer`, or from a trusted proxy's header), counted against its rate before anything is read.
pub fn admit(app: &App, peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, OAuthError> {
    let address = app.guard.client_address(peer, headers);
    app.guard.check_address(address).map_err(OAuthError::refused)?;
    Ok(address)
}

/// [`authenticate_request`] on a path that may accept only some authentication methods.
pub(crate) async fn authenticate_on<'f>(
    app: &App,
    address: IpAddr,
    connection: &Connection,
    headers: &HeaderMap,
    form: &'f Form,
    required: &'static str,
    rules: &PathRules,
) -> Result<(&'f str, Arc<CachedClient>, &'static dyn AuthMethod), OAuthError> {
    let creds = credentials(headers, form, connection.certificate.as_ref())?;
    rules
        .accepts(creds.method.name())
        .map_err(|why| OAuthError::InvalidClient(why.into()))?;
    let Some(value) = form.get(required) else {
        return Err(OAuthError::InvalidRequest(
            format!("{required} is required").into(),
        ));
    };
    let client = verify(app, address, &creds).await?;
    Ok((value, client, creds.method))
}

/// Authenticates the client of an endpoint that needs no particular parameter (the device
/// authorization endpoint, RFC 8628 §3.1), with the strict rules.
pub(crate) async fn authenticate_client(
    app: &App,
    address: IpAddr,
    connection: &Connection,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Arc<CachedClient>, OAuthError> {
    let creds = credentials(headers, form, connection.certificate.as_ref())?;
    PathRules::STRICT
        .accepts(creds.method.name())
        .map_err(|why| OAuthError::InvalidClient(why.into()))?;
    verify(app, address, &creds).await
}

/// Checks presented credentials: the method's own check, the method allowed for the client,
/// and the client's rate.
async fn verify(
    app: &App,
    address: IpAddr,
    creds: &super::client_auth::Credentials,
) -> Result<Arc<CachedClient>, OAuthError> {
    let client = creds.method.verify(app, creds, address).await?;
    if !creds.method.allowed(&client) {
        tracing::info!(client = %client.id, method = creds.method.name(), "client authentication method not allowed for this client");
        return Err(OAuthError::InvalidClient("client authentication failed".into()));
    }
    app.guard.check_client(&client.id).map_err(OAuthError::refused)?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
