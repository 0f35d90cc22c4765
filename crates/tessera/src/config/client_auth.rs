//! Settings of client authentication.

use super::ConfigError;

/// Whether `assertion_audience` (from `source`) lets a client assertion name the token endpoint
/// URL besides the issuer: `issuer_or_token_endpoint` (the default) or `issuer`.
pub(super) fn token_endpoint_audience(value: Option<&str>, source: &str) -> Result<bool, ConfigError> {
    match value {
        None | Some("issuer_or_token_endpoint") => Ok(true),
        Some("issuer") => Ok(false),
        Some(other) => Err(ConfigError(format!(
            "invalid assertion_audience (from {source}): \"issuer\" or \"issuer_or_token_endpoint\", not {other:?}"
        ))),
    }
}
