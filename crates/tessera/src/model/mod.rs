//! The rules of the domain that every layer reads, and that import nothing of the server: the
//! bottom layer (see ARCHITECTURE.md). More of the domain's types and rules move here as the
//! layers are drawn. The records the store keeps (clients, users, keys, sign-in state, audit
//! entries) are defined here, so the store imports the model and nothing above it.

pub mod audit;
pub mod auth;
pub mod client;
pub mod client_metadata;
pub mod clock;
pub mod device;
pub mod exchange;
pub mod flows;
pub mod key;
pub mod paths;
pub mod redirect;
pub mod registration;
pub mod scope;
pub mod sign_in;
pub mod trust;
pub mod user;
pub mod values;

pub use audit::{AuditEntry, AuditEvent, AuditFilter};
pub use client::{ClientRecord, SecretKind, SecretRecord};
pub use key::{KeyPurpose, KeyRecord};
pub use sign_in::{
    CodeRecord, Grant, Issued, Redemption, Refresh, RefreshRecord, SessionRecord, SignInsEnded,
};
pub use user::{UserRecord, email_key};

/// Longest token lifetime a client may have: one day.
pub const MAX_TOKEN_TTL: u32 = 86_400;
/// Default token lifetime.
pub const DEFAULT_TOKEN_TTL: u32 = 3600;

/// The scope that lets a client's tokens call the admin API.
pub const ADMIN_SCOPE: &str = "tessera:admin";
/// The audience (RFC 8707 resource) of tokens meant for the admin API. Admin tokens must carry
/// it, so a token with the admin scope that was issued for some other API cannot be replayed
/// against the admin API by that API.
pub const ADMIN_AUDIENCE: &str = "urn:tessera:admin";
