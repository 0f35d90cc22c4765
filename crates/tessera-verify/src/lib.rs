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

#[cfg(feature = "axum")]
mod http;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

#[cfg(feature = "axum")]
pub use http::{Authenticated, BearerAuth, BearerAuthLayer, RequireScope, RequireScopeLayer};

/// Longest token the verifier looks at.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest JOSE header the verifier decodes.
const MAX_HEADER_LEN: usize = 1024;

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
}

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject (the client, for client credentials).
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issue time.
    pub iat: Option<u64>,
    /// Token id.
    pub jti: Option<String>,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// Granted scopes.
    pub scopes: BTreeSet<String>,
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
    ///     iat: None,
    ///     jti: None,
    ///     client_id: Some("client-1".into()),
    ///     scopes: ["invoices:read".to_string()].into_iter().collect(),
    /// };
    /// assert!(claims.has_scope("invoices:read"));
    /// assert!(!claims.has_scope("invoices:write"));
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}

#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: tessera_proto::Audience,
    exp: u64,
    iat: Option<u64>,
    jti: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
}

/// Builds a [`Verifier`]. (Its `Debug` hides the introspection secret.)
///
/// ```
/// use std::time::Duration;
/// use jsonwebtoken::Algorithm;
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
    audience: Option<String>,
    jwks_uri: Option<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    min_refresh_interval: Duration,
    max_key_age: Duration,
    http: Option<reqwest::Client>,
    introspection: Option<Introspection>,
}

impl std::fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
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
    url: Option<String>,
    client_id: String,
    client_secret: String,
    cache_ttl: Duration,
}

impl VerifierBuilder {
    /// The audience this resource server answers to (RFC 9068 §4). Required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Fetch keys from this JWKS URL instead of discovering it from the issuer's metadata.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Accepted signature algorithms (default ES256, RS256, EdDSA). Symmetric algorithms are
    /// refused at build time: a public key must never verify an HMAC.
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
            url: None,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            cache_ttl,
        });
        self
    }

    /// Fetches metadata (unless a JWKS URL was given) and the keys, and returns the verifier.
    pub async fn build(self) -> Result<Verifier, VerifyError> {
        let audience = self
            .audience
            .ok_or_else(|| VerifyError::Config("an audience is required (RFC 9068 §4)".into()))?;
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
                .map_err(|e| VerifyError::Config(e.to_string()))?,
        };
        let mut introspection = self.introspection;
        let jwks_uri = match (self.jwks_uri, introspection.is_some()) {
            (Some(uri), false) => uri,
            (jwks, _) => {
                let meta = discover(&http, &issuer).await?;
                if let Some(i) = introspection.as_mut() {
                    i.url = Some(meta.introspection_endpoint.clone().ok_or_else(|| {
                        VerifyError::Config("the issuer has no introspection endpoint".into())
                    })?);
                }
                jwks.unwrap_or(meta.jwks_uri)
            }
        };
        let verifier = Verifier {
            inner: Arc::new(Inner {
                issuer,
                audience,
                jwks_uri,
                algorithms: self.algorithms,
                leeway: self.leeway,
                min_refresh_interval: self.min_refresh_interval,
                max_key_age: self.max_key_age,
                http,
                keys: RwLock::new(KeyCache::default()),
                refreshing: tokio::sync::Mutex::new(()),
                introspection,
                introspected: RwLock::new(HashMap::new()),
            }),
        };
        verifier.refresh(Trigger::Initial).await?;
        Ok(verifier)
    }
}

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
        .map_err(|e| VerifyError::Unavailable(format!("{url}: {e}")))?;
    if !response.status().is_success() {
        return Err(VerifyError::Unavailable(format!(
            "{url}: HTTP {}",
            response.status()
        )));
    }
    let meta: Metadata = response
        .json()
        .await
        .map_err(|e| VerifyError::Unavailable(format!("{url}: {e}")))?;
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
    keys: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    fetched: Option<Instant>,
    /// Last fetch attempt, whatever caused it.
    last_attempt: Option<Instant>,
    /// Last fetch caused by an unknown `kid` (these are rate-limited).
    last_unknown_kid: Option<Instant>,
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
    audience: String,
    jwks_uri: String,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    min_refresh_interval: Duration,
    max_key_age: Duration,
    http: reqwest::Client,
    keys: RwLock<KeyCache>,
    refreshing: tokio::sync::Mutex<()>,
    introspection: Option<Introspection>,
    introspected: RwLock<HashMap<String, (bool, Instant)>>,
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
            .field("audience", &self.inner.audience)
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
    /// Building fetches the issuer's metadata and keys, so an unreachable issuer is reported
    /// at once; a missing audience or a symmetric algorithm is a configuration error:
    ///
    /// ```
    /// use tessera_verify::{Verifier, VerifyError};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let no_audience = Verifier::builder("http://127.0.0.1:9").build().await;
    /// assert!(matches!(no_audience, Err(VerifyError::Config(_))));
    /// let unreachable = Verifier::builder("http://127.0.0.1:9").audience("https://api.example.com").build().await;
    /// assert!(matches!(unreachable, Err(VerifyError::Unavailable(_))));
    /// # });
    /// ```
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            audience: None,
            jwks_uri: None,
            algorithms: vec![Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA],
            leeway: Duration::from_secs(30),
            min_refresh_interval: Duration::from_secs(10),
            max_key_age: Duration::from_secs(300),
            http: None,
            introspection: None,
        }
    }

    /// The issuer this verifier trusts.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The audience it requires.
    pub fn audience(&self) -> &str {
        &self.inner.audience
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
            match trigger {
                Trigger::Initial => {}
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
        let fetched = async {
            let response = self
                .inner
                .http
                .get(&self.inner.jwks_uri)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            response
                .json::<serde_json::Value>()
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        let set = match fetched {
            Ok(set) => set,
            Err(e) => {
                tracing::warn!(jwks_uri = %self.inner.jwks_uri, error = %e, "JWKS refresh failed; keeping cached keys");
                return Err(VerifyError::Unavailable(format!("{}: {e}", self.inner.jwks_uri)));
            }
        };
        let mut keys = HashMap::new();
        // Each key on its own: one key of a kind this library does not know (an encryption key,
        // another curve) must not make the whole set unusable.
        for raw in set["keys"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            ) {
                continue;
            }
            if let Some(ops) = &jwk.common.key_operations {
                if !ops
                    .iter()
                    .any(|o| matches!(o, jsonwebtoken::jwk::KeyOperations::Verify))
                {
                    continue;
                }
            }
            // A stated algorithm must be an allowed signing algorithm; a key without one is
            // bound to the token's (allow-listed) algorithm and the key's family.
            let alg = match raw["alg"].as_str() {
                Some(a) => match a.parse::<Algorithm>() {
                    Ok(alg) if self.inner.algorithms.contains(&alg) => Some(alg),
                    _ => continue,
                },
                None => None,
            };
            if let Ok(key) = DecodingKey::from_jwk(&jwk) {
                keys.insert(kid, (key, alg));
            }
        }
        let mut cache = write(&self.inner.keys);
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
        Ok(())
    }

    fn key(&self, kid: &str) -> Option<(DecodingKey, Option<Algorithm>)> {
        read(&self.inner.keys).keys.get(kid).cloned()
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify_offline(token).await?;
        if self.inner.introspection.is_some() && !self.introspect(token).await? {
            return Err(VerifyError::Inactive);
        }
        Ok(claims)
    }

    async fn verify_offline(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
            return Err(VerifyError::Malformed);
        }
        if token.split('.').next().is_none_or(|h| h.len() > MAX_HEADER_LEN) {
            return Err(VerifyError::Malformed);
        }
        // Compact JWS parts are unpadded base64url (RFC 7515 §7.1).
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(VerifyError::Malformed);
        }
        // `none` and unknown algorithms fail here: the header does not parse.
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let typ = header.typ.as_deref().unwrap_or_default();
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(VerifyError::WrongType);
        }
        if !self.inner.algorithms.contains(&header.alg) {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        // Routine refresh when the keys are old (failure keeps them).
        let stale = read(&self.inner.keys)
            .fetched
            .is_none_or(|t| t.elapsed() > self.inner.max_key_age);
        if stale {
            // In the background: requests go on with the cached keys meanwhile, and an issuer
            // that does not answer costs them nothing.
            let this = self.clone();
            tokio::spawn(async move {
                let _ = this.refresh(Trigger::Stale).await;
            });
        }
        let (key, key_alg) = match self.key(kid) {
            Some(k) => k,
            None => {
                let _ = self.refresh(Trigger::UnknownKid).await;
                self.key(kid).ok_or(VerifyError::UnknownKey)?
            }
        };
        if key_alg.is_some_and(|a| a != header.alg) {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.inner.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[&self.inner.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<RawClaims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => VerifyError::BadSignature,
                K::ExpiredSignature => VerifyError::Expired,
                K::ImmatureSignature => VerifyError::NotYetValid,
                K::InvalidIssuer => VerifyError::WrongIssuer,
                K::InvalidAudience => VerifyError::WrongAudience,
                K::InvalidAlgorithm | K::InvalidAlgorithmName => VerifyError::AlgorithmNotAllowed,
                K::MissingRequiredClaim(_) | K::Json(_) => VerifyError::InvalidClaims,
                _ => VerifyError::Malformed,
            }
        })?;
        let c = data.claims;
        // RFC 9068 §2.2: iat, jti and client_id are REQUIRED too.
        if c.iat.is_none() || c.jti.is_none() || c.client_id.is_none() {
            return Err(VerifyError::InvalidClaims);
        }
        Ok(Claims {
            iss: c.iss,
            sub: c.sub,
            aud: c.aud.iter().map(str::to_string).collect(),
            exp: c.exp,
            iat: c.iat,
            jti: c.jti,
            client_id: c.client_id,
            scopes: c
                .scope
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
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
        let url = conf.url.as_deref().unwrap_or_default();
        let response = self
            .inner
            .http
            .post(url)
            .basic_auth(
                tessera_proto::form_urlencode(&conf.client_id),
                Some(tessera_proto::form_urlencode(&conf.client_secret)),
            )
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| VerifyError::Unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(VerifyError::Unavailable(format!(
                "introspection: HTTP {}",
                response.status()
            )));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| VerifyError::Unavailable(e.to_string()))?;
        let active = body["active"] == true;
        let mut cache = write(&self.inner.introspected);
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < conf.cache_ttl);
        }
        cache.insert(token.to_string(), (active, Instant::now()));
        Ok(active)
    }
}
