//! Wire types shared by every side of a Tessera deployment.
//!
//! The server, the resource-server verifier and the client library all speak the same JSON: the
//! RFC 6749 §5.1 token response, the §5.2 error body and the RFC 9068 access-token claims. They
//! live here, in a crate with no dependencies beyond `serde` (and Tokio for the libraries'
//! blocking APIs, feature `blocking`), so that a verifier or a client never pulls in the server
//! to agree on a field name.
#![deny(missing_docs)]

#[cfg(feature = "blocking")]
pub mod blocking;

use serde::{Deserialize, Serialize};

/// The `typ` header value of a JWT access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Encodes a client id or secret for HTTP Basic credentials as RFC 6749 §2.3.1 requires:
/// `application/x-www-form-urlencoded` first, then (by the caller) base64 of `id:secret`.
///
/// ```
/// assert_eq!(tessera_proto::form_urlencode("a b:c+d%"), "a+b%3Ac%2Bd%25");
/// assert_eq!(tessera_proto::form_urlencode("plain-id_1.x"), "plain-id_1.x");
/// ```
pub fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// The URL of an issuer's authorization-server metadata (RFC 8414 §3.1): the well-known suffix
/// goes between the host and the issuer's path.
///
/// ```
/// use tessera_proto::metadata_url;
/// assert_eq!(metadata_url("https://auth.example"), "https://auth.example/.well-known/oauth-authorization-server");
/// assert_eq!(metadata_url("https://auth.example/tenant/"), "https://auth.example/.well-known/oauth-authorization-server/tenant");
/// ```
pub fn metadata_url(issuer: &str) -> String {
    let issuer = issuer.trim_end_matches('/');
    let (scheme, rest) = issuer.split_once("://").unwrap_or(("https", issuer));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    format!("{scheme}://{host}/.well-known/oauth-authorization-server{path}")
}

/// An error with its causes, one after the other: HTTP clients' own messages often leave the
/// cause out ("error sending request" without "connection refused").
///
/// ```
/// #[derive(Debug)]
/// struct Inner;
/// impl std::fmt::Display for Inner { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("connection refused") } }
/// impl std::error::Error for Inner {}
/// #[derive(Debug)]
/// struct Outer(Inner);
/// impl std::fmt::Display for Outer { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("request failed") } }
/// impl std::error::Error for Outer { fn source(&self) -> Option<&(dyn std::error::Error + 'static)> { Some(&self.0) } }
/// assert_eq!(tessera_proto::error_chain(&Outer(Inner)), "request failed: connection refused");
/// ```
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A successful token response (RFC 6749 §5.1).
///
/// ```
/// let body = r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":3600,"scope":"x y"}"#;
/// let response: tessera_proto::TokenResponse = serde_json::from_str(body).unwrap();
/// assert_eq!(response.expires_in, Some(3600));
/// assert!(!format!("{response:?}").contains("a.b.c"), "Debug never shows a token");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token: a signed JWT.
    pub access_token: String,
    /// Always `Bearer` (RFC 6750).
    pub token_type: String,
    /// Lifetime of the token in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The granted scopes, space-delimited (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// What a token exchange issued (RFC 8693 §2.2.1), e.g.
    /// `urn:ietf:params:oauth:token-type:access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
    /// A refresh token, where the grant gives one (a person's sign-in: RFC 6749 §5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An ID token, where `openid` was granted (OpenID Connect Core §3.1.3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Shows what was issued, never the tokens themselves (a response may be logged).
impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"…")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("issued_token_type", &self.issued_token_type)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .field("id_token", &self.id_token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// The body of an OAuth error response (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error code, for example `invalid_client`.
    pub error: String,
    /// A human-readable description: printable ASCII without `"` or `\`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page that explains the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

/// An audience claim: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialized as a string.
    One(String),
    /// Several audiences, serialized as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `value` is one of the audiences.
    ///
    /// ```
    /// use tessera_proto::Audience;
    /// assert!(Audience::One("https://api".into()).contains("https://api"));
    /// assert!(!Audience::Many(vec!["a".into()]).contains("b"));
    /// ```
    pub fn contains(&self, value: &str) -> bool {
        match self {
            Audience::One(one) => one == value,
            Audience::Many(many) => many.iter().any(|a| a == value),
        }
    }

    /// The audiences as a slice-like iterator.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let items: &[String] = match self {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many,
        };
        items.iter().map(String::as_str)
    }
}

/// The claims of a Tessera access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The issuer identifier of the server that minted the token.
    pub iss: String,
    /// The subject: for client credentials, the client id.
    pub sub: String,
    /// The resource server(s) the token is meant for.
    pub aud: Audience,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: u64,
    /// A unique identifier of this token.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The granted scopes, space-delimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Any other claims: those registered for the client (tenant, region, ...).
    #[serde(flatten, default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
