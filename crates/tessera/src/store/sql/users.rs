operations! {
    /// Adds a user; `false` (and nothing written) when its email is taken.
    pub async fn insert_user(
        &self,
        user: &UserRecord,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email_key = $1 OR id = $2")
            .bind(crate::model::email_key(&user.email))
            .bind(&user.id)
            .fetch_one(&mut *tx)
            .await?;
        if taken > 0 {
            return Ok(false);
        }
        write_user(&mut tx, user, true).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One user, by id.
    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// One user, by email (without regard to case).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE email_key = $1")
            .bind(crate::model::email_key(email))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Up to `limit` users with ids after `after`, ordered by id.
    pub async fn users_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Up to `limit` users whose email starts with `prefix` (without regard to case), ordered by
    /// email, after the email key `after`: one range of the unique index.
    pub async fn users_by_email(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let key = crate::model::email_key(prefix);
        let rows = sqlx::query(
            "SELECT * FROM users WHERE email_key >= $1 AND email_key < $2 AND email_key > $3 ORDER BY email_key LIMIT $4",
        )
        .bind(&key)
        .bind(format!("{key}\u{10FFFF}"))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// How many enabled users have the console's admin role (a scan of the users: asked only
    /// before a role is taken away).
    pub async fn count_admins(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE enabled = $1 AND (' ' || roles || ' ') LIKE '% admin %'",
        )
        .bind(true)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Deletes user `id`; `false` when there was none.
    pub async fn delete_user(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        // Its sessions and refresh tokens would go with it (foreign keys); the access tokens
        // issued with those refresh tokens are revoked, as when a password changes.
        end_sign_ins_in(&mut tx, id).await?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }
}

impl Engine {
    pub(super) async fn modify_user<E: From<StoreError>>(
        &self,
        id: &str,
        audit: &AuditEntry,
        end_sign_ins: bool,
        change: impl FnOnce(&mut UserRecord) -> Result<(), E>,
    ) -> Result<Option<(UserRecord, SignInsEnded)>, E> {
        let (mut tx, _write) = self.begin_write().await?;
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let Some(mut user) = row.as_ref().map(user_from_row).transpose()? else {
            return Ok(None);
        };
        change(&mut user)?;
        user.id = id.to_string();
        user.updated_at = now();
        let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email_key = $1 AND id <> $2")
            .bind(crate::model::email_key(&user.email))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        if others > 0 {
            return Err(StoreError::Conflict("another user has this email".into()).into());
        }
        write_user(&mut tx, &user, false).await?;
        let ended = if end_sign_ins {
            end_sign_ins_in(&mut tx, id).await?
        } else {
            SignInsEnded::default()
        };
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some((user, ended)))
    }
}

/// Inserts (`new`) or updates a user row.
async fn write_user(tx: &mut Tx, u: &UserRecord, new: bool) -> Result<(), StoreError> {
    let sql = if new {
        "INSERT INTO users (email, email_key, email_verified, given_name, family_name, name, password_hash, \
         enabled, attributes, created_at, updated_at, roles, id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13, $12)"
    } else {
        "UPDATE users SET email = $1, email_key = $2, email_verified = $3, given_name = $4, family_name = $5, \
         name = $6, password_hash = $7, enabled = $8, attributes = $9, created_at = $10, updated_at = $11, \
         roles = $13 WHERE id = $12"
    };
    sqlx::query(sql)
        .bind(&u.email)
        .bind(crate::model::email_key(&u.email))
        .bind(u.email_verified)
        .bind(&u.given_name)
        .bind(&u.family_name)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.enabled)
        .bind(claims_json(&u.attributes))
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(&u.id)
        .bind(u.roles.join(" "))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn user_from_row(r: &DbRow) -> Result<UserRecord, StoreError> {
    let attributes: String = r.try_get("attributes")?;
    Ok(UserRecord {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        email_verified: r.try_get("email_verified")?,
        given_name: r.try_get("given_name")?,
        family_name: r.try_get("family_name")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        enabled: r.try_get("enabled")?,
        attributes: serde_json::from_str(&attributes)
            .map_err(|e| StoreError::Corrupt(format!("user attributes: {e}")))?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        roles: r
            .try_get::<String, _>("roles")?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    })
}
