//! Client metadata (RFC 7591 §2) as self-registered clients send it: the rules it follows under
//! the operator's registration policy, one function ([`read_metadata`]) for both ways in (RFC
//! 7591 registration and client ID metadata documents), the echo RFC 7591 §3.2.1 asks for, and
//! what a metadata-document URL looks like.

use serde_json::{Map, Value};

use super::auth::{self, TokenAuth};
use super::flows::{self, Flows};

/// What an operator allows self-registered clients (`[registration]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Grant types a registered client may ask for.
    pub grant_types: Vec<String>,
    /// Confidential clients (with a secret) may register.
    pub confidential: bool,
    /// Scopes a registered client may have; it gets what it asks for within these (all of them
    /// when it asks for none).
    pub scopes: Vec<String>,
    /// Audiences (RFC 8707 resources) its tokens may be for.
    pub audiences: Vec<String>,
    /// Lifetime of its access tokens, in seconds.
    pub token_ttl: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            grant_types: vec![
                flows::AUTHORIZATION_CODE.to_string(),
                flows::REFRESH_TOKEN.to_string(),
            ],
            confidential: true,
            scopes: ["openid", "profile", "email", "offline_access"]
                .map(String::from)
                .to_vec(),
            audiences: Vec::new(),
            token_ttl: 600,
        }
    }
}

/// Why metadata was refused: the RFC 7591 §3.2.2 error code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    pub error: &'static str,
    /// What is wrong, for the client's developer.
    pub description: String,
}

fn metadata_error(description: impl Into<String>) -> Refusal {
    Refusal {
        error: "invalid_client_metadata",
        description: description.into(),
    }
}

fn redirect_error(description: impl Into<String>) -> Refusal {
    Refusal {
        error: "invalid_redirect_uri",
        description: description.into(),
    }
}

/// Client metadata read under a policy: what the client becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Its name (`client_name`; the first redirect URI's host when it gives none).
    pub name: String,
    /// How it may get tokens.
    pub flows: Flows,
    /// Its scopes (what it asked for, within the policy).
    pub scopes: Vec<String>,
    /// Metadata kept to show and echo.
    pub kept: Map<String, Value>,
}

/// Longest string Tessera keeps from client metadata.
const MAX_FIELD: usize = 2048;
/// Most contacts kept.
const MAX_CONTACTS: usize = 10;
/// The URL-valued fields kept to show and echo (never fetched).
const URL_FIELDS: &[&str] = &["client_uri", "logo_uri", "tos_uri", "policy_uri"];
/// The string fields kept to show and echo.
const TEXT_FIELDS: &[&str] = &["software_id", "software_version"];

/// Reads RFC 7591 §2 client metadata under `policy`. Unknown members are ignored (§2: "MUST
/// ignore"); `public_only` (a metadata document, draft §4.1) refuses shared secrets.
pub fn read_metadata(
    doc: &Map<String, Value>,
    policy: &Policy,
    public_only: bool,
) -> Result<Metadata, Refusal> {
    let strings = |name: &str| -> Result<Option<Vec<String>>, Refusal> {
        match doc.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| metadata_error(format!("{name} must be an array of strings")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(metadata_error(format!("{name} must be an array of strings"))),
        }
    };
    let text = |name: &str| -> Result<Option<&str>, Refusal> {
        match doc.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s))
                if !s.is_empty() && s.len() <= MAX_FIELD && !s.chars().any(char::is_control) =>
            {
                Ok(Some(s.as_str()))
            }
            Some(_) => Err(metadata_error(format!(
                "{name} must be a string of 1 to {MAX_FIELD} printable characters"
            ))),
        }
    };

    // Redirect URIs: https, loopback http, or a private-use scheme; exact; no fragment, no
    // wildcard (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1).
    let redirect_uris = strings("redirect_uris")?.unwrap_or_default();
    if redirect_uris.len() > flows::MAX_REDIRECT_URIS {
        return Err(redirect_error(format!(
            "at most {} redirect URIs",
            flows::MAX_REDIRECT_URIS
        )));
    }
    for (i, uri) in redirect_uris.iter().enumerate() {
        super::redirect::validate(uri).map_err(|e| redirect_error(format!("{uri}: {e}")))?;
        if redirect_uris[..i].contains(uri) {
            return Err(redirect_error(format!("{uri} is given twice")));
        }
    }

    // Grant and response types (RFC 7591 §2.1): defaults authorization_code and code.
    let grant_types = strings("grant_types")?.unwrap_or_else(|| vec![flows::AUTHORIZATION_CODE.to_string()]);
    for g in &grant_types {
        if !flows::GRANT_TYPES.contains(&g.as_str()) {
            return Err(metadata_error(format!("grant type {g} is not supported")));
        }
        if !policy.grant_types.contains(g) {
            return Err(metadata_error(format!(
                "grant type {g} is not open to registered clients here"
            )));
        }
    }
    let response_types = strings("response_types")?;
    let wants_code = grant_types.iter().any(|g| g == flows::AUTHORIZATION_CODE);
    match &response_types {
        Some(r) if r.iter().any(|t| t != "code") => {
            return Err(metadata_error("the only response type is code"));
        }
        Some(r) if r.is_empty() == wants_code => {
            return Err(metadata_error(
                "response_types and grant_types disagree: code goes with authorization_code (RFC 7591 §2.1)",
            ));
        }
        _ => {}
    }
    if wants_code && redirect_uris.is_empty() {
        return Err(redirect_error(
            "authorization_code needs at least one redirect URI",
        ));
    }

    // How it authenticates: none (public), a secret (confidential), or its own keys given inline.
    let method = text("token_endpoint_auth_method")?.unwrap_or("client_secret_basic");
    let (public, auth) = match method {
        "none" => (true, TokenAuth::ClientSecret),
        "client_secret_basic" | "client_secret_post" if !public_only => (false, TokenAuth::ClientSecret),
        "private_key_jwt" => (false, TokenAuth::PrivateKeyJwt),
        "client_secret_basic" | "client_secret_post" | "client_secret_jwt" => {
            return Err(metadata_error(format!(
                "{method}: a client metadata document cannot hold a shared secret"
            )));
        }
        other => {
            return Err(metadata_error(format!(
                "token_endpoint_auth_method {other} is not supported (none, client_secret_basic, client_secret_post, private_key_jwt)"
            )));
        }
    };
    if !public && !policy.confidential && !public_only {
        return Err(metadata_error(
            "only public clients (token_endpoint_auth_method none) may register here",
        ));
    }
    if doc.contains_key("jwks_uri") {
        return Err(metadata_error(
            "give keys inline in jwks: Tessera fetches no address a registration names",
        ));
    }
    if public_only && (doc.contains_key("client_secret") || doc.contains_key("client_secret_expires_at")) {
        return Err(metadata_error(
            "a client metadata document must not hold a secret",
        ));
    }
    let jwks = match doc.get("jwks") {
        None | Some(Value::Null) => None,
        Some(v) if auth == TokenAuth::PrivateKeyJwt => {
            auth::validate_jwks(v).map_err(metadata_error)?;
            if let Some(keys) = v.get("keys").and_then(Value::as_array) {
                if keys.iter().any(|k| k.get("d").is_some()) {
                    return Err(metadata_error("jwks must hold public keys only"));
                }
            }
            Some(v.clone())
        }
        Some(_) => return Err(metadata_error("jwks goes with private_key_jwt")),
    };
    if auth == TokenAuth::PrivateKeyJwt && jwks.is_none() {
        return Err(metadata_error("private_key_jwt needs the client's keys in jwks"));
    }
    let dpop_bound_access_tokens = match doc.get("dpop_bound_access_tokens") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(metadata_error("dpop_bound_access_tokens must be true or false")),
    };

    // Scopes: what it asks for within the policy (RFC 7591 §2: the server may narrow them).
    let scopes = match text("scope")? {
        Some(s) => super::client::validate_scopes(s)
            .map_err(metadata_error)?
            .into_iter()
            .filter(|s| policy.scopes.contains(s))
            .collect(),
        None => policy.scopes.clone(),
    };

    let flows = Flows {
        public,
        grant_types,
        redirect_uris,
        first_party: false,
        auth,
        jwks,
        jwks_uri: None,
        tls_client_auth: None,
        tls_client_certificates: Vec::new(),
        tls_client_certificate_bound_access_tokens: false,
        dpop_bound_access_tokens,
        token_exchange: None,
    };
    flows::validate_flows(&flows).map_err(metadata_error)?;

    let mut kept = Map::new();
    for &field in URL_FIELDS {
        if let Some(url) = text(field)? {
            if !url.starts_with("https://") || url.contains(char::is_whitespace) {
                return Err(metadata_error(format!("{field} must be an https URL")));
            }
            kept.insert(field.into(), url.into());
        }
    }
    for &field in TEXT_FIELDS {
        if let Some(value) = text(field)? {
            kept.insert(field.into(), value.into());
        }
    }
    if let Some(contacts) = strings("contacts")? {
        if contacts.len() > MAX_CONTACTS || contacts.iter().any(|c| c.is_empty() || c.len() > 320) {
            return Err(metadata_error(format!(
                "contacts: at most {MAX_CONTACTS}, each 1 to 320 bytes"
            )));
        }
        kept.insert("contacts".into(), contacts.into());
    }

    let name = match text("client_name")? {
        Some(n) => super::client::validate_name(n).map_err(metadata_error)?,
        None => flows
            .redirect_uris
            .first()
            .and_then(|u| u.split_once("://"))
            .map(|(_, rest)| rest.split(['/', '?', ':']).next().unwrap_or_default().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "Unnamed application".to_string()),
    };
    Ok(Metadata {
        name,
        flows,
        scopes,
        kept,
    })
}

/// The metadata a client is registered with, as RFC 7591 §3.2.1 returns it (without the
/// client id, secret and registration members, which the caller adds).
pub fn echo(name: &str, scopes: &[String], flows: &Flows, kept: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("client_name".into(), name.into());
    out.insert("redirect_uris".into(), flows.redirect_uris.clone().into());
    out.insert("grant_types".into(), flows.grant_types.clone().into());
    let code = flows.allows(flows::AUTHORIZATION_CODE);
    out.insert(
        "response_types".into(),
        if code { vec!["code"] } else { Vec::new() }.into(),
    );
    let method = if flows.public {
        "none"
    } else if flows.auth == TokenAuth::PrivateKeyJwt {
        "private_key_jwt"
    } else {
        "client_secret_basic"
    };
    out.insert("token_endpoint_auth_method".into(), method.into());
    out.insert("scope".into(), scopes.join(" ").into());
    if let Some(jwks) = &flows.jwks {
        out.insert("jwks".into(), jwks.clone());
    }
    if flows.dpop_bound_access_tokens {
        out.insert("dpop_bound_access_tokens".into(), true.into());
    }
    for (k, v) in kept {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Whether `client_id` is a client ID metadata document URL as the draft requires (§3): `https`,
/// a host, a path other than `/`, no user information, fragment or dot segments, at most 2048
/// bytes, and written as a URL parser writes it back (so nothing is normalised away: the id is
/// compared as a string, and the URL fetched is the id). A query is allowed, as the draft only
/// discourages it.
pub fn is_document_url(client_id: &str) -> bool {
    let Ok(url) = url::Url::parse(client_id) else {
        return false;
    };
    client_id.len() <= 2048
        && url.scheme() == "https"
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        && url.path() != "/"
        && url.as_str() == client_id
        && !url.path().split('/').any(|seg| {
            seg.eq_ignore_ascii_case(".%2e")
                || seg.eq_ignore_ascii_case("%2e.")
                || seg.eq_ignore_ascii_case("%2e")
                || seg.eq_ignore_ascii_case("%2e%2e")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(doc: Value) -> Result<Metadata, Refusal> {
        read_metadata(doc.as_object().unwrap(), &Policy::default(), false)
    }

    #[test]
    fn metadata_under_the_policy() {
        let ok = read(
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none",
            "client_name": "Agent", "scope": "openid email admin", "unknown": 1}),
        )
        .unwrap();
        assert!(ok.flows.public);
        assert_eq!(ok.scopes, ["openid", "email"], "narrowed to the policy");
        assert_eq!(ok.flows.grant_types, ["authorization_code"]);
        let refused = |doc: Value, error: &str| {
            let r = read(doc.clone()).unwrap_err();
            assert_eq!(r.error, error, "{doc}: {}", r.description);
        };
        for uri in [
            "http://evil.example/cb",
            "https://a.example/cb#f",
            "https://*.example/cb",
            "cb",
            "javascript:alert(1)",
        ] {
            refused(json!({"redirect_uris": [uri]}), "invalid_redirect_uri");
        }
        refused(json!({}), "invalid_redirect_uri");
        refused(
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}),
            "invalid_client_metadata",
        );
        refused(
            json!({"grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        );
        refused(
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        );
        refused(
            json!({"redirect_uris": ["https://a.example/cb"], "jwks_uri": "https://a.example/jwks"}),
            "invalid_client_metadata",
        );
        refused(
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        );
        refused(
            json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "http://a.example/l.png"}),
            "invalid_client_metadata",
        );
        let doc = json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_post"});
        assert!(read_metadata(doc.as_object().unwrap(), &Policy::default(), true).is_err());
    }

    #[test]
    fn document_urls() {
        assert!(is_document_url("https://app.example/client.json"));
        assert!(is_document_url("https://127.0.0.1:8443/oauth/client"));
        for bad in [
            "http://app.example/c",
            "https://app.example",
            "https://app.example/",
            "https://u@app.example/c",
            "https://app.example/a/../c",
            "https://app.example/c#f",
            "https://app.example/c d",
        ] {
            assert!(!is_document_url(bad), "{bad}");
        }
    }
}
