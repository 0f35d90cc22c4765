//! Clients that register themselves: how a client came to be when no operator made it (RFC 7591
//! dynamic registration, or a client ID metadata document), and the initial access tokens an
//! operator issues. The metadata rules are `client_metadata`'s.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a client came to be when not by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// It registered itself (RFC 7591).
    Registration,
    /// Its client id is the URL of the metadata document it publishes.
    MetadataDocument,
}

impl Origin {
    /// The name the CLI, the admin API and the audit trail use.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Registration => "registration",
            Origin::MetadataDocument => "metadata_document",
        }
    }
}

/// What the store keeps about a self-registered client beside its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// How it came to be.
    pub origin: Origin,
    /// The SHA-256 (hex) of its registration access token (RFC 7592), for a registered client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// An operator vouched for it: its consent page carries no warning, and a consent once given
    /// is remembered; it is never pruned as abandoned.
    #[serde(default)]
    pub approved: bool,
    /// Metadata kept to show and to echo (`client_uri`, `logo_uri`, `tos_uri`, `policy_uri`,
    /// `contacts`, `software_id`, `software_version`). Tessera never fetches these.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// For a metadata document: when it must be fetched again (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_until: Option<i64>,
}

/// An initial access token (RFC 7591 §3): what an operator hands out so that a client may
/// register when registration is not open. Stored by the SHA-256 of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialToken {
    /// Its public id (to list and revoke it).
    pub id: String,
    /// SHA-256 (hex) of its value.
    pub hash: String,
    /// What it is for.
    pub note: String,
    /// When it was made.
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// Registrations it may still make.
    pub uses_left: i64,
}

/// What storing a self-registered client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The client is stored.
    Stored,
    /// The initial access token has expired, is used up, or was never issued.
    TokenRefused,
    /// As many self-registered clients as allowed exist already.
    Full,
}
