//! Persistence. Everything Tessera keeps lives behind [`Store`], in domain terms: clients and
//! their hashed secrets, sealed signing keys, revoked token ids, the audit trail, and the change
//! feed that keeps every node's caches fresh. Two engines sit behind it:
//!
//! - `sqlite`: the embedded default, one file in WAL mode, for one node and a first run;
//! - `postgres`: a shared PostgreSQL database for many stateless nodes.
//!
//! Both run the same SQL where the dialects agree (`$N` placeholders, `ON CONFLICT`), from one
//! set of files compiled once per engine (`sql/`, one file per entity), so the two cannot drift; each engine
//! module holds only what differs: connecting, migrations, how a write transaction starts and
//! how a change gets its sequence number. No sqlx type leaves this module.
//!
//! ## Writes and the change feed
//! Every write transaction takes the store's one write lock first (`BEGIN IMMEDIATE` on SQLite,
//! a row lock on `change_head` on PostgreSQL), so a read-check-write (modify a client, create the
//! first key, rotate unless another node did, the once-only bootstrap) is atomic with any number
//! of writers on any number of nodes. Administrative writes and revocations are rare next to
//! token issuance, which never writes, so one lock costs nothing that matters and buys
//! correctness that is easy to see.
//!
//! Every write also appends to `changes` in the same transaction, numbered while that lock is
//! held. Sequence numbers are therefore handed out in commit order with no holes: a node that
//! has seen change `n` has seen every change before it, and polling `seq > n` cannot step past a
//! change that commits late. Nothing here relies on PostgreSQL's LISTEN/NOTIFY or advisory
//! locks at run time, so the design carries to PostgreSQL-wire databases that lack them.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::{AuditEntry, ClientRecord, KeyRecord, SignInsEnded, UserRecord};

/// Runs `$call` on whichever engine `$self` (a [`Store`]) holds, bound to `$e`.
macro_rules! dispatch {
    ($self:ident, $e:ident => $call:expr) => {
        match &$self.0 {
            $crate::store::Engine::Sqlite($e) => $call,
            $crate::store::Engine::Postgres($e) => $call,
        }
    };
}

/// Defines store operations once, in `sql/`: each becomes a method of the engine that compiles
/// it and, where the engine says `facade` (SQLite's module, so it happens once), a method of
/// [`Store`] with the same signature and documentation that runs it on whichever engine the
/// store holds. The contract is written once, beside its SQL.
macro_rules! define_operations {
    ($facade:ident {
        $(
            $(#[$meta:meta])*
            pub async fn $name:ident $(<$g:ident : $bound:path>)? (&$self:ident $(, $arg:ident : $ty:ty)* $(,)?) $(-> $ret:ty)? $body:block
        )*
    }) => {
        impl Engine {
            $(
                $(#[$meta])*
                pub(super) async fn $name $(<$g: $bound>)? (&$self $(, $arg: $ty)*) $(-> $ret)? $body
            )*
        }
        define_operations!(@$facade $(
            $(#[$meta])*
            fn $name($self) $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)?;
        )*);
    };
    (@facade $(
        $(#[$meta:meta])*
        fn $name:ident($self:ident) $(<$g:ident : $bound:path>)? ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?;
    )*) => {
        impl super::Store {
            $(
                $(#[$meta])*
                pub async fn $name $(<$g: $bound>)? (&$self $(, $arg: $ty)*) $(-> $ret)? {
                    dispatch!($self, e => e.$name($($arg),*).await)
                }
            )*
        }
    };
    (@engine_only $($rest:tt)*) => {};
}

mod postgres;
mod sqlite;

/// Writes a node runs at once. Writers queue here rather than each holding a pooled connection
/// while they wait for the store's write lock, so waiting writers never starve the change-log
/// poll and the other reads of the pool.
const CONCURRENT_WRITES: usize = 2;

/// A store error. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, or did not answer in time. Writes are refused; nodes go
    /// on serving from their caches and retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database refused or failed the operation.
    #[error("database error: {0}")]
    Db(String),
    /// A row did not hold what the schema promises.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store cannot be used as configured.
    #[error("{0}")]
    Unsupported(String),
    /// The store could not be prepared.
    #[error("{0}")]
    Io(String),
    /// A cap on stored state was reached (revocations per client, pending signing keys);
    /// nothing was changed.
    #[error("{0}")]
    Limit(String),
    /// The change would break a uniqueness rule (a user's email); nothing was changed.
    #[error("{0}")]
    Conflict(String),
}

/// Most signing keys published and waiting to activate at once.
pub const MAX_PENDING_KEYS: i64 = 2;

impl StoreError {
    /// Whether the error means the database is away (as opposed to a bad request or a bug).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed | E::Protocol(_) => {
                StoreError::Unavailable(e.to_string())
            }
            E::Database(db) => match db.code() {
                // PostgreSQL class 08 (connection exception), 57P01..57P03 (shutting down,
                // cannot connect now), 57014 (statement timeout), 55P03 (lock timeout), 53300
                // (too many connections), 25006 (read-only: a standby during a failover);
                // SQLite's SQLITE_BUSY (5) after the busy timeout.
                Some(c)
                    if c.starts_with("08")
                        || matches!(
                            c.as_ref(),
                            "57P01" | "57P02" | "57P03" | "57014" | "55P03" | "53300" | "25006" | "5"
                        ) =>
                {
                    StoreError::Unavailable(e.to_string())
                }
                _ => StoreError::Db(e.to_string()),
            },
            _ => StoreError::Db(e.to_string()),
        }
    }
}

/// Meta key naming the master key that seals new signing keys (see
/// [`crate::signing::rotate_master`]).
pub const SEALING_KEY_META: &str = "master_key.sealing";

/// Where the database lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file.
    Sqlite {
        /// The URL as given (sqlx understands it).
        url: String,
        /// The file's path.
        path: PathBuf,
    },
    /// A PostgreSQL server.
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    // A PostgreSQL URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite { url, .. } => write!(f, "{url}"),
            DatabaseUrl::Postgres(_) => write!(f, "postgres://<redacted>"),
        }
    }
}

impl DatabaseUrl {
    /// Parses a `sqlite:` or `postgres:` URL.
    pub fn parse(value: &str) -> Result<Self, String> {
        if let Some(rest) = value.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err("an sqlite: URL needs a file path, e.g. sqlite:./tessera-data/tessera.db".into());
            }
            Ok(DatabaseUrl::Sqlite {
                url: format!("sqlite:{rest}"),
                path: PathBuf::from(path),
            })
        } else if value.starts_with("postgres:") || value.starts_with("postgresql:") {
            Ok(DatabaseUrl::Postgres(value.to_string()))
        } else {
            Err("expected a sqlite: or postgres: URL".into())
        }
    }
}

/// One thing a store holds, as export reads it and import writes it (the file format is
/// [`crate::transfer`]'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A client with its hashed secrets.
    Client(ClientRecord),
    /// A signing key, sealed.
    Key(KeyRecord),
    /// A user, with the hash of its password.
    User(UserRecord),
    /// A revoked token id.
    Revocation {
        /// The token id.
        jti: String,
        /// Whose token it was.
        client_id: String,
        /// When the token expires (and the record may go).
        expires_at: i64,
        /// When it was revoked.
        revoked_at: i64,
    },
    /// An audit event, with its time.
    Audit {
        /// When.
        at: i64,
        /// What.
        entry: AuditEntry,
    },
    /// A meta value.
    Meta {
        /// Its key.
        key: String,
        /// Its value.
        value: String,
    },
    /// A trust policy (after its client).
    Trust(crate::model::trust::TrustPolicy),
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
    /// Whether any trust policy changed.
    pub trust: bool,
    /// Entries after the asked-for sequence were pruned: the caller must reload everything.
    pub gap: bool,
}

/// The store: one engine behind one contract.
#[derive(Clone)]
pub struct Store(Engine);

#[derive(Clone)]
enum Engine {
    Sqlite(sqlite::Engine),
    Postgres(postgres::Engine),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.engine_name())
    }
}

/// Seconds since the Unix epoch, by the system's clock: what the store stamps records with and
/// judges stored expiries by. Everything above the store reads the node's
/// [`crate::model::clock::Clock`] instead.
fn now() -> i64 {
    crate::model::clock::unix_now()
}

impl Store {
    /// Opens the store and applies pending migrations. With `create`, a missing store is created
    /// (an SQLite file, or the schema in an empty PostgreSQL database); without it (the admin
    /// CLI), a missing store is an error, so that running the CLI against the wrong place cannot
    /// silently start an empty store the server never sees.
    pub async fn open(url: &DatabaseUrl, create: bool) -> Result<Self, StoreError> {
        Ok(Store(match url {
            DatabaseUrl::Sqlite { url, path } => {
                Engine::Sqlite(sqlite::Engine::open(url, path, create).await?)
            }
            DatabaseUrl::Postgres(url) => Engine::Postgres(postgres::Engine::open(url, create).await?),
        }))
    }

    /// `sqlite` or `postgres`.
    pub fn engine_name(&self) -> &'static str {
        match &self.0 {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers within a second.
    pub async fn ping(&self) -> bool {
        let ping = async { dispatch!(self, e => e.ping().await) };
        tokio::time::timeout(Duration::from_secs(1), ping)
            .await
            .unwrap_or(false)
    }

    /// Reads user `id`, lets `change` edit it and writes it back, under the store's write lock,
    /// with `audit`. `None` when there is no such user; [`StoreError::Conflict`] when the new
    /// email belongs to another user.
    pub async fn modify_user<E: From<StoreError>>(
        &self,
        id: &str,
        audit: &AuditEntry,
        change: impl FnOnce(&mut UserRecord) -> Result<(), E>,
    ) -> Result<Option<UserRecord>, E> {
        let changed = dispatch!(self, e => e.modify_user(id, audit, false, change).await)?;
        Ok(changed.map(|(user, _)| user))
    }

    /// [`Store::modify_user`], and in the same transaction ends every sign-in of the user: its
    /// sessions go, and its refresh-token families with the access tokens they came with (which
    /// every node learns of through the change log, like any revocation).
    pub async fn modify_user_ending_sign_ins<E: From<StoreError>>(
        &self,
        id: &str,
        audit: &AuditEntry,
        change: impl FnOnce(&mut UserRecord) -> Result<(), E>,
    ) -> Result<Option<(UserRecord, SignInsEnded)>, E> {
        dispatch!(self, e => e.modify_user(id, audit, true, change).await)
    }

    /// Records a revoked token id until `expires_at`. Idempotent.
    pub async fn revoke_token(&self, jti: &str, client_id: &str, expires_at: i64) -> Result<(), StoreError> {
        self.revoke_token_capped(jti, client_id, expires_at, u32::MAX)
            .await
    }

    /// [`Store::revoke_token`], refused with [`StoreError::Limit`] when the client already holds
    /// `cap` unexpired revocations (counted under the write lock, so the cap holds for every
    /// node of the store).
    pub async fn revoke_token_capped(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        cap: u32,
    ) -> Result<(), StoreError> {
        dispatch!(self, e => e.revoke_token(jti, client_id, expires_at, cap).await)
    }
}
