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

    /// Forgets used assertions that have expired (they are refused for their expiry anyway).
    pub async fn prune_assertions(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM used_assertions WHERE expires_at <= $1")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
