operations! {
    /// Stores a new trust policy; `false` when its client does not exist.
    pub async fn insert_trust_policy(&self, policy: &TrustPolicy, audit: &AuditEntry) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        if load_client(&mut tx, &policy.client_id).await?.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO trust_policies (id, client_id, issuer, policy_json, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&policy.id)
        .bind(&policy.client_id)
        .bind(&policy.issuer)
        .bind(trust_json(policy))
        .bind(policy.created_at)
        .bind(policy.updated_at)
        .execute(&mut *tx)
        .await?;
        record_change(&mut tx, "trust", &policy.id).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every trust policy, oldest first.
    pub async fn trust_policies(&self) -> Result<Vec<TrustPolicy>, StoreError> {
        let rows = sqlx::query("SELECT policy_json FROM trust_policies ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(trust_row).collect()
    }

    /// The trust policy `id`.
    pub async fn trust_policy(&self, id: &str) -> Result<Option<TrustPolicy>, StoreError> {
        let row = sqlx::query("SELECT policy_json FROM trust_policies WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(trust_row).transpose()
    }

    /// Reads trust policy `id`, lets `change` edit it, and writes it back under the write lock.
    /// `None` when there is no such policy, or when its (new) client does not exist.
    pub async fn modify_trust_policy<E: From<StoreError>>(
        &self,
        id: &str,
        audit: &AuditEntry,
        change: impl FnOnce(&mut TrustPolicy) -> Result<(), E>,
    ) -> Result<Option<TrustPolicy>, E> {
        let (mut tx, _write) = self.begin_write().await?;
        let row = sqlx::query("SELECT policy_json FROM trust_policies WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let Some(mut policy) = row.as_ref().map(trust_row).transpose()? else {
            return Ok(None);
        };
        change(&mut policy)?;
        if load_client(&mut tx, &policy.client_id).await?.is_none() {
            return Ok(None);
        }
        policy.updated_at = policy.updated_at.max(now());
        sqlx::query(
            "UPDATE trust_policies SET client_id = $1, issuer = $2, policy_json = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&policy.client_id)
        .bind(&policy.issuer)
        .bind(trust_json(&policy))
        .bind(policy.updated_at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        record_change(&mut tx, "trust", id).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(policy))
    }

    /// Deletes trust policy `id`; `false` when there was none.
    pub async fn delete_trust_policy(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM trust_policies WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        record_change(&mut tx, "trust", id).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }
}

fn trust_json(policy: &TrustPolicy) -> String {
    serde_json::to_string(policy).unwrap_or_else(|_| "{}".into())
}

fn trust_row(row: &DbRow) -> Result<TrustPolicy, StoreError> {
    let json: String = row.try_get("policy_json")?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("trust policy: {e}")))
}
