operations! {
    /// Stores a self-registered client, if the cluster holds fewer than `cap` of them and, with
    /// `initial_token` (the SHA-256 of an initial access token), that token has a use left at
    /// `at`, which it spends. One transaction: a token is spent only by a stored client.
    pub async fn register_client(
        &self,
        client: &ClientRecord,
        cap: u64,
        initial_token: Option<&str>,
        at: i64,
        audit: &AuditEntry,
    ) -> Result<Registered, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        if let Some(hash) = initial_token {
            let spent = sqlx::query(
                "UPDATE registration_tokens SET uses_left = uses_left - 1 \
                 WHERE hash = $1 AND expires_at > $2 AND uses_left > 0",
            )
            .bind(hash)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            if spent.rows_affected() == 0 {
                return Ok(Registered::TokenRefused);
            }
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients WHERE registration IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?;
        if u64::try_from(count).unwrap_or(u64::MAX) >= cap {
            return Ok(Registered::Full);
        }
        insert_client_row(&mut tx, client).await?;
        for secret in &client.secrets {
            insert_secret(&mut tx, &client.id, secret).await?;
        }
        record_change(&mut tx, "client", &client.id).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(Registered::Stored)
    }

    /// The unexpired initial access token whose value hashes to `hash`, with uses left.
    pub async fn initial_token(&self, hash: &str, at: i64) -> Result<Option<InitialToken>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM registration_tokens WHERE hash = $1 AND expires_at > $2 AND uses_left > 0",
        )
        .bind(hash)
        .bind(at)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(initial_token_from_row).transpose()
    }

    /// Stores an initial access token.
    pub async fn insert_initial_token(&self, token: &InitialToken, audit: &AuditEntry) -> Result<(), StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO registration_tokens (id, hash, note, created_at, expires_at, uses_left) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.hash)
        .bind(&token.note)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.uses_left)
        .execute(&mut *tx)
        .await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every initial access token, newest first (used up and expired ones too, until pruned).
    pub async fn initial_tokens(&self) -> Result<Vec<InitialToken>, StoreError> {
        let rows = sqlx::query("SELECT * FROM registration_tokens ORDER BY created_at DESC, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(initial_token_from_row).collect()
    }

    /// Deletes initial access token `id`; false when there was none.
    pub async fn delete_initial_token(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM registration_tokens WHERE id = $1")
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

    /// Deletes up to `limit` self-registered clients made before `cutoff` that sign people in
    /// and never did: enabled (a disabled one is an operator's decision, kept so that its
    /// metadata document cannot bring it back), not approved, registered for the authorization
    /// code grant, and without a consent, an authorization code or a refresh token. (A machine
    /// client's use leaves no trace in the store, so it is never taken for abandoned.) Initial
    /// access tokens that expired before `cutoff` go too. Returns the deleted clients.
    pub async fn prune_registrations(
        &self,
        cutoff: i64,
        limit: u32,
        audit: &AuditEntry,
    ) -> Result<Vec<String>, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        sqlx::query("DELETE FROM registration_tokens WHERE expires_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT id FROM clients c WHERE registration IS NOT NULL AND created_at < $1 AND enabled \
             AND registration NOT LIKE '%\"approved\":true%' AND flows LIKE '%\"authorization_code\"%' \
             AND NOT EXISTS (SELECT 1 FROM consents WHERE client_id = c.id) \
             AND NOT EXISTS (SELECT 1 FROM authorization_codes WHERE client_id = c.id) \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE client_id = c.id) \
             ORDER BY created_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut pruned = Vec::new();
        for row in &rows {
            let id: String = row.try_get("id")?;
            sqlx::query("DELETE FROM clients WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            record_change(&mut tx, "client", &id).await?;
            let mut entry = audit.clone();
            entry.target.clone_from(&id);
            record_audit(&mut tx, &entry, now()).await?;
            pruned.push(id);
        }
        tx.commit().await?;
        Ok(pruned)
    }
}

fn initial_token_from_row(row: &DbRow) -> Result<InitialToken, StoreError> {
    Ok(InitialToken {
        id: row.try_get("id")?,
        hash: row.try_get("hash")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        uses_left: row.try_get("uses_left")?,
    })
}
