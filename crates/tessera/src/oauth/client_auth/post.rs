//! `client_secret_post` (RFC 6749 §2.3.1): `client_id` and `client_secret` in the form body.

use std::net::IpAddr;

use super::{AuthMethod, Credentials, Presented, Verifying, verify_secret};
use crate::app::App;
use crate::clients::CachedClient;
use crate::oauth::OAuthError;

/// `client_secret_post`.
pub struct SecretPost;

impl AuthMethod for SecretPost {
    fn name(&self) -> &'static str {
        "client_secret_post"
    }

    fn names(&self) -> &'static [&'static str] {
        &["client_secret_post"]
    }

    fn presented_as(&self) -> &'static str {
        "client_secret"
    }

    fn find(&self, request: &Presented<'_>) -> Result<Option<Credentials>, OAuthError> {
        let form = request.form;
        let Some(secret) = form.get("client_secret") else {
            return Ok(None);
        };
        let Some(client_id) = form.get("client_id") else {
            return Err(OAuthError::InvalidRequest(
                "client_secret without client_id".into(),
            ));
        };
        Ok(Some(Credentials {
            client_id: client_id.to_string(),
            secret: secret.to_string(),
            method: &SecretPost,
            certificate: None,
        }))
    }

    fn allowed(&self, client: &CachedClient) -> bool {
        client.accepts_secrets()
    }

    fn verify<'a>(&'a self, app: &'a App, creds: &'a Credentials, address: IpAddr) -> Verifying<'a> {
        Box::pin(verify_secret(app, creds, address))
    }
}
