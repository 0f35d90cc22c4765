//! The views of the resources people manage, one typed, serialisable document each, shared by
//! the CLI (`--json`) and the admin API, so both print the same thing: a client (never a secret
//! value or hash), a newly created client with its secret (shown this once), a user (never the
//! password hash), a signing key, an audit event, what ending a user's sign-ins ended, and a
//! page of a list.
//!
//! Members are declared in alphabetical order: the order the documents always had.

use serde::Serialize;

use crate::claims::Claims;
use crate::model::{AuditEvent, ClientRecord, KeyRecord, SecretKind, SignInsEnded, UserRecord};

/// A client: everything but secret values and hashes.
#[derive(Debug, Serialize)]
pub struct ClientView<'a> {
    audiences: &'a [String],
    can_introspect: bool,
    claims: &'a Claims,
    client_id: &'a str,
    /// `public` or `confidential`.
    client_type: &'static str,
    created_at: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dpop_bound_access_tokens: bool,
    enabled: bool,
    first_party: bool,
    grant_types: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<&'a str>,
    name: &'a str,
    /// How it came to be: `operator`, `registration` or `metadata_document`.
    origin: &'static str,
    /// A self-registered client an operator vouched for.
    #[serde(skip_serializing_if = "Option::is_none")]
    approved: Option<bool>,
    /// Metadata a self-registered client gave about itself (never fetched).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_metadata: Option<&'a serde_json::Map<String, serde_json::Value>>,
    redirect_uris: &'a [String],
    scope: String,
    secrets: Vec<SecretView<'a>>,
    token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_auth: Option<&'a crate::model::auth::TlsSubject>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_client_certificate_bound_access_tokens: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tls_client_certificate_thumbprints: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    token_exchange: Option<&'a crate::model::exchange::ExchangePolicy>,
    token_ttl: u32,
    tokens_revoked_before: i64,
    updated_at: i64,
}

/// One of a client's secrets: when it was made and when it ends, never its value or hash.
#[derive(Debug, Serialize)]
pub struct SecretView<'a> {
    created_at: i64,
    expires_at: Option<i64>,
    id: &'a str,
    /// `generated` or `imported`.
    kind: &'static str,
}

impl<'a> From<&'a ClientRecord> for ClientView<'a> {
    fn from(c: &'a ClientRecord) -> Self {
        ClientView {
            audiences: &c.audiences,
            can_introspect: c.can_introspect,
            claims: &c.claims,
            client_id: &c.id,
            client_type: if c.flows.public { "public" } else { "confidential" },
            created_at: c.created_at,
            enabled: c.enabled,
            first_party: c.flows.first_party,
            grant_types: &c.flows.grant_types,
            jwks: c.flows.jwks.as_ref(),
            jwks_uri: c.flows.jwks_uri.as_deref(),
            name: &c.name,
            origin: c.registration.as_ref().map_or("operator", |r| r.origin.as_str()),
            approved: c.registration.as_ref().map(|r| r.approved),
            client_metadata: c
                .registration
                .as_ref()
                .map(|r| &r.metadata)
                .filter(|m| !m.is_empty()),
            redirect_uris: &c.flows.redirect_uris,
            scope: c.scopes.join(" "),
            secrets: c
                .secrets
                .iter()
                .map(|s| SecretView {
                    created_at: s.created_at,
                    expires_at: s.expires_at,
                    id: &s.id,
                    kind: match s.kind {
                        SecretKind::Sha256 => "generated",
                        SecretKind::Argon2id => "imported",
                    },
                })
                .collect(),
            token_endpoint_auth_method: if c.flows.public {
                "none"
            } else {
                c.flows.auth.name()
            },
            tls_client_auth: c.flows.tls_client_auth.as_ref(),
            dpop_bound_access_tokens: c.flows.dpop_bound_access_tokens,
            tls_client_certificate_bound_access_tokens: c.flows.tls_client_certificate_bound_access_tokens,
            tls_client_certificate_thumbprints: &c.flows.tls_client_certificates,
            token_exchange: c.flows.token_exchange.as_deref(),
            token_ttl: c.token_ttl,
            tokens_revoked_before: c.tokens_revoked_before,
            updated_at: c.updated_at,
        }
    }
}

/// A client just created, with its secret: the only time the secret is shown (`null` for a
/// client that has none: a public client, or one that signs assertions with its key). `tessera client create --json` and `POST /admin/v1/clients`
/// print this.
#[derive(Debug, Serialize)]
pub struct CreatedClientView<'a> {
    client: ClientView<'a>,
    client_secret: Option<&'a str>,
}

impl<'a> From<&'a crate::admin::Created> for CreatedClientView<'a> {
    fn from(c: &'a crate::admin::Created) -> Self {
        CreatedClientView {
            client: ClientView::from(&c.client),
            client_secret: (!c.secret.is_empty()).then_some(c.secret.as_str()),
        }
    }
}

/// A user: never the password hash, only whether there is one.
#[derive(Debug, Serialize)]
pub struct UserView<'a> {
    attributes: &'a Claims,
    created_at: i64,
    email: &'a str,
    email_verified: bool,
    enabled: bool,
    family_name: Option<&'a str>,
    given_name: Option<&'a str>,
    has_password: bool,
    id: &'a str,
    name: Option<&'a str>,
    roles: &'a [String],
    updated_at: i64,
}

impl<'a> From<&'a UserRecord> for UserView<'a> {
    fn from(u: &'a UserRecord) -> Self {
        UserView {
            attributes: &u.attributes,
            created_at: u.created_at,
            email: &u.email,
            email_verified: u.email_verified,
            enabled: u.enabled,
            family_name: u.family_name.as_deref(),
            given_name: u.given_name.as_deref(),
            has_password: u.password_hash.is_some(),
            id: &u.id,
            name: u.name.as_deref(),
            roles: &u.roles,
            updated_at: u.updated_at,
        }
    }
}

/// What a password change or a disable ended.
#[derive(Debug, Serialize)]
pub struct SignInsEndedView {
    access_tokens_revoked: usize,
    refresh_token_families: u64,
    sessions: u64,
}

impl From<&SignInsEnded> for SignInsEndedView {
    fn from(e: &SignInsEnded) -> Self {
        SignInsEndedView {
            access_tokens_revoked: e.revoked.len(),
            refresh_token_families: e.refresh_token_families,
            sessions: e.sessions,
        }
    }
}

/// A signing key and its state at a time: `pending`, `active`, `retiring` or `retired`.
#[derive(Debug, Serialize)]
pub struct KeyView<'a> {
    activates_at: i64,
    alg: &'a str,
    created_at: i64,
    kid: &'a str,
    purpose: &'static str,
    retires_at: Option<i64>,
    state: &'static str,
}

impl<'a> KeyView<'a> {
    /// `k` as it stands at `at`.
    pub fn at(k: &'a KeyRecord, at: i64) -> Self {
        let state = match k.retired_at {
            Some(r) if r <= at => "retired",
            _ if k.activates_at > at => "pending",
            Some(_) => "retiring",
            None => "active",
        };
        KeyView {
            activates_at: k.activates_at,
            alg: &k.alg,
            created_at: k.created_at,
            kid: &k.kid,
            purpose: k.purpose.as_str(),
            retires_at: k.retired_at,
            state,
        }
    }
}

/// An audit event.
#[derive(Debug, Serialize)]
pub struct AuditView<'a> {
    action: &'a str,
    actor: &'a str,
    at: i64,
    details: &'a serde_json::Value,
    id: i64,
    source: &'a str,
    target: &'a str,
}

impl<'a> From<&'a AuditEvent> for AuditView<'a> {
    fn from(e: &'a AuditEvent) -> Self {
        AuditView {
            action: &e.entry.action,
            actor: &e.entry.actor,
            at: e.at,
            details: &e.entry.details,
            id: e.id,
            source: &e.entry.source,
            target: &e.entry.target,
        }
    }
}

/// Most items a page of a list holds, and how many when the caller does not say.
pub const PAGE_LIMITS: (u32, u32) = (1000, 100);

/// The page size asked for, within [`PAGE_LIMITS`].
pub fn page_limit(asked: Option<u32>) -> Result<u32, String> {
    let limit = asked.unwrap_or(PAGE_LIMITS.1);
    if (1..=PAGE_LIMITS.0).contains(&limit) {
        Ok(limit)
    } else {
        Err(format!("limit must be 1 to {}", PAGE_LIMITS.0))
    }
}

/// A page of a list: `{"<member>": [views…], "next_after": <the last item's key, or null when
/// this page is the last>}`. A full page has a next one (which may be empty).
pub fn page<'a, R: 'a, V: Serialize, K: Serialize>(
    member: &str,
    records: &'a [R],
    limit: u32,
    view: impl Fn(&'a R) -> V,
    key: impl Fn(&'a R) -> K,
) -> serde_json::Value {
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(&key))
        .flatten();
    let items: Vec<V> = records.iter().map(view).collect();
    let mut out = serde_json::Map::new();
    out.insert(
        member.to_string(),
        serde_json::to_value(items).unwrap_or_default(),
    );
    out.insert(
        "next_after".into(),
        serde_json::to_value(next).unwrap_or_default(),
    );
    serde_json::Value::Object(out)
}

/// A view as JSON.
pub fn json(view: impl Serialize) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_default()
}

/// A client's view as JSON.
pub fn client_json(c: &ClientRecord) -> serde_json::Value {
    json(ClientView::from(c))
}

/// A user's view as JSON.
pub fn user_json(u: &UserRecord) -> serde_json::Value {
    json(UserView::from(u))
}

/// What ending a user's sign-ins ended, as JSON.
pub fn ended_json(e: &SignInsEnded) -> serde_json::Value {
    json(SignInsEndedView::from(e))
}

/// A key's view at `at`, as JSON.
pub fn key_json(k: &KeyRecord, at: i64) -> serde_json::Value {
    json(KeyView::at(k, at))
}

/// A trust policy, as the CLI (`--json`) and the admin API show it: the whole record (an
/// issuer's inline keys are public keys).
pub fn trust_json(p: &crate::model::trust::TrustPolicy) -> serde_json::Value {
    serde_json::to_value(p).unwrap_or_default()
}

/// An initial access token for registration, never its value (`tessera registration token list
/// --json`, `/admin/v1/registration-tokens`).
pub fn registration_token_json(t: &crate::model::registration::InitialToken) -> serde_json::Value {
    serde_json::json!({
        "id": t.id, "note": t.note, "created_at": t.created_at, "expires_at": t.expires_at,
        "uses_left": t.uses_left,
    })
}
