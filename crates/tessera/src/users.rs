//! The user directory: people who sign in (OpenID Connect). The CLI and the admin API share these
//! operations; each change is written with its audit event in one transaction. Passwords are
//! stored with Argon2id and never returned, logged or audited.

use serde_json::json;

use crate::model::clock::unix_now;
use crate::model::user::{MAX_PASSWORD, MIN_PASSWORD, validate_email, validate_name};
use crate::model::{SecretKind, SignInsEnded, UserRecord};
use crate::operation::{Actor, AdminError};
use crate::store::StoreError;

/// A new user. (No `Debug`: it may hold a password.)
#[derive(Default, Clone)]
pub struct NewUser {
    /// Email address, unique without regard to case.
    pub email: String,
    /// Whether the address is known to be the user's.
    pub email_verified: bool,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// The password; without one, the user cannot sign in with a password until one is set.
    pub password: Option<String>,
    /// Custom attributes, released as claims.
    pub attributes: crate::claims::Claims,
    /// Console roles ([`crate::model::user::ROLES`]).
    pub roles: Vec<String>,
}

/// Changes to a user; `None` leaves a field alone, an empty name clears it.
#[derive(Debug, Default, Clone)]
pub struct UserUpdate {
    /// New email.
    pub email: Option<String>,
    /// New verification state.
    pub email_verified: Option<bool>,
    /// New given name (empty: none).
    pub given_name: Option<String>,
    /// New family name (empty: none).
    pub family_name: Option<String>,
    /// New full name (empty: none).
    pub name: Option<String>,
    /// Attributes to set (merged over the current ones).
    pub attributes: Option<crate::claims::Claims>,
    /// Attribute names to remove.
    pub remove_attributes: Vec<String>,
    /// The console roles (replacing the old ones; empty: none).
    pub roles: Option<Vec<String>>,
}

/// Checks a password's length and hashes it with Argon2id (off the async threads).
pub async fn hash_password(password: &str) -> Result<String, AdminError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(AdminError::Invalid(format!(
            "a password must be at least {MIN_PASSWORD} characters and at most {MAX_PASSWORD} bytes"
        )));
    }
    if password.contains('\0') {
        return Err(AdminError::Invalid("a password must not hold NUL".into()));
    }
    let owned = password.to_string();
    tokio::task::spawn_blocking(move || crate::clients::hash_secret(&owned, SecretKind::Argon2id))
        .await
        .map_err(|e| AdminError::Store(StoreError::Io(e.to_string())))?
        .map_err(|e| AdminError::Store(StoreError::Io(e)))
}

/// Creates a user.
pub async fn create_user(
    store: &crate::store::Store,
    actor: &Actor,
    new: NewUser,
) -> Result<UserRecord, AdminError> {
    let email = validate_email(&new.email).map_err(AdminError::Invalid)?;
    crate::claims::validate_attributes(&new.attributes).map_err(AdminError::Invalid)?;
    crate::model::user::validate_roles(&new.roles).map_err(AdminError::Invalid)?;
    let password_hash = match &new.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let t = unix_now();
    let user = UserRecord {
        id: uuid::Uuid::new_v4().to_string(),
        email,
        email_verified: new.email_verified,
        given_name: validate_name("given_name", new.given_name).map_err(AdminError::Invalid)?,
        family_name: validate_name("family_name", new.family_name).map_err(AdminError::Invalid)?,
        name: validate_name("name", new.name).map_err(AdminError::Invalid)?,
        password_hash,
        enabled: true,
        attributes: new.attributes,
        created_at: t,
        updated_at: t,
        roles: new.roles,
    };
    let audit = actor.entry(
        "user.create",
        &user.id,
        json!({"email": user.email, "password": user.password_hash.is_some(), "roles": user.roles}),
    );
    if !store.insert_user(&user, &audit).await? {
        return Err(AdminError::Store(StoreError::Conflict(
            "a user with this email exists".into(),
        )));
    }
    Ok(user)
}

/// A user by id, or by email when the argument holds an `@`.
pub async fn get_user(store: &crate::store::Store, id_or_email: &str) -> Result<UserRecord, AdminError> {
    let found = if id_or_email.contains('@') {
        store.user_by_email(id_or_email).await?
    } else {
        store.user(id_or_email).await?
    };
    found.ok_or_else(|| AdminError::NoUser(id_or_email.to_string()))
}

/// Applies `update` to user `id`.
pub async fn update_user(
    store: &crate::store::Store,
    actor: &Actor,
    id: &str,
    update: UserUpdate,
) -> Result<UserRecord, AdminError> {
    let email = update
        .email
        .as_deref()
        .map(validate_email)
        .transpose()
        .map_err(AdminError::Invalid)?;
    if let Some(a) = &update.attributes {
        crate::claims::validate_attributes(a).map_err(AdminError::Invalid)?;
    }
    if let Some(r) = &update.roles {
        crate::model::user::validate_roles(r).map_err(AdminError::Invalid)?;
    }
    let given_name = update
        .given_name
        .clone()
        .map(|v| validate_name("given_name", Some(v)));
    let family_name = update
        .family_name
        .clone()
        .map(|v| validate_name("family_name", Some(v)));
    let name = update.name.clone().map(|v| validate_name("name", Some(v)));
    let mut changed: Vec<&str> = Vec::new();
    for (field, set) in [
        ("email", email.is_some()),
        ("email_verified", update.email_verified.is_some()),
        ("given_name", given_name.is_some()),
        ("family_name", family_name.is_some()),
        ("name", name.is_some()),
        (
            "attributes",
            update.attributes.is_some() || !update.remove_attributes.is_empty(),
        ),
        ("roles", update.roles.is_some()),
    ] {
        if set {
            changed.push(field);
        }
    }
    let mut details = json!({"changed": changed});
    if let Some(r) = &update.roles {
        details["roles"] = json!(r);
    }
    let audit = actor.entry("user.update", id, details);
    let result = store
        .modify_user(id, &audit, |u: &mut UserRecord| -> Result<(), AdminError> {
            if let Some(e) = email {
                // A new address is not verified until someone says so.
                if crate::model::email_key(&e) != crate::model::email_key(&u.email) {
                    u.email_verified = false;
                }
                u.email = e;
            }
            if let Some(v) = update.email_verified {
                u.email_verified = v;
            }
            if let Some(v) = given_name {
                u.given_name = v.map_err(AdminError::Invalid)?;
            }
            if let Some(v) = family_name {
                u.family_name = v.map_err(AdminError::Invalid)?;
            }
            if let Some(v) = name {
                u.name = v.map_err(AdminError::Invalid)?;
            }
            if let Some(a) = update.attributes {
                for (k, v) in a.iter() {
                    u.attributes.insert(k.clone(), v.clone());
                }
            }
            for k in &update.remove_attributes {
                u.attributes.remove(k);
            }
            if let Some(r) = update.roles {
                u.roles = r;
            }
            crate::claims::validate_attributes(&u.attributes).map_err(AdminError::Invalid)
        })
        .await?;
    result.ok_or_else(|| AdminError::NoUser(id.to_string()))
}

/// Sets user `id`'s password, and ends the user's sign-ins (sessions, refresh-token families
/// and the access tokens issued with them): whoever knew the old password is signed out.
pub async fn set_password(
    store: &crate::store::Store,
    actor: &Actor,
    id: &str,
    password: &str,
) -> Result<(UserRecord, SignInsEnded), AdminError> {
    let hash = hash_password(password).await?;
    let audit = actor.entry("user.set_password", id, json!({"ends_sign_ins": true}));
    store
        .modify_user_ending_sign_ins(id, &audit, |u: &mut UserRecord| -> Result<(), AdminError> {
            u.password_hash = Some(hash);
            Ok(())
        })
        .await?
        .ok_or_else(|| AdminError::NoUser(id.to_string()))
}

/// Enables or disables user `id`; disabling ends the user's sign-ins as
/// [`set_password`] does.
pub async fn set_enabled(
    store: &crate::store::Store,
    actor: &Actor,
    id: &str,
    enabled: bool,
) -> Result<(UserRecord, SignInsEnded), AdminError> {
    let action = if enabled { "user.enable" } else { "user.disable" };
    let change = |u: &mut UserRecord| -> Result<(), AdminError> {
        u.enabled = enabled;
        Ok(())
    };
    let changed = if enabled {
        let audit = actor.entry(action, id, json!({}));
        store
            .modify_user(id, &audit, change)
            .await?
            .map(|u| (u, SignInsEnded::default()))
    } else {
        let audit = actor.entry(action, id, json!({"ends_sign_ins": true}));
        store.modify_user_ending_sign_ins(id, &audit, change).await?
    };
    changed.ok_or_else(|| AdminError::NoUser(id.to_string()))
}

/// Deletes user `id`.
pub async fn delete_user(store: &crate::store::Store, actor: &Actor, id: &str) -> Result<(), AdminError> {
    let audit = actor.entry("user.delete", id, json!({}));
    if store.delete_user(id, &audit).await? {
        Ok(())
    } else {
        Err(AdminError::NoUser(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            validate_email(" Ada@Example.com ").ok().as_deref(),
            Some("Ada@Example.com")
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "ada@@x",
            "ada@x..com",
            "ada@.x",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?}");
        }
        assert!(validate_email(&format!("{}@x.com", "a".repeat(260))).is_err());
    }

    #[tokio::test]
    async fn passwords_are_bounded_and_hashed() {
        assert!(hash_password("short").await.is_err());
        assert!(hash_password(&"x".repeat(MAX_PASSWORD + 1)).await.is_err());
        let hash = hash_password("correct horse").await.unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
    }
}
