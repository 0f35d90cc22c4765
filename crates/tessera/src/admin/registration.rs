//! Clients that register themselves: RFC 7591 registration and RFC 7592 management (what the
//! registration endpoint does, framework-free), the initial access tokens an operator issues,
//! approving a self-registered client, and pruning the abandoned ones.

use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use crate::clients::{generate_client_id, generate_secret, new_secret_record, sha256_hex};
use crate::config::RegistrationSettings;
use crate::model::client_metadata::{self as rules, Refusal};
use crate::model::registration::{InitialToken, Origin, Registered, Registration};
use crate::model::{ClientRecord, SecretKind};
use crate::operation::{Actor, AdminError};
use crate::store::{Store, StoreError};

/// Path of the registration endpoint (RFC 7591 §3); a client's configuration endpoint (RFC 7592)
/// is this path, a slash and its client id.
pub const REGISTER_PATH: &str = "/oauth2/register";

/// Why a registration or management request failed (the HTTP face picks the status).
#[derive(Debug)]
pub enum RegisterError {
    /// The metadata broke a rule (400, RFC 7591 §3.2.2).
    Metadata(Refusal),
    /// No, or a bad, initial or registration access token (401, RFC 6750 `invalid_token`).
    InvalidToken,
    /// The configuration endpoint of a client that is not self-registered (403, RFC 7592 §2.1).
    Forbidden,
    /// As many self-registered clients as allowed exist (503).
    Full,
    /// The store failed (503).
    Store(StoreError),
}

impl From<StoreError> for RegisterError {
    fn from(e: StoreError) -> Self {
        RegisterError::Store(e)
    }
}

impl From<Refusal> for RegisterError {
    fn from(r: Refusal) -> Self {
        RegisterError::Metadata(r)
    }
}

/// A client's answer (RFC 7591 §3.2.1, RFC 7592 §3): its metadata, id and, when just made, its
/// secret and management token. (No `Debug`: it holds both.)
pub struct Answer {
    /// The client as stored.
    pub client: ClientRecord,
    /// The JSON body.
    pub body: Value,
}

/// A new registration access token: its value (given once) and what the store keeps.
fn new_access_token() -> Result<(String, String), StoreError> {
    let value = generate_secret().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let hash = sha256_hex(&value);
    Ok((value, hash))
}

/// The body RFC 7591 §3.2.1 and RFC 7592 §3 describe.
fn body(issuer: &str, client: &ClientRecord, secret: Option<&str>, access_token: Option<&str>) -> Value {
    let kept = client
        .registration
        .as_ref()
        .map(|r| r.metadata.clone())
        .unwrap_or_default();
    let mut out = rules::echo(&client.name, &client.scopes, &client.flows, &kept);
    out.insert("client_id".into(), client.id.clone().into());
    out.insert("client_id_issued_at".into(), client.created_at.into());
    if let Some(secret) = secret {
        out.insert("client_secret".into(), secret.into());
    }
    if !client.flows.public && client.flows.auth.is_secret() {
        // RFC 7591 §3.2.1: REQUIRED with a secret; 0, it does not expire.
        out.insert("client_secret_expires_at".into(), 0.into());
    }
    if let Some(token) = access_token {
        out.insert("registration_access_token".into(), token.into());
    }
    out.insert(
        "registration_client_uri".into(),
        format!("{issuer}{REGISTER_PATH}/{}", client.id).into(),
    );
    Value::Object(out)
}

/// The client that `metadata` describes under the policy, made `at`, with its secret if it is
/// confidential.
fn build(
    settings: &RegistrationSettings,
    metadata: &Map<String, Value>,
    access_token_hash: String,
    at: i64,
) -> Result<(ClientRecord, Option<String>), RegisterError> {
    let read = rules::read_metadata(metadata, &settings.policy, false)?;
    let secret = if read.flows.public || !read.flows.auth.is_secret() {
        None
    } else {
        Some(generate_secret().map_err(|e| StoreError::Corrupt(e.to_string()))?)
    };
    let secrets = match &secret {
        Some(s) => vec![new_secret_record(s, SecretKind::Sha256).map_err(StoreError::Corrupt)?],
        None => Vec::new(),
    };
    Ok((
        ClientRecord {
            id: generate_client_id(),
            name: read.name,
            scopes: read.scopes,
            audiences: settings.policy.audiences.clone(),
            token_ttl: settings.policy.token_ttl,
            enabled: true,
            created_at: at,
            updated_at: at,
            can_introspect: false,
            tokens_revoked_before: 0,
            claims: Map::new(),
            flows: read.flows,
            secrets,
            registration: Some(Registration {
                origin: Origin::Registration,
                access_token: Some(access_token_hash),
                approved: false,
                metadata: read.kept,
                fresh_until: None,
            }),
        },
        secret,
    ))
}

/// Registers a client (RFC 7591 §3.1): `initial_token` is the initial access token presented,
/// which `settings` may require.
pub async fn register(
    store: &Store,
    actor: &Actor,
    settings: &RegistrationSettings,
    issuer: &str,
    metadata: &Map<String, Value>,
    initial_token: Option<&str>,
) -> Result<Answer, RegisterError> {
    let initial_hash = initial_token.map(sha256_hex);
    if settings.mode == crate::config::RegistrationMode::Token {
        // The token first: without a good one, nothing about the metadata is said.
        let Some(hash) = &initial_hash else {
            return Err(RegisterError::InvalidToken);
        };
        if store.initial_token(hash, actor.now()).await?.is_none() {
            return Err(RegisterError::InvalidToken);
        }
    }
    let (token, token_hash) = new_access_token()?;
    let (client, secret) = build(settings, metadata, token_hash, actor.now())?;
    let details = json!({
        "name": client.name, "scope": client.scopes.join(" "), "flows": client.flows,
        "initial_access_token": initial_hash.is_some(),
    });
    let gate = if settings.mode == crate::config::RegistrationMode::Token {
        initial_hash.as_deref()
    } else {
        None
    };
    match store
        .register_client(
            &client,
            settings.max_clients,
            gate,
            actor.now(),
            &actor.entry("client.register", &client.id, details),
        )
        .await?
    {
        Registered::Stored => {}
        Registered::TokenRefused => return Err(RegisterError::InvalidToken),
        Registered::Full => return Err(RegisterError::Full),
    }
    let body = body(issuer, &client, secret.as_deref(), Some(&token));
    Ok(Answer { client, body })
}

/// Whether `presented` is the registration access token `client` holds.
fn holds(client: &ClientRecord, presented: &str) -> bool {
    let stored = client
        .registration
        .as_ref()
        .and_then(|r| r.access_token.as_deref());
    stored.is_some_and(|s| bool::from(sha256_hex(presented).as_bytes().ct_eq(s.as_bytes())))
}

/// The self-registered client `id`, if `token` is its registration access token; and the token.
async fn authorized<'t>(
    store: &Store,
    id: &str,
    token: Option<&'t str>,
) -> Result<(ClientRecord, &'t str), RegisterError> {
    let token = token.ok_or(RegisterError::InvalidToken)?;
    // RFC 7592 §2.1: an unknown client, or an operator's (it has no such token), is answered
    // like a bad token (401).
    let client = store.client(id).await?.ok_or(RegisterError::InvalidToken)?;
    let Some(registration) = &client.registration else {
        return Err(RegisterError::InvalidToken);
    };
    if registration.access_token.is_none() {
        // A metadata-document client is managed through its document.
        return Err(RegisterError::Forbidden);
    }
    if holds(&client, token) {
        Ok((client, token))
    } else {
        Err(RegisterError::InvalidToken)
    }
}

/// Replaces client `id`'s registration access token, checking under the write lock that
/// `presented` is still the current one (so that of two requests with one token only one goes
/// through), after `change`; returns the client and the new token.
async fn rotate_token(
    store: &Store,
    actor: &Actor,
    id: &str,
    presented: &str,
    action: &str,
    change: impl FnOnce(&mut ClientRecord) -> Result<(), RegisterError>,
) -> Result<(ClientRecord, String), RegisterError> {
    let (token, hash) = new_access_token()?;
    let client = store
        .modify_client(id, &actor.entry(action, id, json!({})), |c| {
            if !holds(c, presented) {
                return Err(RegisterError::InvalidToken);
            }
            change(c)?;
            if let Some(r) = c.registration.as_mut() {
                r.access_token = Some(hash);
            }
            Ok::<(), RegisterError>(())
        })
        .await?
        .ok_or(RegisterError::InvalidToken)?;
    Ok((client, token))
}

/// RFC 7592 §2.1: the client's registration as it stands. The answer carries a new
/// registration access token (the old one stops working): Tessera keeps only a hash, so it can
/// return one only by making one (§2.1 allows a new token on read).
pub async fn read(
    store: &Store,
    actor: &Actor,
    issuer: &str,
    id: &str,
    token: Option<&str>,
) -> Result<Answer, RegisterError> {
    let (_, presented) = authorized(store, id, token).await?;
    let (client, token) = rotate_token(
        store,
        actor,
        id,
        presented,
        "client.registration_read",
        |_| Ok(()),
    )
    .await?;
    let body = body(issuer, &client, None, Some(&token));
    Ok(Answer { client, body })
}

/// RFC 7592 §2.2: replaces the client's metadata (omitted fields are removed) under the same
/// policy, and rotates its registration access token. A change of where the client sends people
/// or of its grant types withdraws an operator's approval.
pub async fn update(
    store: &Store,
    actor: &Actor,
    settings: &RegistrationSettings,
    issuer: &str,
    id: &str,
    token: Option<&str>,
    metadata: &Map<String, Value>,
) -> Result<Answer, RegisterError> {
    let (current, presented) = authorized(store, id, token).await?;
    let bad = |d: &str| {
        RegisterError::Metadata(Refusal {
            error: "invalid_client_metadata",
            description: d.to_string(),
        })
    };
    if metadata.get("client_id").and_then(Value::as_str) != Some(id) {
        return Err(bad("client_id must be the client's own (RFC 7592 §2.2)"));
    }
    for forbidden in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        if metadata.contains_key(forbidden) {
            return Err(bad(&format!("{forbidden} must not be sent (RFC 7592 §2.2)")));
        }
    }
    if let Some(secret) = metadata.get("client_secret") {
        // The secret it holds now (generated, unexpired); a client cannot choose one.
        let hash = secret.as_str().map(sha256_hex).unwrap_or_default();
        let now = actor.now();
        if !current.secrets.iter().any(|s| {
            s.kind == SecretKind::Sha256
                && s.expires_at.is_none_or(|t| t > now)
                && bool::from(s.hash.as_bytes().ct_eq(hash.as_bytes()))
        }) {
            return Err(bad(
                "client_secret is not the client's (a client cannot choose its secret)",
            ));
        }
    }
    let read = rules::read_metadata(metadata, &settings.policy, false)?;
    if read.flows.public != current.flows.public || read.flows.auth != current.flows.auth {
        return Err(bad(
            "token_endpoint_auth_method cannot change; register a new client",
        ));
    }
    let (client, token) = rotate_token(store, actor, id, presented, "client.registration_update", |c| {
        let same_reach = c.flows.redirect_uris == read.flows.redirect_uris
            && c.flows.grant_types == read.flows.grant_types;
        c.name = read.name;
        c.scopes = read.scopes;
        c.flows = read.flows;
        if let Some(r) = c.registration.as_mut() {
            r.metadata = read.kept;
            r.approved &= same_reach;
        }
        Ok(())
    })
    .await?;
    let body = body(issuer, &client, None, Some(&token));
    Ok(Answer { client, body })
}

/// RFC 7592 §2.3: deletes the client (its codes, refresh tokens and consents with it). The
/// token is replaced first, under the write lock, so a request racing with it fails.
pub async fn delete(
    store: &Store,
    actor: &Actor,
    id: &str,
    token: Option<&str>,
) -> Result<(), RegisterError> {
    let (_, presented) = authorized(store, id, token).await?;
    rotate_token(
        store,
        actor,
        id,
        presented,
        "client.registration_token_withdraw",
        |_| Ok(()),
    )
    .await?;
    store
        .delete_client(id, &actor.entry("client.registration_delete", id, json!({})))
        .await?;
    Ok(())
}

/// Longest an initial access token may live: 90 days.
pub const MAX_INITIAL_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// Issues an initial access token good for `uses` registrations until `lifetime` from now.
/// Returns the stored record and the value (the one copy).
pub async fn create_initial_token(
    store: &Store,
    actor: &Actor,
    note: &str,
    lifetime: std::time::Duration,
    uses: u32,
) -> Result<(InitialToken, String), AdminError> {
    if lifetime.as_secs() < 60 || lifetime > MAX_INITIAL_TOKEN_LIFETIME {
        return Err(AdminError::Invalid(
            "an initial access token lives 1 minute to 90 days".into(),
        ));
    }
    if uses == 0 || uses > 100_000 {
        return Err(AdminError::Invalid("uses must be 1 to 100000".into()));
    }
    if note.len() > 200 || note.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "a note is at most 200 printable characters".into(),
        ));
    }
    let value = generate_secret().map_err(|e| AdminError::Invalid(e.into()))?;
    let token = InitialToken {
        id: generate_client_id(),
        hash: sha256_hex(&value),
        note: note.to_string(),
        created_at: actor.now(),
        expires_at: actor.now() + lifetime.as_secs() as i64,
        uses_left: i64::from(uses),
    };
    let entry = actor.entry(
        "registration_token.create",
        &token.id,
        json!({"note": token.note, "expires_at": token.expires_at, "uses": uses}),
    );
    store.insert_initial_token(&token, &entry).await?;
    Ok((token, value))
}

/// Every initial access token (never their values).
pub async fn initial_tokens(store: &Store) -> Result<Vec<InitialToken>, AdminError> {
    Ok(store.initial_tokens().await?)
}

/// Withdraws initial access token `id`.
pub async fn revoke_initial_token(store: &Store, actor: &Actor, id: &str) -> Result<(), AdminError> {
    let entry = actor.entry("registration_token.revoke", id, json!({}));
    if store.delete_initial_token(id, &entry).await? {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!("no initial access token {id}")))
    }
}

/// Vouches for (or stops vouching for) self-registered client `id`.
pub async fn approve(
    store: &Store,
    actor: &Actor,
    id: &str,
    approved: bool,
) -> Result<ClientRecord, AdminError> {
    let entry = actor.entry("client.approve", id, json!({"approved": approved}));
    store
        .modify_client(id, &entry, |c| match c.registration.as_mut() {
            Some(r) => {
                r.approved = approved;
                Ok(())
            }
            None => Err(AdminError::Invalid(
                "only a self-registered client is approved; an operator's client is trusted already".into(),
            )),
        })
        .await?
        .ok_or_else(|| AdminError::NotFound(id.to_string()))
}

/// Deletes self-registered clients never used within `settings.unused_expiry` of registering.
pub async fn prune(
    store: &Store,
    actor: &Actor,
    settings: &RegistrationSettings,
) -> Result<Vec<String>, StoreError> {
    let cutoff = actor.now() - settings.unused_expiry as i64;
    store
        .prune_registrations(
            cutoff,
            1000,
            &actor.entry(
                "client.prune_unused",
                "",
                json!({"unused_expiry": settings.unused_expiry}),
            ),
        )
        .await
}
