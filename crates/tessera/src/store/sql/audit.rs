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

    /// Audit events newest first, below event id `before` (`None`: from the newest), at most
    /// `limit`, matching `filter`. The time range becomes a range of ids first (two reads of
    /// the time index, widened by five minutes for clocks that differ between nodes), so no
    /// page reads more of the trail than it shows, however long it is; an exact filter on who,
    /// what or which uses its own index.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        // Ids follow commit order, times each node's clock: the id range is taken with
        // `CLOCK_SLACK` to spare on each side, and the exact time filter applies within it.
        const CLOCK_SLACK: i64 = 300;
        let mut upper = before.map_or(i64::MAX, |b| b.saturating_sub(1));
        let mut lower = 0;
        if let Some(until) = filter.until {
            let last: Option<i64> =
                sqlx::query_scalar("SELECT id FROM audit_events WHERE at <= $1 ORDER BY at DESC, id DESC LIMIT 1")
                    .bind(until.saturating_add(CLOCK_SLACK))
                    .fetch_optional(&self.pool)
                    .await?;
            upper = upper.min(last.unwrap_or(0));
        }
        if let Some(since) = filter.since {
            let first: Option<i64> =
                sqlx::query_scalar("SELECT id FROM audit_events WHERE at >= $1 ORDER BY at, id LIMIT 1")
                    .bind(since.saturating_sub(CLOCK_SLACK))
                    .fetch_optional(&self.pool)
                    .await?;
            lower = first.unwrap_or(i64::MAX);
        }
        if upper < lower {
            return Ok(Vec::new());
        }
        let mut sql = String::from("SELECT * FROM audit_events WHERE id <= $1 AND id >= $2 AND at >= $3 AND at <= $4");
        let mut n = 4;
        let mut exact = Vec::new();
        for (column, value) in [
            ("actor", &filter.actor),
            ("action", &filter.action),
            ("target", &filter.target),
        ] {
            if let Some(v) = value {
                n += 1;
                sql.push_str(&format!(" AND {column} = ${n}"));
                exact.push(v.as_str());
            }
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", n + 1));
        let mut q = sqlx::query(&sql)
            .bind(upper)
            .bind(lower)
            .bind(filter.since.unwrap_or(i64::MIN))
            .bind(filter.until.unwrap_or(i64::MAX));
        for v in exact {
            q = q.bind(v);
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await?;
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
