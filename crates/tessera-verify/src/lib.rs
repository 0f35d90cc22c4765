//! Verify Tessera access tokens (RFC 9068 JWTs) in a resource server.
//!
//! A [`Verifier`] knows one issuer and one audience (the resource server's own identifier). It
//! fetches the issuer's signing keys (from RFC 8414 discovery, or a JWKS URL you give it), keeps
//! them in memory, and checks each token offline:
//!
//! - the signature, with an explicit algorithm allow-list (ES256, RS256 and EdDSA by default;
//!   never `none`, never a symmetric algorithm, so a public key cannot be used as an HMAC secret);
//! - the header `typ` (`at+jwt`, RFC 9068 §2.1), `iss`, `aud`, `exp` and `nbf`, with a small
//!   configurable leeway for clock skew.
//!
//! A token signed with a key the cache does not know makes the verifier refresh its keys once,
//! at most once per [`VerifierBuilder::min_refresh_interval`], so a flood of forged `kid`s cannot
//! hammer the issuer. When the issuer cannot be reached, the cached keys keep working.
//!
//! With the `axum` feature (on by default), [`BearerAuthLayer`] protects routes and answers per
//! RFC 6750 §3, and [`Authenticated`] hands the checked [`Claims`] to a handler.
//!
//! ```no_run
//! # async fn example() -> Result<(), tessera_verify::VerifyError> {
//! let verifier = tessera_verify::Verifier::builder("https://auth.example.com")
//!     .audience("https://api.example.com")
//!     .build()
//!     .await?;
//! let claims = verifier.verify("eyJhbGciOiJFUzI1NiIs...").await?;
//! assert!(claims.has_scope("invoices:read"));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod bearer;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod dpop;
#[cfg(feature = "axum")]
mod http;
pub mod jws;
pub mod resource;
mod sender;
#[cfg(feature = "test-kit")]
pub mod testing;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

#[cfg(feature = "axum")]
pub use http::{Authenticated, BearerAuth, BearerAuthLayer, RequireScope, RequireScopeLayer};
/// The signature algorithms, to name in [`VerifierBuilder::algorithms`] (re-exported so that a
/// user need not add `jsonwebtoken` to name one).
pub use jsonwebtoken::Algorithm;
pub use sender::{
    Challenge, ClientCertificate, DEFAULT_REPLAY_CAPACITY, RequestError, RequestParts, TokenBinding,
    Verified, certificate_from_header, certificate_thumbprint,
};

/// Longest token the verifier looks at.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Most verified tokens a [`Verifier`] remembers by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// Why a token was refused, or the verifier could not be built.
///
/// Resource servers should not tell clients which of these happened: the HTTP glue answers every
/// refusal with the same `invalid_token`.
///
/// ```
/// use tessera_verify::{Verifier, VerifyError};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # async fn jwks_server() -> String {
/// #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// #     let addr = listener.local_addr().unwrap();
/// #     let app = axum::Router::new().route("/jwks", axum::routing::get(|| async { r#"{"keys":[]}"# }));
/// #     tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
/// #     format!("http://{addr}/jwks")
/// # }
/// let verifier = Verifier::builder("https://auth.example.com")
///     .audience("https://api.example.com")
///     .jwks_uri(jwks_server().await)
///     .build()
///     .await
///     .unwrap();
/// assert_eq!(verifier.verify("not-a-token").await, Err(VerifyError::Malformed));
/// # });
/// ```
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a compact JWS: bad base64, wrong number of parts, oversized, unparsable JSON.
    #[error("malformed token")]
    Malformed,
    /// The header's `typ` is not `at+jwt`.
    #[error("not an access token (typ)")]
    WrongType,
    /// The algorithm is not on the allow-list.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// No published key has this `kid`, even after a refresh.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Past `exp` (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Before `nbf` (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// Another issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// Not meant for this resource server.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is missing or has the wrong type.
    #[error("missing or invalid claim")]
    InvalidClaims,
    /// Introspection says the token is not active (revoked, for example).
    #[error("token not active")]
    Inactive,
    /// Keys or metadata could not be fetched and none are cached.
    #[error("issuer unavailable: {0}")]
    Unavailable(String),
    /// The verifier is configured wrongly.
    #[error("configuration: {0}")]
    Config(String),
    /// The token is bound to a key or a certificate (`cnf`): only [`Verifier::verify_request`],
    /// which sees how it was presented, may accept it (RFC 9449 §7.2, RFC 8705 §3).
    #[error("the token is bound to its holder: verify the whole request")]
    Bound,
}

/// The claims of a verified access token. The claims RFC 9068 requires are plain fields
/// (verification refuses a token without them); any other claim (a tenant, a region, a
/// `principal`…) is in [`Claims::extra`], typed on demand with [`Claims::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject (the client, for client credentials; the person, for a sign-in).
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issue time.
    pub iat: u64,
    /// Token id.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: BTreeSet<String>,
    /// Every other claim of the token.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    /// Whether the token carries `scope`.
    ///
    /// ```
    /// let claims = tessera_verify::Claims {
    ///     iss: "https://auth.example.com".into(),
    ///     sub: "client-1".into(),
    ///     aud: vec!["https://api.example.com".into()],
    ///     exp: 2_000_000_000,
    ///     iat: 1_999_999_000,
    ///     jti: "t1".into(),
    ///     client_id: "client-1".into(),
    ///     scopes: ["invoices:read".to_string()].into_iter().collect(),
    ///     extra: serde_json::from_str(r#"{"tenant":"acme","limits":{"rps":5}}"#).unwrap(),
    /// };
    /// assert!(claims.has_scope("invoices:read"));
    /// assert!(!claims.has_scope("invoices:write"));
    /// assert_eq!(claims.claim::<String>("tenant").as_deref(), Some("acme"));
    /// #[derive(serde::Deserialize)]
    /// struct Limits { rps: u32 }
    /// assert_eq!(claims.claim::<Limits>("limits").map(|l| l.rps), Some(5));
    /// assert!(claims.claim::<u32>("tenant").is_none(), "wrong type");
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Whether the token carries every one of `scopes`.
    pub fn has_all_scopes<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> bool {
        scopes.into_iter().all(|s| self.scopes.contains(s))
    }

    /// Whether the token carries at least one of `scopes`.
    pub fn has_any_scope<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> bool {
        scopes.into_iter().any(|s| self.scopes.contains(s))
    }

    /// The claim `name` as a `T`, if the token has it and it has that shape.
    pub fn claim<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        serde_json::from_value(self.extra.get(name)?.clone()).ok()
    }

    /// Who acted for the subject (RFC 8693 §4.1 `act`), the current actor first, then the one
    /// it acted for, and so on: empty for a token the subject holds itself. Authorization
    /// decisions use [`sub`](Self::sub) and the current actor only (§4.1: earlier actors are
    /// informational).
    ///
    /// ```
    /// # let mut claims = tessera_verify::Claims { iss: "i".into(), sub: "alice".into(), aud: vec![],
    /// #     exp: 0, iat: 0, jti: "j".into(), client_id: "c".into(), scopes: Default::default(), extra: Default::default() };
    /// claims.extra = serde_json::from_str(r#"{"act":{"sub":"svc-c","act":{"sub":"svc-b"}}}"#).unwrap();
    /// assert_eq!(claims.actors(), ["svc-c", "svc-b"]);
    /// ```
    pub fn actors(&self) -> Vec<&str> {
        let mut chain = Vec::new();
        let mut act = self.extra.get("act");
        // A chain deeper than this is not a token anyone minted on purpose.
        while let (Some(a), true) = (act, chain.len() < 32) {
            match a.get("sub").and_then(serde_json::Value::as_str) {
                Some(sub) => chain.push(sub),
                None => break,
            }
            act = a.get("act");
        }
        chain
    }
}

/// The claims of a verified payload, and its `nbf`: RFC 9068 §2.2's required claims must be
/// there with the right types (one pass into a map, the known claims taken out of it; what is
/// left is [`Claims::extra`]).
fn claims_of(payload: &[u8]) -> Result<(Claims, Option<u64>), VerifyError> {
    use serde_json::Value;
    const BAD: VerifyError = VerifyError::InvalidClaims;
    let mut m: serde_json::Map<String, Value> = serde_json::from_slice(payload).map_err(|_| BAD)?;
    fn text(m: &mut serde_json::Map<String, Value>, k: &str) -> Result<String, VerifyError> {
        match m.remove(k) {
            Some(Value::String(s)) => Ok(s),
            _ => Err(BAD),
        }
    }
    fn number(v: Option<Value>) -> Result<Option<u64>, VerifyError> {
        v.map(|v| v.as_u64().ok_or(BAD)).transpose()
    }
    let aud = match m.remove("aud") {
        Some(Value::String(one)) => vec![one],
        Some(Value::Array(many)) => many
            .into_iter()
            .map(|a| match a {
                Value::String(a) => Ok(a),
                _ => Err(BAD),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(BAD),
    };
    let scopes = match m.remove("scope") {
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => Default::default(),
        Some(_) => return Err(BAD),
    };
    let claims = Claims {
        iss: text(&mut m, "iss")?,
        sub: text(&mut m, "sub")?,
        aud,
        exp: number(m.remove("exp"))?.ok_or(BAD)?,
        iat: number(m.remove("iat"))?.ok_or(BAD)?,
        jti: text(&mut m, "jti")?,
        client_id: text(&mut m, "client_id")?,
        scopes,
        extra: serde_json::Map::new(),
    };
    let nbf = number(m.remove("nbf"))?;
    Ok((Claims { extra: m, ..claims }, nbf))
}

/// RFC 7519 §4.1.4 and §4.1.5, with `leeway` seconds of clock skew either way.
fn check_times(exp: u64, nbf: Option<u64>, now: u64, leeway: u64) -> Result<(), VerifyError> {
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    if nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(())
}

/// Builds a [`Verifier`]. (Its `Debug` hides the introspection secret.)
///
/// ```
/// use std::time::Duration;
/// use tessera_verify::Algorithm;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # async fn jwks_server() -> String {
/// #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// #     let addr = listener.local_addr().unwrap();
/// #     let app = axum::Router::new().route("/jwks", axum::routing::get(|| async { r#"{"keys":[]}"# }));
/// #     tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
/// #     format!("http://{addr}/jwks")
/// # }
/// let verifier = tessera_verify::Verifier::builder("https://auth.example.com")
///     .audience("https://api.example.com")
///     .jwks_uri(jwks_server().await)          // skip discovery
///     .algorithms(&[Algorithm::ES256])        // only what the issuer uses
///     .leeway(Duration::from_secs(10))
///     .min_refresh_interval(Duration::from_secs(30))
///     .max_key_age(Duration::from_secs(600))
///     .build()
///     .await
///     .unwrap();
/// assert_eq!(verifier.audience(), "https://api.example.com");
/// # });
/// ```
#[derive(Clone)]
pub struct VerifierBuilder {
    issuer: String,
    audiences: Vec<String>,
    jwks_uri: Option<String>,
    jwks: Option<serde_json::Value>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    min_refresh_interval: Duration,
    max_key_age: Duration,
    http: Option<reqwest::Client>,
    introspection: Option<Introspection>,
    cache_capacity: usize,
    clock: Clock,
    sender: sender::SenderSettings,
    resource: Option<ResourceSettings>,
}

/// What [`VerifierBuilder::resource`] and its companions set.
#[derive(Clone, Debug, Default)]
struct ResourceSettings {
    url: String,
    name: Option<String>,
    scopes: Vec<String>,
    documentation: Option<String>,
}

/// The time, in seconds since the epoch.
type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl std::fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("jwks_uri", &self.jwks_uri)
            .field(
                "introspection",
                &self.introspection.as_ref().map(|i| &i.client_id),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Introspection {
    client_id: String,
    client_secret: String,
    cache_ttl: Duration,
}

impl VerifierBuilder {
    /// An audience this resource server answers to (RFC 9068 §4); at least one is required.
    /// Call it again to accept more (an API known by two names, during a rename): a token is
    /// accepted when one of its audiences is one of these.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        if !self.audiences.contains(&audience) {
            self.audiences.push(audience);
        }
        self
    }

    /// This resource server is the protected resource `url` (RFC 9728; what an MCP server is):
    /// tokens must have exactly `url` as an audience (the RFC 8707 `resource` clients asked
    /// for), every challenge carries `resource_metadata` (RFC 9728 §5.1), and
    /// [`Verifier::resource_metadata`] describes it, naming the issuer as its authorization
    /// server. Takes the place of [`audience`](Self::audience).
    pub fn resource(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.audiences = vec![url.clone()];
        self.resource.get_or_insert_with(Default::default).url = url;
        self
    }

    /// The resource's human name in its metadata (`resource_name`).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource.get_or_insert_with(Default::default).name = Some(name.into());
        self
    }

    /// The scopes the resource understands (`scopes_supported`), which clients then ask for.
    pub fn resource_scopes<'a>(mut self, scopes: impl IntoIterator<Item = &'a str>) -> Self {
        self.resource.get_or_insert_with(Default::default).scopes =
            scopes.into_iter().map(str::to_string).collect();
        self
    }

    /// Where people read how to use the resource (`resource_documentation`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource.get_or_insert_with(Default::default).documentation = Some(url.into());
        self
    }

    /// Fetch keys from this JWKS URL instead of discovering it from the issuer's metadata.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Use this key set (a JWKS document) and never fetch one: for keys distributed out of
    /// band, and for tests (see the `test-kit` feature).
    pub fn jwks(mut self, jwks: serde_json::Value) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// Accepted signature algorithms (default ES256, RS256, EdDSA). Symmetric algorithms are
    /// refused at build time: a public key must never verify an HMAC. A published key that
    /// states its `alg` verifies that one only; one without verifies its curve's algorithm (EC,
    /// OKP) or every accepted RSA algorithm (RSA).
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Clock-skew allowance for `exp` and `nbf` (default 30 s, at most 5 minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(Duration::from_secs(300));
        self
    }

    /// Least time between two key refreshes triggered by unknown `kid`s (default 10 s).
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// How long fetched keys are used before a routine refresh (default 5 minutes). A failed
    /// refresh keeps the old keys.
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// How many verified tokens to remember (default [`DEFAULT_CACHE_CAPACITY`]; 0 turns the
    /// cache off). A remembered token costs a hash and a lookup instead of a signature
    /// verification; its expiry, `nbf` and key (still published, unchanged) are checked on
    /// every use, and introspection, when asked for, still runs.
    pub fn cache_capacity(mut self, tokens: usize) -> Self {
        self.cache_capacity = tokens;
        self
    }

    /// Where `exp` and `nbf` are checked against: seconds since the epoch (default: the system
    /// clock). For tests of what an API does with a token that has expired meanwhile.
    pub fn clock(mut self, now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(now);
        self
    }

    /// Use this HTTP client (for proxies, timeouts, custom roots).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Also ask the issuer's introspection endpoint (RFC 7662) about every token, as this
    /// client, so that revoked tokens are refused. Answers are cached for `cache_ttl` (keep it
    /// short: a revocation takes up to that long to be seen).
    pub fn introspect(mut self, client_id: &str, client_secret: &str, cache_ttl: Duration) -> Self {
        self.introspection = Some(Introspection {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            cache_ttl,
        });
        self
    }

    /// Returns the verifier, having tried to fetch the metadata (unless a JWKS URL was given)
    /// and the keys. An issuer that cannot be reached does not stop a service from starting:
    /// the verifier is returned, answers [`VerifyError::Unavailable`] until the keys arrive,
    /// and tries again (at most once a second) as tokens come in. Configuration errors (no
    /// audience, a symmetric algorithm, metadata naming another issuer) are returned.
    pub async fn build(self) -> Result<Verifier, VerifyError> {
        if self.audiences.is_empty() {
            return Err(VerifyError::Config(
                "an audience is required (RFC 9068 §4)".into(),
            ));
        }
        let audiences = self.audiences;
        if self.algorithms.is_empty() {
            return Err(VerifyError::Config("no algorithm allowed".into()));
        }
        if let Some(a) = self
            .algorithms
            .iter()
            .find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(VerifyError::Config(format!(
                "symmetric algorithm {a:?} cannot be allowed"
            )));
        }
        let issuer = self.issuer.trim_end_matches('/').to_string();
        let http = match self.http {
            Some(h) => h,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| VerifyError::Config(chain(&e)))?,
        };
        let binding = self.sender.binding;
        let sender = self.sender.build(&audiences)?;
        let resource = match self.resource {
            None => None,
            Some(r) => {
                resource::check(&r.url).map_err(VerifyError::Config)?;
                if audiences.len() != 1 || audiences[0] != r.url {
                    return Err(VerifyError::Config(
                        "a resource is its own audience: set resource() and no other audience".into(),
                    ));
                }
                let url = resource::metadata_url(&r.url)
                    .ok_or_else(|| VerifyError::Config(format!("resource {:?} is not a URL", r.url)))?;
                let metadata = resource::ResourceMetadata {
                    resource: r.url,
                    authorization_servers: vec![issuer.clone()],
                    scopes_supported: r.scopes,
                    bearer_methods_supported: vec!["header".into()],
                    resource_name: r.name,
                    resource_documentation: r.documentation,
                    dpop_signing_alg_values_supported: if binding == dpop::Binding::BearerOnly {
                        Vec::new()
                    } else {
                        dpop::ALGORITHM_NAMES.iter().map(|a| a.to_string()).collect()
                    },
                    dpop_bound_access_tokens_required: binding == dpop::Binding::Require,
                };
                Some((metadata, url))
            }
        };
        let verifier = Verifier {
            inner: Arc::new(Inner {
                resource,
                sender,
                issuer,
                audiences,
                jwks_uri: self.jwks_uri,
                jwks: self.jwks,
                endpoints: tokio::sync::OnceCell::new(),
                algorithms: self.algorithms,
                leeway: self.leeway,
                min_refresh_interval: self.min_refresh_interval,
                max_key_age: self.max_key_age,
                http,
                keys: RwLock::new(KeyCache::default()),
                refreshing: tokio::sync::Mutex::new(()),
                stale_refresh: std::sync::atomic::AtomicBool::new(false),
                introspection: self.introspection,
                introspected: RwLock::new(HashMap::new()),
                verified: jws::VerifiedTokens::new(self.cache_capacity),
                clock: self.clock,
            }),
        };
        match verifier.refresh(Trigger::Initial).await {
            Ok(()) => {}
            Err(VerifyError::Unavailable(why)) => {
                tracing::warn!(issuer = %verifier.inner.issuer, error = %why, "issuer unavailable; tokens are refused as unavailable until its keys arrive");
            }
            Err(e) => return Err(e),
        }
        Ok(verifier)
    }
}

/// Where the keys (and the introspection endpoint) are, once known.
struct Endpoints {
    jwks_uri: String,
    introspection: Option<String>,
}

use tessera_proto::error_chain as chain;

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
    introspection_endpoint: Option<String>,
}

/// RFC 8414 discovery; the document's issuer must be the one asked for (§3.3).
async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata, VerifyError> {
    let url = tessera_proto::metadata_url(issuer);
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| VerifyError::Unavailable(format!("{url}: {}", chain(&e))))?;
    if !response.status().is_success() {
        return Err(VerifyError::Unavailable(format!(
            "{url}: HTTP {}",
            response.status()
        )));
    }
    let meta: Metadata = response
        .json()
        .await
        .map_err(|e| VerifyError::Unavailable(format!("{url}: {}", chain(&e))))?;
    if meta.issuer.trim_end_matches('/') != issuer {
        return Err(VerifyError::Config(format!(
            "metadata at {url} names issuer {:?}, not {issuer:?}",
            meta.issuer
        )));
    }
    Ok(meta)
}

#[derive(Default)]
struct KeyCache {
    keys: jws::KeyRing,
    fetched: Option<Instant>,
    /// Last fetch attempt, whatever caused it.
    last_attempt: Option<Instant>,
    /// Last fetch caused by an unknown `kid` (these are rate-limited).
    last_unknown_kid: Option<Instant>,
    /// Why the last fetch failed, if it did.
    last_error: Option<String>,
}

/// Why the keys are being fetched.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Building the verifier.
    Initial,
    /// The cached keys are older than `max_key_age`.
    Stale,
    /// A token names a key the cache does not have.
    UnknownKid,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    /// A JWKS URL given (skips discovery unless introspection needs it).
    jwks_uri: Option<String>,
    /// A key set given: never fetched.
    jwks: Option<serde_json::Value>,
    /// The endpoints in use, once discovery (if needed) succeeded.
    endpoints: tokio::sync::OnceCell<Endpoints>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    min_refresh_interval: Duration,
    max_key_age: Duration,
    http: reqwest::Client,
    keys: RwLock<KeyCache>,
    refreshing: tokio::sync::Mutex<()>,
    /// A routine (stale) refresh is running in the background.
    stale_refresh: std::sync::atomic::AtomicBool,
    introspection: Option<Introspection>,
    introspected: RwLock<HashMap<String, (bool, Instant)>>,
    /// Tokens already verified offline.
    verified: jws::VerifiedTokens<Checked>,
    clock: Clock,
    /// How bound tokens are checked.
    sender: sender::Sender,
    /// The protected resource it guards (RFC 9728) and its metadata URL.
    resource: Option<(resource::ResourceMetadata, String)>,
}

/// What the cache keeps of a verified token: its claims, and its `nbf` for checks on later use.
struct Checked {
    claims: Claims,
    nbf: Option<u64>,
}

/// Verifies access tokens of one issuer for one audience. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl Verifier {
    /// Starts building a verifier for tokens of `issuer`.
    ///
    /// Building tries to fetch the issuer's metadata and keys; a missing audience or a symmetric
    /// algorithm is a configuration error:
    ///
    /// ```
    /// use tessera_verify::{Verifier, VerifyError};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let no_audience = Verifier::builder("http://127.0.0.1:9").build().await;
    /// assert!(matches!(no_audience, Err(VerifyError::Config(_))));
    /// // An issuer that cannot be reached does not stop the start: tokens wait for its keys.
    /// let unreachable = Verifier::builder("http://127.0.0.1:9").audience("https://api.example.com").build().await.unwrap();
    /// assert!(matches!(unreachable.verify("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0.e30.c2ln").await, Err(VerifyError::Unavailable(_))));
    /// # });
    /// ```
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            audiences: Vec::new(),
            jwks_uri: None,
            jwks: None,
            algorithms: vec![Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA],
            leeway: Duration::from_secs(30),
            min_refresh_interval: Duration::from_secs(10),
            max_key_age: Duration::from_secs(300),
            http: None,
            introspection: None,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            clock: Arc::new(system_time),
            sender: Default::default(),
            resource: None,
        }
    }

    /// The RFC 9728 metadata of the resource it guards (see [`VerifierBuilder::resource`]).
    pub fn resource_metadata(&self) -> Option<&resource::ResourceMetadata> {
        self.inner.resource.as_ref().map(|r| &r.0)
    }

    /// Where that metadata is served (RFC 9728 §3.1), as challenges name it.
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.inner.resource.as_ref().map(|r| r.1.as_str())
    }

    /// The issuer this verifier trusts.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The (first) audience it accepts.
    pub fn audience(&self) -> &str {
        self.inner.audiences.first().map_or("", String::as_str)
    }

    /// Every audience it accepts.
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }

    /// How many verified tokens it remembers now (see [`VerifierBuilder::cache_capacity`]).
    pub fn cached_tokens(&self) -> usize {
        self.inner.verified.len()
    }

    /// How many verifications were answered from the cache so far (for a metric of its use).
    pub fn cache_hits(&self) -> u64 {
        self.inner.verified.hits()
    }

    /// The JWKS and introspection URLs: as given, or discovered once (a failed discovery is
    /// tried again next time).
    async fn endpoints(&self) -> Result<&Endpoints, VerifyError> {
        let i = &self.inner;
        i.endpoints
            .get_or_try_init(|| async {
                if let (Some(uri), None) = (&i.jwks_uri, &i.introspection) {
                    return Ok(Endpoints {
                        jwks_uri: uri.clone(),
                        introspection: None,
                    });
                }
                let meta = discover(&i.http, &i.issuer).await?;
                if i.introspection.is_some() && meta.introspection_endpoint.is_none() {
                    tracing::error!(issuer = %i.issuer, "introspection was asked for, but the issuer's metadata has no introspection_endpoint: every token will be refused as unavailable");
                }
                Ok(Endpoints {
                    jwks_uri: i.jwks_uri.clone().unwrap_or(meta.jwks_uri),
                    introspection: meta.introspection_endpoint,
                })
            })
            .await
    }

    /// Fetches the JWKS. Fetches caused by unknown `kid`s happen at most once per
    /// `min_refresh_interval`, and routine ones at most that often too; concurrent callers share
    /// one fetch. On failure the cached keys stay.
    async fn refresh(&self, trigger: Trigger) -> Result<(), VerifyError> {
        let attempted_before = read(&self.inner.keys).last_attempt;
        let _guard = self.inner.refreshing.lock().await;
        {
            let cache = read(&self.inner.keys);
            // Someone else fetched while we waited: use theirs.
            if cache.last_attempt != attempted_before {
                return Ok(());
            }
            let recent =
                |t: Option<Instant>| t.is_some_and(|t| t.elapsed() < self.inner.min_refresh_interval);
            // Until the first keys arrive (the issuer was down at start), try at most once a
            // second, whatever the trigger.
            let never = cache.fetched.is_none();
            let within_second = cache
                .last_attempt
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
            match trigger {
                Trigger::Initial => {}
                _ if never && within_second => return Ok(()),
                _ if never => {}
                Trigger::Stale if recent(cache.last_attempt) => return Ok(()),
                Trigger::UnknownKid if recent(cache.last_unknown_kid) => return Ok(()),
                Trigger::Stale | Trigger::UnknownKid => {}
            }
        }
        {
            let mut cache = write(&self.inner.keys);
            cache.last_attempt = Some(Instant::now());
            if trigger == Trigger::UnknownKid {
                cache.last_unknown_kid = Some(Instant::now());
            }
        }
        let set = match &self.inner.jwks {
            Some(given) => given.clone(),
            None => match self.fetch_jwks().await {
                Ok(set) => set,
                Err(e) => {
                    // Rate limits count from the end of a failed attempt: a fetch that hung
                    // until its timeout is not followed at once by another.
                    write(&self.inner.keys).last_attempt = Some(Instant::now());
                    let why = match &e {
                        VerifyError::Unavailable(m) => m.clone(),
                        other => other.to_string(),
                    };
                    write(&self.inner.keys).last_error = Some(why);
                    return Err(e);
                }
            },
        };
        self.install(&set);
        Ok(())
    }

    /// Fetches the issuer's JWKS document.
    async fn fetch_jwks(&self) -> Result<serde_json::Value, VerifyError> {
        let jwks_uri = match self.endpoints().await {
            Ok(e) => e.jwks_uri.clone(),
            Err(e) => {
                tracing::warn!(issuer = %self.inner.issuer, error = %e, "discovery failed; keeping cached keys");
                return Err(e);
            }
        };
        let fetched = async {
            let response = self
                .inner
                .http
                .get(&jwks_uri)
                .send()
                .await
                .map_err(|e| chain(&e))?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            response.json::<serde_json::Value>().await.map_err(|e| chain(&e))
        }
        .await;
        fetched.map_err(|e| {
            tracing::warn!(jwks_uri = %jwks_uri, error = %e, "JWKS refresh failed; keeping cached keys");
            VerifyError::Unavailable(format!("{jwks_uri}: {e}"))
        })
    }

    /// Replaces the cached keys with the usable keys of `set` (an unchanged key stays the same
    /// entry, so tokens it verified stay cached).
    fn install(&self, set: &serde_json::Value) {
        let fresh = jws::KeyRing::from_jwks(set, &self.inner.algorithms);
        let mut cache = write(&self.inner.keys);
        cache.keys = fresh.keeping(&cache.keys);
        cache.fetched = Some(Instant::now());
        cache.last_error = None;
    }

    /// Verifies `token` and returns its claims. A token bound to its holder (a DPoP key or a
    /// certificate) is refused ([`VerifyError::Bound`]): its presentation must be checked too,
    /// with [`Verifier::verify_request`] (or [`BearerAuthLayer`]).
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify_any(token).await?;
        if claims.extra.contains_key("cnf") {
            return Err(VerifyError::Bound);
        }
        Ok(claims)
    }

    /// [`Verifier::verify`], bound tokens included (for [`Verifier::verify_request`]).
    pub(crate) async fn verify_any(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify_offline(token).await?;
        if self.inner.introspection.is_some() && !self.introspect(token).await? {
            return Err(VerifyError::Inactive);
        }
        Ok(claims)
    }

    async fn verify_offline(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::Malformed);
        }
        let now = (self.inner.clock)();
        let leeway = self.inner.leeway.as_secs();
        self.refresh_if_stale();
        // Seen before: its signature and fixed claims held, with a key still published.
        let digest = (self.inner.verified.capacity() > 0).then(|| jws::digest(token));
        if let Some(d) = &digest {
            let cached = self.inner.verified.get(d, &read(&self.inner.keys).keys);
            if let Some(c) = cached {
                check_times(c.claims.exp, c.nbf, now, leeway)?;
                return Ok(c.claims.clone());
            }
        }
        let jws = jws::parse(token)?;
        let typ = jws.typ.as_deref().unwrap_or_default();
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(VerifyError::WrongType);
        }
        if !self.inner.algorithms.contains(&jws.alg) {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let kid = jws.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let key = self.key_for(kid).await?;
        let payload = jws.verify(&key)?;
        let (claims, nbf) = claims_of(&payload)?;
        check_times(claims.exp, nbf, now, leeway)?;
        if claims.iss != self.inner.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !claims.aud.iter().any(|a| self.inner.audiences.contains(a)) {
            return Err(VerifyError::WrongAudience);
        }
        let Some(digest) = digest else {
            return Ok(claims);
        };
        let expires = claims.exp.saturating_add(leeway);
        let checked = Arc::new(Checked {
            claims: claims.clone(),
            nbf,
        });
        self.inner
            .verified
            .insert(digest, kid, &key, checked, expires, now);
        Ok(claims)
    }

    /// Starts a routine key refresh in the background when the keys are old (one at a time;
    /// requests go on with the cached keys meanwhile, and an issuer that does not answer costs
    /// them nothing).
    fn refresh_if_stale(&self) {
        use std::sync::atomic::Ordering;
        let stale = read(&self.inner.keys)
            .fetched
            .is_none_or(|t| t.elapsed() > self.inner.max_key_age);
        if !stale || self.inner.stale_refresh.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let this = self.clone();
                rt.spawn(async move {
                    let _ = this.refresh(Trigger::Stale).await;
                    this.inner.stale_refresh.store(false, Ordering::Release);
                });
            }
            Err(_) => self.inner.stale_refresh.store(false, Ordering::Release),
        }
    }

    /// The key `kid`, fetching the keys again (rate-limited) if it is not known.
    async fn key_for(&self, kid: &str) -> Result<Arc<jws::PublicKey>, VerifyError> {
        let known = |this: &Self| read(&this.inner.keys).keys.get(kid).cloned();
        if let Some(k) = known(self) {
            return Ok(k);
        }
        let refreshed = self.refresh(Trigger::UnknownKid).await;
        if let Some(k) = known(self) {
            return Ok(k);
        }
        let cache = read(&self.inner.keys);
        if cache.fetched.is_some() {
            return Err(VerifyError::UnknownKey);
        }
        // No keys at all yet (the issuer has been away since start): the token may be fine, so
        // say the issuer is unavailable rather than call it forged.
        Err(refreshed.err().unwrap_or_else(|| {
            VerifyError::Unavailable(
                cache
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the issuer's keys have not been fetched yet".into()),
            )
        }))
    }

    /// RFC 7662: asks the issuer whether `token` is active, with a short cache.
    async fn introspect(&self, token: &str) -> Result<bool, VerifyError> {
        let Some(conf) = &self.inner.introspection else {
            return Ok(true);
        };
        if let Some((active, at)) = read(&self.inner.introspected).get(token).copied() {
            if at.elapsed() < conf.cache_ttl {
                return Ok(active);
            }
        }
        let url = self
            .endpoints()
            .await?
            .introspection
            .clone()
            .ok_or_else(|| VerifyError::Config("the issuer has no introspection endpoint".into()))?;
        let response = self
            .inner
            .http
            .post(&url)
            .basic_auth(
                tessera_proto::form_urlencode(&conf.client_id),
                Some(tessera_proto::form_urlencode(&conf.client_secret)),
            )
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| VerifyError::Unavailable(chain(&e)))?;
        if !response.status().is_success() {
            return Err(VerifyError::Unavailable(format!(
                "introspection: HTTP {}",
                response.status()
            )));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| VerifyError::Unavailable(chain(&e)))?;
        let active = body["active"] == true;
        let mut cache = write(&self.inner.introspected);
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < conf.cache_ttl);
        }
        cache.insert(token.to_string(), (active, Instant::now()));
        Ok(active)
    }
}
