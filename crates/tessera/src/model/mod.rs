//! The rules of the domain that every layer reads, and that import nothing of the server: the
//! bottom layer (see ARCHITECTURE.md). More of the domain's types and rules move here as the
//! layers are drawn.

pub mod paths;
pub mod scope;

/// Longest token lifetime a client may have: one day.
pub const MAX_TOKEN_TTL: u32 = 86_400;
/// Default token lifetime.
pub const DEFAULT_TOKEN_TTL: u32 = 3600;
