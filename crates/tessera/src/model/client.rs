//! A client as the store keeps it: its settings and the hashes of its secrets.

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
