//! The `[sign_in]` table.

use serde::Deserialize;

/// How long people stay signed in (the `[sign_in]` table), in seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInSettings {
    /// A browser session at the authorization endpoint (12 hours).
    pub session_ttl: u64,
    /// A refresh token unused for this long expires (14 days).
    pub refresh_token_idle_ttl: u64,
    /// A refresh-token family ends this long after the sign-in, used or not (30 days).
    pub refresh_token_ttl: u64,
    /// A device's codes (RFC 8628) work this long (10 minutes).
    pub device_code_ttl: u64,
    /// Seconds a device waits between polls of the token endpoint (5, as RFC 8628 §3.2 says
    /// when none is given).
    pub device_poll_interval: u64,
}

impl Default for SignInSettings {
    fn default() -> Self {
        SignInSettings {
            session_ttl: 12 * 3600,
            refresh_token_idle_ttl: 14 * 86_400,
            refresh_token_ttl: 30 * 86_400,
            device_code_ttl: 600,
            device_poll_interval: 5,
        }
    }
}
