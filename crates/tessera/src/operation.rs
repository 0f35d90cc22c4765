//! Who performs an operation on the store's clients, users and keys, and how such an operation
//! fails: shared by the operations themselves (clients in [`crate::admin`], [`crate::users`],
//! [`crate::signing`]) and by the CLI and admin API that call them.

use std::sync::Arc;

use crate::model::AuditEntry;
use crate::model::clock::{Clock, SystemClock};
use crate::store::StoreError;

/// Who performs an administrative operation, from where, and by which clock: recorded with
/// every change, and the time the operation stamps (token revocation, secret expiry) is the
/// actor's, so that an operation through a node's admin API runs on that node's clock.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `cli:USER`, `client:ID` or `tessera`.
    pub id: String,
    /// Host (CLI) or peer address (API).
    pub source: String,
    /// The time the operation happens at.
    pub clock: Arc<dyn Clock>,
}

impl Actor {
    /// The operator at this machine's command line.
    pub fn cli() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        Actor {
            id: format!("cli:{user}"),
            source: format!("cli@{host}"),
            clock: Arc::new(SystemClock),
        }
    }

    /// The server itself (bootstrap, scheduled rotation).
    pub fn server() -> Self {
        Actor {
            id: "tessera".into(),
            source: "server".into(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same actor, acting on `clock` (a node's).
    pub fn on(self, clock: Arc<dyn Clock>) -> Self {
        Actor { clock, ..self }
    }

    /// Now, by the actor's clock (seconds since the Unix epoch).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// An audit entry for `action` on `target`.
    pub fn entry(&self, action: &str, target: &str, details: serde_json::Value) -> AuditEntry {
        AuditEntry {
            actor: self.id.clone(),
            source: self.source.clone(),
            action: action.into(),
            target: target.into(),
            details,
        }
    }
}

/// An administrative failure.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input broke a rule.
    #[error("{0}")]
    Invalid(String),
    /// No such client.
    #[error("no client with id {0}")]
    NotFound(String),
    /// No such user.
    #[error("no user {0}")]
    NoUser(String),
    /// No such trust policy.
    #[error("no trust policy with id {0}")]
    NoTrustPolicy(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
