//! HTTP: the router, its limits, and a server loop that times out slow clients.

pub mod discovery;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::oauth::token;
use discovery::{JWKS_PATH, Metadata, OAUTH_METADATA, OPENID_METADATA, TOKEN_PATH};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 10_000;

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not_found"})),
    )
        .into_response()
}

/// Builds the router.
pub fn router(app: Arc<App>) -> Router {
    let token_route = || post(token::token).fallback(token::method_not_allowed);
    let mut router = Router::new()
        .route(TOKEN_PATH, token_route())
        .route(JWKS_PATH, get(discovery::jwks))
        .route(OAUTH_METADATA, get(discovery::oauth_metadata))
        .route(OPENID_METADATA, get(discovery::openid_metadata))
        .route("/healthz", get(discovery::healthz))
        .route("/readyz", get(discovery::readyz));
    for alias in &app.settings.token_endpoint_aliases {
        router = router.route(alias, token_route());
    }
    if let Some(p) = Metadata::path_inserted(&app.settings, OAUTH_METADATA) {
        router = router.route(&p, get(discovery::oauth_metadata));
    }
    if let Some(p) = Metadata::path_inserted(&app.settings, "") {
        router = router.route(&format!("{p}{OPENID_METADATA}"), get(discovery::openid_metadata));
    }
    let timeout = app.settings.request_timeout;
    router
        .fallback(not_found)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(app)
}

/// Serves `router` on `listener` until `shutdown` turns true, then drains open connections.
pub async fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
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
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut drain = drain_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                }
                _ = drain.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
                }
            }
        });
    }
    let _ = drain_tx.send(true);
    // Wait (bounded) for connections to finish.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while permits.available_permits() < MAX_CONNECTIONS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
