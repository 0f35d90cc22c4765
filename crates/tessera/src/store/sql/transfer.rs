operations! {
    /// Whether the store holds no client, no user and no key (import refuses anything else).
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        holds_nothing(&mut conn).await
    }

    /// Writes `records` exactly as they are (ids, times, hashes, sealed keys), in one
    /// transaction, refusing a store that is not empty. Every node then reloads.
    pub async fn import(&self, records: &[Record]) -> Result<(), StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        if !holds_nothing(&mut tx).await? {
            return Err(StoreError::Unsupported(
                "the target store already holds clients, users or keys; import into an empty store".into(),
            ));
        }
        for record in records {
            match record {
                Record::Client(c) => {
                    insert_client_row(&mut tx, c).await?;
                    for s in &c.secrets {
                        insert_secret(&mut tx, &c.id, s).await?;
                    }
                    record_change(&mut tx, "client", &c.id).await?;
                }
                Record::Key(k) => insert_key(&mut tx, k).await?,
                Record::User(u) => write_user(&mut tx, u, true).await?,
                Record::Revocation {
                    jti,
                    client_id,
                    expires_at,
                    revoked_at,
                } => {
                    sqlx::query(
                        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
                    )
                    .bind(jti)
                    .bind(client_id)
                    .bind(expires_at)
                    .bind(revoked_at)
                    .execute(&mut *tx)
                    .await?;
                    record_change(&mut tx, "revocation", jti).await?;
                }
                Record::Audit { at, entry } => record_audit(&mut tx, entry, *at).await?,
                Record::Trust(p) => {
                    sqlx::query(
                        "INSERT INTO trust_policies (id, client_id, issuer, policy_json, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&p.id)
                    .bind(&p.client_id)
                    .bind(&p.issuer)
                    .bind(trust_json(p))
                    .bind(p.created_at)
                    .bind(p.updated_at)
                    .execute(&mut *tx)
                    .await?;
                    record_change(&mut tx, "trust", &p.id).await?;
                }
                Record::Meta { key, value } => {
                    sqlx::query(
                        "INSERT INTO meta (key, value) VALUES ($1, $2) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Streams everything the store holds to `sink`, read in one snapshot (export).
    // Streams everything the store holds to `sink`, read in one snapshot.
    pub async fn export(&self, sink: impl FnMut(Record)) -> Result<u64, StoreError> {
        let mut sink = sink;
        let mut tx = self.begin_snapshot().await?;
        let mut count = 0u64;
        let mut emit = |r: Record| {
            count += 1;
            sink(r)
        };
        for (key, value) in sqlx::query("SELECT key, value FROM meta ORDER BY key")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok::<_, StoreError>((r.try_get("key")?, r.try_get("value")?)))
            .collect::<Result<Vec<(String, String)>, _>>()?
        {
            emit(Record::Meta { key, value });
        }
        stream_clients(&mut tx, |c| emit(Record::Client(c))).await?;
        for row in sqlx::query("SELECT policy_json FROM trust_policies ORDER BY created_at, id")
            .fetch_all(&mut *tx)
            .await?
        {
            emit(Record::Trust(trust_row(&row)?));
        }
        {
            let mut rows = sqlx::query("SELECT * FROM users ORDER BY id").fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                emit(Record::User(user_from_row(&r)?));
            }
        }
        for row in sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, created_at, kid")
            .fetch_all(&mut *tx)
            .await?
        {
            emit(Record::Key(key_from_row(&row)?));
        }
        {
            let mut rows = sqlx::query(
                "SELECT jti, client_id, expires_at, revoked_at FROM revoked_tokens ORDER BY expires_at, jti",
            )
            .fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                emit(Record::Revocation {
                    jti: r.try_get("jti")?,
                    client_id: r.try_get("client_id")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                });
            }
        }
        {
            let mut rows = sqlx::query("SELECT * FROM audit_events ORDER BY id").fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                let event = audit_from_row(&r)?;
                emit(Record::Audit {
                    at: event.at,
                    entry: event.entry,
                });
            }
        }
        tx.commit().await?;
        Ok(count)
    }
}
