//! The embedded engine: one SQLite file in WAL mode. SQLite admits one writer at a time, and
//! `BEGIN IMMEDIATE` takes that lock when a write transaction starts, which is the store's write
//! lock; `changes.seq` is an `AUTOINCREMENT` key assigned under it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;

type Db = sqlx::Sqlite;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_lifecycle.sql")),
    (3, include_str!("../../migrations/sqlite/0003_claims.sql")),
    (4, include_str!("../../migrations/sqlite/0004_limits.sql")),
    (5, include_str!("../../migrations/sqlite/0005_users.sql")),
    (6, include_str!("../../migrations/sqlite/0006_flows.sql")),
    (7, include_str!("../../migrations/sqlite/0007_sign_in.sql")),
    (8, include_str!("../../migrations/sqlite/0008_checksums.sql")),
    (9, include_str!("../../migrations/sqlite/0009_secretless.sql")),
    (10, include_str!("../../migrations/sqlite/0010_registration.sql")),
    (11, include_str!("../../migrations/sqlite/0011_device.sql")),
    (12, include_str!("../../migrations/sqlite/0012_console.sql")),
];

/// An open SQLite store.
#[derive(Clone)]
pub(super) struct Engine {
    pool: sqlx::SqlitePool,
    writers: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Engine {
    pub(super) async fn open(url: &str, path: &Path, create: bool) -> Result<Self, StoreError> {
        if !create && !path.exists() {
            return Err(StoreError::Io(format!(
                "no Tessera store at {}; run `tessera migrate` (or start the server once), or pass --database",
                path.display()
            )));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        if create && !path.exists() {
            // The file holds secret hashes and the audit trail: readable by its owner only.
            // SQLite gives the -wal and -shm files the database file's permissions.
            create_private(path)
                .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", path.display())))?;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        let engine = Engine {
            pool,
            writers: std::sync::Arc::new(tokio::sync::Semaphore::new(super::CONCURRENT_WRITES)),
        };
        engine.migrate().await?;
        Ok(engine)
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` takes the write lock up front, so a
    /// transaction that reads before it writes waits (busy timeout) for another writer instead of
    /// failing when it tries to upgrade its lock.
    async fn begin_write(&self) -> Result<(Tx, WritePermit), StoreError> {
        let permit = self.write_permit().await?;
        Ok((self.pool.begin_with("BEGIN IMMEDIATE").await?, permit))
    }

    /// A transaction for long streamed reads (a full reload, an export).
    async fn begin_bulk(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn begin_migration(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn store_exists(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// A read transaction: in WAL mode, its first read fixes a snapshot.
    async fn begin_snapshot(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

/// Creates an empty file that only its owner may read or write (an empty file is a valid empty
/// SQLite database). Another process creating it first is fine.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// How long a write waits for its turn on this node before the store counts as unavailable.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Appends a change to the log; its number is assigned under the write lock.
async fn record_change(tx: &mut Tx, entity: &str, id: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (entity, entity_id, at) VALUES ($1, $2, $3)")
        .bind(entity)
        .bind(id)
        .bind(super::now())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

// The operations both engines share, one file per entity. This engine's module also defines
// `Store`'s method for each of them (see `define_operations!`).
macro_rules! operations {
    ($($operations:tt)*) => {
        define_operations!(facade { $($operations)* });
    };
}
include!("sql/all.rs");
