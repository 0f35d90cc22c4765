//! Token exchange (RFC 8693): what a client may exchange, for which audiences, and how long the
//! tokens it gets may live — its exchange policy, stored with its flows.

use serde::{Deserialize, Serialize};

/// `subject_token_type` / `requested_token_type` / `issued_token_type` of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// … of an ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// … of a JWT (from an issuer the client's trust policies name).
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Which subject tokens a client may exchange, by short name.
pub const SUBJECT_KINDS: &[&str] = &["access_token", "id_token", "jwt"];

/// A client's exchange policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangePolicy {
    /// Audiences (RFC 8707 resources, RFC 8693 `audience`) exchanged tokens may be for; the
    /// first is the default.
    pub audiences: Vec<String>,
    /// Subject tokens it may exchange: `access_token` (Tessera's), `id_token` (Tessera's, issued
    /// to this client), `jwt` (an external issuer's, admitted by this client's trust policies).
    #[serde(default = "default_kinds")]
    pub subject_token_types: Vec<String>,
    /// A subject token must be meant for one of these audiences (the APIs this client serves),
    /// or for the client itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_audiences: Vec<String>,
    /// It may act on the subject's behalf, saying so (`actor_token` given: `act` names it).
    #[serde(default)]
    pub delegation: bool,
    /// It may become the subject (no `actor_token`: the new token is the subject's, with the
    /// subject's own `act` chain if it had one).
    #[serde(default)]
    pub impersonation: bool,
    /// Longest an exchanged token lives (seconds; default the client's token lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<u32>,
    /// An exchanged token may outlive its subject token (never, by default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outlive_subject: bool,
}

fn default_kinds() -> Vec<String> {
    vec!["access_token".into()]
}

impl ExchangePolicy {
    /// Whether subject tokens of kind `kind` (a [`SUBJECT_KINDS`] name) may be exchanged.
    pub fn takes(&self, kind: &str) -> bool {
        self.subject_token_types.iter().any(|k| k == kind)
    }

    /// Checks the policy's own rules.
    pub fn validate(&self) -> Result<(), String> {
        if !self.delegation && !self.impersonation {
            return Err("an exchange policy allows delegation, impersonation or both".into());
        }
        if self.audiences.is_empty() {
            return Err("an exchange policy names at least one audience".into());
        }
        super::values::validate_audiences(&self.audiences)?;
        super::values::validate_audiences(&self.subject_audiences)?;
        if self.subject_token_types.is_empty() {
            return Err("an exchange policy takes at least one subject token type".into());
        }
        if let Some(k) = self
            .subject_token_types
            .iter()
            .find(|k| !SUBJECT_KINDS.contains(&k.as_str()))
        {
            return Err(format!(
                "subject token type {k:?} is not one of {}",
                SUBJECT_KINDS.join(", ")
            ));
        }
        if let Some(t) = self.max_ttl {
            super::values::validate_ttl(t)?;
        }
        Ok(())
    }
}

/// The short name of a `subject_token_type` URI, if Tessera takes that type.
pub fn kind_of(token_type: &str) -> Option<&'static str> {
    match token_type {
        ACCESS_TOKEN_TYPE => Some("access_token"),
        ID_TOKEN_TYPE => Some("id_token"),
        JWT_TYPE => Some("jwt"),
        _ => None,
    }
}
