//! HTTP: the router, its limits, and a server loop that times out slow clients.

pub mod admin;
pub mod discovery;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::oauth::{introspect, revoke, token};
use discovery::{
    AUTHORIZE_PATH, INTROSPECT_PATH, JWKS_PATH, OAUTH_METADATA, OPENID_METADATA, REVOKE_PATH, TOKEN_PATH,
};

tokio::task_local! {
    /// The address of the peer of the connection being served.
    pub static PEER: SocketAddr;
}

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
    let token_route = || post(token::token).fallback(token::method_not_allowed);
    let mut routes = Router::new()
        .route(TOKEN_PATH, token_route())
        .route(AUTHORIZE_PATH, any(discovery::authorize))
        .route(
            INTROSPECT_PATH,
            post(introspect::introspect).fallback(token::method_not_allowed),
        )
        .route(
            REVOKE_PATH,
            post(revoke::revoke).fallback(token::method_not_allowed),
        )
        .route(JWKS_PATH, get(discovery::jwks))
        .route(OAUTH_METADATA, get(discovery::oauth_metadata))
        .route(OPENID_METADATA, get(discovery::openid_metadata))
        .route("/healthz", get(discovery::healthz))
        .route("/readyz", get(discovery::readyz));
    for (path, rules) in &app.settings.token_paths {
        let rules = Arc::new(rules.clone());
        let handler = move |State(app): State<Arc<App>>, request: axum::extract::Request| {
            token::token_at(app, request, rules.clone())
        };
        routes = routes.route(path, post(handler).fallback(token::method_not_allowed));
    }
    let routes = routes.merge(admin::router(app.clone()));
    let mut router = routes.clone();
    if let Some(path) = app.settings.issuer_path() {
        router = router
            .nest(path, routes)
            .route(&format!("{OAUTH_METADATA}{path}"), get(discovery::oauth_metadata));
    }
    // Slow clients are cut off by the header-read timeout and by the handlers' own bounded body
    // reads; the token endpoint does no other waiting (Argon2id runs under a bounded pool). The
    // admin API, which waits on the store, carries its own timeout layer.
    router.fallback(not_found).with_state(app)
}

/// Serves `router` on `listener` until `shutdown` turns true, then drains open connections.
/// A client that takes longer than `header_timeout` to send its request headers is disconnected.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
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
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut drain = drain_rx.clone();
        // The peer address is known to every request of the connection through a task-local (the
        // admin API audits it), at no per-request cost.
        tokio::spawn(PEER.scope(peer, async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                // Responses are small: one buffer, one write() per response.
                .writev(false)
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
        }));
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
