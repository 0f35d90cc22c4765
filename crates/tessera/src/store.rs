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
    /// When it was retired, if it was.
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
}

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/sqlite/0001_init.sql"))];

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

    /// Inserts a client with its first secret. Returns false if `set_meta` was given and that meta
    /// key already existed (so a racing node created it first); nothing is written then.
    pub async fn insert_client(
        &self,
        client: &ClientRecord,
        once_meta: Option<&str>,
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
            "INSERT INTO clients (id, name, scopes, audiences, token_ttl, enabled, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&client.id)
        .bind(&client.name)
        .bind(client.scopes.join(" "))
        .bind(audiences_json(&client.audiences))
        .bind(client.token_ttl as i64)
        .bind(client.enabled)
        .bind(client.created_at)
        .bind(client.updated_at)
        .execute(&mut *tx)
        .await?;
        for secret in &client.secrets {
            insert_secret(&mut tx, &client.id, secret).await?;
        }
        record_change(&mut tx, "client", &client.id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Reads client `id`, lets `change` edit it, and writes it back, all in one write
    /// transaction so that concurrent edits cannot lose each other. Returns `None` when the
    /// client does not exist.
    pub async fn modify_client<E: From<StoreError>>(
        &self,
        id: &str,
        change: impl FnOnce(&mut ClientRecord) -> Result<(), E>,
    ) -> Result<Option<ClientRecord>, E> {
        let mut tx = self.begin_write().await?;
        let Some(mut client) = load_client(&mut tx, id).await? else {
            return Ok(None);
        };
        change(&mut client)?;
        client.updated_at = now();
        sqlx::query(
            "UPDATE clients SET name = ?, scopes = ?, audiences = ?, token_ttl = ?, enabled = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(&client.name)
        .bind(client.scopes.join(" "))
        .bind(audiences_json(&client.audiences))
        .bind(client.token_ttl as i64)
        .bind(client.enabled)
        .bind(client.updated_at)
        .bind(&client.id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        record_change(&mut tx, "client", &client.id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(client))
    }

    /// Deletes a client and its secrets. Returns false when it did not exist.
    pub async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        record_change(&mut tx, "client", id).await?;
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
        let mut clients: Vec<ClientRecord> = rows.iter().map(client_from_row).collect::<Result<_, _>>()?;
        let by_id: std::collections::HashMap<String, usize> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        let rows = sqlx::query("SELECT * FROM client_secrets ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let client_id: String = row.try_get("client_id")?;
            if let Some(&i) = by_id.get(&client_id) {
                clients[i].secrets.push(secret_from_row(row)?);
            }
        }
        Ok(clients)
    }

    /// Inserts a signing key, unless a non-retired key already exists and `only_if_none` is set.
    /// Returns whether the key was inserted.
    pub async fn insert_key(&self, key: &KeyRecord, only_if_none: bool) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        if only_if_none {
            let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL")
                .fetch_one(&mut *tx)
                .await?;
            if live > 0 {
                return Ok(false);
            }
        }
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
        .execute(&mut *tx)
        .await?;
        record_change(&mut tx, "key", &key.kid).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// All signing keys that are not retired, oldest first.
    pub async fn live_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM signing_keys WHERE retired_at IS NULL ORDER BY activates_at, kid")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyRecord {
                    kid: r.try_get("kid")?,
                    alg: r.try_get("alg")?,
                    sealed_private_key: r.try_get("private_key")?,
                    public_jwk: r.try_get("public_jwk")?,
                    created_at: r.try_get("created_at")?,
                    activates_at: r.try_get("activates_at")?,
                    retired_at: r.try_get("retired_at")?,
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
