operations! {
    /// Records that the assertion `id` (a digest naming its issuer, client and `jti`) is used
    /// until `expires_at`: `true` the first time, `false` when it was used already and had not
    /// expired `at` (the node's time). One statement, so two nodes racing with the same
    /// assertion cannot both win.
    pub async fn use_assertion(&self, id: &str, expires_at: i64, at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO used_assertions (id, expires_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE used_assertions.expires_at <= $3",
        )
        .bind(id)
        .bind(expires_at)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// [`Store::use_assertion`] for several at once, in one statement (what
    /// `crate::replay::Ledger` sends under load): whether each of `batch` (an id and until
    /// when) was new, in order. An id twice in the batch is new once, at its first place.
    pub async fn use_assertions(&self, batch: &[(String, i64)], at: i64) -> Result<Vec<bool>, StoreError> {
        let mut unique: Vec<&(String, i64)> = Vec::with_capacity(batch.len());
        for entry in batch {
            if !unique.iter().any(|u| u.0 == entry.0) {
                unique.push(entry);
            }
        }
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::QueryBuilder::<Db>::new("INSERT INTO used_assertions (id, expires_at) ");
        query.push_values(unique.iter(), |mut row, (id, expires_at)| {
            row.push_bind(id.as_str()).push_bind(*expires_at);
        });
        query.push(
            " ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE used_assertions.expires_at <= ",
        );
        query.push_bind(at);
        query.push(" RETURNING id");
        let won: Vec<(String,)> = query.build_query_as().fetch_all(&self.pool).await?;
        let mut claimed = std::collections::HashSet::new();
        Ok(batch
            .iter()
            .map(|(id, _)| won.iter().any(|(w,)| w == id) && claimed.insert(id.as_str()))
            .collect())
    }

    /// Forgets used assertions that have expired (they are refused for their expiry anyway).
    pub async fn prune_assertions(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM used_assertions WHERE expires_at <= $1")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
