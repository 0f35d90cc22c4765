operations! {
    /// The schema version the store is at.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Reads a meta value.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every meta value (export).
    pub async fn all_meta(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT key, value FROM meta ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    /// Raises the numeric meta value `key` to at least `value`.
    pub async fn raise_meta(&self, key: &str, value: i64) -> Result<(), StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let current: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        if current
            .and_then(|c| c.parse::<i64>().ok())
            .is_none_or(|c| c < value)
        {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Engine {
    /// Applies the migrations this build knows and the store lacks, in one transaction, and
    /// refuses a store where a migration it applied has since changed (its recorded SHA-256
    /// differs from this build's file).
    async fn migrate(&self) -> Result<(), StoreError> {
        let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
        // Up to date (the usual case, and every CLI command): no lock taken, one read.
        if self.store_exists().await? && self.schema_version().await? == known {
            let recorded = sqlx::query("SELECT version, sha256 FROM schema_checksums")
                .fetch_all(&self.pool)
                .await?;
            return check_checksums(&recorded);
        }
        let mut tx = self.begin_migration().await?;
        if !self.store_exists().await? {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
        }
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?;
        if let Some(newer) = applied.iter().copied().filter(|v| *v > known).max() {
            return Err(StoreError::Unsupported(format!(
                "the store's schema is at version {newer}, newer than this Tessera knows ({known}); \
                 run a newer Tessera"
            )));
        }
        if applied.contains(&CHECKSUMS_SINCE) {
            let recorded = sqlx::query("SELECT version, sha256 FROM schema_checksums")
                .fetch_all(&mut *tx)
                .await?;
            check_checksums(&recorded)?;
        }
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        }
        // Every migration applied now has its checksum; those applied before checksums were
        // kept are recorded as this build has them.
        for (version, sql) in MIGRATIONS {
            sqlx::query("INSERT INTO schema_checksums (version, sha256) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING")
                .bind(version)
                .bind(migration_sha256(sql))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// The migration that started recording checksums.
const CHECKSUMS_SINCE: i64 = 8;

/// The SHA-256 of a migration file, hex.
fn migration_sha256(sql: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, sql.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses the store when a recorded checksum differs from this build's migration file.
fn check_checksums(recorded: &[DbRow]) -> Result<(), StoreError> {
    for row in recorded {
        let version: i64 = row.try_get("version")?;
        let sha256: String = row.try_get("sha256")?;
        let Some((_, sql)) = MIGRATIONS.iter().find(|(v, _)| *v == version) else {
            continue;
        };
        if migration_sha256(sql) != sha256 {
            return Err(StoreError::Unsupported(format!(
                "migration {version} was applied to this store from a different file than this \
                 Tessera's (checksum mismatch); run the Tessera build that applied it"
            )));
        }
    }
    Ok(())
}
