//! The `[outbound]` table: where Tessera may fetch what an operator names by address (a client's
//! `jwks_uri`, a trusted issuer's keys).

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::client_keys::OutboundSettings;

/// `[outbound]` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutboundFile {
    allow_networks: Option<Vec<String>>,
    allow_http_loopback: Option<bool>,
    timeout: Option<u64>,
    ca_file: Option<std::path::PathBuf>,
}

impl OutboundFile {
    /// The settings, or what is wrong (`source` names the table for the message).
    pub(super) fn settings(self, source: &str) -> Result<OutboundSettings, ConfigError> {
        let allow_networks = self
            .allow_networks
            .unwrap_or_default()
            .iter()
            .map(|n| {
                n.parse::<ipnet::IpNet>()
                    .or_else(|_| n.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "invalid allow_networks in {source}: {n:?} is not a network"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let timeout = self.timeout.unwrap_or(5);
        if !(1..=60).contains(&timeout) {
            return Err(ConfigError(format!(
                "invalid timeout in {source}: must be 1 to 60 seconds, not {timeout}"
            )));
        }
        let ca_pem = match &self.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    ConfigError(format!("cannot read ca_file {} in {source}: {e}", path.display()))
                })?;
                if reqwest::Certificate::from_pem_bundle(&pem).map_or(true, |c| c.is_empty()) {
                    return Err(ConfigError(format!(
                        "ca_file {} in {source} holds no PEM certificate",
                        path.display()
                    )));
                }
                Some(pem)
            }
        };
        Ok(OutboundSettings {
            ca_pem,
            allow_networks,
            allow_http_loopback: self.allow_http_loopback.unwrap_or(false),
            timeout: Duration::from_secs(timeout),
        })
    }
}
