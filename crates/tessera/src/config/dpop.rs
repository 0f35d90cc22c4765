//! The `[dpop]` table: how DPoP proofs (RFC 9449) are checked at the token endpoint, the
//! userinfo endpoint and the admin API.

use serde::Deserialize;
use tessera_verify::dpop::Window;

use super::ConfigError;

/// `[dpop]` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DpopFile {
    require_nonce: Option<bool>,
    nonce_lifetime: Option<u64>,
    proof_max_age: Option<u64>,
}

/// DPoP settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopSettings {
    /// Every proof must carry a nonce this server issued (RFC 9449 §8); a proof without one is
    /// answered `use_dpop_nonce` with a fresh nonce in `DPoP-Nonce`.
    pub require_nonce: bool,
    /// How long a nonce lasts: issued nonces change this often, and each is accepted for one
    /// to two of these (seconds).
    pub nonce_lifetime: u64,
    /// How old a proof's `iat` may be, and how far ahead.
    pub window: Window,
}

impl Default for DpopSettings {
    fn default() -> Self {
        DpopSettings {
            require_nonce: false,
            nonce_lifetime: 300,
            window: Window::default(),
        }
    }
}

impl DpopFile {
    /// The settings, or what is wrong (`source` names the table).
    pub(super) fn settings(self, source: &str) -> Result<DpopSettings, ConfigError> {
        let d = DpopSettings::default();
        let nonce_lifetime = self.nonce_lifetime.unwrap_or(d.nonce_lifetime);
        if !(10..=3600).contains(&nonce_lifetime) {
            return Err(ConfigError(format!(
                "invalid nonce_lifetime in {source}: must be 10 to 3600 seconds, not {nonce_lifetime}"
            )));
        }
        let max_age = self.proof_max_age.unwrap_or(d.window.max_age);
        if !(10..=600).contains(&max_age) {
            return Err(ConfigError(format!(
                "invalid proof_max_age in {source}: must be 10 to 600 seconds, not {max_age}"
            )));
        }
        Ok(DpopSettings {
            require_nonce: self.require_nonce.unwrap_or(false),
            nonce_lifetime,
            window: Window {
                max_age,
                leeway: d.window.leeway,
            },
        })
    }
}
