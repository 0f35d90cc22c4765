//! Client authentication at the token endpoint (RFC 6749 §2.3.1): `client_secret_basic` and
//! `client_secret_post`, exactly one per request.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::OAuthError;
use super::form::{Form, decode_component};

/// Longest client id accepted.
const MAX_ID: usize = 256;
/// Longest secret accepted.
const MAX_SECRET: usize = 512;

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// HTTP Basic.
    Basic,
    /// Form fields.
    Post,
    /// A public client: `client_id` alone (`none`, RFC 6749 §2.1).
    None,
}

/// The credentials a request presented.
pub struct Credentials {
    /// The client id.
    pub client_id: String,
    /// The secret.
    pub secret: String,
    /// Where they came from.
    pub method: Method,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

fn malformed_basic() -> OAuthError {
    OAuthError::InvalidClient("malformed Basic credentials".into())
}

/// Decodes `Authorization: Basic` credentials: base64, then split at the first `:`, then
/// form-urlencoding-decode each half (RFC 6749 §2.3.1), so ids and secrets may hold `:`, `+`,
/// `%` and spaces.
fn decode_basic(value: &str) -> Result<(String, String), OAuthError> {
    let (scheme, rest) = value.split_once(' ').ok_or_else(malformed_basic)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidClient(
            "unsupported authentication scheme; use Basic or client_secret_post".into(),
        ));
    }
    let raw = STANDARD
        .decode(rest.trim_matches(' '))
        .map_err(|_| malformed_basic())?;
    let text = String::from_utf8(raw).map_err(|_| malformed_basic())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed_basic)?;
    let id = decode_component(id).ok_or_else(malformed_basic)?;
    let secret = decode_component(secret).ok_or_else(malformed_basic)?;
    Ok((id, secret))
}

/// Finds the client's credentials in the request, enforcing one method per request.
pub fn credentials(headers: &HeaderMap, form: &Form) -> Result<Credentials, OAuthError> {
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    let header_value = auth.next();
    if auth.next().is_some() {
        return Err(OAuthError::InvalidRequest(
            "more than one Authorization header".into(),
        ));
    }
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    let creds = match header_value {
        Some(value) => {
            if body_secret.is_some() {
                return Err(OAuthError::InvalidRequest(
                    "more than one client authentication method (Basic and client_secret)".into(),
                ));
            }
            let value = value.to_str().map_err(|_| malformed_basic())?;
            let (client_id, secret) = decode_basic(value)?;
            // A client_id in the body next to Basic credentials is not a second method, as long
            // as it names the same client (some libraries always send it).
            if body_id.is_some_and(|b| b != client_id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id in the body differs from the Authorization header".into(),
                ));
            }
            Credentials {
                client_id,
                secret,
                method: Method::Basic,
            }
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => Credentials {
                client_id: id.to_string(),
                secret: secret.to_string(),
                method: Method::Post,
            },
            (_, Some(_)) => {
                return Err(OAuthError::InvalidRequest(
                    "client_secret without client_id".into(),
                ));
            }
            // A public client names itself; whether it is one is checked against the registry.
            (Some(id), None) => Credentials {
                client_id: id.to_string(),
                secret: String::new(),
                method: Method::None,
            },
            (None, None) => return Err(OAuthError::InvalidClient("client authentication required".into())),
        },
    };
    if creds.client_id.is_empty()
        || creds.client_id.len() > MAX_ID
        || (creds.secret.is_empty() && creds.method != Method::None)
        || creds.secret.len() > MAX_SECRET
    {
        return Err(OAuthError::InvalidClient("client authentication failed".into()));
    }
    Ok(creds)
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
        let (id, secret) = decode_basic(&basic("my client", "p:a+s%s w")).unwrap();
        assert_eq!(id, "my client");
        assert_eq!(secret, "p:a+s%s w");
        assert!(decode_basic("Basic !!!").is_err());
        assert!(decode_basic(&format!("Basic {}", STANDARD.encode("nocolon"))).is_err());
        assert!(decode_basic("Bearer abc").is_err());
    }
}
