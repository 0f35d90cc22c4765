operations! {
    /// Inserts a signing key when the store has no live key (first start). Returns whether it
    /// did: of any number of nodes starting at once, exactly one does.
    pub async fn insert_first_key(
        &self,
        key: &KeyRecord,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM signing_keys WHERE (retired_at IS NULL OR retired_at > $1) AND purpose = $2",
        )
        .bind(now())
        .bind(key.purpose.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if live > 0 {
            return Ok(false);
        }
        insert_key(&mut tx, key).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds `key`, activating `lead` seconds from now, and schedules every key without a
    /// retirement time to leave the JWKS `tail` seconds after that. Both times are taken inside
    /// the write transaction. With `unless_replaced` (the kid and creation time of the newest key
    /// the caller saw), nothing happens when a key newer than that one, in (creation time, kid)
    /// order, exists: another node rotated first. Returns the retirement time of the replaced keys, or `None`
    /// when nothing happened. Refused with [`StoreError::Limit`] while [`MAX_PENDING_KEYS`](super::MAX_PENDING_KEYS) keys
    /// wait to activate: each rotation publishes a key, and rotating in a loop would otherwise
    /// grow every verifier's JWKS without bound. `sealed_under` is the sealing master key the
    /// store named when the key was sealed; [`StoreError::Conflict`] if it names another now.
    pub async fn rotate_key(
        &self,
        key: &mut KeyRecord,
        lead: i64,
        tail: i64,
        unless_replaced: Option<(&str, i64)>,
        sealed_under: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<Option<i64>, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        if let Some((kid, created_at)) = unless_replaced {
            let newer: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM signing_keys \
                 WHERE (created_at > $1 OR (created_at = $1 AND kid > $2)) AND purpose = $3",
            )
            .bind(created_at)
            .bind(kid)
            .bind(key.purpose.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if newer > 0 {
                return Ok(None);
            }
        }
        // The key was sealed under the master key the store named when it was made; if the store
        // has moved to another since (rotate-master ran meanwhile), refuse rather than store a
        // key that the nodes may soon be unable to open.
        let sealing: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(super::SEALING_KEY_META)
            .fetch_optional(&mut *tx)
            .await?;
        if sealing.as_deref() != sealed_under {
            return Err(StoreError::Conflict(
                "the master key changed while a signing key was being made; rotate again".into(),
            ));
        }
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys WHERE activates_at > $1 AND purpose = $2")
                .bind(now())
                .bind(key.purpose.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if pending >= super::MAX_PENDING_KEYS {
            return Err(StoreError::Limit(format!(
                "{pending} signing keys are already waiting to activate; rotate again after the next one does"
            )));
        }
        key.created_at = now();
        key.activates_at = key.created_at + lead;
        let retire_at = key.activates_at + tail;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND purpose = $2")
            .bind(retire_at)
            .bind(key.purpose.as_str())
            .execute(&mut *tx)
            .await?;
        insert_key(&mut tx, key).await?;
        record_audit(&mut tx, audit, key.created_at).await?;
        tx.commit().await?;
        Ok(Some(retire_at))
    }

    /// Replaces the sealed private key of each `(kid, sealed)` (keys that are gone are skipped)
    /// and sets meta `meta_key` to `meta_value`, in one transaction recorded as a key change.
    pub async fn reseal_keys(
        &self,
        sealed: &[(String, Vec<u8>)],
        meta_key: &str,
        meta_value: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        // Every key must be in the batch: a key added since it was read (a rotation on another
        // node) would stay sealed under the old master key.
        let mut stored: Vec<String> = sqlx::query_scalar("SELECT kid FROM signing_keys")
            .fetch_all(&mut *tx)
            .await?;
        let mut given: Vec<String> = sealed.iter().map(|(k, _)| k.clone()).collect();
        stored.sort();
        given.sort();
        if stored != given {
            return Err(StoreError::Conflict(
                "the signing keys changed while they were being sealed again; run the command again".into(),
            ));
        }
        for (kid, blob) in sealed {
            let done = sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2")
                .bind(blob.as_slice())
                .bind(kid)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() > 0 {
                record_change(&mut tx, "key", kid).await?;
            }
        }
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(meta_key)
            .bind(meta_value)
            .execute(&mut *tx)
            .await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Signing keys still published at `at`, oldest first.
    pub async fn live_keys(&self, at: i64) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 \
             ORDER BY activates_at, created_at, kid",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Every signing key, retired ones included, oldest first.
    pub async fn all_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Deletes keys retired for longer than `age`, private parts and all.
    pub async fn prune_retired_keys(&self, age: std::time::Duration) -> Result<u64, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let cutoff = now() - age.as_secs() as i64;
        let rows =
            sqlx::query("SELECT kid FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at <= $1")
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?;
        for row in &rows {
            let kid: String = row.try_get("kid")?;
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(&kid)
                .execute(&mut *tx)
                .await?;
            record_change(&mut tx, "key", &kid).await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }
}

async fn insert_key(tx: &mut Tx, key: &KeyRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, activates_at, retired_at, \
         purpose) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&key.kid)
    .bind(&key.alg)
    .bind(&key.sealed_private_key)
    .bind(&key.public_jwk)
    .bind(key.created_at)
    .bind(key.activates_at)
    .bind(key.retired_at)
    .bind(key.purpose.as_str())
    .execute(&mut **tx)
    .await?;
    record_change(tx, "key", &key.kid).await
}

fn key_from_row(r: &DbRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        kid: r.try_get("kid")?,
        alg: r.try_get("alg")?,
        sealed_private_key: r.try_get("private_key")?,
        public_jwk: r.try_get("public_jwk")?,
        created_at: r.try_get("created_at")?,
        activates_at: r.try_get("activates_at")?,
        retired_at: r.try_get("retired_at")?,
        purpose: KeyPurpose::parse(r.try_get("purpose")?).map_err(StoreError::Corrupt)?,
    })
}
