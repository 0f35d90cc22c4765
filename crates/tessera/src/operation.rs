//! Who performs an operation on the store's clients, users and keys, and how such an operation
//! fails: shared by the operations themselves (clients in [`crate::admin`], [`crate::users`],
//! [`crate::signing`]) and by the CLI and admin API that call them.

use crate::model::AuditEntry;
use crate::store::StoreError;

/// Who performs an administrative operation, and from where. Recorded with every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `cli:USER`, `client:ID` or `tessera`.
    pub id: String,
    /// Host (CLI) or peer address (API).
    pub source: String,
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
        }
    }

    /// The server itself (bootstrap, scheduled rotation).
    pub fn server() -> Self {
        Actor {
            id: "tessera".into(),
            source: "server".into(),
        }
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
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
