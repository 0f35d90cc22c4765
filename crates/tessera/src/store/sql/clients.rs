operations! {
    /// Inserts a client with its first secret. With `once_meta`, the insert happens only if that
    /// meta key did not exist yet (so of two racing nodes, one creates the client); returns
    /// whether the client was inserted.
    pub async fn insert_client(
        &self,
        client: &ClientRecord,
        once_meta: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        if let Some(key) = once_meta {
            let inserted =
                sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(&client.id)
                    .execute(&mut *tx)
                    .await?;
            if inserted.rows_affected() == 0 {
                return Ok(false);
            }
        }
        insert_client_row(&mut tx, client).await?;
        for secret in &client.secrets {
            insert_secret(&mut tx, &client.id, secret).await?;
        }
        record_change(&mut tx, "client", &client.id).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Reads client `id`, lets `change` edit it (its secrets too), and writes it back, all under
    /// the write lock so that concurrent edits (from any node) cannot lose each other. Returns `None` when the
    /// client does not exist.
    pub async fn modify_client<E: From<StoreError>>(
        &self,
        id: &str,
        audit: &AuditEntry,
        change: impl FnOnce(&mut ClientRecord) -> Result<(), E>,
    ) -> Result<Option<ClientRecord>, E> {
        let (mut tx, _write) = self.begin_write().await?;
        let Some(mut client) = load_client(&mut tx, id).await? else {
            return Ok(None);
        };
        let secrets_before = client.secrets.clone();
        change(&mut client)?;
        client.updated_at = now();
        if client.secrets != secrets_before {
            sqlx::query("DELETE FROM client_secrets WHERE client_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            for secret in &client.secrets {
                insert_secret(&mut tx, id, secret).await?;
            }
        }
        sqlx::query(
            "UPDATE clients SET name = $1, scopes = $2, audiences = $3, token_ttl = $4, enabled = $5, \
             updated_at = $6, can_introspect = $7, tokens_revoked_before = $8, claims = $10, flows = $11, \
             registration = $12, name_key = $13 WHERE id = $9",
        )
        .bind(&client.name)
        .bind(client.scopes.join(" "))
        .bind(audiences_json(&client.audiences))
        .bind(i64::from(client.token_ttl))
        .bind(client.enabled)
        .bind(client.updated_at)
        .bind(client.can_introspect)
        .bind(client.tokens_revoked_before)
        .bind(&client.id)
        .bind(claims_json(&client.claims))
        .bind(flows_json(&client.flows))
        .bind(registration_json(client.registration.as_ref()))
        .bind(crate::model::client::name_key(&client.name))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        record_change(&mut tx, "client", &client.id).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(client))
    }

    /// Adds `secret` to client `id` at time `at` (or later: the store's time once it holds the
    /// write lock) and makes every other secret expire at `others_expire_at` (unless it expires
    /// sooner); secrets expired by then are dropped.
    /// Returns the client, or `None` when it does not exist.
    pub async fn rotate_secret(
        &self,
        id: &str,
        secret: &SecretRecord,
        others_expire_at: i64,
        at: i64,
        audit: &AuditEntry,
    ) -> Result<Option<ClientRecord>, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        if load_client(&mut tx, id).await?.is_none() {
            return Ok(None);
        }
        // The operation's time, or the store's if that is later (time spent waiting for the
        // write lock): what expired by then is dropped.
        let t = at.max(now());
        sqlx::query(
            "DELETE FROM client_secrets WHERE client_id = $1 AND expires_at IS NOT NULL AND expires_at <= $2",
        )
        .bind(id)
        .bind(t)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE client_secrets SET expires_at = $1 WHERE client_id = $2 AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(others_expire_at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        insert_secret(&mut tx, id, secret).await?;
        sqlx::query("UPDATE clients SET updated_at = $1 WHERE id = $2")
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record_change(&mut tx, "client", id).await?;
        record_audit(&mut tx, audit, t).await?;
        let client = load_client(&mut tx, id).await?;
        tx.commit().await?;
        Ok(client)
    }

    /// Deletes a client and its secrets. Returns false when it did not exist.
    pub async fn delete_client(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Its trust policies went with it (ON DELETE CASCADE); a node that still holds them
        // until its next reload finds no client to map a token to.
        record_change(&mut tx, "client", id).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One client with its secrets.
    pub async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_client(&mut conn, id).await
    }

    /// Every client, ordered by creation time.
    pub async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        let secrets = sqlx::query("SELECT * FROM client_secrets ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        with_secrets(&rows, &secrets)
    }

    /// Streams every client with its secrets to `sink`, one at a time, so that loading a large
    /// registry never holds all rows in memory at once.
    pub async fn for_each_client(&self, sink: impl FnMut(ClientRecord)) -> Result<u64, StoreError> {
        let mut tx = self.begin_bulk().await?;
        let count = stream_clients(&mut tx, sink).await?;
        tx.commit().await?;
        Ok(count)
    }

    /// A page of clients ordered by id, starting after `after`.
    pub async fn clients_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        self.with_their_secrets(&rows).await
    }

    /// A page of clients by name (ASCII case aside), whose name starts with `prefix`, ordered
    /// by name then id, after the (name key, id) `after`: one range of one index.
    pub async fn clients_by_name(
        &self,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let key = crate::model::client::name_key(prefix);
        let (after_key, after_id) = after.unwrap_or(("", ""));
        let rows = sqlx::query(
            "SELECT * FROM clients WHERE name_key >= $1 AND name_key < $2 \
             AND (name_key > $3 OR id > $4) ORDER BY name_key, id LIMIT $5",
        )
        // One lower bound, the later of the prefix and the cursor: both engines then start the
        // index range there.
        .bind(std::cmp::max(key.as_str(), after_key))
        .bind(format!("{key}\u{10FFFF}"))
        .bind(after_key)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        self.with_their_secrets(&rows).await
    }

    /// Up to `limit` clients whose id starts with `prefix`, ordered by id.
    pub async fn clients_by_id_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3")
            .bind(prefix)
            .bind(format!("{prefix}\u{10FFFF}"))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        self.with_their_secrets(&rows).await
    }

    /// The longest token lifetime any client has.
    pub async fn max_token_ttl(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(token_ttl), 0) FROM clients")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

/// Streams every client with its secrets to `sink`, one at a time.
async fn stream_clients(conn: &mut Conn, mut sink: impl FnMut(ClientRecord)) -> Result<u64, StoreError> {
    let mut rows = sqlx::query(
        "SELECT c.*, s.id AS s_id, s.kind AS s_kind, s.hash AS s_hash, s.created_at AS s_created_at, \
         s.expires_at AS s_expires_at FROM clients c LEFT JOIN client_secrets s ON s.client_id = c.id \
         ORDER BY c.id, s.created_at, s.id",
    )
    .fetch(&mut *conn);
    let mut current: Option<ClientRecord> = None;
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        let id: String = row.try_get("id")?;
        if current.as_ref().is_none_or(|c| c.id != id) {
            if let Some(done) = current.take() {
                sink(done);
                count += 1;
            }
            current = Some(client_from_row(&row)?);
        }
        let secret_id: Option<String> = row.try_get("s_id")?;
        if let (Some(sid), Some(c)) = (secret_id, current.as_mut()) {
            let kind: String = row.try_get("s_kind")?;
            c.secrets.push(SecretRecord {
                id: sid,
                kind: SecretKind::parse(&kind).map_err(StoreError::Corrupt)?,
                hash: row.try_get("s_hash")?,
                created_at: row.try_get("s_created_at")?,
                expires_at: row.try_get("s_expires_at")?,
            });
        }
    }
    if let Some(done) = current.take() {
        sink(done);
        count += 1;
    }
    Ok(count)
}

async fn load_client(conn: &mut Conn, id: &str) -> Result<Option<ClientRecord>, StoreError> {
    let row = sqlx::query("SELECT * FROM clients WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut client = client_from_row(&row)?;
    let rows = sqlx::query("SELECT * FROM client_secrets WHERE client_id = $1 ORDER BY created_at, id")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    client.secrets = rows.iter().map(secret_from_row).collect::<Result<_, _>>()?;
    Ok(Some(client))
}

async fn insert_client_row(tx: &mut Tx, client: &ClientRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO clients (id, name, scopes, audiences, token_ttl, enabled, created_at, updated_at, \
         can_introspect, tokens_revoked_before, claims, flows, registration, name_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&client.id)
    .bind(&client.name)
    .bind(client.scopes.join(" "))
    .bind(audiences_json(&client.audiences))
    .bind(i64::from(client.token_ttl))
    .bind(client.enabled)
    .bind(client.created_at)
    .bind(client.updated_at)
    .bind(client.can_introspect)
    .bind(client.tokens_revoked_before)
    .bind(claims_json(&client.claims))
    .bind(flows_json(&client.flows))
    .bind(registration_json(client.registration.as_ref()))
    .bind(crate::model::client::name_key(&client.name))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn registration_json(registration: Option<&crate::model::registration::Registration>) -> Option<String> {
    registration.and_then(|r| serde_json::to_string(r).ok())
}

fn flows_json(flows: &crate::model::flows::Flows) -> String {
    serde_json::to_string(flows).unwrap_or_else(|_| "{}".into())
}

async fn insert_secret(tx: &mut Tx, client_id: &str, secret: &SecretRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO client_secrets (id, client_id, kind, hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&secret.id)
    .bind(client_id)
    .bind(secret.kind.as_str())
    .bind(&secret.hash)
    .bind(secret.created_at)
    .bind(secret.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn with_secrets(rows: &[DbRow], secrets: &[DbRow]) -> Result<Vec<ClientRecord>, StoreError> {
    let mut clients: Vec<ClientRecord> = rows.iter().map(client_from_row).collect::<Result<_, _>>()?;
    let by_id: std::collections::HashMap<String, usize> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    for row in secrets {
        let client_id: String = row.try_get("client_id")?;
        if let Some(&i) = by_id.get(&client_id) {
            clients[i].secrets.push(secret_from_row(row)?);
        }
    }
    Ok(clients)
}

fn claims_json(claims: &crate::claims::Claims) -> String {
    serde_json::Value::Object(claims.clone()).to_string()
}

fn audiences_json(audiences: &[String]) -> String {
    serde_json::Value::from(audiences.to_vec()).to_string()
}

fn client_from_row(row: &DbRow) -> Result<ClientRecord, StoreError> {
    let scopes: String = row.try_get("scopes")?;
    let audiences: String = row.try_get("audiences")?;
    let token_ttl: i64 = row.try_get("token_ttl")?;
    let claims: String = row.try_get("claims")?;
    let flows: String = row.try_get("flows")?;
    let registration: Option<String> = row.try_get("registration")?;
    Ok(ClientRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scopes: scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        audiences: serde_json::from_str(&audiences).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        token_ttl: u32::try_from(token_ttl).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        can_introspect: row.try_get("can_introspect")?,
        tokens_revoked_before: row.try_get("tokens_revoked_before")?,
        claims: serde_json::from_str(&claims).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        flows: serde_json::from_str(&flows).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        secrets: Vec::new(),
        registration: registration
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

fn secret_from_row(row: &DbRow) -> Result<SecretRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(SecretRecord {
        id: row.try_get("id")?,
        kind: SecretKind::parse(&kind).map_err(StoreError::Corrupt)?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl Engine {
    /// The clients of `rows`, each with its secrets.
    async fn with_their_secrets(&self, rows: &[DbRow]) -> Result<Vec<ClientRecord>, StoreError> {
        let mut clients = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            let secrets =
                sqlx::query("SELECT * FROM client_secrets WHERE client_id = $1 ORDER BY created_at, id")
                    .bind(&id)
                    .fetch_all(&self.pool)
                    .await?;
            clients.extend(with_secrets(std::slice::from_ref(row), &secrets)?);
        }
        Ok(clients)
    }
}
