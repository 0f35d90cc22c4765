// The store's operations, written once and compiled once per engine, one file per entity
// (`clients.rs`, `users.rs`, `keys.rs`, `sign_in.rs`, `revocations.rs`, `audit.rs`,
// `changes.rs`, `meta.rs`, `transfer.rs`) and this file for what they share.
//
// These files are not modules: `sqlite.rs` and `postgres.rs` each `include!` them (through
// `all.rs`) after defining `Db` (the sqlx database), `Engine { pool }`, and the few functions whose SQL differs:
// `Engine::begin_write` (take the store's write lock), `Engine::begin_migration`,
// `Engine::store_exists`, and `record_change` (number a change under that lock). Everything
// here uses SQL both dialects accept: `$N` placeholders, `ON CONFLICT`, `COALESCE`, `LIMIT`.

use futures_util::TryStreamExt;
use sqlx::Row;

use super::{ChangeBatch, Record, now};
use crate::model::{
    AuditEntry, AuditEvent, AuditFilter, ClientRecord, CodeRecord, Grant, Issued, KeyPurpose, KeyRecord, Redemption, Refresh,
    RefreshRecord, SecretKind, SecretRecord, SessionRecord, SignInsEnded, UserRecord,
};
use crate::model::device::{DeviceRecord, DeviceStatus, Poll};
use crate::model::registration::{InitialToken, Registered};
use crate::model::trust::TrustPolicy;

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


operations! {
    /// Closes the pool.
    pub async fn close(&self) {
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

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}
