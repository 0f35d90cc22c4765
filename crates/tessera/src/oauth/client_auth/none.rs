//! `none` (RFC 6749 §2.1, RFC 8414): a public client names itself with `client_id` alone. It has
//! no secret to guess, so it is known and public, or refused.

use std::net::IpAddr;

use http::header;

use super::{AuthMethod, Credentials, Presented, Verifying, log_id};
use crate::app::App;
use crate::clients::{AuthFailure, CachedClient};
use crate::oauth::OAuthError;

/// `none`.
pub struct PublicClient;

impl AuthMethod for PublicClient {
    fn name(&self) -> &'static str {
        "none"
    }

    fn names(&self) -> &'static [&'static str] {
        &["none"]
    }

    fn find(&self, request: &Presented<'_>) -> Result<Option<Credentials>, OAuthError> {
        let (headers, form) = (request.headers, request.form);
        // With an Authorization header, a secret, an assertion or a client certificate, the id
        // belongs to that method.
        if request.certificate.is_some()
            || headers.contains_key(header::AUTHORIZATION)
            || form.get("client_secret").is_some()
            || form.get("client_assertion").is_some()
            || form.get("client_assertion_type").is_some()
        {
            return Ok(None);
        }
        Ok(form.get("client_id").map(|id| Credentials {
            client_id: id.to_string(),
            secret: String::new(),
            method: &PublicClient,
            certificate: None,
        }))
    }

    fn proves_possession(&self) -> bool {
        false
    }

    fn allowed(&self, client: &CachedClient) -> bool {
        client.public
    }

    fn verify<'a>(&'a self, app: &'a App, creds: &'a Credentials, _: IpAddr) -> Verifying<'a> {
        Box::pin(async move {
            match app.registry.get(&creds.client_id) {
                Some(client) if client.public && client.enabled => Ok(client),
                _ => {
                    tracing::info!(client = %log_id(&creds.client_id, AuthFailure::UnknownClient), "public client authentication failed");
                    Err(OAuthError::InvalidClient(
                        "client authentication failed (a confidential client must send its secret)".into(),
                    ))
                }
            }
        })
    }
}
