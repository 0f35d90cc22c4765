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

use tessera_proto::blocking::Runtime;

use crate::{AccessToken, ClientError, TokenClientBuilder};

/// A [`crate::TokenClient`] with blocking calls. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TokenClient {
    inner: crate::TokenClient,
    runtime: Arc<Runtime>,
}

/// Runs `future` on `runtime` and waits for it.
fn run<T: Send + 'static>(
    runtime: &Runtime,
    future: impl std::future::Future<Output = Result<T, ClientError>> + Send + 'static,
) -> Result<T, ClientError> {
    runtime
        .run(future)
        .unwrap_or_else(|| Err(ClientError::Config("the client's runtime stopped".into())))
}

impl TokenClient {
    /// Builds the client from `builder` (nothing is fetched yet).
    pub fn new(builder: TokenClientBuilder) -> Result<Self, ClientError> {
        let runtime = Runtime::new("tessera-client")
            .map_err(|e| ClientError::Config(format!("cannot start the client's runtime: {e}")))?;
        let inner = run(&runtime, builder.build())?;
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
        run(&self.runtime, async move {
            client.token(scope.as_deref(), audience.as_deref()).await
        })
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
        run(&self.runtime, async move {
            client.request(scope.as_deref(), audience.as_deref()).await
        })
    }

    /// The headers that present `token` on a `method` request to `url` (see
    /// [`crate::TokenClient::authorization`]): `Bearer`, or `DPoP` with a fresh proof.
    pub fn authorization(
        &self,
        token: &AccessToken,
        method: &str,
        url: &str,
    ) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, ClientError> {
        self.inner.authorization(token, method, url)
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
