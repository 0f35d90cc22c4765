//! Trust policies (workload identity federation): create, change, list, delete, each audited.
//! A policy maps tokens of an external issuer to one client, which must authenticate with keys
//! (`private_key_jwt`): a secret client is moved first, with a grace for its secret.

use std::collections::BTreeMap;

use crate::model::auth::TokenAuth;
use crate::model::trust::{self, TrustKeys, TrustPolicy};
use crate::operation::{Actor, AdminError};
use crate::store::Store;

/// A new trust policy.
#[derive(Debug, Clone)]
pub struct NewTrustPolicy {
    /// A human name.
    pub name: String,
    /// The external issuer.
    pub issuer: String,
    /// Where its keys are.
    pub keys: TrustKeys,
    /// The audience its tokens carry for Tessera.
    pub audience: String,
    /// The condition on `sub`.
    pub subject: String,
    /// Conditions on other claims.
    pub claims: BTreeMap<String, String>,
    /// The client its tokens authenticate as.
    pub client_id: String,
}

/// Changes to a policy; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New key source.
    pub keys: Option<TrustKeys>,
    /// New audience.
    pub audience: Option<String>,
    /// New subject condition.
    pub subject: Option<String>,
    /// Claim conditions to set (an empty pattern removes one).
    pub claims: Option<BTreeMap<String, String>>,
    /// Another client.
    pub client_id: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// What the audit trail says of a policy: everything but inline key material.
fn details(p: &TrustPolicy) -> serde_json::Value {
    serde_json::json!({
        "name": p.name, "issuer": p.issuer, "audience": p.audience, "subject": p.subject,
        "claims": p.claims, "client_id": p.client_id, "enabled": p.enabled,
        "keys": match &p.keys {
            TrustKeys::Discovery => "discovery".to_string(),
            TrustKeys::JwksUri(u) => u.clone(),
            TrustKeys::Jwks(_) => "inline".to_string(),
        },
    })
}

/// The client must exist and authenticate with keys.
async fn check_client(store: &Store, id: &str) -> Result<(), AdminError> {
    let client = store
        .client(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.to_string()))?;
    if client.flows.public || client.flows.auth != TokenAuth::PrivateKeyJwt {
        return Err(AdminError::Invalid(format!(
            "client {id} does not authenticate with keys; move it first: \
             tessera client update {id} --auth-method private_key_jwt [--secret-grace 1h]"
        )));
    }
    Ok(())
}

/// Creates a policy.
pub async fn create(store: &Store, actor: &Actor, new: NewTrustPolicy) -> Result<TrustPolicy, AdminError> {
    let now = actor.now();
    let policy = TrustPolicy {
        id: crate::clients::generate_client_id(),
        name: new.name.trim().to_string(),
        issuer: new.issuer,
        keys: new.keys,
        audience: new.audience,
        subject: new.subject,
        claims: new.claims,
        client_id: new.client_id,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    trust::validate(&policy).map_err(AdminError::Invalid)?;
    check_client(store, &policy.client_id).await?;
    let entry = actor.entry("trust.create", &policy.id, details(&policy));
    if !store.insert_trust_policy(&policy, &entry).await? {
        return Err(AdminError::NotFound(policy.client_id));
    }
    Ok(policy)
}

/// Changes policy `id`.
pub async fn update(
    store: &Store,
    actor: &Actor,
    id: &str,
    update: TrustPolicyUpdate,
) -> Result<TrustPolicy, AdminError> {
    if let Some(client) = &update.client_id {
        check_client(store, client).await?;
    }
    let action = match update.enabled {
        Some(true) => "trust.enable",
        Some(false) => "trust.disable",
        None => "trust.update",
    };
    let mut changed_fields = serde_json::Map::new();
    for (k, v) in [
        ("name", update.name.clone().map(Into::into)),
        ("audience", update.audience.clone().map(Into::into)),
        ("subject", update.subject.clone().map(Into::into)),
        ("client_id", update.client_id.clone().map(Into::into)),
        ("enabled", update.enabled.map(Into::into)),
        ("claims", update.claims.as_ref().map(|c| serde_json::json!(c))),
        (
            "keys",
            update.keys.as_ref().map(|k| match k {
                TrustKeys::Discovery => "discovery".into(),
                TrustKeys::JwksUri(u) => u.clone().into(),
                TrustKeys::Jwks(_) => "inline".into(),
            }),
        ),
    ] {
        if let Some(v) = v {
            changed_fields.insert(k.into(), v);
        }
    }
    let entry = actor.entry(action, id, changed_fields.into());
    let changed = store
        .modify_trust_policy(id, &entry, |p| {
            if let Some(n) = update.name {
                p.name = n.trim().to_string();
            }
            if let Some(k) = update.keys {
                p.keys = k;
            }
            if let Some(a) = update.audience {
                p.audience = a;
            }
            if let Some(s) = update.subject {
                p.subject = s;
            }
            for (name, pattern) in update.claims.into_iter().flatten() {
                if pattern.is_empty() {
                    p.claims.remove(&name);
                } else {
                    p.claims.insert(name, pattern);
                }
            }
            if let Some(c) = update.client_id {
                p.client_id = c;
            }
            if let Some(e) = update.enabled {
                p.enabled = e;
            }
            p.updated_at = actor.now();
            trust::validate(p).map_err(AdminError::Invalid)
        })
        .await?;
    changed.ok_or_else(|| AdminError::NoTrustPolicy(id.to_string()))
}

/// Deletes policy `id`.
pub async fn delete(store: &Store, actor: &Actor, id: &str) -> Result<(), AdminError> {
    let entry = actor.entry("trust.delete", id, serde_json::json!({}));
    if store.delete_trust_policy(id, &entry).await? {
        Ok(())
    } else {
        Err(AdminError::NoTrustPolicy(id.to_string()))
    }
}

/// Policy `id`.
pub async fn get(store: &Store, id: &str) -> Result<TrustPolicy, AdminError> {
    store
        .trust_policy(id)
        .await?
        .ok_or_else(|| AdminError::NoTrustPolicy(id.to_string()))
}
