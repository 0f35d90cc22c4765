//! A person who signs in, as the store keeps them.

/// A person who signs in (OpenID Connect). The id is the stable, opaque `sub`; the email is
/// unique without regard to case. (`Debug` leaves the password hash out.)
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The user id (`sub`).
    pub id: String,
    /// Email address, as given.
    pub email: String,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Argon2id PHC string of the password; `None`: no password sign-in.
    pub password_hash: Option<String>,
    /// Whether the user may sign in.
    pub enabled: bool,
    /// Custom attributes, released as claims (a JSON object; see [`crate::claims`]).
    #[serde(default)]
    pub attributes: crate::claims::Claims,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("enabled", &self.enabled)
            .field("has_password", &self.password_hash.is_some())
            .finish_non_exhaustive()
    }
}

/// The key an email is unique under: the address in lower case.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}
