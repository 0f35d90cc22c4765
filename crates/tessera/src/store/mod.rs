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

use crate::model::{
    AuditEntry, AuditEvent, ClientRecord, CodeRecord, Grant, Issued, KeyRecord, Redemption, Refresh,
    RefreshRecord, SecretRecord, SessionRecord, SignInsEnded, UserRecord,
};

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

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Runs `$call` on whichever engine `$self` holds, bound to `$e`.
macro_rules! dispatch {
    ($self:ident, $e:ident => $call:expr) => {
        match &$self.0 {
            Engine::Sqlite($e) => $call,
            Engine::Postgres($e) => $call,
        }
    };
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

    /// The schema version the store is at.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        dispatch!(self, e => e.schema_version().await)
    }

    /// Whether the database answers within a second.
    pub async fn ping(&self) -> bool {
        let ping = async { dispatch!(self, e => e.ping().await) };
        tokio::time::timeout(Duration::from_secs(1), ping)
            .await
            .unwrap_or(false)
    }

    /// Reads a meta value.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self, e => e.meta(key).await)
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
        dispatch!(self, e => e.insert_client(client, once_meta, audit).await)
    }

    /// Reads client `id`, lets `change` edit it, and writes it back, all under the write lock so
    /// that concurrent edits (from any node) cannot lose each other. Returns `None` when the
    /// client does not exist.
    pub async fn modify_client<E: From<StoreError>>(
        &self,
        id: &str,
        audit: &AuditEntry,
        change: impl FnOnce(&mut ClientRecord) -> Result<(), E>,
    ) -> Result<Option<ClientRecord>, E> {
        dispatch!(self, e => e.modify_client(id, audit, change).await)
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
        dispatch!(self, e => e.rotate_secret(id, secret, others_expire_at, audit).await)
    }

    /// Deletes a client and its secrets. Returns false when it did not exist.
    pub async fn delete_client(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        dispatch!(self, e => e.delete_client(id, audit).await)
    }

    /// One client with its secrets.
    pub async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        dispatch!(self, e => e.client(id).await)
    }

    /// Every client, ordered by creation time.
    pub async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        dispatch!(self, e => e.clients().await)
    }

    /// Streams every client with its secrets to `sink`, one at a time, so that loading a large
    /// registry never holds all rows in memory at once.
    pub async fn for_each_client(&self, sink: impl FnMut(ClientRecord)) -> Result<u64, StoreError> {
        dispatch!(self, e => e.for_each_client(sink).await)
    }

    /// A page of clients ordered by id, starting after `after`.
    pub async fn clients_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        dispatch!(self, e => e.clients_page(after, limit).await)
    }

    /// Adds a user; `false` (and nothing written) when its email is taken.
    pub async fn insert_user(&self, user: &UserRecord, audit: &AuditEntry) -> Result<bool, StoreError> {
        dispatch!(self, e => e.insert_user(user, audit).await)
    }

    /// One user, by id.
    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        dispatch!(self, e => e.user(id).await)
    }

    /// One user, by email (without regard to case).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        dispatch!(self, e => e.user_by_email(email).await)
    }

    /// Up to `limit` users with ids after `after`, ordered by id.
    pub async fn users_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<UserRecord>, StoreError> {
        dispatch!(self, e => e.users_page(after, limit).await)
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

    /// Deletes user `id`; `false` when there was none.
    pub async fn delete_user(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        dispatch!(self, e => e.delete_user(id, audit).await)
    }

    /// The longest token lifetime any client has.
    pub async fn max_token_ttl(&self) -> Result<i64, StoreError> {
        dispatch!(self, e => e.max_token_ttl().await)
    }

    /// Inserts a signing key when the store has no live key (first start). Returns whether it
    /// did: of any number of nodes starting at once, exactly one does.
    pub async fn insert_first_key(&self, key: &KeyRecord, audit: &AuditEntry) -> Result<bool, StoreError> {
        dispatch!(self, e => e.insert_first_key(key, audit).await)
    }

    /// Adds `key`, activating `lead` seconds from now, and schedules every key without a
    /// retirement time to leave the JWKS `tail` seconds after that. Both times are taken inside
    /// the write transaction. With `unless_replaced` (the kid and creation time of the newest key
    /// the caller saw), nothing happens when a key newer than that one, in (creation time, kid)
    /// order, exists: another node rotated first. Returns the retirement time of the replaced keys, or `None`
    /// when nothing happened. Refused with [`StoreError::Limit`] while [`MAX_PENDING_KEYS`] keys
    /// wait to activate: each rotation publishes a key, and rotating in a loop would otherwise
    /// grow every verifier's JWKS without bound. `sealed_under` is the sealing master key the
    /// store named when the key was sealed; [`StoreError::Conflict`] if it names another now.
    pub async fn rotate_key(
        &self,
        key: &mut KeyRecord,
        lead: i64,
        tail: i64,
        unless_replaced: Option<(&str, i64)>,
        sealed_under: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<Option<i64>, StoreError> {
        dispatch!(self, e => e.rotate_key(key, lead, tail, unless_replaced, sealed_under, audit).await)
    }

    /// Replaces the sealed private key of each `(kid, sealed)` (keys that are gone are skipped)
    /// and sets meta `meta_key` to `meta_value`, in one transaction recorded as a key change.
    pub async fn reseal_keys(
        &self,
        sealed: &[(String, Vec<u8>)],
        meta_key: &str,
        meta_value: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        dispatch!(self, e => e.reseal_keys(sealed, meta_key, meta_value, audit).await)
    }

    /// Raises the numeric meta value `key` to at least `value`.
    pub async fn raise_meta(&self, key: &str, value: i64) -> Result<(), StoreError> {
        dispatch!(self, e => e.raise_meta(key, value).await)
    }

    /// Signing keys still published at `at`, oldest first.
    pub async fn live_keys(&self, at: i64) -> Result<Vec<KeyRecord>, StoreError> {
        dispatch!(self, e => e.live_keys(at).await)
    }

    /// Every signing key, retired ones included, oldest first.
    pub async fn all_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        dispatch!(self, e => e.all_keys().await)
    }

    /// Deletes keys retired for longer than `age`, private parts and all.
    pub async fn prune_retired_keys(&self, age: Duration) -> Result<u64, StoreError> {
        dispatch!(self, e => e.prune_retired_keys(age).await)
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

    /// Streams the revoked token ids that have not expired yet, with their expiry, into `sink`,
    /// so a node never holds all rows in memory at once.
    pub async fn for_each_revoked(&self, sink: impl FnMut(&str, i64)) -> Result<u64, StoreError> {
        dispatch!(self, e => e.for_each_revoked(sink).await)
    }

    /// Those of `ids` that are revoked and not expired yet, with their expiry.
    pub async fn revoked_tokens(&self, ids: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        dispatch!(self, e => e.revoked_tokens(ids).await)
    }

    /// Forgets revocations of tokens that have expired anyway.
    pub async fn prune_revocations(&self) -> Result<u64, StoreError> {
        dispatch!(self, e => e.prune_revocations().await)
    }

    /// Records an audit entry on its own (for changes that have no other write).
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        dispatch!(self, e => e.audit(entry).await)
    }

    /// Audit events at or after `since`, oldest first, at most `limit`, after event id `after`.
    pub async fn audit_events(
        &self,
        since: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        dispatch!(self, e => e.audit_events(since, after, limit).await)
    }

    /// The newest change sequence number.
    pub async fn change_seq(&self) -> Result<i64, StoreError> {
        dispatch!(self, e => e.change_seq().await)
    }

    /// What changed after `seq`: at most 10,000 entries, in order; call again until `seq` stops
    /// moving.
    pub async fn changes_since(&self, seq: i64) -> Result<ChangeBatch, StoreError> {
        dispatch!(self, e => e.changes_since(seq).await)
    }

    /// Forgets change-log entries older than `age` (never the newest).
    pub async fn prune_changes(&self, age: Duration) -> Result<u64, StoreError> {
        dispatch!(self, e => e.prune_changes(age).await)
    }

    /// Every meta value (export).
    pub async fn all_meta(&self) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, e => e.all_meta().await)
    }

    /// Whether the store holds no client, no user and no key (import refuses anything else).
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        dispatch!(self, e => e.is_empty().await)
    }

    /// Streams everything the store holds to `sink`, read in one snapshot (export).
    pub async fn export(&self, sink: impl FnMut(Record)) -> Result<u64, StoreError> {
        dispatch!(self, e => e.export(sink).await)
    }

    /// Writes `records` exactly as they are (ids, times, hashes, sealed keys), in one
    /// transaction, refusing a store that is not empty. Every node then reloads.
    pub async fn import(&self, records: &[Record]) -> Result<(), StoreError> {
        dispatch!(self, e => e.import(records).await)
    }

    /// Stores a new browser session.
    pub async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        dispatch!(self, e => e.insert_session(session).await)
    }

    /// The session `id` if it has not ended.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        dispatch!(self, e => e.session(id).await)
    }

    /// Ends session `id`; `false` when there was none.
    pub async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self, e => e.delete_session(id).await)
    }

    /// The scopes `user_id` allowed `client_id`, if any.
    pub async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<Vec<String>>, StoreError> {
        dispatch!(self, e => e.consent(user_id, client_id).await)
    }

    /// Records that `user_id` allowed `client_id` these scopes (replacing what was there).
    pub async fn grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        dispatch!(self, e => e.grant_consent(user_id, client_id, scopes).await)
    }

    /// Stores a new authorization code.
    pub async fn insert_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        dispatch!(self, e => e.insert_code(code).await)
    }

    /// Redeems code `id` once, under the write lock, so that of any number of nodes exactly one
    /// redeems it. `matches` checks the request against what the code grants (client, redirect
    /// URI, PKCE): if it says no, nothing changes. On a second use, what the first issued
    /// (`issued` was recorded then) is revoked: its access token and refresh-token family.
    /// `refresh` may return the first refresh token of that family: it is stored in the same
    /// transaction, so a second use racing this one cannot miss it.
    pub async fn redeem_code(
        &self,
        id: &str,
        matches: impl FnOnce(&Grant) -> bool,
        issued: &Issued,
        refresh: impl FnOnce(&Grant) -> Option<RefreshRecord>,
    ) -> Result<Redemption, StoreError> {
        dispatch!(self, e => e.redeem_code(id, matches, issued, refresh).await)
    }

    /// Stores a new refresh token (the first of its family).
    pub async fn insert_refresh(&self, token: &RefreshRecord) -> Result<(), StoreError> {
        dispatch!(self, e => e.insert_refresh(token).await)
    }

    /// Spends refresh token `id` and stores `next(old)` in its place, under the write lock.
    /// `client_id` must be the token's client, and `next` may refuse (`None`, e.g. a scope
    /// wider than granted): either way nothing changes ([`Refresh::Refused`]). A token used
    /// before revokes its family (every token of it, and the access tokens they came with).
    pub async fn rotate_refresh(
        &self,
        id: &str,
        client_id: &str,
        next: impl FnOnce(&RefreshRecord) -> Option<RefreshRecord>,
    ) -> Result<Refresh, StoreError> {
        dispatch!(self, e => e.rotate_refresh(id, client_id, next).await)
    }

    /// Revokes the family of refresh token `id` if it belongs to `client_id` (RFC 7009), with
    /// the access tokens issued beside it (returned, with their expiry); `None` when there was
    /// no such token.
    pub async fn revoke_refresh(
        &self,
        id: &str,
        client_id: &str,
    ) -> Result<Option<Vec<(String, i64)>>, StoreError> {
        dispatch!(self, e => e.revoke_refresh(id, client_id).await)
    }

    /// Forgets ended sessions, codes past keeping and refresh-token families past their
    /// absolute lifetime.
    pub async fn prune_sign_in(&self) -> Result<u64, StoreError> {
        dispatch!(self, e => e.prune_sign_in().await)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        dispatch!(self, e => e.close().await)
    }
}
