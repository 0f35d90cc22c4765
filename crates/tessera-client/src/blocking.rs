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
//! Call it from ordinary threads only: inside an async task it refuses (`Config`) rather than
//! block the executor.

use std::sync::Arc;

use crate::{AccessToken, ClientError, TokenClientBuilder};

/// A [`crate::TokenClient`] with blocking calls. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TokenClient {
    inner: crate::TokenClient,
    runtime: Arc<tokio::runtime::Runtime>,
}

fn outside_async() -> Result<(), ClientError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(ClientError::Config(
            "the blocking client was called from async code; use tessera_client::TokenClient there".into(),
        ));
    }
    Ok(())
}

impl TokenClient {
    /// Builds the client from `builder` (nothing is fetched yet).
    pub fn new(builder: TokenClientBuilder) -> Result<Self, ClientError> {
        outside_async()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tessera-client")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Config(format!("cannot start the client's runtime: {e}")))?;
        let inner = runtime.block_on(builder.build())?;
        Ok(TokenClient {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// A valid token for `scope` and `audience`; see [`crate::TokenClient::token`].
    pub fn token(&self, scope: Option<&str>, audience: Option<&str>) -> Result<AccessToken, ClientError> {
        outside_async()?;
        self.runtime.block_on(self.inner.token(scope, audience))
    }

    /// A new token response, bypassing the cache; see [`crate::TokenClient::request`].
    pub fn request(
        &self,
        scope: Option<&str>,
        audience: Option<&str>,
    ) -> Result<crate::TokenResponse, ClientError> {
        outside_async()?;
        self.runtime.block_on(self.inner.request(scope, audience))
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
