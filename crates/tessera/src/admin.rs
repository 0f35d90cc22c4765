//! Administrative operations on clients, with every rule (validation, hashing) in one place. The
//! CLI calls these; so will the admin API.

use crate::clients::{generate_client_id, generate_secret, new_secret_record};
use crate::oauth::scope::is_scope_token;
use crate::store::{ClientRecord, SecretKind, Store, StoreError, now};

/// Longest token lifetime a client may have: one day.
pub const MAX_TOKEN_TTL: u32 = 86_400;
/// Default token lifetime.
pub const DEFAULT_TOKEN_TTL: u32 = 3600;

/// An administrative failure.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input broke a rule.
    #[error("{0}")]
    Invalid(String),
    /// No such client.
    #[error("no client with id {0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new client looks like. (No `Debug`: it may hold a secret.)
#[derive(Default, Clone)]
pub struct NewClient {
    /// Its name.
    pub name: String,
    /// Space-delimited scopes.
    pub scope: String,
    /// Allowed audiences; the first is the default.
    pub audiences: Vec<String>,
    /// Token lifetime; default one hour.
    pub token_ttl: Option<u32>,
    /// A secret to import instead of generating one.
    pub secret: Option<String>,
}

/// Changes to a client; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct ClientUpdate {
    /// New name.
    pub name: Option<String>,
    /// New scopes (space-delimited).
    pub scope: Option<String>,
    /// New audiences.
    pub audiences: Option<Vec<String>>,
    /// New token lifetime.
    pub token_ttl: Option<u32>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// A created client and the only copy of its secret that will ever exist outside its owner.
pub struct Created {
    /// The stored client.
    pub client: ClientRecord,
    /// Its secret, in clear.
    pub secret: String,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("client", &self.client.id)
            .finish_non_exhaustive()
    }
}

fn validate_name(name: &str) -> Result<String, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "name must be 1 to 200 printable characters".into(),
        ));
    }
    Ok(name.to_string())
}

fn validate_scopes(scope: &str) -> Result<Vec<String>, AdminError> {
    let mut scopes: Vec<String> = Vec::new();
    for token in scope.split_ascii_whitespace() {
        if !is_scope_token(token) {
            return Err(AdminError::Invalid(format!(
                "scope {token:?} is not an RFC 6749 scope token"
            )));
        }
        if !scopes.iter().any(|s| s == token) {
            scopes.push(token.to_string());
        }
    }
    if scopes.len() > 200 {
        return Err(AdminError::Invalid("at most 200 scopes".into()));
    }
    Ok(scopes)
}

/// An audience must be an absolute URI without a fragment, so that a client can ask for it as an
/// RFC 8707 `resource`.
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

fn validate_audiences(audiences: &[String]) -> Result<Vec<String>, AdminError> {
    let mut out: Vec<String> = Vec::new();
    for a in audiences {
        if !is_absolute_uri(a) {
            return Err(AdminError::Invalid(format!(
                "audience {a:?} must be an absolute URI without a fragment"
            )));
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    if out.len() > 50 {
        return Err(AdminError::Invalid("at most 50 audiences".into()));
    }
    Ok(out)
}

fn validate_ttl(ttl: u32) -> Result<u32, AdminError> {
    if ttl == 0 || ttl > MAX_TOKEN_TTL {
        return Err(AdminError::Invalid(format!(
            "token ttl must be 1 to {MAX_TOKEN_TTL} seconds"
        )));
    }
    Ok(ttl)
}

fn validate_imported_secret(secret: &str) -> Result<(), AdminError> {
    if secret.len() < 8 || secret.len() > 512 || secret.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "an imported secret must be 8 to 512 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// Builds a client (validated, secret hashed) without storing it.
pub fn build_client(new: NewClient) -> Result<Created, AdminError> {
    let name = validate_name(&new.name)?;
    let scopes = validate_scopes(&new.scope)?;
    let audiences = validate_audiences(&new.audiences)?;
    let token_ttl = validate_ttl(new.token_ttl.unwrap_or(DEFAULT_TOKEN_TTL))?;
    let (secret, kind) = match new.secret {
        Some(s) => {
            validate_imported_secret(&s)?;
            (s, SecretKind::Argon2id)
        }
        None => (
            generate_secret().map_err(|e| AdminError::Invalid(e.into()))?,
            SecretKind::Sha256,
        ),
    };
    let record = new_secret_record(&secret, kind).map_err(AdminError::Invalid)?;
    let t = now();
    Ok(Created {
        client: ClientRecord {
            id: generate_client_id(),
            name,
            scopes,
            audiences,
            token_ttl,
            enabled: true,
            created_at: t,
            updated_at: t,
            secrets: vec![record],
        },
        secret,
    })
}

/// Creates a client. The returned secret is the one and only copy.
pub async fn create_client(store: &Store, new: NewClient) -> Result<Created, AdminError> {
    let created = build_client(new)?;
    store.insert_client(&created.client, None).await?;
    Ok(created)
}

/// Applies `update` to client `id`, atomically.
pub async fn update_client(
    store: &Store,
    id: &str,
    update: ClientUpdate,
) -> Result<ClientRecord, AdminError> {
    let changed = store
        .modify_client(id, |client| {
            if let Some(name) = update.name {
                client.name = validate_name(&name)?;
            }
            if let Some(scope) = update.scope {
                client.scopes = validate_scopes(&scope)?;
            }
            if let Some(audiences) = update.audiences {
                client.audiences = validate_audiences(&audiences)?;
            }
            if let Some(ttl) = update.token_ttl {
                client.token_ttl = validate_ttl(ttl)?;
            }
            if let Some(enabled) = update.enabled {
                client.enabled = enabled;
            }
            Ok::<(), AdminError>(())
        })
        .await?;
    changed.ok_or_else(|| AdminError::NotFound(id.to_string()))
}

/// Deletes client `id`.
pub async fn delete_client(store: &Store, id: &str) -> Result<(), AdminError> {
    if store.delete_client(id).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(id.to_string()))
    }
}

/// Looks up client `id`.
pub async fn get_client(store: &Store, id: &str) -> Result<ClientRecord, AdminError> {
    store
        .client(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.to_string()))
}

/// The JSON view of a client: everything but secret values and hashes.
pub fn client_json(c: &ClientRecord) -> serde_json::Value {
    serde_json::json!({
        "client_id": c.id,
        "name": c.name,
        "scope": c.scopes.join(" "),
        "audiences": c.audiences,
        "token_ttl": c.token_ttl,
        "enabled": c.enabled,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "secrets": c.secrets.iter().map(|s| serde_json::json!({
            "id": s.id,
            "kind": match s.kind { SecretKind::Sha256 => "generated", SecretKind::Argon2id => "imported" },
            "created_at": s.created_at,
            "expires_at": s.expires_at,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert!(is_absolute_uri("https://api.example/v1"));
        assert!(is_absolute_uri("urn:example:api"));
        assert!(!is_absolute_uri("/relative"));
        assert!(!is_absolute_uri("https://api.example/#frag"));
        assert!(!is_absolute_uri("https://a b"));
        assert!(!is_absolute_uri("1http://x"));
    }

    #[test]
    fn build_rules() {
        let ok = build_client(NewClient {
            name: "x".into(),
            scope: "a b".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.client.scopes, vec!["a", "b"]);
        assert_eq!(ok.client.token_ttl, DEFAULT_TOKEN_TTL);
        assert!(!ok.client.secrets[0].hash.contains(&ok.secret));
        for bad in [
            NewClient {
                name: "".into(),
                ..Default::default()
            },
            NewClient {
                name: "x".into(),
                scope: "a\"b".into(),
                ..Default::default()
            },
            NewClient {
                name: "x".into(),
                token_ttl: Some(0),
                ..Default::default()
            },
            NewClient {
                name: "x".into(),
                audiences: vec!["nope".into()],
                ..Default::default()
            },
            NewClient {
                name: "x".into(),
                secret: Some("short".into()),
                ..Default::default()
            },
        ] {
            assert!(build_client(bad).is_err());
        }
    }
}
