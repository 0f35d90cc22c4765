// The store's operations, written once and compiled once per engine.
//
// This file is not a module: `sqlite.rs` and `postgres.rs` each `include!` it after defining
// `Db` (the sqlx database), `Engine { pool }`, and the few functions whose SQL differs:
// `Engine::begin_write` (take the store's write lock), `Engine::begin_migration`,
// `Engine::store_exists`, and `record_change` (number a change under that lock). Everything
// here uses SQL both dialects accept: `$N` placeholders, `ON CONFLICT`, `COALESCE`, `LIMIT`.

use futures_util::TryStreamExt;
use sqlx::Row;

use super::{
    AuditEntry, AuditEvent, ChangeBatch, ClientRecord, CodeRecord, Grant, Issued, KeyPurpose, KeyRecord,
    Redemption, Refresh, Record, RefreshRecord, SecretKind, SecretRecord, SessionRecord, SignInsEnded, UserRecord, now,
};

type Conn = <Db as sqlx::Database>::Connection;
type DbRow = <Db as sqlx::Database>::Row;
type Tx = sqlx::Transaction<'static, Db>;
/// A node's turn to write, held for the whole write transaction.
type WritePermit = tokio::sync::OwnedSemaphorePermit;

impl Engine {
    /// Waits for this node's turn to write (see `CONCURRENT_WRITES`).
    async fn write_permit(&self) -> Result<WritePermit, StoreError> {
        match tokio::time::timeout(WRITE_QUEUE_TIMEOUT, self.writers.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(StoreError::Unavailable("the store is closed".into())),
            Err(_) => Err(StoreError::Unavailable(
                "timed out waiting for other writes of this node".into(),
            )),
        }
    }
}

impl Engine {
    /// Applies the migrations this build knows and the store lacks, in one transaction.
    async fn migrate(&self) -> Result<(), StoreError> {
        let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
        // Up to date (the usual case, and every CLI command): no lock taken.
        if self.store_exists().await? && self.schema_version().await? == known {
            return Ok(());
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
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub(super) async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub(super) async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub(super) async fn all_meta(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT key, value FROM meta ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    pub(super) async fn insert_client(
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

    pub(super) async fn modify_client<E: From<StoreError>>(
        &self,
        id: &str,
        audit: &AuditEntry,
        change: impl FnOnce(&mut ClientRecord) -> Result<(), E>,
    ) -> Result<Option<ClientRecord>, E> {
        let (mut tx, _write) = self.begin_write().await?;
        let Some(mut client) = load_client(&mut tx, id).await? else {
            return Ok(None);
        };
        change(&mut client)?;
        client.updated_at = now();
        sqlx::query(
            "UPDATE clients SET name = $1, scopes = $2, audiences = $3, token_ttl = $4, enabled = $5, \
             updated_at = $6, can_introspect = $7, tokens_revoked_before = $8, claims = $10, flows = $11 \
             WHERE id = $9",
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
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        record_change(&mut tx, "client", &client.id).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(client))
    }

    pub(super) async fn rotate_secret(
        &self,
        id: &str,
        secret: &SecretRecord,
        others_expire_at: i64,
        audit: &AuditEntry,
    ) -> Result<Option<ClientRecord>, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        if load_client(&mut tx, id).await?.is_none() {
            return Ok(None);
        }
        let t = now();
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

    pub(super) async fn delete_client(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        record_change(&mut tx, "client", id).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_client(&mut conn, id).await
    }

    pub(super) async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        let secrets = sqlx::query("SELECT * FROM client_secrets ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        with_secrets(&rows, &secrets)
    }

    pub(super) async fn for_each_client(&self, sink: impl FnMut(ClientRecord)) -> Result<u64, StoreError> {
        let mut tx = self.begin_bulk().await?;
        let count = stream_clients(&mut tx, sink).await?;
        tx.commit().await?;
        Ok(count)
    }

    pub(super) async fn clients_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut clients = Vec::with_capacity(rows.len());
        for row in &rows {
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

    pub(super) async fn insert_user(
        &self,
        user: &UserRecord,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email_key = $1 OR id = $2")
            .bind(super::email_key(&user.email))
            .bind(&user.id)
            .fetch_one(&mut *tx)
            .await?;
        if taken > 0 {
            return Ok(false);
        }
        write_user(&mut tx, user, true).await?;
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub(super) async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE email_key = $1")
            .bind(super::email_key(email))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub(super) async fn users_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub(super) async fn modify_user<E: From<StoreError>>(
        &self,
        id: &str,
        audit: &AuditEntry,
        end_sign_ins: bool,
        change: impl FnOnce(&mut UserRecord) -> Result<(), E>,
    ) -> Result<Option<(UserRecord, SignInsEnded)>, E> {
        let (mut tx, _write) = self.begin_write().await?;
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let Some(mut user) = row.as_ref().map(user_from_row).transpose()? else {
            return Ok(None);
        };
        change(&mut user)?;
        user.id = id.to_string();
        user.updated_at = now();
        let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email_key = $1 AND id <> $2")
            .bind(super::email_key(&user.email))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        if others > 0 {
            return Err(StoreError::Conflict("another user has this email".into()).into());
        }
        write_user(&mut tx, &user, false).await?;
        let ended = if end_sign_ins {
            end_sign_ins_in(&mut tx, id).await?
        } else {
            SignInsEnded::default()
        };
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some((user, ended)))
    }

    pub(super) async fn delete_user(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        // Its sessions and refresh tokens would go with it (foreign keys); the access tokens
        // issued with those refresh tokens are revoked, as when a password changes.
        end_sign_ins_in(&mut tx, id).await?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        record_audit(&mut tx, audit, now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn max_token_ttl(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(token_ttl), 0) FROM clients")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub(super) async fn insert_first_key(
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

    pub(super) async fn rotate_key(
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

    pub(super) async fn reseal_keys(
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

    pub(super) async fn raise_meta(&self, key: &str, value: i64) -> Result<(), StoreError> {
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

    pub(super) async fn live_keys(&self, at: i64) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 \
             ORDER BY activates_at, created_at, kid",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    pub(super) async fn all_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    pub(super) async fn prune_retired_keys(&self, age: std::time::Duration) -> Result<u64, StoreError> {
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

    pub(super) async fn revoke_token(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        cap: u32,
    ) -> Result<(), StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        if cap < u32::MAX {
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM revoked_tokens WHERE client_id = $1 AND expires_at > $2 AND jti <> $3",
            )
            .bind(client_id)
            .bind(now())
            .bind(jti)
            .fetch_one(&mut *tx)
            .await?;
            if held >= i64::from(cap) {
                return Err(StoreError::Limit(format!(
                    "client holds {held} revoked tokens that have not expired, the most allowed"
                )));
            }
        }
        revoke_in(&mut tx, jti, client_id, expires_at).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn for_each_revoked(&self, mut sink: impl FnMut(&str, i64)) -> Result<u64, StoreError> {
        let mut tx = self.begin_bulk().await?;
        let mut count = 0;
        {
            let mut rows = sqlx::query("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > $1")
                .bind(now())
                .fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                let jti: &str = r.try_get("jti")?;
                sink(jti, r.try_get("expires_at")?);
                count += 1;
            }
        }
        tx.commit().await?;
        Ok(count)
    }

    pub(super) async fn revoked_tokens(&self, ids: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        let t = now();
        let mut out = Vec::new();
        for jti in ids {
            let row = sqlx::query("SELECT expires_at FROM revoked_tokens WHERE jti = $1 AND expires_at > $2")
                .bind(jti)
                .bind(t)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(r) = row {
                out.push((jti.clone(), r.try_get("expires_at")?));
            }
        }
        Ok(out)
    }

    pub(super) async fn prune_revocations(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        record_audit(&mut tx, entry, now()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn audit_events(
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

    pub(super) async fn change_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
            .fetch_one(&self.pool)
            .await?)
    }

    pub(super) async fn changes_since(&self, seq: i64) -> Result<ChangeBatch, StoreError> {
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
                _ => batch.keys = true,
            }
        }
        Ok(batch)
    }

    pub(super) async fn prune_changes(&self, age: std::time::Duration) -> Result<u64, StoreError> {
        let cutoff = now() - age.as_secs() as i64;
        let done = sqlx::query("DELETE FROM changes WHERE at <= $1 AND seq < (SELECT MAX(seq) FROM changes)")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn is_empty(&self) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        holds_nothing(&mut conn).await
    }

    pub(super) async fn import(&self, records: &[Record]) -> Result<(), StoreError> {
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

    /// Streams everything the store holds to `sink`, read in one snapshot.
    pub(super) async fn export(&self, mut sink: impl FnMut(Record)) -> Result<u64, StoreError> {
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

    pub(super) async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.id)
        .bind(&session.user_id)
        .bind(session.auth_time)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(SessionRecord {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                auth_time: r.try_get("auth_time")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    pub(super) async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let scopes: Option<String> =
            sqlx::query_scalar("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(scopes.map(|s| s.split_whitespace().map(str::to_string).collect()))
    }

    pub(super) async fn grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scopes.join(" "))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn insert_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (id, client_id, grant_json, expires_at, keep_until) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&code.id)
        .bind(&code.grant.client_id)
        .bind(to_json(&code.grant)?)
        .bind(code.expires_at)
        .bind(code.keep_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn redeem_code(
        &self,
        id: &str,
        matches: impl FnOnce(&Grant) -> bool,
        issued: &Issued,
        refresh: impl FnOnce(&Grant) -> Option<RefreshRecord>,
    ) -> Result<Redemption, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let Some(row) = sqlx::query("SELECT * FROM authorization_codes WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Redemption::Unknown);
        };
        let grant: Grant = from_json(row.try_get("grant_json")?)?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        if used_at.is_some() {
            // A second use: the code leaked. Revoke what the first use issued.
            let first: Option<String> = row.try_get("issued_json")?;
            let mut revoked = Vec::new();
            if let Some(first) = first {
                let first: Issued = from_json(&first)?;
                revoke_in(
                    &mut tx,
                    &first.access_jti,
                    &grant.client_id,
                    first.access_expires_at,
                )
                .await?;
                revoked.push((first.access_jti, first.access_expires_at));
                if let Some(family) = &first.family_id {
                    revoked.extend(revoke_family(&mut tx, family).await?);
                }
            }
            tx.commit().await?;
            return Ok(Redemption::Reused(revoked));
        }
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now() {
            return Ok(Redemption::Unknown);
        }
        if !matches(&grant) {
            return Ok(Redemption::Refused);
        }
        sqlx::query(
            "UPDATE authorization_codes SET used_at = $1, issued_json = $2, keep_until = $3 WHERE id = $4",
        )
        .bind(now())
        .bind(to_json(issued)?)
        .bind(issued.access_expires_at.max(row.try_get("keep_until")?))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(first) = refresh(&grant) {
            insert_refresh_row(&mut tx, &first).await?;
        }
        tx.commit().await?;
        Ok(Redemption::Redeemed(grant))
    }

    pub(super) async fn insert_refresh(&self, token: &RefreshRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_refresh_row(&mut conn, token).await
    }

    pub(super) async fn rotate_refresh(
        &self,
        id: &str,
        client_id: &str,
        next: impl FnOnce(&RefreshRecord) -> Option<RefreshRecord>,
    ) -> Result<Refresh, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let Some(row) = sqlx::query("SELECT * FROM refresh_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Refresh::Unknown);
        };
        let old = refresh_from_row(&row)?;
        if old.grant.client_id != client_id {
            return Ok(Refresh::Refused);
        }
        let used_at: Option<i64> = row.try_get("used_at")?;
        if used_at.is_some() {
            let revoked = revoke_family(&mut tx, &old.family_id).await?;
            tx.commit().await?;
            return Ok(Refresh::Reused(revoked));
        }
        let t = now();
        if old.expires_at <= t || old.family_expires_at <= t {
            return Ok(Refresh::Unknown);
        }
        let Some(next) = next(&old) else {
            return Ok(Refresh::Refused);
        };
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2")
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_refresh_row(&mut tx, &next).await?;
        tx.commit().await?;
        Ok(Refresh::Rotated(Box::new(old)))
    }

    pub(super) async fn revoke_refresh(
        &self,
        id: &str,
        client_id: &str,
    ) -> Result<Option<Vec<(String, i64)>>, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let family: Option<String> =
            sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE id = $1 AND client_id = $2")
                .bind(id)
                .bind(client_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(family) = family else {
            return Ok(None);
        };
        let revoked = revoke_family(&mut tx, &family).await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    pub(super) async fn prune_sign_in(&self) -> Result<u64, StoreError> {
        let t = now();
        let mut count = 0;
        for sql in [
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM authorization_codes WHERE keep_until <= $1",
            "DELETE FROM refresh_tokens WHERE family_expires_at <= $1",
        ] {
            count += sqlx::query(sql)
                .bind(t)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(count)
    }

    pub(super) async fn close(&self) {
        self.pool.close().await
    }
}

/// Whether the store holds no client, no user and no signing key.
async fn holds_nothing(conn: &mut Conn) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM clients) + (SELECT COUNT(*) FROM signing_keys) + (SELECT COUNT(*) FROM users)",
    )
            .fetch_one(&mut *conn)
            .await?;
    Ok(n == 0)
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
                kind: SecretKind::parse(&kind)?,
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
         can_introspect, tokens_revoked_before, claims, flows) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
    .execute(&mut **tx)
    .await?;
    Ok(())
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

/// Records `jti` as revoked (idempotent), with a change-log entry so every node learns of it.
async fn revoke_in(tx: &mut Tx, jti: &str, client_id: &str, expires_at: i64) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(client_id)
    .bind(expires_at)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() > 0 {
        record_change(tx, "revocation", jti).await?;
    }
    Ok(())
}

/// Ends every sign-in of user `id`: its sessions, and its refresh-token families with the access
/// tokens they came with.
async fn end_sign_ins_in(tx: &mut Tx, id: &str) -> Result<SignInsEnded, StoreError> {
    let sessions = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    let families: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 ORDER BY family_id")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    let mut revoked = Vec::new();
    for f in &families {
        revoked.extend(revoke_family(tx, f).await?);
    }
    Ok(SignInsEnded {
        sessions,
        refresh_token_families: families.len() as u64,
        revoked,
    })
}

/// Ends a refresh-token family: its tokens go, and the access tokens they came with that are
/// still alive are revoked (returned, with their expiry).
async fn revoke_family(tx: &mut Tx, family: &str) -> Result<Vec<(String, i64)>, StoreError> {
    let live = sqlx::query(
        "SELECT client_id, access_jti, access_expires_at FROM refresh_tokens \
         WHERE family_id = $1 AND access_jti IS NOT NULL AND access_expires_at > $2",
    )
    .bind(family)
    .bind(now())
    .fetch_all(&mut **tx)
    .await?;
    let mut revoked = Vec::with_capacity(live.len());
    for r in &live {
        let client_id: String = r.try_get("client_id")?;
        let jti: String = r.try_get("access_jti")?;
        let exp: i64 = r.try_get("access_expires_at")?;
        revoke_in(tx, &jti, &client_id, exp).await?;
        revoked.push((jti, exp));
    }
    sqlx::query("DELETE FROM refresh_tokens WHERE family_id = $1")
        .bind(family)
        .execute(&mut **tx)
        .await?;
    Ok(revoked)
}

async fn insert_refresh_row(conn: &mut Conn, t: &RefreshRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, client_id, user_id, grant_json, created_at, expires_at, \
         family_expires_at, access_jti, access_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&t.id)
    .bind(&t.family_id)
    .bind(&t.grant.client_id)
    .bind(&t.grant.user_id)
    .bind(to_json(&t.grant)?)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.family_expires_at)
    .bind(&t.access_jti)
    .bind(t.access_expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn refresh_from_row(r: &DbRow) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        id: r.try_get("id")?,
        family_id: r.try_get("family_id")?,
        grant: from_json(r.try_get("grant_json")?)?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        family_expires_at: r.try_get("family_expires_at")?,
        access_jti: r.try_get("access_jti")?,
        access_expires_at: r.try_get("access_expires_at")?,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
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

/// Inserts (`new`) or updates a user row.
async fn write_user(tx: &mut Tx, u: &UserRecord, new: bool) -> Result<(), StoreError> {
    let sql = if new {
        "INSERT INTO users (email, email_key, email_verified, given_name, family_name, name, password_hash, \
         enabled, attributes, created_at, updated_at, id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    } else {
        "UPDATE users SET email = $1, email_key = $2, email_verified = $3, given_name = $4, family_name = $5, \
         name = $6, password_hash = $7, enabled = $8, attributes = $9, created_at = $10, updated_at = $11 \
         WHERE id = $12"
    };
    sqlx::query(sql)
        .bind(&u.email)
        .bind(super::email_key(&u.email))
        .bind(u.email_verified)
        .bind(&u.given_name)
        .bind(&u.family_name)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.enabled)
        .bind(claims_json(&u.attributes))
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(&u.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn user_from_row(r: &DbRow) -> Result<UserRecord, StoreError> {
    let attributes: String = r.try_get("attributes")?;
    Ok(UserRecord {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        email_verified: r.try_get("email_verified")?,
        given_name: r.try_get("given_name")?,
        family_name: r.try_get("family_name")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        enabled: r.try_get("enabled")?,
        attributes: serde_json::from_str(&attributes)
            .map_err(|e| StoreError::Corrupt(format!("user attributes: {e}")))?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
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
        purpose: KeyPurpose::parse(r.try_get("purpose")?)?,
    })
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
    })
}

fn secret_from_row(row: &DbRow) -> Result<SecretRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(SecretRecord {
        id: row.try_get("id")?,
        kind: SecretKind::parse(&kind)?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}
