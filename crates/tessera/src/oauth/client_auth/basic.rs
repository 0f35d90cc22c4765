//! `client_secret_basic` (RFC 6749 §2.3.1): the client id and secret in `Authorization: Basic`.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header;

use super::{AuthMethod, Credentials, Presented, Verifying, verify_secret};
use crate::app::App;
use crate::clients::CachedClient;
use crate::oauth::OAuthError;
use crate::oauth::form::decode_component;

/// `client_secret_basic`.
pub struct SecretBasic;

impl AuthMethod for SecretBasic {
    fn name(&self) -> &'static str {
        "client_secret_basic"
    }

    fn names(&self) -> &'static [&'static str] {
        &["client_secret_basic"]
    }

    fn presented_as(&self) -> &'static str {
        "Basic"
    }

    fn find(&self, request: &Presented<'_>) -> Result<Option<Credentials>, OAuthError> {
        let (headers, form) = (request.headers, request.form);
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| malformed())?;
        let (client_id, secret) = decode(value)?;
        // A client_id in the body next to Basic credentials is not a second method, as long as
        // it names the same client (some libraries always send it).
        if form.get("client_id").is_some_and(|b| b != client_id) {
            return Err(OAuthError::InvalidRequest(
                "client_id in the body differs from the Authorization header".into(),
            ));
        }
        Ok(Some(Credentials {
            client_id,
            secret,
            method: &SecretBasic,
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

fn malformed() -> OAuthError {
    OAuthError::InvalidClient("malformed Basic credentials".into())
}

/// Decodes `Authorization: Basic` credentials: base64, then split at the first `:`, then
/// form-urlencoding-decode each half (RFC 6749 §2.3.1), so ids and secrets may hold `:`, `+`,
/// `%` and spaces.
fn decode(value: &str) -> Result<(String, String), OAuthError> {
    let (scheme, rest) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidClient(
            "unsupported authentication scheme; use Basic or client_secret_post".into(),
        ));
    }
    let raw = STANDARD.decode(rest.trim_matches(' ')).map_err(|_| malformed())?;
    let text = String::from_utf8(raw).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let id = decode_component(id).ok_or_else(malformed)?;
    let secret = decode_component(secret).ok_or_else(malformed)?;
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
        )
    }

    #[test]
    fn basic_is_form_decoded_after_base64() {
        let (id, secret) = decode(&basic("my client", "p:a+s%s w")).unwrap();
        assert_eq!(id, "my client");
        assert_eq!(secret, "p:a+s%s w");
        assert!(decode("Basic !!!").is_err());
        assert!(decode(&format!("Basic {}", STANDARD.encode("nocolon"))).is_err());
        assert!(decode("Bearer abc").is_err());
    }
}
