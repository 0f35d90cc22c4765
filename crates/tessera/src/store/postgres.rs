//! The shared engine: PostgreSQL, for many stateless nodes.
//!
//! - **Write lock.** Every write transaction starts by locking the one row of `change_head`
//!   (`SELECT … FOR UPDATE`), so writes from every node are serialized as they are on SQLite, and
//!   each read-check-write runs alone. Under READ COMMITTED, each statement after the lock sees
//!   every write committed before it.
//! - **Change numbers.** A change takes `change_head.seq + 1` while the lock is held, so numbers
//!   are handed out in commit order with no holes (a rolled-back transaction rolls its numbers
//!   back too). A poller following `seq > n` can therefore never step past a change that commits
//!   late, which a plain sequence (`BIGSERIAL`) cannot promise.
//! - **Bounded waits.** The pool gives up after [`ACQUIRE_TIMEOUT`]; every statement after
//!   [`STATEMENT_TIMEOUT`], and a lock wait after [`LOCK_TIMEOUT`]. When the database is away,
//!   callers get [`StoreError::Unavailable`] within those bounds instead of hanging.
//! - **Migrations** run in one transaction under an advisory lock, so nodes that start together
//!   on an empty database migrate it once.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::StoreError;

type Db = sqlx::Postgres;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../migrations/postgres/0002_lifecycle.sql")),
    (3, include_str!("../../migrations/postgres/0003_claims.sql")),
    (4, include_str!("../../migrations/postgres/0004_limits.sql")),
    (5, include_str!("../../migrations/postgres/0005_users.sql")),
    (6, include_str!("../../migrations/postgres/0006_flows.sql")),
    (7, include_str!("../../migrations/postgres/0007_sign_in.sql")),
    (8, include_str!("../../migrations/postgres/0008_checksums.sql")),
    (9, include_str!("../../migrations/postgres/0009_secretless.sql")),
    (
        10,
        include_str!("../../migrations/postgres/0010_registration.sql"),
    ),
    (11, include_str!("../../migrations/postgres/0011_device.sql")),
    (12, include_str!("../../migrations/postgres/0012_console.sql")),
];

/// How long a caller waits for a connection before the store counts as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest any statement may run.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a write waits for the write lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a write waits for its turn on this node before the store counts as unavailable.
const WRITE_QUEUE_TIMEOUT: Duration = LOCK_TIMEOUT;
/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261; // "tessera" in ASCII

/// An open PostgreSQL store.
#[derive(Clone)]
pub(super) struct Engine {
    pool: sqlx::PgPool,
    writers: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Engine {
    pub(super) async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| StoreError::Unsupported("invalid postgres:// URL".into()))?;
        let options = options.application_name("tessera").options([
            (
                "statement_timeout",
                format!("{}ms", STATEMENT_TIMEOUT.as_millis()),
            ),
            ("lock_timeout", format!("{}ms", LOCK_TIMEOUT.as_millis())),
            ("idle_in_transaction_session_timeout", "10000ms".to_string()),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(300))
            .connect_with(options)
            .await?;
        let engine = Engine {
            pool,
            writers: std::sync::Arc::new(tokio::sync::Semaphore::new(super::CONCURRENT_WRITES)),
        };
        if !create && !engine.store_exists().await? {
            return Err(StoreError::Io(
                "no Tessera store in this PostgreSQL database; run `tessera migrate` first".into(),
            ));
        }
        engine.migrate().await?;
        Ok(engine)
    }

    async fn store_exists(&self) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Starts a write transaction holding the store's write lock.
    async fn begin_write(&self) -> Result<(Tx, WritePermit), StoreError> {
        let permit = self.write_permit().await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT seq FROM change_head WHERE id = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await?;
        Ok((tx, permit))
    }

    /// A transaction for long streamed reads (a full reload of a million clients, an export):
    /// the statement timeout that bounds every other query does not apply.
    async fn begin_bulk(&self) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL statement_timeout = '30min'")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A read-only transaction that sees one snapshot throughout.
    async fn begin_snapshot(&self) -> Result<Tx, StoreError> {
        let mut tx = self.begin_bulk().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn begin_migration(&self) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Another node may be migrating (a long migration on a large store): wait for it.
        sqlx::raw_sql("SET LOCAL lock_timeout = '10min'; SET LOCAL statement_timeout = '30min'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Appends a change to the log, numbered from `change_head` under the write lock.
async fn record_change(tx: &mut Tx, entity: &str, id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "WITH next AS (UPDATE change_head SET seq = seq + 1 WHERE id = 1 RETURNING seq) \
         INSERT INTO changes (seq, entity, entity_id, at) SELECT seq, $1, $2, $3 FROM next",
    )
    .bind(entity)
    .bind(id)
    .bind(super::now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

// The operations both engines share, one file per entity. (`Store`'s methods for them are
// defined once, by the SQLite module; see `define_operations!`.)
macro_rules! operations {
    ($($operations:tt)*) => {
        define_operations!(engine_only { $($operations)* });
    };
}
include!("sql/all.rs");
