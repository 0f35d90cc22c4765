//! A blocking client, for programs without an async runtime (scripts, CLIs, synchronous
//! services). It runs its own small Tokio runtime on one background thread, so renewal still
//! happens in the background; every call blocks the calling thread until it has an answer.
//!
//! ```
//! use tessera_client::blocking::TokenClient;
//! let client = TokenClient::new(
//!     tessera_client::TokenClient::builder("id", "secret")
//!         .token_url("http://127.0.0.1:9/oauth2/token") // nothing listens there
//!         .retries(0, std::time::Duration::ZERO),
//! )
//! .unwrap();
//! assert!(matches!(client.token(None, None), Err(tessera_client::ClientError::Unavailable(_))));
//! ```
//!
//! Meant for ordinary threads (a `spawn_blocking` thread is fine); inside an async task it
//! would block that task's executor thread while it waits.

use std::sync::Arc;

use crate::{AccessToken, ClientError, TokenClientBuilder};

/// A [`crate::TokenClient`] with blocking calls. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TokenClient {
    inner: crate::TokenClient,
    runtime: Arc<Runtime>,
}

/// The runtime, shut down without waiting when the last clone goes (dropping a runtime
/// normally blocks, which panics inside async code).
#[derive(Debug)]
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Runtime {
    /// Runs `future` on the runtime and waits for it on this thread.
    fn run<T: Send + 'static>(
        &self,
        future: impl std::future::Future<Output = Result<T, ClientError>> + Send + 'static,
    ) -> Result<T, ClientError> {
        let Some(rt) = &self.0 else {
            return Err(ClientError::Config("the client's runtime is gone".into()));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(ClientError::Config("the client's runtime stopped".into())))
    }
}

impl TokenClient {
    /// Builds the client from `builder` (nothing is fetched yet).
    pub fn new(builder: TokenClientBuilder) -> Result<Self, ClientError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tessera-client")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Config(format!("cannot start the client's runtime: {e}")))?;
        let runtime = Runtime(Some(runtime));
        let inner = runtime.run(builder.build())?;
        Ok(TokenClient {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// A valid token for `scope` and `audience`; see [`crate::TokenClient::token`].
    pub fn token(&self, scope: Option<&str>, audience: Option<&str>) -> Result<AccessToken, ClientError> {
        let (client, scope, audience) = (
            self.inner.clone(),
            scope.map(str::to_string),
            audience.map(str::to_string),
        );
        self.runtime
            .run(async move { client.token(scope.as_deref(), audience.as_deref()).await })
    }

    /// A new token response, bypassing the cache; see [`crate::TokenClient::request`].
    pub fn request(
        &self,
        scope: Option<&str>,
        audience: Option<&str>,
    ) -> Result<crate::TokenResponse, ClientError> {
        let (client, scope, audience) = (
            self.inner.clone(),
            scope.map(str::to_string),
            audience.map(str::to_string),
        );
        self.runtime
            .run(async move { client.request(scope.as_deref(), audience.as_deref()).await })
    }

    /// Drops cached tokens.
    pub fn invalidate(&self) {
        self.inner.invalidate();
    }

    /// The async client underneath (it shares the cache).
    pub fn as_async(&self) -> &crate::TokenClient {
        &self.inner
    }
}
