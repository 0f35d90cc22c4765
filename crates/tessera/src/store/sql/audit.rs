operations! {
    /// Records an audit entry on its own (for changes that have no other write).
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        record_audit(&mut tx, entry, now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit events at or after `since`, oldest first, at most `limit`, after event id `after`.
    pub async fn audit_events(
        &self,
        since: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE at >= $1 AND id > $2 ORDER BY id LIMIT $3")
            .bind(since)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

fn audit_from_row(r: &DbRow) -> Result<AuditEvent, StoreError> {
    let details: String = r.try_get("details")?;
    Ok(AuditEvent {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        entry: AuditEntry {
            actor: r.try_get("actor")?,
            source: r.try_get("source")?,
            action: r.try_get("action")?,
            target: r.try_get("target")?,
            details: serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        },
    })
}

async fn record_audit(tx: &mut Tx, e: &AuditEntry, at: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, source, action, target, details) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(at)
    .bind(&e.actor)
    .bind(&e.source)
    .bind(&e.action)
    .bind(&e.target)
    .bind(e.details.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
