//! Mutual TLS client authentication (RFC 8705 §2): the client's TLS certificate, on Tessera's
//! own TLS listener or forwarded by a trusted proxy, with `client_id` in the form and no other
//! credentials.
//!
//! - `tls_client_auth` (§2.1): the chain is validated (RFC 5280, by rustls-webpki) up to one of
//!   the `[mtls] ca_file` CAs, for client authentication, at the node's time; and the leaf
//!   carries the one subject the client registered: its subject DN (RFC 4514, compared with
//!   spaces around separators ignored), or a DNS, URI (a SPIFFE ID), IP (compared as an
//!   address) or email SAN.
//! - `self_signed_tls_client_auth` (§2.2): no chain; the leaf's SHA-256 is one the client
//!   registered.
//! - A public client presenting a certificate is what it always is (`none`): the certificate
//!   proves nothing about it here.
//!
//! Every failure is the same `invalid_client`, the reason in the log only, counted by the
//! back-off as for secrets.

use std::net::IpAddr;
use std::sync::Arc;

use http::header;

use super::{AuthMethod, Credentials, Presented, Verifying, log_id};
use crate::app::App;
use crate::clients::{AuthFailure, CachedClient};
use crate::limits::Subject;
use crate::model::auth::{PeerCertificate, TlsSubject, TokenAuth};
use crate::oauth::OAuthError;

/// `tls_client_auth` and `self_signed_tls_client_auth`.
pub struct MutualTls;

impl AuthMethod for MutualTls {
    fn name(&self) -> &'static str {
        "tls_client_auth"
    }

    fn names(&self) -> &'static [&'static str] {
        &["tls_client_auth", "self_signed_tls_client_auth"]
    }

    fn presented_as(&self) -> &'static str {
        "a client certificate"
    }

    fn available(&self, settings: &crate::config::Settings) -> bool {
        settings.mtls.is_some()
    }

    fn find(&self, request: &Presented<'_>) -> Result<Option<Credentials>, OAuthError> {
        let Some(certificate) = request.certificate else {
            return Ok(None);
        };
        let form = request.form;
        // With other credentials, the certificate is not how the client authenticates.
        if request.headers.contains_key(header::AUTHORIZATION)
            || form.get("client_secret").is_some()
            || form.get("client_assertion").is_some()
            || form.get("client_assertion_type").is_some()
        {
            return Ok(None);
        }
        // RFC 8705 §2: the request carries client_id.
        let Some(client_id) = form.get("client_id") else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            client_id: client_id.to_string(),
            secret: certificate.thumbprint(),
            method: &MutualTls,
            certificate: None,
        }))
    }

    fn allowed(&self, client: &CachedClient) -> bool {
        client.public
            || matches!(
                client.auth,
                TokenAuth::TlsClientAuth | TokenAuth::SelfSignedTlsClientAuth
            )
    }

    fn verify<'a>(&'a self, app: &'a App, creds: &'a Credentials, address: IpAddr) -> Verifying<'a> {
        Box::pin(verify(app, creds, address))
    }
}

fn failed() -> OAuthError {
    OAuthError::InvalidClient("client authentication failed".into())
}

async fn verify(app: &App, creds: &Credentials, address: IpAddr) -> Result<Arc<CachedClient>, OAuthError> {
    let result = match app.registry.get(&creds.client_id) {
        None => Err(("unknown client", true)),
        Some(client) => check(app, &client, creds)
            .map(|()| client)
            .map_err(|why| (why, false)),
    };
    let log = |(why, unknown): (&str, bool)| {
        let logged = if unknown {
            log_id(&creds.client_id, AuthFailure::UnknownClient)
        } else {
            creds.client_id.clone()
        };
        tracing::info!(client = %logged, method = "tls_client_auth", reason = why, "client authentication failed");
    };
    let subject = Subject::Client(&creds.client_id);
    super::settle(app, subject, address, std::future::ready(result), log, failed()).await
}

/// The certificate the request came with: its thumbprint is the credentials' proof, and the
/// chain is read again from the connection (the registry of connections is the request's).
fn check(app: &App, client: &CachedClient, creds: &Credentials) -> Result<(), &'static str> {
    if !client.enabled {
        return Err("client disabled");
    }
    if client.public {
        return Ok(());
    }
    match client.auth {
        TokenAuth::SelfSignedTlsClientAuth => {
            if client.tls_thumbprints.iter().any(|t| **t == creds.secret) {
                Ok(())
            } else {
                Err("certificate not registered for the client")
            }
        }
        TokenAuth::TlsClientAuth => {
            let certificate = creds.certificate.as_ref().ok_or("no certificate")?;
            let expected = client.tls_subject.as_deref().ok_or("no subject registered")?;
            let roots = app
                .settings
                .mtls
                .as_ref()
                .map(|m| m.roots.as_slice())
                .unwrap_or_default();
            validate_chain(certificate, roots, app.clock.now())?;
            if carries(certificate.leaf(), expected) {
                Ok(())
            } else {
                Err("certificate does not carry the registered subject")
            }
        }
        _ => Err("the client does not authenticate with a certificate"),
    }
}

/// Whether `certificate` chains to one of `roots` (DER), for client authentication, at `now`.
fn validate_chain(certificate: &PeerCertificate, roots: &[Vec<u8>], now: i64) -> Result<(), &'static str> {
    use rustls::pki_types::{CertificateDer, UnixTime};
    if roots.is_empty() {
        return Err("no [mtls] ca_file configured");
    }
    let anchors: Vec<_> = roots
        .iter()
        .filter_map(|r| {
            webpki::anchor_from_trusted_cert(&CertificateDer::from(r.as_slice()))
                .ok()
                .map(|a| a.to_owned())
        })
        .collect();
    let leaf = CertificateDer::from(certificate.leaf());
    let end = webpki::EndEntityCert::try_from(&leaf).map_err(|_| "not an X.509 certificate")?;
    let intermediates: Vec<CertificateDer<'_>> = certificate.chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    end.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        time,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|_| "certificate does not chain to a trusted CA")
}

/// Whether the leaf certificate `der` carries `expected`.
fn carries(der: &[u8], expected: &TlsSubject) -> bool {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let names: Vec<GeneralName<'_>> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| ext.value.general_names.clone())
        .unwrap_or_default();
    match expected {
        TlsSubject::SubjectDn(dn) => normalize_dn(&cert.subject().to_string()) == normalize_dn(dn),
        TlsSubject::SanDns(want) => names
            .iter()
            .any(|n| matches!(n, GeneralName::DNSName(d) if d.eq_ignore_ascii_case(want))),
        TlsSubject::SanUri(want) => names
            .iter()
            .any(|n| matches!(n, GeneralName::URI(u) if u == want)),
        TlsSubject::SanEmail(want) => names
            .iter()
            .any(|n| matches!(n, GeneralName::RFC822Name(e) if e.eq_ignore_ascii_case(want))),
        TlsSubject::SanIp(want) => {
            let Ok(want) = want.parse::<IpAddr>() else {
                return false;
            };
            let bytes: Vec<u8> = match want {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            names
                .iter()
                .any(|n| matches!(n, GeneralName::IPAddress(ip) if *ip == bytes.as_slice()))
        }
    }
}

/// A DN for comparison: attributes as written, without the spaces around `,` and `=`.
fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguished_names_compare_without_spaces() {
        assert_eq!(
            normalize_dn("CN=billing, O=Acme"),
            normalize_dn("CN = billing,O=Acme")
        );
        assert_ne!(
            normalize_dn("CN=billing,O=Acme"),
            normalize_dn("CN=billing,O=Evil")
        );
    }
}
