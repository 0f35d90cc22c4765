//! The `[registration]` table: whether clients may register themselves (RFC 7591), whether a
//! client id may be the URL of a client ID metadata document, and the policy both follow.

use serde::Deserialize;

use super::ConfigError;
use crate::model::client_metadata::Policy;

/// `[registration]` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegistrationFile {
    mode: Option<String>,
    metadata_documents: Option<bool>,
    grant_types: Option<Vec<String>>,
    confidential: Option<bool>,
    scopes: Option<Vec<String>>,
    audiences: Option<Vec<String>>,
    token_ttl: Option<u32>,
    per_address_per_hour: Option<u32>,
    max_clients: Option<u64>,
    unused_expiry: Option<u64>,
    approved_documents: Option<Vec<String>>,
    document_cache_max: Option<u64>,
}

/// Who may register at the registration endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No registration endpoint (the default).
    Off,
    /// Anyone may register (RFC 7591 §3: open registration).
    Open,
    /// Only with an initial access token an operator issued.
    Token,
}

/// Self-registration settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationSettings {
    /// The registration endpoint: off, open, or with an initial access token.
    pub mode: Mode,
    /// A client id may be an `https` URL where the client publishes its metadata.
    pub metadata_documents: bool,
    /// What self-registered clients may have.
    pub policy: Policy,
    /// Registration attempts (and first fetches of metadata documents) one address may make
    /// per hour, counted on each node; refused attempts count too.
    pub per_address_per_hour: u32,
    /// Most self-registered clients the store holds.
    pub max_clients: u64,
    /// A self-registered client never used (no consent, code or refresh token) this long after
    /// it registered is deleted (seconds).
    pub unused_expiry: u64,
    /// Metadata-document URLs an operator vouches for.
    pub approved_documents: Vec<String>,
    /// Longest a metadata document is used before it is fetched again, whatever its
    /// `Cache-Control` says (seconds).
    pub document_cache_max: u64,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        RegistrationSettings {
            mode: Mode::Off,
            metadata_documents: false,
            policy: Policy::default(),
            per_address_per_hour: 60,
            max_clients: 10_000,
            unused_expiry: 86_400,
            approved_documents: Vec::new(),
            document_cache_max: 86_400,
        }
    }
}

impl RegistrationSettings {
    /// Whether any client may come to be without an operator.
    pub fn any(&self) -> bool {
        self.mode != Mode::Off || self.metadata_documents
    }
}

impl RegistrationFile {
    /// The settings, or what is wrong (`source` names the table).
    pub(super) fn settings(self, source: &str) -> Result<RegistrationSettings, ConfigError> {
        let bad = |what: String| ConfigError(format!("invalid {what} in {source}"));
        let d = RegistrationSettings::default();
        let mode = match self.mode.as_deref() {
            None | Some("off") => Mode::Off,
            Some("open") => Mode::Open,
            Some("token") => Mode::Token,
            Some(other) => return Err(bad(format!("mode {other:?} (off, open or token)"))),
        };
        let grant_types = self.grant_types.unwrap_or(d.policy.grant_types);
        for g in &grant_types {
            if !crate::model::flows::GRANT_TYPES.contains(&g.as_str()) {
                return Err(bad(format!("grant_types: {g:?} is not a grant type")));
            }
        }
        let scopes = match self.scopes {
            None => d.policy.scopes,
            Some(s) => crate::model::client::validate_scopes(&s.join(" "))
                .map_err(|e| bad(format!("scopes: {e}")))?,
        };
        let audiences = crate::model::client::validate_audiences(&self.audiences.unwrap_or_default())
            .map_err(|e| bad(format!("audiences: {e}")))?;
        let token_ttl = self.token_ttl.unwrap_or(d.policy.token_ttl);
        crate::model::client::validate_ttl(token_ttl).map_err(|e| bad(format!("token_ttl: {e}")))?;
        let unused_expiry = self.unused_expiry.unwrap_or(d.unused_expiry);
        if !(60..=366 * 86_400).contains(&unused_expiry) {
            return Err(bad(format!(
                "unused_expiry: 60 to {} seconds, not {unused_expiry}",
                366 * 86_400
            )));
        }
        let document_cache_max = self.document_cache_max.unwrap_or(d.document_cache_max);
        if !(60..=7 * 86_400).contains(&document_cache_max) {
            return Err(bad(format!(
                "document_cache_max: 60 to {} seconds, not {document_cache_max}",
                7 * 86_400
            )));
        }
        let approved_documents = self.approved_documents.unwrap_or_default();
        if let Some(u) = approved_documents
            .iter()
            .find(|u| !crate::model::client_metadata::is_document_url(u))
        {
            return Err(bad(format!(
                "approved_documents: {u:?} is not an https URL with a path"
            )));
        }
        Ok(RegistrationSettings {
            mode,
            metadata_documents: self.metadata_documents.unwrap_or(false),
            policy: Policy {
                grant_types,
                confidential: self.confidential.unwrap_or(d.policy.confidential),
                scopes,
                audiences,
                token_ttl,
            },
            per_address_per_hour: self.per_address_per_hour.unwrap_or(d.per_address_per_hour),
            max_clients: self.max_clients.unwrap_or(d.max_clients),
            unused_expiry,
            approved_documents,
            document_cache_max,
        })
    }
}
