//! A signing key as the store keeps it: the private part sealed.

/// A stored signing key. The private part is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// JOSE algorithm name.
    pub alg: String,
    /// Sealed PKCS#8.
    pub sealed_private_key: Vec<u8>,
    /// Public JWK (JSON).
    pub public_jwk: String,
    /// Creation time.
    pub created_at: i64,
    /// From when it may sign.
    pub activates_at: i64,
    /// When it leaves the JWKS (it stops signing when a newer key activates), if scheduled.
    pub retired_at: Option<i64>,
    /// What it signs.
    pub purpose: KeyPurpose,
}

/// What a signing key signs. Each purpose has its own keys and rotates on its own: access
/// tokens with the configured algorithm, ID tokens with RS256 (which OpenID Connect requires
/// every provider to offer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// Access tokens (RFC 9068).
    #[default]
    Access,
    /// OpenID Connect ID tokens.
    IdToken,
}

impl KeyPurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Access => "access",
            KeyPurpose::IdToken => "id_token",
        }
    }

    /// Reads the stored name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "access" => Ok(KeyPurpose::Access),
            "id_token" => Ok(KeyPurpose::IdToken),
            other => Err(format!("unknown key purpose {other:?}")),
        }
    }
}
