//! Persistence. Everything Tessera keeps lives behind [`Store`]; the embedded default is an SQLite
//! file in WAL mode, opened by the server and the admin CLI alike.
//!
//! Every write also appends a row to `changes` in the same transaction. Nodes poll that log to
//! refresh their in-memory caches, which is how a change made by the CLI reaches a running server
//! within a bounded time without a restart.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::DatabaseUrl;

/// A store error. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A row did not hold what the schema promises.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store cannot be used as configured.
    #[error("{0}")]
    Unsupported(String),
    /// The store could not be prepared.
    #[error("{0}")]
    Io(String),
}

/// How a client secret is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// SHA-256 of a generated, high-entropy secret.
    Sha256,
    /// Argon2id PHC string of an imported secret.
    Argon2id,
}

impl SecretKind {
    fn as_str(self) -> &'static str {
        match self {
            SecretKind::Sha256 => "sha256",
            SecretKind::Argon2id => "argon2id",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "sha256" => Ok(SecretKind::Sha256),
            "argon2id" => Ok(SecretKind::Argon2id),
            other => Err(StoreError::Corrupt(format!("unknown secret kind {other:?}"))),
        }
    }
}

/// A stored client secret: its hash, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Identifier of this secret.
    pub id: String,
    /// Hash scheme.
    pub kind: SecretKind,
    /// The hash (hex SHA-256, or an Argon2id PHC string).
    pub hash: String,
    /// When it was created.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id.
    pub id: String,
    /// A human name.
    pub name: String,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences; the first is the default.
    pub audiences: Vec<String>,
    /// Lifetime of its tokens, in seconds.
    pub token_ttl: u32,
    /// Whether it may get tokens.
    pub enabled: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// May introspect other clients' tokens.
    pub can_introspect: bool,
    /// Tokens issued at or before this time are revoked (0: none).
    pub tokens_revoked_before: i64,
    /// Its secrets.
    pub secrets: Vec<SecretRecord>,
}

/// A stored signing key. The private part is sealed.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// JOSE algorithm name.
    pub alg: String,
    /// Sealed PKCS#8.
    pub sealed_private_key: Vec<u8>,
    /// Public JWK (JSON).
    pub public_jwk: String,
    /// Creation time.
    pub created_at: i64,
    /// From when it may sign.
    pub activates_at: i64,
    /// When it leaves the JWKS (it stops signing when a newer key activates), if scheduled.
    pub retired_at: Option<i64>,
}

/// What changed since a sequence number.
#[derive(Debug, Default)]
pub struct ChangeBatch {
    /// The highest sequence number seen.
    pub seq: i64,
    /// Ids of clients that changed.
    pub clients: Vec<String>,
    /// Whether any signing key changed.
    pub keys: bool,
    /// Token ids revoked.
    pub revocations: Vec<String>,
    /// Entries after the asked-for sequence were pruned: the caller must reload everything.
    pub gap: bool,
}

/// Who made an administrative change, from where, and what it was. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who: `cli:USER`, `client:ID` (admin API) or `tessera` (the server itself).
    pub actor: String,
    /// From where: a host for the CLI, a peer address for the API.
    pub source: String,
    /// What, e.g. `client.create`.
    pub action: String,
    /// On what: a client id or a key id.
    pub target: String,
    /// Details (JSON object).
    pub details: serde_json::Value,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: i64,
    /// The entry.
    pub entry: AuditEntry,
}

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_lifecycle.sql")),
];

/// The store.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store(sqlite)")
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Store {
    /// Opens and migrates the store. With `create`, a missing database is created; without it
    /// (the admin CLI), a missing database is an error, so that running the CLI from another
    /// directory cannot silently start an empty store the server never sees.
    pub async fn open(url: &DatabaseUrl, create: bool) -> Result<Self, StoreError> {
        let (url, path) = match url {
            DatabaseUrl::Sqlite { url, path } => (url, path),
            DatabaseUrl::Postgres(_) => {
                return Err(StoreError::Unsupported(
                    "PostgreSQL is not supported by this build yet; use a sqlite: URL".into(),
                ));
            }
        };
        if !create && !path.exists() {
            return Err(StoreError::Io(format!(
                "no Tessera store at {}; start the server once, or pass --database",
                path.display()
            )));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Store { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?;
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                .bind(version)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` takes the write lock up front, so a
    /// transaction that reads before it writes waits (busy timeout) for another writer instead of
    /// failing when it tries to upgrade its lock.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Reads a meta value.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Inserts a client with its first secret. With `once_meta`, the insert happens only if that
    /// meta key did not exist yet (so of two racing nodes, one creates the client); returns
    /// whether the client was inserted.
    pub async fn insert_client(
        &self,
        client: &ClientRecord,
        once_meta: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(key) = once_meta {
            let inserted = sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
                .bind(key)
                .bind(&client.id)
                .execute(&mut *tx)
                .await?;
            if inserted.rows_affected() == 0 {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO clients (id, name, scopes, audiences, token_ttl, enabled, created_at, updated_at, \
             can_introspect, tokens_revoked_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&client.id)
        .bind(&client.name)
        .bind(client.scopes.join(" "))
        .bind(audiences_json(&client.audiences))
        .bind(client.token_ttl as i64)
        .bind(client.enabled)
        .bind(client.created_at)
        .bind(client.updated_at)
        .bind(client.can_introspect)
        .bind(client.tokens_revoked_before)
        .execute(&mut *tx)
        .await?;
        for secret in &client.secrets {
            insert_secret(&mut tx, &client.id, secret).await?;
        }
        record_change(&mut tx, "client", &client.id).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Reads client `id`, lets `change` edit it, and writes it back, all in one write
    /// transaction so that concurrent edits cannot lose each other. Returns `None` when the
    /// client does not exist.
    pub async fn modify_client<E: From<StoreError>>(
        &self,
        id: &str,
        audit: &AuditEntry,
        change: impl FnOnce(&mut ClientRecord) -> Result<(), E>,
    ) -> Result<Option<ClientRecord>, E> {
        let mut tx = self.begin_write().await?;
        let Some(mut client) = load_client(&mut tx, id).await? else {
            return Ok(None);
        };
        change(&mut client)?;
        client.updated_at = now();
        sqlx::query(
            "UPDATE clients SET name = ?, scopes = ?, audiences = ?, token_ttl = ?, enabled = ?, updated_at = ?, \
             can_introspect = ?, tokens_revoked_before = ? WHERE id = ?",
        )
        .bind(&client.name)
        .bind(client.scopes.join(" "))
        .bind(audiences_json(&client.audiences))
        .bind(client.token_ttl as i64)
        .bind(client.enabled)
        .bind(client.updated_at)
        .bind(client.can_introspect)
        .bind(client.tokens_revoked_before)
        .bind(&client.id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        record_change(&mut tx, "client", &client.id).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(client))
    }

    /// Adds `secret` to client `id` and makes every other secret expire at `others_expire_at`
    /// (unless it expires sooner); secrets already expired are dropped. Returns the client, or
    /// `None` when it does not exist.
    pub async fn rotate_secret(
        &self,
        id: &str,
        secret: &SecretRecord,
        others_expire_at: i64,
        audit: &AuditEntry,
    ) -> Result<Option<ClientRecord>, StoreError> {
        let mut tx = self.begin_write().await?;
        if load_client(&mut tx, id).await?.is_none() {
            return Ok(None);
        }
        let t = now();
        sqlx::query(
            "DELETE FROM client_secrets WHERE client_id = ? AND expires_at IS NOT NULL AND expires_at <= ?",
        )
        .bind(id)
        .bind(t)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE client_secrets SET expires_at = ? WHERE client_id = ? AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(others_expire_at)
        .bind(id)
        .bind(others_expire_at)
        .execute(&mut *tx)
        .await?;
        insert_secret(&mut tx, id, secret).await?;
        sqlx::query("UPDATE clients SET updated_at = ? WHERE id = ?")
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record_change(&mut tx, "client", id).await?;
        record_audit(&mut tx, audit).await?;
        let client = load_client(&mut tx, id).await?;
        tx.commit().await?;
        Ok(client)
    }

    /// Deletes a client and its secrets. Returns false when it did not exist.
    pub async fn delete_client(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        record_change(&mut tx, "client", id).await?;
        record_audit(&mut tx, audit).await?;
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
    pub async fn for_each_client(&self, mut sink: impl FnMut(ClientRecord)) -> Result<u64, StoreError> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query(
            "SELECT c.*, s.id AS s_id, s.kind AS s_kind, s.hash AS s_hash, s.created_at AS s_created_at, \
             s.expires_at AS s_expires_at FROM clients c LEFT JOIN client_secrets s ON s.client_id = c.id \
             ORDER BY c.id, s.created_at, s.id",
        )
        .fetch(&self.pool);
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

    /// A page of clients ordered by id, starting after `after`.
    pub async fn clients_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut clients = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            let secrets =
                sqlx::query("SELECT * FROM client_secrets WHERE client_id = ? ORDER BY created_at, id")
                    .bind(&id)
                    .fetch_all(&self.pool)
                    .await?;
            clients.extend(with_secrets(std::slice::from_ref(row), &secrets)?);
        }
        Ok(clients)
    }

    /// The longest token lifetime any client has.
    pub async fn max_token_ttl(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(token_ttl), 0) FROM clients")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Inserts a signing key when the store has no live key (first start). Returns whether it did.
    pub async fn insert_first_key(&self, key: &KeyRecord, audit: &AuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL OR retired_at > ?",
        )
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        if live > 0 {
            return Ok(false);
        }
        insert_key(&mut tx, key).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds `key`, activating `lead` seconds from now, and schedules every key without a
    /// retirement time to leave the JWKS `tail` seconds after that. Both times are taken inside
    /// the write transaction. With `unless_newer_than`, nothing happens when a key created after
    /// that time exists already (another node rotated first). Returns the retirement time of the
    /// replaced keys, or `None` when nothing happened.
    pub async fn rotate_key(
        &self,
        key: &mut KeyRecord,
        lead: i64,
        tail: i64,
        unless_newer_than: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(t) = unless_newer_than {
            let newer: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys WHERE created_at > ?")
                .bind(t)
                .fetch_one(&mut *tx)
                .await?;
            if newer > 0 {
                return Ok(None);
            }
        }
        key.created_at = now();
        key.activates_at = key.created_at + lead;
        let retire_at = key.activates_at + tail;
        sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
            .bind(retire_at)
            .execute(&mut *tx)
            .await?;
        insert_key(&mut tx, key).await?;
        record_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(retire_at))
    }

    /// Raises the numeric meta value `key` to at least `value`.
    pub async fn raise_meta(&self, key: &str, value: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let current: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        if current
            .and_then(|c| c.parse::<i64>().ok())
            .is_none_or(|c| c < value)
        {
            sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
                .bind(key)
                .bind(value.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Signing keys still published at `at`, oldest first.
    pub async fn live_keys(&self, at: i64) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > ? ORDER BY activates_at, created_at, kid",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Every signing key, retired ones included, oldest first.
    pub async fn all_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Deletes keys retired for longer than `age`, private parts and all.
    pub async fn prune_retired_keys(&self, age: Duration) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let cutoff = now() - age.as_secs() as i64;
        let rows =
            sqlx::query("SELECT kid FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at <= ?")
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?;
        for row in &rows {
            let kid: String = row.try_get("kid")?;
            sqlx::query("DELETE FROM signing_keys WHERE kid = ?")
                .bind(&kid)
                .execute(&mut *tx)
                .await?;
            record_change(&mut tx, "key", &kid).await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Records a revoked token id until `expires_at`. Idempotent.
    pub async fn revoke_token(&self, jti: &str, client_id: &str, expires_at: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES (?, ?, ?, ?)",
        )
        .bind(jti)
        .bind(client_id)
        .bind(expires_at)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            record_change(&mut tx, "revocation", jti).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Streams the revoked token ids that have not expired yet, with their expiry, into `sink`,
    /// so a node never holds all rows in memory at once.
    pub async fn for_each_revoked(&self, mut sink: impl FnMut(&str, i64)) -> Result<u64, StoreError> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?")
            .bind(now())
            .fetch(&self.pool);
        let mut count = 0;
        while let Some(r) = rows.try_next().await? {
            let jti: &str = r.try_get("jti")?;
            sink(jti, r.try_get("expires_at")?);
            count += 1;
        }
        Ok(count)
    }

    /// Those of `ids` that are revoked and not expired yet, with their expiry.
    pub async fn revoked_tokens(&self, ids: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        let t = now();
        let mut out = Vec::new();
        for jti in ids {
            let row = sqlx::query("SELECT expires_at FROM revoked_tokens WHERE jti = ? AND expires_at > ?")
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

    /// Forgets revocations of tokens that have expired anyway.
    pub async fn prune_revocations(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= ?")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Records an audit entry on its own (for changes that have no other write).
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        record_audit(&mut tx, entry).await?;
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
        let rows = sqlx::query("SELECT * FROM audit_events WHERE at >= ? AND id > ? ORDER BY id LIMIT ?")
            .bind(since)
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let details: String = r.try_get("details")?;
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    entry: AuditEntry {
                        actor: r.try_get("actor")?,
                        source: r.try_get("source")?,
                        action: r.try_get("action")?,
                        target: r.try_get("target")?,
                        details: serde_json::from_str(&details)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    },
                })
            })
            .collect()
    }

    /// The newest change sequence number.
    pub async fn change_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
            .fetch_one(&self.pool)
            .await?)
    }

    /// What changed after `seq`.
    pub async fn changes_since(&self, seq: i64) -> Result<ChangeBatch, StoreError> {
        let rows =
            sqlx::query("SELECT seq, entity, entity_id FROM changes WHERE seq > ? ORDER BY seq LIMIT 10000")
                .bind(seq)
                .fetch_all(&self.pool)
                .await?;
        let mut batch = ChangeBatch {
            seq,
            ..Default::default()
        };
        let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        if seq > 0 && oldest.is_some_and(|o| o > seq + 1) {
            batch.gap = true;
            return Ok(batch);
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

    /// Forgets change-log entries older than `age`.
    pub async fn prune_changes(&self, age: Duration) -> Result<u64, StoreError> {
        let cutoff = now() - age.as_secs() as i64;
        let done = sqlx::query("DELETE FROM changes WHERE at < ? AND seq < (SELECT MAX(seq) FROM changes)")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await
    }
}

async fn load_client(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
) -> Result<Option<ClientRecord>, StoreError> {
    let row = sqlx::query("SELECT * FROM clients WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut client = client_from_row(&row)?;
    let rows = sqlx::query("SELECT * FROM client_secrets WHERE client_id = ? ORDER BY created_at, id")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    client.secrets = rows.iter().map(secret_from_row).collect::<Result<_, _>>()?;
    Ok(Some(client))
}

async fn insert_secret(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    client_id: &str,
    secret: &SecretRecord,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO client_secrets (id, client_id, kind, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
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

async fn record_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    entity: &str,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (entity, entity_id, at) VALUES (?, ?, ?)")
        .bind(entity)
        .bind(id)
        .bind(now())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_key(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, key: &KeyRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, activates_at, retired_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.kid)
    .bind(&key.alg)
    .bind(&key.sealed_private_key)
    .bind(&key.public_jwk)
    .bind(key.created_at)
    .bind(key.activates_at)
    .bind(key.retired_at)
    .execute(&mut **tx)
    .await?;
    record_change(tx, "key", &key.kid).await
}

async fn record_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    e: &AuditEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, source, action, target, details) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(now())
    .bind(&e.actor)
    .bind(&e.source)
    .bind(&e.action)
    .bind(&e.target)
    .bind(e.details.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn key_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        kid: r.try_get("kid")?,
        alg: r.try_get("alg")?,
        sealed_private_key: r.try_get("private_key")?,
        public_jwk: r.try_get("public_jwk")?,
        created_at: r.try_get("created_at")?,
        activates_at: r.try_get("activates_at")?,
        retired_at: r.try_get("retired_at")?,
    })
}

fn with_secrets(
    rows: &[sqlx::sqlite::SqliteRow],
    secrets: &[sqlx::sqlite::SqliteRow],
) -> Result<Vec<ClientRecord>, StoreError> {
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

fn audiences_json(audiences: &[String]) -> String {
    serde_json::Value::from(audiences.to_vec()).to_string()
}

fn client_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ClientRecord, StoreError> {
    let scopes: String = row.try_get("scopes")?;
    let audiences: String = row.try_get("audiences")?;
    let token_ttl: i64 = row.try_get("token_ttl")?;
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
        secrets: Vec::new(),
    })
}

fn secret_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<SecretRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(SecretRecord {
        id: row.try_get("id")?,
        kind: SecretKind::parse(&kind)?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}
