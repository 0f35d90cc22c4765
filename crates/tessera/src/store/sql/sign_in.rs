operations! {
    /// Stores a new browser session.
    pub async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.id)
        .bind(&session.user_id)
        .bind(session.auth_time)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session `id` if it has not ended.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(SessionRecord {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                auth_time: r.try_get("auth_time")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends every session of `user_id` that began with the sign-in at `auth_time` (a console
    /// session and the sign-in session it came from); how many.
    pub async fn delete_sessions_of_sign_in(&self, user_id: &str, auth_time: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND auth_time = $2")
            .bind(user_id)
            .bind(auth_time)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Ends session `id`; `false` when there was none.
    pub async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The scopes `user_id` allowed `client_id`, if any.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let scopes: Option<String> =
            sqlx::query_scalar("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(scopes.map(|s| s.split_whitespace().map(str::to_string).collect()))
    }

    /// Records that `user_id` allowed `client_id` these scopes (replacing what was there).
    pub async fn grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scopes.join(" "))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a new authorization code.
    pub async fn insert_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (id, client_id, grant_json, expires_at, keep_until) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&code.id)
        .bind(&code.grant.client_id)
        .bind(to_json(&code.grant)?)
        .bind(code.expires_at)
        .bind(code.keep_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Redeems code `id` once, under the write lock, so that of any number of nodes exactly one
    /// redeems it. `matches` checks the request against what the code grants (client, redirect
    /// URI, PKCE): if it says no, nothing changes. On a second use, what the first issued
    /// (`issued` was recorded then) is revoked: its access token and refresh-token family.
    /// `refresh` may return the first refresh token of that family: it is stored in the same
    /// transaction, so a second use racing this one cannot miss it.
    pub async fn redeem_code(
        &self,
        id: &str,
        matches: impl FnOnce(&Grant) -> bool,
        issued: &Issued,
        refresh: impl FnOnce(&Grant) -> Option<RefreshRecord>,
    ) -> Result<Redemption, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let Some(row) = sqlx::query("SELECT * FROM authorization_codes WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Redemption::Unknown);
        };
        let grant: Grant = from_json(row.try_get("grant_json")?)?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        if used_at.is_some() {
            // A second use: the code leaked. Revoke what the first use issued.
            let first: Option<String> = row.try_get("issued_json")?;
            let mut revoked = Vec::new();
            if let Some(first) = first {
                let first: Issued = from_json(&first)?;
                revoke_in(
                    &mut tx,
                    &first.access_jti,
                    &grant.client_id,
                    first.access_expires_at,
                )
                .await?;
                revoked.push((first.access_jti, first.access_expires_at));
                if let Some(family) = &first.family_id {
                    revoked.extend(revoke_family(&mut tx, family).await?);
                }
            }
            tx.commit().await?;
            return Ok(Redemption::Reused(revoked));
        }
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now() {
            return Ok(Redemption::Unknown);
        }
        if !matches(&grant) {
            return Ok(Redemption::Refused);
        }
        sqlx::query(
            "UPDATE authorization_codes SET used_at = $1, issued_json = $2, keep_until = $3 WHERE id = $4",
        )
        .bind(now())
        .bind(to_json(issued)?)
        .bind(issued.access_expires_at.max(row.try_get("keep_until")?))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(first) = refresh(&grant) {
            insert_refresh_row(&mut tx, &first).await?;
        }
        tx.commit().await?;
        Ok(Redemption::Redeemed(grant))
    }

    /// Stores a new refresh token (the first of its family).
    pub async fn insert_refresh(&self, token: &RefreshRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_refresh_row(&mut conn, token).await
    }

    /// Spends refresh token `id` and stores `next(old)` in its place, under the write lock.
    /// `client_id` must be the token's client, and `next` may refuse (`None`, e.g. a scope
    /// wider than granted): either way nothing changes ([`Refresh::Refused`]). A token used
    /// before revokes its family (every token of it, and the access tokens they came with).
    pub async fn rotate_refresh(
        &self,
        id: &str,
        client_id: &str,
        next: impl FnOnce(&RefreshRecord) -> Option<RefreshRecord>,
    ) -> Result<Refresh, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let Some(row) = sqlx::query("SELECT * FROM refresh_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Refresh::Unknown);
        };
        let old = refresh_from_row(&row)?;
        if old.grant.client_id != client_id {
            return Ok(Refresh::Refused);
        }
        let used_at: Option<i64> = row.try_get("used_at")?;
        if used_at.is_some() {
            let revoked = revoke_family(&mut tx, &old.family_id).await?;
            tx.commit().await?;
            return Ok(Refresh::Reused(revoked));
        }
        let t = now();
        if old.expires_at <= t || old.family_expires_at <= t {
            return Ok(Refresh::Unknown);
        }
        let Some(next) = next(&old) else {
            return Ok(Refresh::Refused);
        };
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2")
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_refresh_row(&mut tx, &next).await?;
        tx.commit().await?;
        Ok(Refresh::Rotated(Box::new(old)))
    }

    /// Revokes the family of refresh token `id` if it belongs to `client_id` (RFC 7009), with
    /// the access tokens issued beside it (returned, with their expiry); `None` when there was
    /// no such token.
    pub async fn revoke_refresh(
        &self,
        id: &str,
        client_id: &str,
    ) -> Result<Option<Vec<(String, i64)>>, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let family: Option<String> =
            sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE id = $1 AND client_id = $2")
                .bind(id)
                .bind(client_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(family) = family else {
            return Ok(None);
        };
        let revoked = revoke_family(&mut tx, &family).await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    /// Forgets ended sessions, codes past keeping, refresh-token families past their absolute
    /// lifetime and device requests an hour past expiry.
    pub async fn prune_sign_in(&self) -> Result<u64, StoreError> {
        let t = now();
        let mut count = 0;
        for sql in [
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM authorization_codes WHERE keep_until <= $1",
            "DELETE FROM refresh_tokens WHERE family_expires_at <= $1",
            // An hour past expiry, so that a late poll still hears expired_token.
            "DELETE FROM device_codes WHERE expires_at <= $1 - 3600",
        ] {
            count += sqlx::query(sql)
                .bind(t)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(count)
    }
}

/// Ends every sign-in of user `id`: its sessions, and its refresh-token families with the access
/// tokens they came with.
async fn end_sign_ins_in(tx: &mut Tx, id: &str) -> Result<SignInsEnded, StoreError> {
    let sessions = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    let families: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 ORDER BY family_id")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    let mut revoked = Vec::new();
    for f in &families {
        revoked.extend(revoke_family(tx, f).await?);
    }
    Ok(SignInsEnded {
        sessions,
        refresh_token_families: families.len() as u64,
        revoked,
    })
}

/// Ends a refresh-token family: its tokens go, and the access tokens they came with that are
/// still alive are revoked (returned, with their expiry).
async fn revoke_family(tx: &mut Tx, family: &str) -> Result<Vec<(String, i64)>, StoreError> {
    let live = sqlx::query(
        "SELECT client_id, access_jti, access_expires_at FROM refresh_tokens \
         WHERE family_id = $1 AND access_jti IS NOT NULL AND access_expires_at > $2",
    )
    .bind(family)
    .bind(now())
    .fetch_all(&mut **tx)
    .await?;
    let mut revoked = Vec::with_capacity(live.len());
    for r in &live {
        let client_id: String = r.try_get("client_id")?;
        let jti: String = r.try_get("access_jti")?;
        let exp: i64 = r.try_get("access_expires_at")?;
        revoke_in(tx, &jti, &client_id, exp).await?;
        revoked.push((jti, exp));
    }
    sqlx::query("DELETE FROM refresh_tokens WHERE family_id = $1")
        .bind(family)
        .execute(&mut **tx)
        .await?;
    Ok(revoked)
}

async fn insert_refresh_row(conn: &mut Conn, t: &RefreshRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, client_id, user_id, grant_json, created_at, expires_at, \
         family_expires_at, access_jti, access_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&t.id)
    .bind(&t.family_id)
    .bind(&t.grant.client_id)
    .bind(&t.grant.user_id)
    .bind(to_json(&t.grant)?)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.family_expires_at)
    .bind(&t.access_jti)
    .bind(t.access_expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn refresh_from_row(r: &DbRow) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        id: r.try_get("id")?,
        family_id: r.try_get("family_id")?,
        grant: from_json(r.try_get("grant_json")?)?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        family_expires_at: r.try_get("family_expires_at")?,
        access_jti: r.try_get("access_jti")?,
        access_expires_at: r.try_get("access_expires_at")?,
    })
}
