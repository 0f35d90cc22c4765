//! Administrative operations on clients, with every rule (validation, hashing) in one place. The
//! CLI calls these; so will the admin API.

pub mod registration;
pub mod trust;

use crate::clients::{generate_client_id, generate_secret, new_secret_record};
use crate::model::auth::TokenAuth;
use crate::model::client as rules;
use crate::model::{ADMIN_AUDIENCE, ADMIN_SCOPE, DEFAULT_TOKEN_TTL};
use crate::model::{ClientRecord, SecretKind};
use crate::operation::{Actor, AdminError};
use crate::store::Store;

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
    /// Grant the admin scope (`tessera:admin`).
    pub admin: bool,
    /// Allow introspecting other clients' tokens (for resource servers).
    pub introspect: bool,
    /// Claims put in every token it gets.
    pub claims: crate::claims::Claims,
    /// A public client (a single-page or native app): no secret.
    pub public: bool,
    /// Grant types; default `client_credentials` (confidential) or `authorization_code` and
    /// `refresh_token` (public).
    pub grant_types: Option<Vec<String>>,
    /// Redirect URIs, for the authorization code flow.
    pub redirect_uris: Vec<String>,
    /// A first-party app (no consent screen).
    pub first_party: bool,
    /// How it authenticates; a client that signs assertions gets no secret.
    pub auth: TokenAuth,
    /// Its public keys, inline (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    /// Where it publishes its public keys.
    pub jwks_uri: Option<String>,
    /// The subject its certificate carries (`tls_client_auth`).
    pub tls_client_auth: Option<crate::model::auth::TlsSubject>,
    /// Its certificates' thumbprints (`self_signed_tls_client_auth`).
    pub tls_client_certificates: Vec<String>,
    /// Its tokens bound to its TLS client certificate (RFC 8705 §3).
    pub certificate_bound_tokens: bool,
    /// Its tokens always bound to a DPoP key (RFC 9449 §5.2).
    pub dpop_bound_tokens: bool,
    /// What it may exchange (RFC 8693), with the token exchange grant.
    pub token_exchange: Option<crate::model::exchange::ExchangePolicy>,
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
    /// Enable or disable. Disabling also revokes every token the client holds.
    pub enabled: Option<bool>,
    /// Allow or forbid introspecting other clients' tokens.
    pub introspect: Option<bool>,
    /// Claims to set (a `null` value removes that claim).
    pub claims: Option<crate::claims::Claims>,
    /// Remove every claim first.
    pub clear_claims: bool,
    /// New grant types.
    pub grant_types: Option<Vec<String>>,
    /// New redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// First party or not.
    pub first_party: Option<bool>,
    /// A new authentication method. Moving from a secret to `private_key_jwt` keeps the
    /// client's secrets working for `secret_grace` (none: they stop at once), so its
    /// deployments can move to the key without downtime.
    pub auth: Option<TokenAuth>,
    /// How long the secrets keep working after a move to `private_key_jwt`.
    pub secret_grace: Option<std::time::Duration>,
    /// New inline keys (`Some(None)` removes them); setting them removes a `jwks_uri`.
    pub jwks: Option<Option<serde_json::Value>>,
    /// A new key address (`Some(None)` removes it); setting it removes inline keys.
    pub jwks_uri: Option<Option<String>>,
    /// A new certificate subject (`Some(None)` removes it).
    pub tls_client_auth: Option<Option<crate::model::auth::TlsSubject>>,
    /// New certificate thumbprints (replacing the old ones).
    pub tls_client_certificates: Option<Vec<String>>,
    /// Bind its tokens to its TLS client certificate, or not.
    pub certificate_bound_tokens: Option<bool>,
    /// Require DPoP for its tokens, or not.
    pub dpop_bound_tokens: Option<bool>,
    /// A new exchange policy (`Some(None)` removes it).
    pub token_exchange: Option<Option<crate::model::exchange::ExchangePolicy>>,
}

/// Longest grace a replaced secret may keep working: 30 days.
pub const MAX_SECRET_GRACE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

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

/// Builds a client (validated, secret hashed), created `at`, without storing it.
pub fn build_client(new: NewClient, at: i64) -> Result<Created, AdminError> {
    let name = rules::validate_name(&new.name).map_err(AdminError::Invalid)?;
    let mut scopes = rules::validate_scopes(&new.scope).map_err(AdminError::Invalid)?;
    if new.admin && !scopes.iter().any(|s| s == ADMIN_SCOPE) {
        scopes.push(ADMIN_SCOPE.to_string());
    }
    let mut audiences = rules::validate_audiences(&new.audiences).map_err(AdminError::Invalid)?;
    if new.admin && !audiences.iter().any(|a| a == ADMIN_AUDIENCE) {
        // Last, so a client with other audiences keeps its default; one without gets admin
        // tokens by default.
        audiences.push(ADMIN_AUDIENCE.to_string());
    }
    let token_ttl =
        rules::validate_ttl(new.token_ttl.unwrap_or(DEFAULT_TOKEN_TTL)).map_err(AdminError::Invalid)?;
    rules::validate_claims(&new.claims, &scopes).map_err(AdminError::Invalid)?;
    let default_grants: &[&str] = if new.public {
        &[
            crate::model::flows::AUTHORIZATION_CODE,
            crate::model::flows::REFRESH_TOKEN,
        ]
    } else {
        &[crate::model::flows::CLIENT_CREDENTIALS]
    };
    let flows = crate::model::flows::Flows {
        public: new.public,
        grant_types: new
            .grant_types
            .unwrap_or_else(|| default_grants.iter().map(|g| g.to_string()).collect()),
        redirect_uris: new.redirect_uris,
        first_party: new.first_party,
        auth: new.auth,
        jwks: new.jwks,
        jwks_uri: new.jwks_uri,
        tls_client_auth: new.tls_client_auth,
        tls_client_certificates: new.tls_client_certificates,
        tls_client_certificate_bound_access_tokens: new.certificate_bound_tokens,
        dpop_bound_access_tokens: new.dpop_bound_tokens,
        token_exchange: new.token_exchange.map(Box::new),
    };
    if new.public && new.secret.is_some() {
        return Err(AdminError::Invalid("a public client has no secret".into()));
    }
    let keyed = new.auth != TokenAuth::ClientSecret;
    if keyed && new.secret.is_some() {
        return Err(AdminError::Invalid(format!(
            "a {} client has no secret",
            new.auth.name()
        )));
    }
    if new.public && (new.introspect || new.admin) {
        return Err(AdminError::Invalid(
            "a public client cannot introspect tokens or use the admin API (it has no secret)".into(),
        ));
    }
    crate::model::flows::validate_flows(&flows).map_err(AdminError::Invalid)?;
    let (secret, kind) = match new.secret {
        _ if new.public || keyed => (String::new(), SecretKind::Sha256),
        Some(s) => {
            rules::validate_imported_secret(&s).map_err(AdminError::Invalid)?;
            (s, SecretKind::Argon2id)
        }
        None => (
            generate_secret().map_err(|e| AdminError::Invalid(e.into()))?,
            SecretKind::Sha256,
        ),
    };
    let secrets = if new.public || keyed {
        Vec::new()
    } else {
        vec![new_secret_record(&secret, kind).map_err(AdminError::Invalid)?]
    };
    let t = at;
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
            can_introspect: new.introspect,
            tokens_revoked_before: 0,
            claims: new.claims,
            flows,
            secrets,
            registration: None,
        },
        secret,
    })
}

/// Creates a client. The returned secret is the one and only copy.
pub async fn create_client(store: &Store, actor: &Actor, new: NewClient) -> Result<Created, AdminError> {
    let created = build_client(new, actor.now())?;
    let c = &created.client;
    let details = serde_json::json!({
        "name": c.name, "scope": c.scopes.join(" "), "audiences": c.audiences, "token_ttl": c.token_ttl,
        "can_introspect": c.can_introspect,
        "claims": c.claims.keys().collect::<Vec<_>>(),
        "flows": c.flows,
        "secret": if c.secrets.is_empty() { "none" } else if c.secrets.first().is_some_and(|s| s.kind == SecretKind::Argon2id) { "imported" } else { "generated" },
    });
    store
        .insert_client(c, None, &actor.entry("client.create", &c.id, details))
        .await?;
    Ok(created)
}

/// Applies `update` to client `id`, atomically.
pub async fn update_client(
    store: &Store,
    actor: &Actor,
    id: &str,
    update: ClientUpdate,
) -> Result<ClientRecord, AdminError> {
    let action = match update.enabled {
        Some(true) => "client.enable",
        Some(false) => "client.disable",
        None => "client.update",
    };
    let mut details = serde_json::Map::new();
    if let Some(n) = &update.name {
        details.insert("name".into(), n.clone().into());
    }
    if let Some(s) = &update.scope {
        details.insert("scope".into(), s.clone().into());
    }
    if let Some(a) = &update.audiences {
        details.insert("audiences".into(), a.clone().into());
    }
    if let Some(t) = update.token_ttl {
        details.insert("token_ttl".into(), t.into());
    }
    if let Some(i) = update.introspect {
        details.insert("can_introspect".into(), i.into());
    }
    if update.clear_claims {
        details.insert("clear_claims".into(), true.into());
    }
    if let Some(c) = &update.claims {
        details.insert("claims".into(), c.keys().cloned().collect::<Vec<_>>().into());
    }
    if let Some(g) = &update.grant_types {
        details.insert("grant_types".into(), g.clone().into());
    }
    if let Some(r) = &update.redirect_uris {
        details.insert("redirect_uris".into(), r.clone().into());
    }
    if let Some(f) = update.first_party {
        details.insert("first_party".into(), f.into());
    }
    if let Some(a) = update.auth {
        details.insert(
            "token_endpoint_auth_method".into(),
            serde_json::to_value(a).unwrap_or_default(),
        );
    }
    if let Some(g) = update.secret_grace {
        if g > MAX_SECRET_GRACE {
            return Err(AdminError::Invalid("secret grace must be at most 30 days".into()));
        }
        details.insert("secret_grace_seconds".into(), g.as_secs().into());
    }
    if let Some(j) = &update.jwks {
        // The key ids only: the keys are public, but an audit trail needs no key material.
        let kids: Vec<serde_json::Value> = j
            .iter()
            .flat_map(|set| set["keys"].as_array().into_iter().flatten())
            .map(|k| k["kid"].clone())
            .collect();
        details.insert("jwks_kids".into(), kids.into());
    }
    if let Some(u) = &update.jwks_uri {
        details.insert("jwks_uri".into(), u.clone().into());
    }
    if let Some(t) = &update.tls_client_auth {
        details.insert(
            "tls_client_auth".into(),
            serde_json::to_value(t).unwrap_or_default(),
        );
    }
    if let Some(c) = &update.tls_client_certificates {
        details.insert("tls_client_certificates".into(), c.clone().into());
    }
    if let Some(b) = update.certificate_bound_tokens {
        details.insert("tls_client_certificate_bound_access_tokens".into(), b.into());
    }
    if let Some(b) = update.dpop_bound_tokens {
        details.insert("dpop_bound_access_tokens".into(), b.into());
    }
    if let Some(p) = &update.token_exchange {
        details.insert(
            "token_exchange".into(),
            serde_json::to_value(p).unwrap_or_default(),
        );
    }
    let entry = actor.entry(action, id, details.into());
    let scope_changed = update.scope.is_some();
    let claims_changed = update.claims.is_some() || update.clear_claims;
    let changed = store
        .modify_client(id, &entry, |client| {
            if let Some(name) = update.name {
                client.name = rules::validate_name(&name).map_err(AdminError::Invalid)?;
            }
            if let Some(scope) = update.scope {
                client.scopes = rules::validate_scopes(&scope).map_err(AdminError::Invalid)?;
            }
            if let Some(audiences) = update.audiences {
                client.audiences = rules::validate_audiences(&audiences).map_err(AdminError::Invalid)?;
            }
            if let Some(ttl) = update.token_ttl {
                client.token_ttl = rules::validate_ttl(ttl).map_err(AdminError::Invalid)?;
            }
            if let Some(introspect) = update.introspect {
                client.can_introspect = introspect;
            }
            if update.clear_claims {
                client.claims.clear();
            }
            for (name, value) in update.claims.into_iter().flatten() {
                if value.is_null() {
                    client.claims.remove(&name);
                } else {
                    client.claims.insert(name, value);
                }
            }
            // Only when they change: a stored client (say one whose old scope holds a literal
            // `{`) can always be disabled.
            if scope_changed || claims_changed {
                rules::validate_claims(&client.claims, &client.scopes).map_err(AdminError::Invalid)?;
            }
            let flows_changed = update.grant_types.is_some()
                || update.redirect_uris.is_some()
                || update.first_party.is_some()
                || update.auth.is_some()
                || update.jwks.is_some()
                || update.jwks_uri.is_some()
                || update.tls_client_auth.is_some()
                || update.tls_client_certificates.is_some()
                || update.certificate_bound_tokens.is_some()
                || update.dpop_bound_tokens.is_some()
                || update.token_exchange.is_some();
            if let Some(p) = update.token_exchange {
                client.flows.token_exchange = p.map(Box::new);
            }
            if let Some(b) = update.certificate_bound_tokens {
                client.flows.tls_client_certificate_bound_access_tokens = b;
            }
            if let Some(b) = update.dpop_bound_tokens {
                client.flows.dpop_bound_access_tokens = b;
            }
            if let Some(t) = update.tls_client_auth {
                client.flows.tls_client_auth = t;
            }
            if let Some(c) = update.tls_client_certificates {
                client.flows.tls_client_certificates = c;
            }
            let (jwks_given, uri_given) = (update.jwks.is_some(), update.jwks_uri.is_some());
            if let Some(j) = update.jwks {
                if j.is_some() && !uri_given {
                    client.flows.jwks_uri = None;
                }
                client.flows.jwks = j;
            }
            if let Some(u) = update.jwks_uri {
                if u.is_some() && !jwks_given {
                    client.flows.jwks = None;
                }
                client.flows.jwks_uri = u;
            }
            if let Some(method) = update.auth {
                let was = client.flows.auth;
                client.flows.auth = method;
                if was == TokenAuth::ClientSecret && method != TokenAuth::ClientSecret {
                    // The secrets it had work until the grace ends, and then are gone.
                    let until = actor.now() + update.secret_grace.unwrap_or_default().as_secs() as i64;
                    for s in &mut client.secrets {
                        s.expires_at = Some(s.expires_at.map_or(until, |e| e.min(until)));
                    }
                    client
                        .secrets
                        .retain(|s| s.expires_at.is_some_and(|e| e > actor.now()));
                }
                if method == TokenAuth::ClientSecret
                    && !client.flows.public
                    && !client
                        .secrets
                        .iter()
                        .any(|s| s.expires_at.is_none_or(|e| e > actor.now()))
                {
                    return Err(AdminError::Invalid(
                        "the client has no secret to move to: rotate its secret first".into(),
                    ));
                }
            }
            if let Some(g) = update.grant_types {
                client.flows.grant_types = g;
            }
            if let Some(r) = update.redirect_uris {
                client.flows.redirect_uris = r;
            }
            if let Some(f) = update.first_party {
                client.flows.first_party = f;
            }
            if flows_changed {
                crate::model::flows::validate_flows(&client.flows).map_err(AdminError::Invalid)?;
            }
            if let Some(enabled) = update.enabled {
                if client.enabled && !enabled {
                    client.tokens_revoked_before = actor.now();
                }
                client.enabled = enabled;
            }
            Ok::<(), AdminError>(())
        })
        .await?;
    changed.ok_or_else(|| AdminError::NotFound(id.to_string()))
}

/// Revokes every token client `id` holds now (tokens issued later are not affected).
pub async fn revoke_tokens(store: &Store, actor: &Actor, id: &str) -> Result<ClientRecord, AdminError> {
    let entry = actor.entry("client.revoke_tokens", id, serde_json::json!({}));
    let changed = store
        .modify_client(id, &entry, |client| {
            client.tokens_revoked_before = actor.now();
            Ok::<(), AdminError>(())
        })
        .await?;
    changed.ok_or_else(|| AdminError::NotFound(id.to_string()))
}

/// Gives client `id` a new generated secret; its other secrets keep working for `grace`.
pub async fn rotate_secret(
    store: &Store,
    actor: &Actor,
    id: &str,
    grace: std::time::Duration,
) -> Result<Created, AdminError> {
    if grace.as_secs() > 30 * 86_400 {
        return Err(AdminError::Invalid("grace must be at most 30 days".into()));
    }
    if store.client(id).await?.is_some_and(|c| c.flows.public) {
        return Err(AdminError::Invalid(
            "a public client has no secret (it authenticates with PKCE, not a secret)".into(),
        ));
    }
    let secret = generate_secret().map_err(|e| AdminError::Invalid(e.into()))?;
    let record = new_secret_record(&secret, SecretKind::Sha256).map_err(AdminError::Invalid)?;
    let expire = actor.now() + grace.as_secs() as i64;
    let entry = actor.entry(
        "client.rotate_secret",
        id,
        serde_json::json!({"new_secret_id": record.id, "previous_expire_at": expire}),
    );
    let client = store
        .rotate_secret(id, &record, expire, actor.now(), &entry)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.to_string()))?;
    Ok(Created { client, secret })
}

/// Deletes client `id`.
pub async fn delete_client(store: &Store, actor: &Actor, id: &str) -> Result<(), AdminError> {
    if store
        .delete_client(id, &actor.entry("client.delete", id, serde_json::json!({})))
        .await?
    {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_rules() {
        let ok = build_client(
            NewClient {
                name: "x".into(),
                scope: "a b".into(),
                ..Default::default()
            },
            0,
        )
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
            assert!(build_client(bad, 0).is_err());
        }
    }
}
