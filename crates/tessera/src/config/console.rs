//! The `[console]` table: the admin console at `/console`.

use serde::Deserialize;

/// The admin console's settings.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Serve the console (on by default; people need an `admin` or `auditor` role to use it).
    pub enabled: bool,
    /// A console session ends after this many seconds without a request (15 minutes).
    pub idle_timeout: u64,
    /// A console session ends this long after signing in, whatever happens (8 hours).
    pub session_ttl: u64,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            enabled: true,
            idle_timeout: 15 * 60,
            session_ttl: 8 * 3600,
        }
    }
}
