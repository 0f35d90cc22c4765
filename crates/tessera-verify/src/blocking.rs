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
//! Meant for ordinary threads (a `spawn_blocking` thread is fine); inside an async task it
//! would block that task's executor thread while it waits.

use std::sync::Arc;

use tessera_proto::blocking::Runtime;

use crate::{Claims, VerifierBuilder, VerifyError};

/// A [`crate::Verifier`] with blocking calls. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Verifier {
    inner: crate::Verifier,
    runtime: Arc<Runtime>,
}

/// Runs `future` on `runtime` and waits for it.
fn run<T: Send + 'static>(
    runtime: &Runtime,
    future: impl std::future::Future<Output = Result<T, VerifyError>> + Send + 'static,
) -> Result<T, VerifyError> {
    runtime
        .run(future)
        .unwrap_or_else(|| Err(VerifyError::Config("the verifier's runtime stopped".into())))
}

impl Verifier {
    /// Builds the verifier from `builder`.
    pub fn new(builder: VerifierBuilder) -> Result<Self, VerifyError> {
        let runtime = Runtime::new("tessera-verify")
            .map_err(|e| VerifyError::Config(format!("cannot start the verifier's runtime: {e}")))?;
        let inner = run(&runtime, builder.build())?;
        Ok(Verifier {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// Verifies `token`; see [`crate::Verifier::verify`].
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let (verifier, token) = (self.inner.clone(), token.to_string());
        run(&self.runtime, async move { verifier.verify(&token).await })
    }

    /// Verifies a request's token and how it was presented; see
    /// [`crate::Verifier::verify_request`].
    pub fn verify_request(
        &self,
        request: &crate::RequestParts<'_>,
    ) -> Result<crate::Verified, crate::RequestError> {
        let verifier = self.inner.clone();
        let (method, path) = (request.method.to_string(), request.path.to_string());
        let query = request.query.map(str::to_string);
        let headers = request.headers.clone();
        let certificate = request.certificate.map(<[u8]>::to_vec);
        let peer = request.peer;
        self.runtime
            .run(async move {
                let parts = crate::RequestParts {
                    method: &method,
                    path: &path,
                    query: query.as_deref(),
                    headers: &headers,
                    certificate: certificate.as_deref(),
                    peer,
                };
                verifier.verify_request(&parts).await
            })
            .unwrap_or_else(|| {
                Err(crate::RequestError::Token(VerifyError::Config(
                    "the verifier's runtime stopped".into(),
                )))
            })
    }

    /// The async verifier underneath (it shares the key cache).
    pub fn as_async(&self) -> &crate::Verifier {
        &self.inner
    }
}
