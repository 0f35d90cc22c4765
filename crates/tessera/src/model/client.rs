//! A client as the store keeps it (its settings and the hashes of its secrets), and the rules
//! its settings follow however a client is made or changed (CLI, admin API, import).

use super::MAX_TOKEN_TTL;
use super::scope::is_scope_token;

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id.
    pub id: String,
    /// A human name.
    pub name: String,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences; the first is the default.
    pub audiences: Vec<String>,
    /// Lifetime of its tokens, in seconds.
    pub token_ttl: u32,
    /// Whether it may get tokens.
    pub enabled: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// May introspect other clients' tokens.
    pub can_introspect: bool,
    /// Tokens issued at or before this time are revoked (0: none).
    pub tokens_revoked_before: i64,
    /// Claims put in every token it gets (a JSON object; see [`crate::claims`]).
    pub claims: crate::claims::Claims,
    /// How it may get tokens.
    pub flows: super::flows::Flows,
    /// Its secrets.
    pub secrets: Vec<SecretRecord>,
    /// How it came to be when it registered itself (`None`: an operator made it).
    pub registration: Option<super::registration::Registration>,
}

impl ClientRecord {
    /// Registered by itself (RFC 7591, or a metadata document) and not vouched for by an
    /// operator: its users always see a consent page that says so.
    pub fn unvetted(&self) -> bool {
        self.registration.as_ref().is_some_and(|r| !r.approved)
    }
}

/// How a client secret is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// SHA-256 of a generated, high-entropy secret.
    Sha256,
    /// Argon2id PHC string of an imported secret.
    Argon2id,
}

impl SecretKind {
    /// The name the store and export files use.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Sha256 => "sha256",
            SecretKind::Argon2id => "argon2id",
        }
    }
    /// Reads [`SecretKind::as_str`]'s name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "sha256" => Ok(SecretKind::Sha256),
            "argon2id" => Ok(SecretKind::Argon2id),
            other => Err(format!("unknown secret kind {other:?}")),
        }
    }
}

/// A stored client secret: its hash, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Identifier of this secret.
    pub id: String,
    /// Hash scheme.
    pub kind: SecretKind,
    /// The hash (hex SHA-256, or an Argon2id PHC string).
    pub hash: String,
    /// When it was created.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
}

/// Whether `value` is an absolute URI without a fragment (RFC 8707 §2: "MUST be an absolute URI,
/// as specified by Section 4.3 of RFC 3986 … MUST NOT include a fragment component"), of printable
/// ASCII and at most 512 bytes.
///
/// ```
/// use tessera::model::client::is_absolute_uri;
/// assert!(is_absolute_uri("https://api.example.com/v1"));
/// assert!(is_absolute_uri("urn:example:api"));
/// assert!(!is_absolute_uri("api.example.com"));
/// assert!(!is_absolute_uri("/relative"));
/// assert!(!is_absolute_uri("https://a b"));
/// assert!(!is_absolute_uri("https://api.example.com/#frag"));
/// assert!(!is_absolute_uri("1http://x"));
/// ```
pub fn is_absolute_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && value.len() <= 512
        && !value.contains('#')
        && value.chars().all(|c| c.is_ascii_graphic())
}

/// A client's name: 1 to 200 printable characters, trimmed.
pub fn validate_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err("name must be 1 to 200 printable characters".into());
    }
    Ok(name.to_string())
}

/// Space-delimited RFC 6749 scope tokens, at most 200, repeats dropped.
pub fn validate_scopes(scope: &str) -> Result<Vec<String>, String> {
    let mut scopes: Vec<String> = Vec::new();
    for token in scope.split_ascii_whitespace() {
        if !is_scope_token(token) {
            return Err(format!("scope {token:?} is not an RFC 6749 scope token"));
        }
        if !scopes.iter().any(|s| s == token) {
            scopes.push(token.to_string());
        }
    }
    if scopes.len() > 200 {
        return Err("at most 200 scopes".into());
    }
    Ok(scopes)
}

/// Audiences: absolute URIs without a fragment (RFC 8707), at most 50, repeats dropped.
pub fn validate_audiences(audiences: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for a in audiences {
        if !is_absolute_uri(a) {
            return Err(format!(
                "audience {a:?} must be an absolute URI without a fragment"
            ));
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    if out.len() > 50 {
        return Err("at most 50 audiences".into());
    }
    Ok(out)
}

/// Checks claims, and that every scope template of the client can be filled from them.
pub fn validate_claims(claims: &crate::claims::Claims, scopes: &[String]) -> Result<(), String> {
    crate::claims::validate(claims)?;
    crate::claims::expand_scopes(scopes, claims)?;
    Ok(())
}

/// A token lifetime: 1 s to [`MAX_TOKEN_TTL`].
pub fn validate_ttl(ttl: u32) -> Result<u32, String> {
    if ttl == 0 || ttl > MAX_TOKEN_TTL {
        return Err(format!("token ttl must be 1 to {MAX_TOKEN_TTL} seconds"));
    }
    Ok(ttl)
}

/// A secret brought from elsewhere: 8 to 512 bytes without control characters.
pub fn validate_imported_secret(secret: &str) -> Result<(), String> {
    if secret.len() < 8 || secret.len() > 512 || secret.chars().any(char::is_control) {
        return Err("an imported secret must be 8 to 512 bytes without control characters".into());
    }
    Ok(())
}
