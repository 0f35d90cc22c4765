operations! {
    /// Streams the revoked token ids that have not expired yet, with their expiry, into `sink`,
    /// so a node never holds all rows in memory at once.
    pub async fn for_each_revoked(&self, sink: impl FnMut(&str, i64)) -> Result<u64, StoreError> {
        let mut sink = sink;
        let mut tx = self.begin_bulk().await?;
        let mut count = 0;
        {
            let mut rows = sqlx::query("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > $1")
                .bind(now())
                .fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                let jti: &str = r.try_get("jti")?;
                sink(jti, r.try_get("expires_at")?);
                count += 1;
            }
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Those of `ids` that are revoked and not expired yet, with their expiry.
    pub async fn revoked_tokens(&self, ids: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        let t = now();
        let mut out = Vec::new();
        for jti in ids {
            let row = sqlx::query("SELECT expires_at FROM revoked_tokens WHERE jti = $1 AND expires_at > $2")
                .bind(jti)
                .bind(t)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(r) = row {
                out.push((jti.clone(), r.try_get("expires_at")?));
            }
        }
        Ok(out)
    }

    /// Forgets revocations of tokens that have expired anyway.
    pub async fn prune_revocations(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

impl Engine {
    pub(super) async fn revoke_token(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        cap: u32,
    ) -> Result<(), StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        if cap < u32::MAX {
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM revoked_tokens WHERE client_id = $1 AND expires_at > $2 AND jti <> $3",
            )
            .bind(client_id)
            .bind(now())
            .bind(jti)
            .fetch_one(&mut *tx)
            .await?;
            if held >= i64::from(cap) {
                return Err(StoreError::Limit(format!(
                    "client holds {held} revoked tokens that have not expired, the most allowed"
                )));
            }
        }
        revoke_in(&mut tx, jti, client_id, expires_at).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Records `jti` as revoked (idempotent), with a change-log entry so every node learns of it.
async fn revoke_in(tx: &mut Tx, jti: &str, client_id: &str, expires_at: i64) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(client_id)
    .bind(expires_at)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() > 0 {
        record_change(tx, "revocation", jti).await?;
    }
    Ok(())
}
