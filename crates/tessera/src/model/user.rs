//! A person who signs in, as the store keeps them, and the rules their details follow.

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
    /// What the person may do in the console ([`ROLES`]); none for most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// May do everything in the console that the admin API allows.
pub const ROLE_ADMIN: &str = "admin";
/// May read everything in the console, change nothing.
pub const ROLE_AUDITOR: &str = "auditor";
/// The roles a user may have.
pub const ROLES: &[&str] = &[ROLE_ADMIN, ROLE_AUDITOR];

/// Checks a set of roles: known, each once.
pub fn validate_roles(roles: &[String]) -> Result<(), String> {
    for (i, r) in roles.iter().enumerate() {
        if !ROLES.contains(&r.as_str()) {
            return Err(format!("unknown role {r:?} (admin, auditor)"));
        }
        if roles[..i].contains(r) {
            return Err(format!("role {r} given twice"));
        }
    }
    Ok(())
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("enabled", &self.enabled)
            .field("roles", &self.roles)
            .field("has_password", &self.password_hash.is_some())
            .finish_non_exhaustive()
    }
}

/// The key an email is unique under: the address in lower case.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Shortest password accepted (NIST SP 800-63B §5.1.1.2: at least 8 characters).
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted, in bytes (Argon2id hashes any length; this bounds the work).
pub const MAX_PASSWORD: usize = 1024;
/// Longest email address (RFC 5321 §4.5.3.1.3 path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest name field.
pub const MAX_NAME: usize = 200;

/// Checks an email address: one `@` between a non-empty local part and a domain, no spaces or
/// control characters, at most 254 bytes. (Deliverability is the business of verification.)
pub fn validate_email(email: &str) -> Result<String, String> {
    let email = email.trim();
    let bad = |why: &str| format!("email {why}");
    if email.is_empty() || email.len() > MAX_EMAIL {
        return Err(bad("must be 1 to 254 bytes"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not hold spaces or control characters"));
    }
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => {
            if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
                return Err(bad("has a malformed domain"));
            }
            Ok(email.to_string())
        }
        _ => Err(bad("must look like name@example.com")),
    }
}

/// An optional name field: trimmed, empty is none, at most [`MAX_NAME`] characters without
/// control characters.
pub fn validate_name(field: &str, value: Option<String>) -> Result<Option<String>, String> {
    let Some(v) = value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_NAME || v.chars().any(char::is_control) {
        return Err(format!(
            "{field} must be at most {MAX_NAME} characters without control characters"
        ));
    }
    Ok(Some(v))
}
