//! Client authentication (RFC 6749 §2.3), one module per method behind [`AuthMethod`]:
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523 §2.2) and `none` (a
//! public client, RFC 6749 §2.1).
//! A request uses exactly one method; the path decides which it accepts
//! ([`crate::model::paths::PathRules::accepts`]), the client which it may use
//! ([`AuthMethod::allowed`]), and discovery lists [`METHODS`].
//!
//! A new method is a module here implementing [`AuthMethod`] and one line in [`METHODS`].

mod basic;
mod mtls;
mod none;
mod post;
pub mod private_key_jwt;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, header};

pub use basic::SecretBasic;
pub use mtls::MutualTls;
pub use none::PublicClient;
pub use post::SecretPost;
pub use private_key_jwt::{ASSERTION_TYPE, PrivateKeyJwt};

use super::OAuthError;
use super::form::Form;
use crate::app::App;
use crate::clients::{AuthFailure, CachedClient};
use crate::limits::Subject;
use crate::model::auth::PeerCertificate;

/// Longest client id accepted.
const MAX_ID: usize = 256;
/// Longest secret accepted.
const MAX_SECRET: usize = 512;

/// The client a method authenticated, in time.
pub type Verifying<'a> = Pin<Box<dyn Future<Output = Result<Arc<CachedClient>, OAuthError>> + Send + 'a>>;

/// A way for a client to prove who it is at the token, introspection and revocation endpoints.
pub trait AuthMethod: Sync {
    /// Its name in discovery (RFC 8414 `token_endpoint_auth_methods_supported`).
    fn name(&self) -> &'static str;

    /// Every name discovery lists for it (a module may serve two registered methods).
    fn names(&self) -> &'static [&'static str];

    /// Whether the node's settings let a client use it (discovery lists it only then).
    fn available(&self, _settings: &crate::config::Settings) -> bool {
        true
    }

    /// What a request carries when it uses this method, as an error names it.
    fn presented_as(&self) -> &'static str {
        self.name()
    }

    /// This method's credentials in the request: `Ok(None)` when the request does not use it,
    /// an error when it does but malformed.
    fn find(&self, request: &Presented<'_>) -> Result<Option<Credentials>, OAuthError>;

    /// Whether it proves possession of something (a secret, a key): what introspection needs.
    fn proves_possession(&self) -> bool {
        true
    }

    /// Longest proof (secret or assertion) accepted.
    fn max_proof_len(&self) -> usize {
        MAX_SECRET
    }

    /// Whether `client` may authenticate this way.
    fn allowed(&self, client: &CachedClient) -> bool;

    /// Checks `creds` (found by this method) for a request from `address`; every failure is the
    /// same `invalid_client`.
    fn verify<'a>(&'a self, app: &'a App, creds: &'a Credentials, address: IpAddr) -> Verifying<'a>;
}

/// Every method, in the order discovery lists them.
pub static METHODS: &[&dyn AuthMethod] = &[
    &SecretBasic,
    &SecretPost,
    &PrivateKeyJwt,
    &MutualTls,
    &PublicClient,
];

/// What a request carries that may prove who the client is.
pub struct Presented<'a> {
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// Its form.
    pub form: &'a Form,
    /// The TLS client certificate of its connection, if any.
    pub certificate: Option<&'a PeerCertificate>,
}

/// The credentials a request presented.
pub struct Credentials {
    /// The client id.
    pub client_id: String,
    /// What proves it: the secret, or the signed assertion (empty for `none`).
    pub secret: String,
    /// The method they came by.
    pub method: &'static dyn AuthMethod,
    /// The TLS client certificate of the connection, for the methods that check it.
    pub certificate: Option<Arc<PeerCertificate>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("method", &self.method.name())
            .finish_non_exhaustive()
    }
}

/// Whether the request carries client credentials of any method (beyond a bare `client_id`).
pub fn presented(headers: &HeaderMap, form: &Form) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || form.get("client_secret").is_some()
        || form.get("client_assertion").is_some()
        || form.get("client_assertion_type").is_some()
}

/// Finds the client's credentials in the request, enforcing one method per request (RFC 6749
/// §2.3: "MUST NOT use more than one authentication method in each request").
pub fn credentials(
    headers: &HeaderMap,
    form: &Form,
    certificate: Option<&Arc<PeerCertificate>>,
) -> Result<Credentials, OAuthError> {
    let request = Presented {
        headers,
        form,
        certificate: certificate.map(|c| &**c),
    };
    if headers.get_all(header::AUTHORIZATION).iter().nth(1).is_some() {
        return Err(OAuthError::InvalidRequest(
            "more than one Authorization header".into(),
        ));
    }
    let mut found: Option<(&'static dyn AuthMethod, Result<Credentials, OAuthError>)> = None;
    for method in METHODS {
        let result = match method.find(&request) {
            Ok(None) => continue,
            Ok(Some(c)) => Ok(c),
            Err(e) => Err(e),
        };
        if let Some((first, _)) = &found {
            return Err(OAuthError::InvalidRequest(
                format!(
                    "more than one client authentication method ({} and {})",
                    first.presented_as(),
                    method.presented_as()
                )
                .into(),
            ));
        }
        found = Some((*method, result));
    }
    let mut creds = match found {
        Some((_, result)) => result?,
        None => return Err(OAuthError::InvalidClient("client authentication required".into())),
    };
    if creds.client_id.is_empty()
        || creds.client_id.len() > MAX_ID
        || (creds.secret.is_empty() && creds.method.proves_possession())
        || creds.secret.len() > creds.method.max_proof_len()
    {
        return Err(OAuthError::InvalidClient("client authentication failed".into()));
    }
    creds.certificate = certificate.cloned();
    Ok(creds)
}

/// Runs `check`, a proof that costs a signature rather than a slow hash (an assertion, a
/// certificate, a platform token), under the back-off of `subject` at `address`: a good proof
/// passes even while a back-off runs; a failure is counted, told to `on_failure` (for the log),
/// and answered `refused`, or 429 while a back-off runs. The one settlement of every such method.
pub(crate) async fn settle<T, E>(
    app: &App,
    subject: Subject<'_>,
    address: IpAddr,
    check: impl Future<Output = Result<T, E>>,
    on_failure: impl FnOnce(E),
    refused: OAuthError,
) -> Result<T, OAuthError> {
    let backoff = app.guard.backoff(subject, address, false);
    match check.await {
        Ok(value) => {
            app.guard.succeeded(subject, address);
            Ok(value)
        }
        Err(why) => {
            app.guard.failed(subject, address);
            on_failure(why);
            Err(backoff.map_or(refused, OAuthError::refused))
        }
    }
}

/// Checks a client secret (`client_secret_basic`, `client_secret_post`). While a back-off runs
/// for the client id or the address, only a check that costs nothing is made, and anything it
/// does not accept gets 429, whether the id exists or not.
async fn verify_secret(
    app: &App,
    creds: &Credentials,
    address: IpAddr,
) -> Result<Arc<CachedClient>, OAuthError> {
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
            Ok(client)
        }
        Err(why) => {
            app.guard.failed(subject, address);
            tracing::info!(client = %log_id(&creds.client_id, why), method = creds.method.name(), reason = why.as_str(), "client authentication failed");
            Err(OAuthError::InvalidClient("client authentication failed".into()))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn form(body: &str) -> Form {
        Form::parse(body.as_bytes()).unwrap()
    }

    fn basic(id: &str, secret: &str) -> HeaderMap {
        use base64::Engine;
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let value = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)));
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {value}")).unwrap(),
        );
        h
    }

    #[test]
    fn exactly_one_method_per_request() {
        let none = HeaderMap::new();
        let c = credentials(&basic("a", "s"), &form("client_id=a"), None).unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.method.name()),
            ("a", "client_secret_basic")
        );
        let c = credentials(&none, &form("client_id=a&client_secret=s"), None).unwrap();
        assert_eq!(c.method.name(), "client_secret_post");
        let c = credentials(&none, &form("client_id=a"), None).unwrap();
        assert_eq!(c.method.name(), "none");
        for (headers, body, code) in [
            (basic("a", "s"), "client_secret=s", "invalid_request"),
            (basic("a", "s"), "client_id=b", "invalid_request"),
            (none.clone(), "client_secret=s", "invalid_request"),
            (none.clone(), "", "invalid_client"),
            (basic("", "s"), "", "invalid_client"),
        ] {
            let e = credentials(&headers, &form(body), None).unwrap_err();
            assert_eq!(e.code(), code, "{body}");
        }
    }

    #[test]
    fn two_methods_are_named_as_they_always_were() {
        let e = credentials(&basic("a", "s"), &form("client_secret=s"), None).unwrap_err();
        assert_eq!(
            e.description(),
            "more than one client authentication method (Basic and client_secret)"
        );
    }

    #[test]
    fn every_method_is_listed_once() {
        let names: Vec<&str> = METHODS.iter().flat_map(|m| m.names()).copied().collect();
        assert_eq!(
            names,
            [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "tls_client_auth",
                "self_signed_tls_client_auth",
                "none"
            ]
        );
        for m in METHODS {
            assert_eq!(m.names().first(), Some(&m.name()));
        }
    }
}
