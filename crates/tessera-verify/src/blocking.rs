//! A blocking verifier, for services without an async runtime (feature `blocking`). It runs
//! its own small Tokio runtime on one background thread for key fetches.
//!
//! ```
//! let verifier = tessera_verify::blocking::Verifier::new(
//!     tessera_verify::Verifier::builder("http://127.0.0.1:9").audience("https://api.example.com"),
//! )
//! .unwrap();
//! // The issuer is not there: the verifier starts anyway and says it cannot check yet.
//! assert!(matches!(
//!     verifier.verify("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0.e30.c2ln"),
//!     Err(tessera_verify::VerifyError::Unavailable(_))
//! ));
//! ```
//!
//! Call it from ordinary threads only: inside an async task it refuses (`Config`) rather than
//! block the executor.

use std::sync::Arc;

use crate::{Claims, VerifierBuilder, VerifyError};

/// A [`crate::Verifier`] with blocking calls. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Verifier {
    inner: crate::Verifier,
    runtime: Arc<tokio::runtime::Runtime>,
}

fn outside_async() -> Result<(), VerifyError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(VerifyError::Config(
            "the blocking verifier was called from async code; use tessera_verify::Verifier there".into(),
        ));
    }
    Ok(())
}

impl Verifier {
    /// Builds the verifier from `builder`.
    pub fn new(builder: VerifierBuilder) -> Result<Self, VerifyError> {
        outside_async()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tessera-verify")
            .enable_all()
            .build()
            .map_err(|e| VerifyError::Config(format!("cannot start the verifier's runtime: {e}")))?;
        let inner = runtime.block_on(builder.build())?;
        Ok(Verifier {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// Verifies `token`; see [`crate::Verifier::verify`].
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        outside_async()?;
        self.runtime.block_on(self.inner.verify(token))
    }

    /// The async verifier underneath (it shares the key cache).
    pub fn as_async(&self) -> &crate::Verifier {
        &self.inner
    }
}
