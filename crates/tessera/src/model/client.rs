//! A client as the store keeps it (its settings and the hashes of its secrets), and the rules
//! its settings follow however a client is made or changed (CLI, admin API, import).

use super::scope::is_scope_token;
pub use super::values::{is_absolute_uri, validate_audiences, validate_ttl};

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

/// Checks claims, and that every scope template of the client can be filled from them.
pub fn validate_claims(claims: &crate::claims::Claims, scopes: &[String]) -> Result<(), String> {
    crate::claims::validate(claims)?;
    crate::claims::expand_scopes(scopes, claims)?;
    Ok(())
}

/// A secret brought from elsewhere: 8 to 512 bytes without control characters.
pub fn validate_imported_secret(secret: &str) -> Result<(), String> {
    if secret.len() < 8 || secret.len() > 512 || secret.chars().any(char::is_control) {
        return Err("an imported secret must be 8 to 512 bytes without control characters".into());
    }
    Ok(())
}

/// What a client's name is found by (the console's search): the name in ASCII lower case,
/// compared bytewise by both stores.
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}
