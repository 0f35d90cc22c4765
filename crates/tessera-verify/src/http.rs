//! Framework glue: a tower layer that requires a valid bearer token, a layer that requires a
//! scope, and an axum extractor for the verified claims. Refusals follow RFC 6750 §3 and say no
//! more than the error code.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::{
    Challenge, Claims, ClientCertificate, RequestError, RequestParts, TokenBinding, Verified, Verifier,
};

/// The verified claims of the request's token. Put there by [`BearerAuthLayer`]; as an axum
/// extractor it refuses the request (401) when the layer did not run or let it through. As
/// `Option<Authenticated>` it is `None` for a request without a token (with
/// [`BearerAuthLayer::optional`]).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

/// The realm of the bearer layer the request passed, and the resource's metadata URL (RFC
/// 9728), for the challenges of the layers and extractors inside it.
#[derive(Debug, Clone)]
struct Realm {
    name: String,
    metadata: Option<String>,
}

fn realm_of(parts: &axum::http::Extensions) -> Realm {
    parts.get::<Realm>().cloned().unwrap_or_else(|| Realm {
        name: "api".into(),
        metadata: None,
    })
}

/// Keeps a value usable inside a quoted `WWW-Authenticate` parameter.
fn header_safe(value: &str) -> String {
    value
        .chars()
        .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != '"' && *c != '\\')
        .collect()
}

fn challenge(status: StatusCode, realm: &Realm, error: Option<&str>, scope: Option<&str>) -> Response {
    let mut value = format!("Bearer realm=\"{}\"", realm.name);
    if let Some(e) = error {
        // RFC 6750 §3: a human-readable description beside the code; never which check failed.
        let description = match e {
            "invalid_request" => "the request carries no usable bearer token",
            "invalid_token" => "the access token is invalid, expired or revoked",
            "insufficient_scope" => "the access token lacks a scope this request needs",
            _ => "",
        };
        value.push_str(&format!(", error=\"{e}\""));
        if !description.is_empty() {
            value.push_str(&format!(", error_description=\"{description}\""));
        }
    }
    if let Some(s) = scope {
        value.push_str(&format!(", scope=\"{s}\""));
    }
    if let Some(m) = &realm.metadata {
        value.push_str(&format!(", resource_metadata=\"{m}\""));
    }
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or_else(|| challenge(StatusCode::UNAUTHORIZED, &realm_of(&parts.extensions), None, None))
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Authenticated {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Authenticated>().cloned())
    }
}

/// Requires a valid access token on every request (RFC 6750; RFC 9449 §7 and RFC 8705 §3 for
/// bound tokens, as the verifier's [`binding`](crate::VerifierBuilder::binding) says):
///
/// - no credentials: 401 with `WWW-Authenticate: Bearer realm="…"` and no error code (and a
///   `DPoP` challenge naming the proof algorithms, unless bearer tokens only are accepted);
/// - a malformed `Authorization` header, several of them, or a token in the query string:
///   400 `invalid_request`;
/// - a token that does not verify: 401 `invalid_token`;
/// - a token bound to a DPoP key presented as `Bearer`, without a proof, or with a proof that
///   fails (wrong key, method, URL, `ath`, replayed…): 401 with a `DPoP` challenge,
///   `invalid_dpop_proof` (or `use_dpop_nonce` and a `DPoP-Nonce`, when nonces are required);
/// - a certificate-bound token without its certificate ([`ClientCertificate`] in the request's
///   extensions, or the verifier's certificate header): 401 `invalid_token`.
///
/// Handlers get the claims with [`Authenticated`] and what the token was bound to with
/// [`TokenBinding`].
///
/// ```
/// use axum::{Router, body::Body, http::{Request, StatusCode}, routing::get};
/// use tessera_verify::{Authenticated, BearerAuthLayer, RequireScopeLayer, Verifier};
/// use tower::ServiceExt;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// # let addr = listener.local_addr().unwrap();
/// # let jwks = Router::new().route("/jwks", get(|| async { r#"{"keys":[]}"# }));
/// # tokio::spawn(async move { axum::serve(listener, jwks).await.unwrap() });
/// let verifier = Verifier::builder("https://auth.example.com")
///     .audience("https://api.example.com")
///     .jwks_uri(format!("http://{addr}/jwks"))
///     .build()
///     .await
///     .unwrap();
/// let app: Router = Router::new()
///     .route("/invoices", get(|Authenticated(claims): Authenticated| async move { claims.sub }))
///     .route_layer(RequireScopeLayer::new("invoices:read"))
///     .layer(BearerAuthLayer::new(verifier).realm("invoices"));
/// // No token: 401 with a challenge and no error code.
/// let response = app.clone().oneshot(Request::get("/invoices").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="invoices""#);
/// // A bad token: 401 invalid_token.
/// let bad = Request::get("/invoices").header("authorization", "Bearer abc.def.ghi").body(Body::empty()).unwrap();
/// let response = app.oneshot(bad).await.unwrap();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct BearerAuthLayer {
    verifier: Verifier,
    realm: String,
    optional: bool,
}

impl BearerAuthLayer {
    /// A layer checking tokens with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        BearerAuthLayer {
            verifier,
            realm: "api".into(),
            optional: false,
        }
    }

    /// The realm named in challenges (default `api`), here and in the scope layers and
    /// extractors inside this layer.
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = header_safe(realm);
        self
    }

    /// Lets requests without credentials through, unauthenticated (handlers take
    /// `Option<Authenticated>`); a token that is presented must still verify.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            verifier: self.verifier.clone(),
            realm: self.realm.clone(),
            optional: self.optional,
        }
    }
}

/// The service made by [`BearerAuthLayer`].
#[derive(Clone, Debug)]
pub struct BearerAuth<S> {
    inner: S,
    verifier: Verifier,
    realm: String,
    optional: bool,
}

impl<S> Service<Request> for BearerAuth<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The clone is ready only if polled; swap so the polled one handles this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let realm = self.realm.clone();
        let optional = self.optional;
        Box::pin(async move {
            req.extensions_mut().insert(Realm {
                name: realm.clone(),
                metadata: verifier.resource_metadata_url().map(str::to_string),
            });
            let certificate = req.extensions().get::<ClientCertificate>().map(|c| c.0.clone());
            // Inside a nested router the request's path lost its prefix: the proof names the
            // whole path.
            let path = req
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| req.uri().path().to_string(), |o| o.0.path().to_string());
            let parts = RequestParts {
                method: req.method().as_str(),
                path: &path,
                query: req.uri().query(),
                headers: req.headers(),
                certificate: certificate.as_deref(),
                peer: req
                    .extensions()
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip()),
            };
            match verifier.verify_request(&parts).await {
                Ok(Verified { claims, binding }) => {
                    req.extensions_mut().insert(Authenticated(claims));
                    req.extensions_mut().insert(binding);
                    inner.call(req).await
                }
                Err(RequestError::NoCredentials) if optional => inner.call(req).await,
                Err(e) => {
                    match &e {
                        // The issuer (or its introspection endpoint) cannot be reached: the token
                        // may be fine, so say so rather than make the client throw it away.
                        RequestError::Token(
                            crate::VerifyError::Unavailable(_) | crate::VerifyError::Config(_),
                        ) => {
                            tracing::warn!(error = %e, "cannot verify access tokens now");
                        }
                        _ => tracing::debug!(error = %e, "access token refused"),
                    }
                    Ok(respond(verifier.challenge(&e, &realm)))
                }
            }
        })
    }
}

/// The response of a refusal.
fn respond(c: Challenge) -> Response {
    let mut r = StatusCode::from_u16(c.status)
        .unwrap_or(StatusCode::UNAUTHORIZED)
        .into_response();
    for value in c.www_authenticate {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    if let Some(v) = c.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        r.headers_mut().insert("dpop-nonce", v);
    }
    r
}

impl<S: Send + Sync> FromRequestParts<S> for TokenBinding {
    type Rejection = Response;

    /// What the request's token was bound to, as [`BearerAuthLayer`] checked it (401 where the
    /// layer did not run).
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TokenBinding>()
            .cloned()
            .ok_or_else(|| challenge(StatusCode::UNAUTHORIZED, &realm_of(&parts.extensions), None, None))
    }
}

/// Requires scopes on top of [`BearerAuthLayer`]: 403 `insufficient_scope` naming them
/// otherwise (RFC 6750 §3.1), 401 without a token. Put it on the routes that need it, inside
/// the bearer layer; challenges use that layer's realm.
#[derive(Clone, Debug)]
pub struct RequireScopeLayer {
    scopes: Vec<String>,
    any: bool,
}

impl RequireScopeLayer {
    /// Requires `scope`.
    pub fn new(scope: &str) -> Self {
        Self::all([scope])
    }

    /// Requires every one of `scopes` (an empty list refuses every request).
    pub fn all<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Self {
        RequireScopeLayer {
            scopes: scopes.into_iter().map(header_safe).collect(),
            any: false,
        }
    }

    /// Requires at least one of `scopes` (say `orders:read` or `orders:admin`).
    pub fn any<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Self {
        RequireScopeLayer {
            scopes: scopes.into_iter().map(header_safe).collect(),
            any: true,
        }
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            scopes: self.scopes.clone(),
            any: self.any,
        }
    }
}

/// The service made by [`RequireScopeLayer`].
#[derive(Clone, Debug)]
pub struct RequireScope<S> {
    inner: S,
    scopes: Vec<String>,
    any: bool,
}

impl<S> Service<Request> for RequireScope<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (scopes, any) = (self.scopes.clone(), self.any);
        Box::pin(async move {
            let realm = realm_of(req.extensions());
            let names = || scopes.iter().map(String::as_str);
            match req.extensions().get::<Authenticated>() {
                None => Ok(challenge(StatusCode::UNAUTHORIZED, &realm, None, None)),
                // An empty list (a scope setting left blank) refuses rather than lets all in.
                Some(Authenticated(c))
                    if scopes.is_empty()
                        || (any && !c.has_any_scope(names()))
                        || (!any && !c.has_all_scopes(names())) =>
                {
                    Ok(challenge(
                        StatusCode::FORBIDDEN,
                        &realm,
                        Some("insufficient_scope"),
                        Some(&scopes.join(" ")),
                    ))
                }
                Some(_) => inner.call(req).await,
            }
        })
    }
}

impl Verifier {
    /// A router that serves the resource's RFC 9728 metadata (see
    /// [`VerifierBuilder::resource`](crate::VerifierBuilder::resource)) at its path-inserted
    /// well-known URL (`/.well-known/oauth-protected-resource/mcp` for `https://rs/mcp`, §3.1)
    /// and at the bare `/.well-known/oauth-protected-resource` (clients that do not insert the
    /// path look there). Readable from any origin, cacheable for an hour. Empty when the
    /// verifier guards no named resource. Merge it into the application's router, outside the
    /// bearer layer:
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), tessera_verify::VerifyError> {
    /// use axum::{Router, routing::post};
    /// use tessera_verify::{BearerAuthLayer, Verifier};
    /// let verifier = Verifier::builder("https://auth.example.com")
    ///     .resource("https://mcp.example.com/mcp")
    ///     .resource_scopes(["mcp:tools"])
    ///     .build()
    ///     .await?;
    /// let app: Router = Router::new()
    ///     .route("/mcp", post(|| async { "…" }))
    ///     .layer(BearerAuthLayer::new(verifier.clone()))
    ///     .merge(verifier.metadata_router());
    /// # Ok(())
    /// # }
    /// ```
    pub fn metadata_router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        let Some(metadata) = self.resource_metadata() else {
            return axum::Router::new();
        };
        let body: std::sync::Arc<str> = serde_json::to_string(metadata).unwrap_or_default().into();
        let path = url::Url::parse(&metadata.resource)
            .map(|u| crate::resource::metadata_path(u.path()))
            .unwrap_or_else(|_| crate::resource::WELL_KNOWN.to_string());
        let serve = move || {
            let body = body.clone();
            async move {
                let mut r = body.to_string().into_response();
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                );
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                r
            }
        };
        let mut router = axum::Router::new().route(&path, axum::routing::get(serve.clone()));
        if path != crate::resource::WELL_KNOWN {
            router = router.route(crate::resource::WELL_KNOWN, axum::routing::get(serve));
        }
        router
    }
}
