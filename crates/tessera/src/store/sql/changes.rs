operations! {
    /// The newest change sequence number.
    pub async fn change_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
            .fetch_one(&self.pool)
            .await?)
    }

    /// What changed after `seq`: at most 10,000 entries, in order; call again until `seq` stops
    /// moving.
    pub async fn changes_since(&self, seq: i64) -> Result<ChangeBatch, StoreError> {
        // One statement a poll: up to 10,000 entries after `seq`, then the newest entry of the log
        // (pruning always keeps it), each half read from the index in order. Change numbers have
        // no holes (they are taken under the write lock, and a rollback gives its number back),
        // so the reader must reload everything when the first entry after `seq` is not `seq + 1`
        // (the log was pruned past it), or when the newest entry is older than `seq` (the
        // database went back in time: a restore, or a failover to a replica that had not seen
        // everything).
        let mut rows = sqlx::query(
            "SELECT * FROM (SELECT seq, entity, entity_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT 10000) AS next \
             UNION ALL \
             SELECT * FROM (SELECT seq, entity, entity_id FROM changes ORDER BY seq DESC LIMIT 1) AS newest",
        )
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        // The last row is the newest entry (when the log is not empty); the others follow `seq`.
        let newest = rows.pop().map(|r| r.try_get::<i64, _>("seq")).transpose()?;
        let mut batch = ChangeBatch {
            seq,
            ..Default::default()
        };
        match (rows.first(), newest) {
            (_, None) => {
                batch.gap = seq > 0;
                return Ok(batch);
            }
            (None, Some(newest)) => {
                batch.gap = newest != seq;
                return Ok(batch);
            }
            (Some(first), Some(_)) => {
                if first.try_get::<i64, _>("seq")? != seq + 1 {
                    batch.gap = true;
                    return Ok(batch);
                }
            }
        }
        for row in &rows {
            batch.seq = row.try_get("seq")?;
            let entity: String = row.try_get("entity")?;
            let id: String = row.try_get("entity_id")?;
            match entity.as_str() {
                "client" => {
                    if !batch.clients.contains(&id) {
                        batch.clients.push(id)
                    }
                }
                "revocation" => batch.revocations.push(id),
                "trust" => batch.trust = true,
                _ => batch.keys = true,
            }
        }
        Ok(batch)
    }

    /// Forgets change-log entries older than `age` (never the newest).
    pub async fn prune_changes(&self, age: std::time::Duration) -> Result<u64, StoreError> {
        let cutoff = now() - age.as_secs() as i64;
        let done = sqlx::query("DELETE FROM changes WHERE at <= $1 AND seq < (SELECT MAX(seq) FROM changes)")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
