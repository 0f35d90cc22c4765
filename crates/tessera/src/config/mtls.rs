//! The `[mtls]` table: mutual TLS client authentication (RFC 8705). Its presence makes the TLS
//! listener ask for client certificates (never require them: other clients are unaffected).

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

use super::ConfigError;

/// `[mtls]` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MtlsFile {
    ca_file: Option<String>,
    proxy_header: Option<String>,
}

/// Mutual TLS settings.
#[derive(Debug, Clone, Default)]
pub struct MtlsSettings {
    /// The CAs whose client certificates `tls_client_auth` accepts (DER).
    pub roots: Vec<Vec<u8>>,
    /// A header in which a TLS-terminating proxy forwards the client's certificate (URL-encoded
    /// PEM, as nginx's `$ssl_client_escaped_cert`), believed only from `limits.trusted_proxies`.
    pub proxy_header: Option<http::HeaderName>,
}

impl MtlsFile {
    /// The settings, or what is wrong (`source` names the table).
    pub(super) fn settings(self, source: &str) -> Result<MtlsSettings, ConfigError> {
        let mut roots = Vec::new();
        if let Some(file) = &self.ca_file {
            let pem = std::fs::read(Path::new(file))
                .map_err(|e| ConfigError(format!("invalid ca_file in {source}: cannot read {file}: {e}")))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.map_err(|e| ConfigError(format!("invalid ca_file in {source}: {file}: {e}")))?;
                roots.push(cert.to_vec());
            }
            if roots.is_empty() {
                return Err(ConfigError(format!(
                    "invalid ca_file in {source}: {file} holds no certificate"
                )));
            }
        }
        let proxy_header = self
            .proxy_header
            .map(|h| {
                http::HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| ConfigError(format!("invalid proxy_header in {source}: {h:?}")))
            })
            .transpose()?;
        Ok(MtlsSettings { roots, proxy_header })
    }
}
