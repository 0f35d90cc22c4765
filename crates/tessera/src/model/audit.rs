//! The audit trail's entries.

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

/// Which audit events a page shows (the console): each filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Who acted, exactly (`user:ID`, `client:ID`, `cli:USER`, `tessera`).
    pub actor: Option<String>,
    /// What they did, exactly (`client.create`).
    pub action: Option<String>,
    /// On what, exactly (a client, user or key id).
    pub target: Option<String>,
    /// At or after this time.
    pub since: Option<i64>,
    /// At or before this time.
    pub until: Option<i64>,
}
