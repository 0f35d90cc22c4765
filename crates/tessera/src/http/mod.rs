//! HTTP: the router, its limits, and a server loop that times out slow clients.

pub mod admin;
pub mod console;
pub mod discovery;
pub mod framing;
pub mod interaction;
pub mod oauth;
mod peer;
pub mod register;
pub mod tls;

pub use peer::{connection, peer};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::http::oauth as endpoints;
use discovery::{
    AUTHORIZE_PATH, INTROSPECT_PATH, JWKS_PATH, OAUTH_METADATA, OPENID_METADATA, REVOKE_PATH, TOKEN_PATH,
};

/// Longest a node waits on shutdown for requests in flight to finish.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle connection that was told to go (HTTP/2: GOAWAY, then a PING the client
/// should answer) is given before it is dropped: nothing is in flight on it.
const IDLE_GOODBYE: Duration = Duration::from_secs(2);

/// Most connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 10_000;

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not_found"})),
    )
        .into_response()
}

/// Builds the router. When the issuer has a path (`https://host/tenant`), every route is served
/// both at the root and under that path, so the advertised endpoint URLs work with or without a
/// proxy that strips the prefix; RFC 8414 metadata is also served path-inserted (§3.1).
pub fn router(app: Arc<App>) -> Router {
    // Browsers may call what a single-page app needs from another origin (CORS, without
    // cookies or credentials mode): the token, userinfo and revocation endpoints, the keys and
    // discovery. Not the authorization endpoint (a navigation), introspection or the admin API.
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::WWW_AUTHENTICATE])
        .max_age(Duration::from_secs(600));
    let token_route = || post(endpoints::token).fallback(endpoints::method_not_allowed);
    let mut routes = Router::new()
        .route(TOKEN_PATH, token_route().layer(cors.clone()))
        .route(
            AUTHORIZE_PATH,
            get(crate::http::interaction::authorize).post(crate::http::interaction::authorize),
        )
        .route(
            crate::oauth::oidc::LOGIN_PATH,
            post(crate::http::interaction::login).fallback(endpoints::method_not_allowed),
        )
        .route(
            crate::oauth::oidc::CONSENT_PATH,
            post(crate::http::interaction::consent).fallback(endpoints::method_not_allowed),
        )
        .route(
            crate::oauth::device::VERIFICATION_PATH,
            get(crate::http::interaction::device).post(crate::http::interaction::device),
        )
        .route(
            crate::oauth::device::DEVICE_AUTHORIZATION_PATH,
            post(endpoints::device_authorization).fallback(endpoints::method_not_allowed),
        )
        .route(
            crate::oauth::oidc::LOGOUT_PATH,
            get(crate::http::interaction::logout).post(crate::http::interaction::logout),
        )
        .route(
            crate::oauth::oidc::USERINFO_PATH,
            get(endpoints::userinfo)
                .post(endpoints::userinfo)
                .layer(cors.clone()),
        )
        .route(
            INTROSPECT_PATH,
            post(endpoints::introspect).fallback(endpoints::method_not_allowed),
        )
        .route(
            REVOKE_PATH,
            post(endpoints::revoke)
                .fallback(endpoints::method_not_allowed)
                .layer(cors.clone()),
        )
        .route(JWKS_PATH, get(discovery::jwks).layer(cors.clone()))
        .route(OAUTH_METADATA, get(discovery::oauth_metadata).layer(cors.clone()))
        .route(
            OPENID_METADATA,
            get(discovery::openid_metadata).layer(cors.clone()),
        )
        .route("/healthz", get(discovery::healthz))
        .route("/readyz", get(discovery::readyz));
    for (path, rules) in &app.settings.token_paths {
        let rules = Arc::new(rules.clone());
        let handler = move |State(app): State<Arc<App>>, request: axum::extract::Request| {
            endpoints::token_at(app, request, rules.clone())
        };
        routes = routes.route(path, post(handler).fallback(endpoints::method_not_allowed));
    }
    let mut routes = routes
        .merge(register::routes(&app, cors))
        .merge(admin::router(app.clone()));
    if app.settings.console.enabled && app.settings.console.listen.is_none() {
        routes = routes.merge(console::routes(&app));
    }
    let mut router = routes.clone();
    if let Some(path) = app.settings.issuer_path() {
        router = router
            .nest(path, routes)
            .route(&format!("{OAUTH_METADATA}{path}"), get(discovery::oauth_metadata));
    }
    if app.settings.metrics {
        router = router.route("/metrics", get(metrics));
    }
    // Slow clients are cut off by the header-read timeout and by the handlers' own bounded body
    // reads; the token endpoint does no other waiting (Argon2id runs under a bounded pool). The
    // admin API, which waits on the store, carries its own timeout layer.
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), front_door))
        .with_state(app)
}

/// The console alone, for its own listener (`[console] listen`), behind the same front door.
pub fn console_router(app: Arc<App>) -> Router {
    console::routes(&app)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), front_door))
        .with_state(app)
}

/// Largest body the admin API accepts.
pub const ADMIN_MAX_BODY: usize = 64 * 1024;

/// The header carrying a request's id, in both directions.
pub const REQUEST_ID: &str = "x-request-id";

/// The id of a request: the one a proxy put in `X-Request-Id` when it is short and plain, else a
/// new one (a per-process prefix and a counter: unique, cheap, and no secret in it).
fn request_id(headers: &axum::http::HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(REQUEST_ID).filter(|v| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= 64 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    }) {
        return v.clone();
    }
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(rand::random);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    HeaderValue::try_from(format!("{prefix:08x}-{n:x}")).unwrap_or(HeaderValue::from_static("-"))
}

/// The endpoint a path belongs to, for metrics (a fixed set of names).
fn endpoint_of(app: &App, path: &str) -> &'static str {
    let path = app
        .settings
        .issuer_path()
        .and_then(|p| path.strip_prefix(p))
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(path);
    match path {
        TOKEN_PATH => "token",
        INTROSPECT_PATH => "introspect",
        REVOKE_PATH => "revoke",
        JWKS_PATH => "jwks",
        AUTHORIZE_PATH
        | crate::oauth::oidc::LOGIN_PATH
        | crate::oauth::oidc::CONSENT_PATH
        | crate::oauth::device::VERIFICATION_PATH => "authorize",
        crate::oauth::device::DEVICE_AUTHORIZATION_PATH => "device_authorization",
        crate::oauth::oidc::USERINFO_PATH => "userinfo",
        crate::oauth::oidc::LOGOUT_PATH => "logout",
        "/healthz" | "/readyz" => "health",
        "/metrics" => "metrics",
        p if p.starts_with("/.well-known/") => "discovery",
        p if p.starts_with("/admin/") => "admin",
        p if p == console::CONSOLE_PATH || p.starts_with("/console/") => "console",
        p if app.settings.token_paths.iter().any(|(t, _)| t == p) => "token",
        _ => "other",
    }
}

fn refuse(status: StatusCode, description: &str) -> Response {
    let mut r = (
        status,
        axum::Json(serde_json::json!({"error": "invalid_request", "error_description": description})),
    )
        .into_response();
    crate::http::oauth::no_store(&mut r);
    r.extensions_mut()
        .insert(crate::metrics::Outcome("invalid_request"));
    r
}

/// What every request passes first: an id (returned as `X-Request-Id` and on every log line of
/// the request), the framing rules the HTTP library leaves to the application ([`framing`]; a
/// declared body over the limit refused before it is read), the cap on requests in flight, and
/// the metrics of the answer.
async fn front_door(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let id = request_id(request.headers());
    let endpoint = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| endpoint_of(&app, m.as_str()))
        .unwrap_or("other");
    let span = tracing::info_span!("request", id = id.to_str().unwrap_or_default());
    let mut response = async {
        if let Err(r) = framing::check(
            request.method(),
            request.uri(),
            request.version(),
            request.headers(),
        ) {
            let mut answer = if r.close || !matches!(endpoint, "authorize" | "logout") {
                refuse(r.status, r.description)
            } else {
                // The pages people see answer with a page.
                crate::http::interaction::pages::error(r.status, "Bad request", "The address is malformed.")
            };
            if r.close {
                answer
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return answer;
        }
        let limit = if endpoint == "admin" {
            ADMIN_MAX_BODY
        } else {
            app.settings.max_body_bytes
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            let mut r = refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body larger than {limit} bytes"),
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
        if matches!(endpoint, "health" | "metrics") {
            return next.run(request).await;
        }
        let Ok(_permit) = app.guard.in_flight.clone().try_acquire_owned() else {
            return crate::oauth::OAuthError::Overloaded.into_response();
        };
        next.run(request).await
    }
    .instrument(span)
    .await;
    let outcome = match response.extensions().get::<crate::metrics::Outcome>() {
        Some(o) => o.0,
        None => match response.status().as_u16() {
            200..=399 => "ok",
            404 => "not_found",
            405 => "method_not_allowed",
            400..=499 => "client_error",
            _ => "server_error",
        },
    };
    if let Some(limited) = response.extensions().get::<crate::metrics::Limited>() {
        app.metrics.rejected(limited.0);
    }
    app.metrics.request(endpoint, outcome, started.elapsed());
    response.headers_mut().insert(REQUEST_ID, id);
    // RFC 6797: a node that terminates TLS itself tells browsers to use nothing else. (Behind a
    // proxy that terminates TLS, HSTS is the proxy's to send.)
    if app.settings.tls.is_some() && app.settings.hsts_max_age > 0 {
        if let Ok(v) = HeaderValue::try_from(format!("max-age={}", app.settings.hsts_max_age)) {
            response
                .headers_mut()
                .insert(header::STRICT_TRANSPORT_SECURITY, v);
        }
    }
    response
}

/// How long a connection may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To send a request's headers, or to finish the TLS handshake.
    pub header: Duration,
    /// With no request in flight, before the connection is closed.
    pub idle: Duration,
}

/// Serves `router` on `listener` until `shutdown` turns true, then drains open connections.
/// A client that takes longer than `timeouts.header` to send its request headers (or to finish
/// the TLS handshake) is disconnected, and a connection idle for `timeouts.idle` is closed
/// (HTTP/2 with a GOAWAY). With `tls`, connections speak TLS and offer HTTP/2 and HTTP/1.1;
/// without, HTTP/1.1.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let (drain_tx, drain_rx) = watch::channel(false);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::default();
        let mut service = Tracked {
            inner: hyper_util::service::TowerToHyperService::new(router.clone()),
            activity: activity.clone(),
            peer,
            certificate: None,
        };
        let header_timeout = timeouts.header;
        let idle = (activity, timeouts.idle);
        let drain = drain_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_http1(TokioIo::new(stream), service, header_timeout, idle, drain, peer).await,
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    service.certificate = stream.get_ref().1.peer_certificates().map(|chain| {
                        Arc::new(crate::model::auth::PeerCertificate {
                            chain: chain.iter().map(|c| c.to_vec()).collect(),
                        })
                    });
                    serve_auto(TokioIo::new(stream), service, header_timeout, idle, drain, peer).await
                }
            }
        });
    }
    let _ = drain_tx.send(true);
    // Wait (bounded) for connections to finish.
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while permits.available_permits() < MAX_CONNECTIONS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// When a connection last had a request in flight, and how many it has now.
#[derive(Clone)]
struct Activity(Arc<ActivityState>);

struct ActivityState {
    in_flight: std::sync::atomic::AtomicUsize,
    /// Milliseconds after `since` when the last request ended (or the connection opened).
    last: AtomicU64,
    since: std::time::Instant,
}

impl Default for Activity {
    fn default() -> Self {
        Activity(Arc::new(ActivityState {
            in_flight: Default::default(),
            last: AtomicU64::new(0),
            since: std::time::Instant::now(),
        }))
    }
}

impl Activity {
    fn now_ms(&self) -> u64 {
        self.0.since.elapsed().as_millis() as u64
    }

    /// Resolves once the connection has had no request in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        let idle_ms = idle.as_millis() as u64;
        loop {
            let quiet = self.now_ms().saturating_sub(self.0.last.load(Ordering::Relaxed));
            if self.0.in_flight.load(Ordering::Relaxed) == 0 && quiet >= idle_ms {
                return;
            }
            let wait = if self.0.in_flight.load(Ordering::Relaxed) == 0 {
                idle_ms.saturating_sub(quiet).max(10)
            } else {
                idle_ms
            };
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

/// Marks a request in flight until it is answered.
struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.0.last.store(a.now_ms(), Ordering::Relaxed);
        a.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The router as a hyper service that keeps a connection's [`Activity`] and gives every request
/// the connection's peer address (axum's `ConnectInfo`, read with [`peer`]).
#[derive(Clone)]
struct Tracked {
    inner: hyper_util::service::TowerToHyperService<Router>,
    activity: Activity,
    peer: SocketAddr,
    /// The certificate the client presented in the TLS handshake, if any.
    certificate: Option<Arc<crate::model::auth::PeerCertificate>>,
}

impl<B> hyper::service::Service<axum::http::Request<B>> for Tracked
where
    hyper_util::service::TowerToHyperService<Router>: hyper::service::Service<axum::http::Request<B>>,
    <hyper_util::service::TowerToHyperService<Router> as hyper::service::Service<axum::http::Request<B>>>::Future:
        Send + 'static,
{
    type Response =
        <hyper_util::service::TowerToHyperService<Router> as hyper::service::Service<axum::http::Request<B>>>::Response;
    type Error =
        <hyper_util::service::TowerToHyperService<Router> as hyper::service::Service<axum::http::Request<B>>>::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn call(&self, mut request: axum::http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        if let Some(c) = &self.certificate {
            request.extensions_mut().insert(c.clone());
        }
        self.activity.0.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(self.activity.clone());
        let future = self.inner.call(request);
        Box::pin(async move {
            let answer = future.await;
            drop(guard);
            answer
        })
    }
}

type Service = Tracked;

async fn serve_http1<I>(
    io: I,
    service: Service,
    header_timeout: Duration,
    (activity, idle): (Activity, Duration),
    mut drain: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        // Responses are small: one buffer, one write() per response.
        .writev(false)
        .max_buf_size(64 * 1024)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        }
        _ = drain.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
        }
        _ = activity.idle_for(idle) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(IDLE_GOODBYE, conn).await;
        }
    }
}

async fn serve_auto<I>(
    io: I,
    service: Service,
    header_timeout: Duration,
    (activity, idle): (Activity, Duration),
    mut drain: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // HTTP/2 serves each stream in a task of its own; the peer's address travels with each
    // request (`Tracked` gives it `ConnectInfo`), so any executor will do.
    let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .writev(false)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        }
        _ = drain.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
        }
        // HTTP/2 keeps a connection open for as long as the client likes: an idle one is sent a
        // GOAWAY and closed, as HTTP/1 keep-alive connections are.
        _ = activity.idle_for(idle) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(IDLE_GOODBYE, conn).await;
        }
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// `GET /metrics`: the node's counters and its state now, in the OpenMetrics text format.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.metrics.render(&app.gauges()) {
        Ok(text) => {
            let mut r = (StatusCode::OK, text).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            r
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
