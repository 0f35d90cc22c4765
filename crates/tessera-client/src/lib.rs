//! Fetch, cache and renew client-credentials access tokens (RFC 6749 §4.4) from Tessera or any
//! RFC 6749 authorization server.
//!
//! A [`TokenClient`] holds one client's credentials. [`TokenClient::token`] returns a cached
//! token for a (scope, audience) pair. From its renewal point on (ahead of expiry, with jitter so
//! a fleet does not renew in lockstep) the token is renewed **in the background**: a caller
//! holding a valid token never waits for the token server, even when it is slow or down; retries
//! and back-off happen in that background task. Only a caller without a valid token waits, and
//! however many ask at once, one request per pair is in flight. Network errors and 5xx answers
//! are retried with exponential backoff, honouring `Retry-After`; 4xx answers (bad credentials,
//! bad scope) are not retried. Building a client never contacts the server: discovery happens at
//! the first token, and is tried again at the next one if the server was away.
//!
//! [`BearerMiddleware`] plugs the client into `reqwest-middleware` (re-exported as
//! [`reqwest_middleware`], with [`reqwest`]), so every request a service sends carries a fresh
//! `Authorization: Bearer` header without further code; when the API answers 401 with
//! `invalid_token`, the token is dropped and the request sent once more with a fresh one.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_client::{BearerMiddleware, TokenClient};
//! let tokens = TokenClient::builder("my-client-id", "my-client-secret")
//!     .issuer("https://auth.example.com")
//!     .build()
//!     .await?;
//! let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(BearerMiddleware::new(tokens).scope("invoices:read"))
//!     .build();
//! let invoices = http.get("https://api.example.com/invoices").send().await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub use reqwest;
pub use reqwest_middleware;
pub use tessera_proto::TokenResponse;

#[cfg(feature = "blocking")]
pub mod blocking;
mod device;
mod dpop;
mod key;

pub use device::{DeviceAuthorization, DeviceFlow};
pub use dpop::DpopKey;
pub use key::ClientKey;

use rand::Rng;
use serde::Deserialize;

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1, RFC 7523 §2.2).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = tessera_client::TokenClient::builder("id", "secret")
///     .token_url("https://auth.example.com/oauth2/token")
///     .auth_method(tessera_client::AuthMethod::Post)
///     .build()
///     .await
///     .unwrap();
/// assert_eq!(client.token_url(), Some("https://auth.example.com/oauth2/token"));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with form-urlencoded id and secret (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` form fields (`client_secret_post`).
    Post,
    /// A JWT signed with the client's own key (`private_key_jwt`); see
    /// [`TokenClient::builder_with_key`].
    PrivateKeyJwt,
    /// The TLS client certificate (`tls_client_auth` or `self_signed_tls_client_auth`); see
    /// [`TokenClient::builder_with_certificate`].
    TlsClientAuth,
}

/// What proves the client's identity: a shared secret, its own key, or a token its platform
/// writes to a file (workload identity federation).
enum Credential {
    Secret(String),
    Key(Arc<ClientKey>),
    TokenFile(std::path::PathBuf),
    /// The TLS client certificate proves it (given with [`TokenClientBuilder::certificate`]).
    Certificate,
}

/// Largest workload token file read.
const MAX_TOKEN_FILE: u64 = 16 * 1024;

/// The token in `path`, read now: platforms rotate it on disk (a projected Kubernetes token is
/// replaced well before it expires), so it is read for every request, never cached.
fn read_token_file(path: &std::path::Path) -> Result<String, ClientError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| {
        ClientError::Config(format!("cannot read the workload token {}: {e}", path.display()))
    })?;
    let mut token = String::new();
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_string(&mut token)
        .map_err(|e| {
            ClientError::Config(format!("cannot read the workload token {}: {e}", path.display()))
        })?;
    if token.len() as u64 > MAX_TOKEN_FILE {
        return Err(ClientError::Config(format!(
            "the workload token {} is too large",
            path.display()
        )));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ClientError::Config(format!(
            "the workload token {} is empty",
            path.display()
        )));
    }
    Ok(token.to_string())
}

/// Why no token could be had: `Refused` (a 4xx, never retried), `Unavailable` (network errors or
/// 5xx after the retries), `InvalidResponse`, `Config`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let missing = tessera_client::TokenClient::builder("id", "secret").build().await;
/// assert!(matches!(missing, Err(tessera_client::ClientError::Config(_))));
/// # });
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request (a 4xx with an OAuth error); not retried.
    #[error("token request refused: {error} ({description})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// RFC 6749 error code.
        error: String,
        /// Its description, if any.
        description: String,
    },
    /// Network errors or 5xx answers outlasted the retries.
    #[error("token endpoint unavailable: {0}")]
    Unavailable(String),
    /// The answer was not an RFC 6749 token response.
    #[error("invalid token response: {0}")]
    InvalidResponse(String),
    /// The client is configured wrongly.
    #[error("configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The refusal an OAuth error body (RFC 6749 §5.2) with `status` says.
    fn refused(status: u16, body: &serde_json::Value) -> Self {
        ClientError::Refused {
            status,
            error: body["error"].as_str().unwrap_or("unknown_error").to_string(),
            description: body["error_description"].as_str().unwrap_or_default().to_string(),
        }
    }
}

/// An access token and when it expires. Its `Debug` does not show the token.
///
/// ```
/// let t = tessera_client::AccessToken {
///     access_token: "eyJhbGciOi.secret.parts".into(),
///     token_type: "Bearer".into(),
///     expires_at: std::time::Instant::now(),
///     scope: None,
/// };
/// assert!(!format!("{t:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct AccessToken {
    /// The token, for an `Authorization` header ([`TokenClient::authorization`] makes it).
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the client's [`DpopKey`].
    pub token_type: String,
    /// When it expires (as told by `expires_in`).
    pub expires_at: Instant,
    /// The granted scope, if the server said.
    pub scope: Option<String>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenClient`].
///
/// ```
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = tessera_client::TokenClient::builder("id", "secret")
///     .token_url("https://auth.example.com/oauth2/token")
///     .renew_before(Duration::from_secs(120))
///     .retries(5, Duration::from_millis(100))
///     .http_client(reqwest::Client::new())
///     .build()
///     .await
///     .unwrap();
/// assert_eq!(client.token_url(), Some("https://auth.example.com/oauth2/token"));
/// # });
/// ```
pub struct TokenClientBuilder {
    client_id: String,
    credential: Credential,
    token_url: Option<String>,
    issuer: Option<String>,
    auth: Option<AuthMethod>,
    renew_before: Duration,
    max_retries: u32,
    backoff: Duration,
    http: Option<reqwest::Client>,
    clock: Option<Clock>,
    identity: Option<reqwest::Identity>,
    roots: Vec<reqwest::Certificate>,
    dpop: Option<Arc<DpopKey>>,
}

/// A source of monotonic time (the default is [`Instant::now`]).
type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

impl TokenClientBuilder {
    /// The token endpoint URL.
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// Discover the token endpoint (and supported auth methods) from this issuer's RFC 8414
    /// metadata. With a token URL as well, nothing is discovered, and the issuer is the audience
    /// of client assertions (RFC 7523bis; without it they name the token URL).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Force an authentication method (default: Basic, or what discovery says is supported;
    /// always `PrivateKeyJwt` for a client built with a key).
    pub fn auth_method(mut self, method: AuthMethod) -> Self {
        self.auth = Some(method);
        self
    }

    /// Renew this long before expiry at the latest (default 60 s; at most half the lifetime).
    pub fn renew_before(mut self, margin: Duration) -> Self {
        self.renew_before = margin;
        self
    }

    /// Retries after network errors and 5xx answers (default 3), starting at `backoff`
    /// (default 200 ms) and doubling.
    pub fn retries(mut self, max_retries: u32, backoff: Duration) -> Self {
        self.max_retries = max_retries;
        self.backoff = backoff;
        self
    }

    /// Present this TLS client certificate (and its key) on every connection to the token
    /// server: mutual TLS client authentication (RFC 8705, `tls_client_auth` or
    /// `self_signed_tls_client_auth`) when the client was built with
    /// [`TokenClient::builder_with_certificate`]. `pem` holds the certificate (chain) and the
    /// private key. Ignored when an HTTP client is given with [`Self::http_client`] (give the
    /// identity to that client).
    pub fn certificate(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        self.identity = Some(
            reqwest::Identity::from_pem(pem)
                .map_err(|e| ClientError::Config(format!("not a PEM certificate and key: {}", chain(&e))))?,
        );
        Ok(self)
    }

    /// Trust this CA (PEM) for the token server's certificate, besides the system's roots
    /// (ignored with [`Self::http_client`]).
    pub fn root_certificate(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        self.roots.push(
            reqwest::Certificate::from_pem(pem)
                .map_err(|e| ClientError::Config(format!("not a PEM certificate: {}", chain(&e))))?,
        );
        Ok(self)
    }

    /// Bind tokens to `key` with DPoP (RFC 9449): every token request carries a proof of it,
    /// and [`BearerMiddleware`] sends the tokens as `Authorization: DPoP` with a proof for each
    /// call. Make one with [`DpopKey::generate`] per instance, or load one.
    pub fn dpop(mut self, key: DpopKey) -> Self {
        self.dpop = Some(Arc::new(key));
        self
    }

    /// Use this HTTP client.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Read time from `now` instead of [`Instant::now`]: a test of renewal and expiry can move
    /// its own clock forward instead of waiting for the token's lifetime to pass.
    pub fn clock(mut self, now: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(now));
        self
    }

    /// Returns the client. Nothing is fetched yet: with an issuer, discovery happens at the
    /// first token (and again at the next one if the server could not be reached), so a service
    /// starts even while the token server is down.
    pub async fn build(self) -> Result<TokenClient, ClientError> {
        if matches!(self.credential, Credential::Certificate)
            && self.identity.is_none()
            && self.http.is_none()
        {
            return Err(ClientError::Config(
                "a certificate client needs its certificate: TokenClientBuilder::certificate".into(),
            ));
        }
        let http = match self.http {
            Some(h) => h,
            // No redirects: a client_secret_post body must never be re-sent to another origin.
            None => {
                let mut b = reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .redirect(reqwest::redirect::Policy::none());
                for root in self.roots {
                    b = b.add_root_certificate(root);
                }
                if let Some(identity) = self.identity {
                    b = b.identity(identity);
                }
                b.build().map_err(|e| ClientError::Config(chain(&e)))?
            }
        };
        let keyed = matches!(self.credential, Credential::Key(_) | Credential::TokenFile(_));
        let certified = matches!(self.credential, Credential::Certificate);
        let forced = match (self.auth, keyed) {
            (Some(AuthMethod::PrivateKeyJwt), false) => {
                return Err(ClientError::Config(
                    "private_key_jwt needs a key: build with TokenClient::builder_with_key".into(),
                ));
            }
            (Some(AuthMethod::Basic | AuthMethod::Post), true) => {
                return Err(ClientError::Config(
                    "a client built with a key has no secret to send".into(),
                ));
            }
            (_, true) => Some(AuthMethod::PrivateKeyJwt),
            (_, false) if certified => Some(AuthMethod::TlsClientAuth),
            (auth, false) => auth,
        };
        let endpoint = match (self.token_url, self.issuer) {
            (Some(url), issuer) => {
                // The assertions' audience: the issuer when given (RFC 7523bis), else the URL.
                let audience = issuer.unwrap_or_else(|| url.clone());
                Endpoint::Fixed(url, forced.unwrap_or(AuthMethod::Basic), audience)
            }
            (None, Some(issuer)) => Endpoint::Discover(issuer, forced),
            (None, None) => return Err(ClientError::Config("set a token URL or an issuer".into())),
        };
        Ok(TokenClient {
            inner: Arc::new(Inner {
                client_id: self.client_id,
                credential: self.credential,
                endpoint,
                discovered: tokio::sync::OnceCell::new(),
                renew_before: self.renew_before,
                max_retries: self.max_retries,
                backoff: self.backoff,
                http,
                slots: Mutex::new(HashMap::new()),
                clock: self.clock.unwrap_or_else(|| Arc::new(Instant::now)),
                dpop: self.dpop,
            }),
        })
    }
}

/// Where tokens come from: a URL given, or an issuer to discover it from.
enum Endpoint {
    Fixed(String, AuthMethod, String),
    Discover(String, Option<AuthMethod>),
}

use tessera_proto::error_chain as chain;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The token endpoint and method from the issuer's metadata.
async fn discover_endpoint(
    http: &reqwest::Client,
    issuer: &str,
    forced: Option<AuthMethod>,
) -> Result<(String, AuthMethod, String), ClientError> {
    let meta = discover(http, issuer).await?;
    let methods = meta.token_endpoint_auth_methods_supported.unwrap_or_default();
    let auth = match forced {
        Some(AuthMethod::PrivateKeyJwt)
            if !methods.is_empty() && !methods.iter().any(|m| m == "private_key_jwt") =>
        {
            return Err(ClientError::Config(format!(
                "the server does not support private_key_jwt: {methods:?}"
            )));
        }
        Some(AuthMethod::TlsClientAuth)
            if !methods.is_empty()
                && !methods
                    .iter()
                    .any(|m| m == "tls_client_auth" || m == "self_signed_tls_client_auth") =>
        {
            return Err(ClientError::Config(format!(
                "the server does not support mutual TLS client authentication: {methods:?}"
            )));
        }
        Some(a) => a,
        None if methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic") => AuthMethod::Basic,
        None if methods.iter().any(|m| m == "client_secret_post") => AuthMethod::Post,
        None => {
            return Err(ClientError::Config(format!(
                "the server supports neither client_secret_basic nor client_secret_post: {methods:?}"
            )));
        }
    };
    Ok((meta.token_endpoint, auth, meta.issuer))
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    token_endpoint: String,
    /// RFC 8628 §4.
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata, ClientError> {
    let issuer = issuer.trim_end_matches('/');
    let url = tessera_proto::metadata_url(issuer);
    let r = http
        .get(&url)
        .send()
        .await
        .map_err(|e| ClientError::Unavailable(format!("{url}: {}", chain(&e))))?;
    if !r.status().is_success() {
        return Err(ClientError::Unavailable(format!("{url}: HTTP {}", r.status())));
    }
    let meta: Metadata = r
        .json()
        .await
        .map_err(|e| ClientError::InvalidResponse(chain(&e)))?;
    if meta.issuer.trim_end_matches('/') != issuer {
        return Err(ClientError::Config(format!(
            "metadata names issuer {:?}, not {issuer:?}",
            meta.issuer
        )));
    }
    Ok(meta)
}

type Key = (Option<String>, Option<String>);

/// A cached token and when to renew it.
#[derive(Clone)]
struct Cached {
    token: AccessToken,
    renew_at: Instant,
    /// Not handed out this close to expiry.
    margin: Duration,
}

/// A token this close to expiry (or a tenth of its lifetime, if less) is not handed out: it
/// could expire on its way to the API.
const EXPIRY_MARGIN: Duration = Duration::from_secs(2);

impl Cached {
    fn valid(&self, now: Instant) -> bool {
        now + self.margin < self.token.expires_at
    }
}

/// One cache entry: the current token (readable without waiting), the lock that keeps one
/// request in flight, and whether a background renewal is running.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<Cached>>,
    fetching: tokio::sync::Mutex<()>,
    renewing: AtomicBool,
    /// The last failed fetch: callers that queued before it get its error instead of running
    /// the whole retry sequence again, one after another.
    last_failure: Mutex<Option<(Instant, ClientError)>>,
    /// Background renewals that failed in a row (for the back-off).
    failures: std::sync::atomic::AtomicU32,
    /// When a token was last replaced because an API refused it (rate limit).
    last_forced: Mutex<Option<Instant>>,
}

/// Clears a slot's "renewal running" flag when the renewal ends, however it ends (a task
/// dropped by a runtime shutting down included).
struct RenewingGuard(Arc<Slot>);

impl Drop for RenewingGuard {
    fn drop(&mut self) {
        self.0.renewing.store(false, Ordering::Release);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slot {
    fn current(&self) -> Option<Cached> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, value: Option<Cached>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

struct Inner {
    client_id: String,
    credential: Credential,
    endpoint: Endpoint,
    /// The discovered endpoint, method and issuer, once discovery succeeded.
    discovered: tokio::sync::OnceCell<(String, AuthMethod, String)>,
    renew_before: Duration,
    max_retries: u32,
    backoff: Duration,
    http: reqwest::Client,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    clock: Clock,
    dpop: Option<Arc<DpopKey>>,
}

/// Fetches and caches tokens for one client. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct TokenClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenClient")
            .field("client_id", &self.inner.client_id)
            .field("token_url", &self.token_url())
            .finish_non_exhaustive()
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(300)));
    }
    let at = httpdate_parse(v)?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or_default()
            .min(Duration::from_secs(300)),
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate_parse(v: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else { return None };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

impl TokenClient {
    /// Starts building a client with these credentials.
    ///
    /// ```
    /// use tessera_client::{ClientError, TokenClient};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // Without a token URL or an issuer there is nothing to ask.
    /// let missing = TokenClient::builder("id", "secret").build().await;
    /// assert!(matches!(missing, Err(ClientError::Config(_))));
    /// // With one, nothing is fetched until a token is needed.
    /// let client = TokenClient::builder("id", "secret")
    ///     .token_url("http://127.0.0.1:9/oauth2/token")
    ///     .retries(0, std::time::Duration::ZERO)
    ///     .build()
    ///     .await
    ///     .unwrap();
    /// assert!(matches!(client.token(None, None).await, Err(ClientError::Unavailable(_))));
    /// # });
    /// ```
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<String>) -> TokenClientBuilder {
        Self::builder_for(client_id.into(), Credential::Secret(client_secret.into()))
    }

    /// Starts building a client that proves who it is with its own key (`private_key_jwt`,
    /// RFC 7523): each token request carries a fresh assertion signed with `key`, for the
    /// issuer (with [`TokenClientBuilder::issuer`]) or the token URL as its audience. The server
    /// holds only the public key ([`ClientKey::public_jwk`]).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), tessera_client::ClientError> {
    /// use tessera_client::{ClientKey, TokenClient};
    /// let key = ClientKey::from_pem_file("/etc/billing/client.pem")?.with_kid("billing-2026");
    /// let tokens = TokenClient::builder_with_key("billing", key)
    ///     .issuer("https://auth.example.com")
    ///     .build()
    ///     .await?;
    /// let token = tokens.token(Some("invoices:read"), None).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder_with_key(client_id: impl Into<String>, key: ClientKey) -> TokenClientBuilder {
        Self::builder_for(client_id.into(), Credential::Key(Arc::new(key)))
    }

    /// Starts building a client whose workload presents the token its platform gives it (a
    /// Kubernetes projected service-account token, a CI job's OIDC token, a SPIFFE JWT-SVID),
    /// read from the file at `path` for every request, instead of a secret (workload identity
    /// federation: the server trusts the token's issuer for `client_id`). The token goes as the
    /// `client_assertion` of a client-credentials request (RFC 7523 §2.2).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), tessera_client::ClientError> {
    /// use tessera_client::TokenClient;
    /// let tokens = TokenClient::builder_with_token_file(
    ///     "payments-worker",
    ///     "/var/run/secrets/tokens/tessera",
    /// )
    /// .issuer("https://auth.example.com")
    /// .build()
    /// .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder_with_token_file(
        client_id: impl Into<String>,
        path: impl Into<std::path::PathBuf>,
    ) -> TokenClientBuilder {
        Self::builder_for(client_id.into(), Credential::TokenFile(path.into()))
    }

    /// Starts building a client that proves who it is with its TLS client certificate (RFC
    /// 8705): give the certificate and key with [`TokenClientBuilder::certificate`]. Requests
    /// carry `client_id` and nothing else.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use tessera_client::TokenClient;
    /// let pem = std::fs::read("/etc/billing/client.pem")?; // certificate and key
    /// let tokens = TokenClient::builder_with_certificate("billing")
    ///     .certificate(&pem)?
    ///     .issuer("https://auth.example.com")
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder_with_certificate(client_id: impl Into<String>) -> TokenClientBuilder {
        Self::builder_for(client_id.into(), Credential::Certificate)
    }

    fn builder_for(client_id: String, credential: Credential) -> TokenClientBuilder {
        TokenClientBuilder {
            client_id,
            credential,
            token_url: None,
            issuer: None,
            auth: None,
            renew_before: Duration::from_secs(60),
            max_retries: 3,
            backoff: Duration::from_millis(200),
            http: None,
            clock: None,
            identity: None,
            roots: Vec::new(),
            dpop: None,
        }
    }

    /// Now, by the client's clock.
    fn now(&self) -> Instant {
        (self.inner.clock)()
    }

    /// The headers that present `token` on a `method` request to `url`: `Authorization: Bearer`,
    /// or, for a DPoP-bound token, `Authorization: DPoP` and a fresh `DPoP` proof (RFC 9449 §7).
    /// For HTTP clients other than [`BearerMiddleware`]'s; after a `use_dpop_nonce` answer, give
    /// it to [`DpopKey::remember_nonce`] (through [`Self::dpop_key`]) and call again.
    pub fn authorization(
        &self,
        token: &AccessToken,
        method: &str,
        url: &str,
    ) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, ClientError> {
        let bad = |e: http::header::InvalidHeaderValue| ClientError::Config(e.to_string());
        let (scheme, proof) = match (&self.inner.dpop, token.token_type.as_str()) {
            (Some(key), "DPoP") => ("DPoP", Some(key.proof(method, url, Some(&token.access_token))?)),
            _ => ("Bearer", None),
        };
        let mut value =
            http::HeaderValue::from_str(&format!("{scheme} {}", token.access_token)).map_err(bad)?;
        value.set_sensitive(true);
        let mut out = vec![(http::header::AUTHORIZATION, value)];
        if let Some(p) = proof {
            out.push((
                http::HeaderName::from_static("dpop"),
                http::HeaderValue::from_str(&p).map_err(bad)?,
            ));
        }
        Ok(out)
    }

    /// The DPoP key tokens are bound to, if any.
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.inner.dpop.as_deref()
    }

    /// The token endpoint in use: the one given, or the discovered one once discovery happened.
    pub fn token_url(&self) -> Option<&str> {
        match &self.inner.endpoint {
            Endpoint::Fixed(url, _, _) => Some(url),
            Endpoint::Discover(..) => self.inner.discovered.get().map(|(u, _, _)| u.as_str()),
        }
    }

    /// The endpoint, method and the audience of client assertions (the issuer, or the token
    /// URL when none was discovered), discovering them on first use (a failed discovery is
    /// tried again next time).
    async fn endpoint(&self) -> Result<(&str, AuthMethod, &str), ClientError> {
        match &self.inner.endpoint {
            Endpoint::Fixed(url, auth, audience) => Ok((url, *auth, audience)),
            Endpoint::Discover(issuer, forced) => {
                let (url, auth, issuer) = self
                    .inner
                    .discovered
                    .get_or_try_init(|| discover_endpoint(&self.inner.http, issuer, *forced))
                    .await?;
                Ok((url, *auth, issuer))
            }
        }
    }

    fn slot(&self, scope: Option<&str>, audience: Option<&str>) -> Arc<Slot> {
        let key: Key = (scope.map(str::to_string), audience.map(str::to_string));
        let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key).or_default().clone()
    }

    /// A valid token for `scope` (space-separated; `None` for the client's default) and
    /// `audience` (an RFC 8707 `resource`; `None` for the default).
    ///
    /// A valid cached token is returned at once, always; past its renewal point a background
    /// task renews it (one at a time, with the retries and back-off), so no caller waits for
    /// the token server while it holds a valid token. Without one, the caller waits for the
    /// request (shared with every other caller of the same pair).
    pub async fn token(
        &self,
        scope: Option<&str>,
        audience: Option<&str>,
    ) -> Result<AccessToken, ClientError> {
        let slot = self.slot(scope, audience);
        if let Some(c) = slot.current().filter(|c| c.valid(self.now())) {
            if self.now() >= c.renew_at {
                self.renew_in_background(&slot, scope, audience);
            }
            return Ok(c.token);
        }
        let queued = self.now();
        let _one = slot.fetching.lock().await;
        // Whoever held the lock before may have fetched one already, or failed to: a failure
        // after this caller queued is its answer too.
        if let Some(c) = slot.current().filter(|c| c.valid(self.now())) {
            return Ok(c.token);
        }
        if let Some((at, e)) = lock(&slot.last_failure).as_ref() {
            if *at >= queued {
                return Err(e.clone());
            }
        }
        match self.fetch(scope, audience).await {
            Ok(token) => {
                slot.set(Some(self.schedule(&token)));
                Ok(token)
            }
            Err(e) => {
                *lock(&slot.last_failure) = Some((self.now(), e.clone()));
                Err(e)
            }
        }
    }

    /// When to renew `token`: `renew_before` ahead of expiry at the latest (at most half the
    /// lifetime), minus a random share of up to a tenth of the lifetime.
    fn schedule(&self, token: &AccessToken) -> Cached {
        let lifetime = token.expires_at.saturating_duration_since(self.now());
        let margin = self.inner.renew_before.min(lifetime / 2);
        let jitter = lifetime.mul_f64(rand::rng().random_range(0.0..0.1));
        Cached {
            token: token.clone(),
            renew_at: token.expires_at - margin - jitter,
            margin: EXPIRY_MARGIN.min(lifetime / 10),
        }
    }

    /// Starts a renewal of `slot` in the background unless one runs.
    fn renew_in_background(&self, slot: &Arc<Slot>, scope: Option<&str>, audience: Option<&str>) {
        if slot.renewing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Not inside a Tokio runtime: renew at the next call that has one.
            slot.renewing.store(false, Ordering::Release);
            return;
        };
        let guard = RenewingGuard(slot.clone());
        let (this, slot) = (self.clone(), slot.clone());
        let (scope, audience) = (scope.map(str::to_string), audience.map(str::to_string));
        runtime.spawn(async move {
            let _guard = guard;
            let _one = slot.fetching.lock().await;
            let Some(before) = slot.current() else {
                return; // dropped meanwhile: the next caller fetches
            };
            if this.now() < before.renew_at && before.valid(this.now()) {
                return; // renewed meanwhile
            }
            match this.fetch(scope.as_deref(), audience.as_deref()).await {
                Ok(token) => {
                    slot.failures.store(0, Ordering::Relaxed);
                    slot.set(Some(this.schedule(&token)));
                }
                Err(e) => {
                    let n = slot.failures.fetch_add(1, Ordering::Relaxed).min(5);
                    // The configured back-off (at least 50 ms), doubling up to 32 times it,
                    // with jitter so a fleet does not come back in step; never past expiry.
                    let base = this.inner.backoff.max(Duration::from_millis(50)) * (1u32 << n);
                    let wait = base.mul_f64(rand::rng().random_range(0.5..1.5));
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "token renewal failed; the current token stays in use");
                    // Only if the token is still the one this renewal started from (it may have
                    // been dropped or replaced meanwhile).
                    let mut current = lock(&slot.current);
                    if let Some(c) = current
                        .as_mut()
                        .filter(|c| c.token.access_token == before.token.access_token)
                    {
                        c.renew_at = (this.now() + wait).min(c.token.expires_at);
                    }
                }
            }
        });
    }

    /// Replaces the cached token of this pair after an API refused `rejected` (401
    /// `invalid_token`): one fetch at a time, at most once every 30 seconds per pair, and the
    /// old token stays in use if the fetch fails. Returns the token to retry with, if any.
    async fn replace_rejected(
        &self,
        scope: Option<&str>,
        audience: Option<&str>,
        rejected: &str,
    ) -> Option<AccessToken> {
        let slot = self.slot(scope, audience);
        let _one = slot.fetching.lock().await;
        if let Some(c) = slot.current().filter(|c| c.valid(self.now())) {
            if c.token.access_token != rejected {
                return Some(c.token); // replaced meanwhile
            }
        }
        {
            let mut last = lock(&slot.last_forced);
            let now = self.now();
            if last.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(30)) {
                return None;
            }
            *last = Some(now);
        }
        match self.fetch(scope, audience).await {
            Ok(token) => {
                slot.set(Some(self.schedule(&token)));
                Some(token)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not replace a refused token");
                None
            }
        }
    }

    /// Drops cached tokens (for example after a resource server refused one); the next call
    /// fetches anew.
    pub fn invalidate(&self) {
        for slot in self
            .inner
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            slot.set(None);
        }
    }

    /// Drops the cached token of this pair if it is still `rejected` (an API refused it); a
    /// token renewed meanwhile is kept.
    pub fn invalidate_token(&self, scope: Option<&str>, audience: Option<&str>, rejected: &str) {
        let slot = self.slot(scope, audience);
        let mut current = slot.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|c| c.token.access_token == rejected) {
            *current = None;
        }
    }

    async fn fetch(&self, scope: Option<&str>, audience: Option<&str>) -> Result<AccessToken, ClientError> {
        let started = self.now();
        let body = self.request(scope, audience).await?;
        // Without expires_in, assume a short life and renew soon; bound absurd ones.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(60).min(366 * 86_400));
        Ok(AccessToken {
            access_token: body.access_token,
            token_type: if body.token_type.eq_ignore_ascii_case("dpop") {
                "DPoP".into()
            } else {
                "Bearer".into()
            },
            expires_at: started + lifetime,
            scope: body.scope,
        })
    }

    /// Requests a new token, bypassing the cache (with the same retries), and returns the whole
    /// RFC 6749 §5.1 response.
    pub async fn request(
        &self,
        scope: Option<&str>,
        audience: Option<&str>,
    ) -> Result<tessera_proto::TokenResponse, ClientError> {
        let mut form: Vec<(&str, String)> = vec![("grant_type", "client_credentials".into())];
        if let Some(s) = scope {
            form.push(("scope", s.into()));
        }
        if let Some(a) = audience {
            form.push(("resource", a.into()));
        }
        self.post_grant(form).await
    }

    /// Exchanges `subject_token` (an access token this service received, RFC 8693) for a token
    /// for `audience` (a resource URI) with `scope` (never wider than the subject's), acting as
    /// the subject (impersonation). Not cached: each call asks the token server. The answer's
    /// `issued_token_type` says what came back.
    pub async fn exchange(
        &self,
        subject_token: &str,
        audience: Option<&str>,
        scope: Option<&str>,
    ) -> Result<tessera_proto::TokenResponse, ClientError> {
        self.exchange_as(subject_token, None, audience, scope).await
    }

    /// [`exchange`](Self::exchange) with an actor token (delegation: the new token's `act`
    /// names its subject, the subject's own actors nested inside), for instance this client's
    /// own token from [`token`](Self::token).
    pub async fn exchange_as(
        &self,
        subject_token: &str,
        actor_token: Option<&str>,
        audience: Option<&str>,
        scope: Option<&str>,
    ) -> Result<tessera_proto::TokenResponse, ClientError> {
        const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
        let mut form: Vec<(&str, String)> = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".into(),
            ),
            ("subject_token", subject_token.into()),
            ("subject_token_type", ACCESS.into()),
            ("requested_token_type", ACCESS.into()),
        ];
        if let Some(a) = actor_token {
            form.push(("actor_token", a.into()));
            form.push(("actor_token_type", ACCESS.into()));
        }
        if let Some(a) = audience {
            form.push(("resource", a.into()));
        }
        if let Some(s) = scope {
            form.push(("scope", s.into()));
        }
        self.post_grant(form).await
    }

    /// Posts `form` (a grant and its parameters) to the token endpoint with this client's
    /// authentication, DPoP proof and retries.
    async fn post_grant(
        &self,
        form: Vec<(&'static str, String)>,
    ) -> Result<tessera_proto::TokenResponse, ClientError> {
        let i = &self.inner;
        let (token_url, auth, assertion_audience) = self.endpoint().await?;
        let mut form = form;
        let secret = match &i.credential {
            Credential::Secret(s) => s.as_str(),
            Credential::Key(_) | Credential::TokenFile(_) | Credential::Certificate => "",
        };
        if auth == AuthMethod::Post {
            form.push(("client_id", i.client_id.clone()));
            form.push(("client_secret", secret.into()));
        }
        let mut attempt = 0;
        let mut nonce_retried = false;
        loop {
            let mut req = match &i.credential {
                // A fresh assertion for every attempt: its `jti` is single use.
                Credential::Key(key) => {
                    let now = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs();
                    let assertion = key.assertion(&i.client_id, assertion_audience, now)?;
                    let mut signed = form.clone();
                    signed.push(("client_id", i.client_id.clone()));
                    signed.push(("client_assertion_type", ASSERTION_TYPE.into()));
                    signed.push(("client_assertion", assertion));
                    i.http.post(token_url).form(&signed)
                }
                Credential::TokenFile(path) => {
                    let mut presented = form.clone();
                    presented.push(("client_id", i.client_id.clone()));
                    presented.push(("client_assertion_type", ASSERTION_TYPE.into()));
                    presented.push(("client_assertion", read_token_file(path)?));
                    i.http.post(token_url).form(&presented)
                }
                Credential::Certificate => {
                    let mut presented = form.clone();
                    presented.push(("client_id", i.client_id.clone()));
                    i.http.post(token_url).form(&presented)
                }
                Credential::Secret(_) => i.http.post(token_url).form(&form),
            };
            if auth == AuthMethod::Basic {
                req = req.basic_auth(
                    tessera_proto::form_urlencode(&i.client_id),
                    Some(tessera_proto::form_urlencode(secret)),
                );
            }
            if let Some(key) = &i.dpop {
                // A fresh proof for every attempt: its `jti` is single use.
                req = req.header("dpop", key.proof("POST", token_url, None)?);
            }
            let (retry_in, why) = match req.send().await {
                Ok(r) if r.status().is_success() => {
                    if let Some(key) = &i.dpop {
                        key.remember_nonce(r.url(), r.headers());
                    }
                    return parse(r, i.dpop.is_some()).await;
                }
                Ok(r)
                    if r.status().is_server_error()
                        || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS =>
                {
                    (retry_after(r.headers()), format!("HTTP {}", r.status()))
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let fresh_nonce = i
                        .dpop
                        .as_ref()
                        .is_some_and(|key| key.remember_nonce(r.url(), r.headers()));
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    // RFC 9449 §8: the server wants a nonce in the proof; once more with it.
                    if fresh_nonce && body["error"] == "use_dpop_nonce" && !nonce_retried {
                        nonce_retried = true;
                        continue;
                    }
                    return Err(ClientError::refused(status, &body));
                }
                Err(e) => (None, chain(&e)),
            };
            if attempt >= i.max_retries {
                return Err(ClientError::Unavailable(why));
            }
            let backoff = i.backoff.saturating_mul(1 << attempt.min(10));
            let wait = retry_in.unwrap_or(backoff);
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %why, "token request failed; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

async fn parse(r: reqwest::Response, dpop: bool) -> Result<tessera_proto::TokenResponse, ClientError> {
    let body: tessera_proto::TokenResponse = r
        .json()
        .await
        .map_err(|e| ClientError::InvalidResponse(chain(&e)))?;
    let dpop_bound = dpop && body.token_type.eq_ignore_ascii_case("dpop");
    if !body.token_type.eq_ignore_ascii_case("bearer") && !dpop_bound {
        return Err(ClientError::InvalidResponse(format!(
            "token_type {:?}",
            body.token_type
        )));
    }
    Ok(body)
}

/// A `reqwest-middleware` middleware that adds `Authorization: Bearer` with a fresh token to
/// every request (for a DPoP-bound token, `Authorization: DPoP` and a proof made for that
/// request). When no token can be had, the request is not sent and the error says why. An API
/// that refuses the token (`invalid_token`) gets one more try with a fresh token, and one that
/// asks for a DPoP nonce one more with a proof carrying it.
///
/// ```
/// use tessera_client::{BearerMiddleware, TokenClient};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let tokens = TokenClient::builder("id", "secret")
///     .token_url("http://127.0.0.1:9/oauth2/token") // nothing listens there
///     .retries(0, std::time::Duration::ZERO)
///     .build()
///     .await
///     .unwrap();
/// let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(BearerMiddleware::new(tokens).scope("invoices:read").audience("https://api.example.com"))
///     .build();
/// let result = http.get("http://127.0.0.1:9/invoices").send().await;
/// assert!(matches!(result, Err(reqwest_middleware::Error::Middleware(_))));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct BearerMiddleware {
    client: TokenClient,
    scope: Option<String>,
    audience: Option<String>,
}

impl BearerMiddleware {
    /// Uses tokens of `client` (default scope and audience).
    pub fn new(client: TokenClient) -> Self {
        BearerMiddleware {
            client,
            scope: None,
            audience: None,
        }
    }

    /// Asks for this scope.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Asks for this audience (RFC 8707 resource).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audience = Some(audience.into());
        self
    }
}

/// Whether a response is an RFC 6750 `invalid_token` refusal.
fn invalid_token(response: &reqwest::Response) -> bool {
    response.status() == reqwest::StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("invalid_token")))
}

impl BearerMiddleware {
    async fn token(&self) -> reqwest_middleware::Result<AccessToken> {
        // (A failure to get any token is the caller's error: nothing was sent.)
        self.client
            .token(self.scope.as_deref(), self.audience.as_deref())
            .await
            .map_err(|e| reqwest_middleware::Error::Middleware(anyhow::Error::new(e)))
    }

    /// Puts `token` (and its proof, for a DPoP-bound one) on `req`.
    fn present(&self, req: &mut reqwest::Request, token: &AccessToken) -> reqwest_middleware::Result<()> {
        let headers = self
            .client
            .authorization(token, req.method().as_str(), req.url().as_str())
            .map_err(|e| reqwest_middleware::Error::Middleware(anyhow::Error::new(e)))?;
        for (name, value) in headers {
            req.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for BearerMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // Kept to send once more if the API refuses the token or wants a DPoP nonce (a streamed
        // body cannot be).
        let again = req.try_clone();
        let mut token = self.token().await?;
        self.present(&mut req, &token)?;
        let mut response = next.clone().run(req, extensions).await?;
        let Some(mut again) = again else {
            return Ok(response);
        };
        // RFC 9449 §9: the API wants a nonce in the proof; once more with the one it gave.
        let wants_nonce = dpop::nonce_challenge(&response)
            && self
                .client
                .dpop_key()
                .is_some_and(|k| k.remember_nonce(response.url(), response.headers()));
        if wants_nonce {
            let retry = again.try_clone();
            self.present(&mut again, &token)?;
            tracing::debug!("the API asked for a DPoP nonce; retrying once with it");
            response = next.clone().run(again, extensions).await?;
            match retry {
                Some(r) => again = r,
                None => return Ok(response),
            }
        }
        if !invalid_token(&response) {
            return Ok(response);
        }
        // The API does not accept the token (revoked, or its keys changed): get a fresh one
        // (shared by every caller, rate-limited) and try once more. No fresh token, or a
        // second refusal: the API's answer goes back to the caller.
        let Some(fresh) = self
            .client
            .replace_rejected(
                self.scope.as_deref(),
                self.audience.as_deref(),
                &token.access_token,
            )
            .await
            .filter(|t| t.access_token != token.access_token)
        else {
            return Ok(response);
        };
        token = fresh;
        if self.present(&mut again, &token).is_err() {
            return Ok(response);
        }
        tracing::debug!("the API refused the token; retrying once with a fresh one");
        next.run(again, extensions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(
            httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(httpdate_parse("yesterday"), None);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a past date means now");
    }
}
