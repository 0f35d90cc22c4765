//! The resource server's own description (RFC 9728, OAuth 2.0 Protected Resource Metadata): what
//! a client that got a 401 fetches to learn which authorization server to ask, for which
//! resource and scopes. It is what the Model Context Protocol's authorization expects of an MCP
//! server.
//!
//! [`VerifierBuilder::resource`](crate::VerifierBuilder::resource) names the resource (an
//! `https` URL, the identifier clients send as RFC 8707 `resource`): the verifier then accepts
//! only tokens whose audience is that URL, puts `resource_metadata="…"` in every challenge
//! (§5.1), and serves the document (with the `axum` feature, [`Verifier::metadata_router`](crate::Verifier::metadata_router)).

use serde::Serialize;

/// Where the document lives under a host (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// RFC 9728 §2 metadata. Members without a value are left out (§3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceMetadata {
    /// The resource identifier (REQUIRED).
    pub resource: String,
    /// The authorization servers that issue tokens for it.
    pub authorization_servers: Vec<String>,
    /// Scopes it understands (RECOMMENDED).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How it takes tokens: the `Authorization` header.
    pub bearer_methods_supported: Vec<String>,
    /// A human name (RECOMMENDED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Where people read how to use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// DPoP proof algorithms it accepts (RFC 9449), unless it takes bearer tokens only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// It takes DPoP-bound tokens only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens_required: bool,
}

/// The metadata URL for `resource` (§3.1): the well-known path inserted between the host and
/// the resource's path, a trailing `/` dropped (`https://rs.example/mcp` →
/// `https://rs.example/.well-known/oauth-protected-resource/mcp`).
///
/// ```
/// use tessera_verify::resource::metadata_url;
/// assert_eq!(metadata_url("https://rs.example/mcp").as_deref(), Some("https://rs.example/.well-known/oauth-protected-resource/mcp"));
/// assert_eq!(metadata_url("https://rs.example").as_deref(), Some("https://rs.example/.well-known/oauth-protected-resource"));
/// assert_eq!(metadata_url("https://rs.example/").as_deref(), Some("https://rs.example/.well-known/oauth-protected-resource"));
/// assert_eq!(metadata_url("not a url"), None);
/// ```
pub fn metadata_url(resource: &str) -> Option<String> {
    let url = url::Url::parse(resource).ok()?;
    let origin = url.origin().ascii_serialization();
    Some(format!("{origin}{}", metadata_path(url.path())))
}

/// The path at which a server serves the metadata of a resource whose path is `path`.
pub fn metadata_path(path: &str) -> String {
    let path = path.trim_end_matches('/');
    format!("{WELL_KNOWN}{path}")
}

/// Checks a resource identifier (§1.2): an `https` URL without a fragment (plain `http` only on
/// a loopback host, for development).
pub(crate) fn check(resource: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(resource).map_err(|_| format!("resource {resource:?} is not a URL"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.host_str().is_none() {
        return Err(format!(
            "resource {resource:?} must be an https URL (http only on loopback)"
        ));
    }
    if url.fragment().is_some() {
        return Err(format!("resource {resource:?} must not have a fragment"));
    }
    Ok(url)
}
