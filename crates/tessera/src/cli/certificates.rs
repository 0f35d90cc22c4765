//! The flags that say which TLS client certificate a client presents (`client create|update`).

use clap::Args;

/// The certificate a `tls_client_auth` client presents: the one subject it must carry.
#[derive(Args, Default)]
#[group(multiple = false)]
pub(super) struct TlsArgs {
    /// Its subject DN, as RFC 4514 writes it (CN=billing,O=Acme).
    #[arg(long, value_name = "DN")]
    tls_subject_dn: Option<String>,
    /// A DNS name among its subject alternative names.
    #[arg(long, value_name = "NAME")]
    tls_san_dns: Option<String>,
    /// A URI among its SANs (a SPIFFE ID: spiffe://prod.acme/ns/payments/sa/api).
    #[arg(long, value_name = "URI")]
    tls_san_uri: Option<String>,
    /// An IP address among its SANs.
    #[arg(long, value_name = "IP")]
    tls_san_ip: Option<String>,
    /// An email address among its SANs.
    #[arg(long, value_name = "EMAIL")]
    tls_san_email: Option<String>,
}

impl TlsArgs {
    pub(super) fn subject(&self) -> Option<crate::model::auth::TlsSubject> {
        use crate::model::auth::TlsSubject as S;
        let t = |v: &Option<String>| v.clone();
        t(&self.tls_subject_dn)
            .map(S::SubjectDn)
            .or_else(|| t(&self.tls_san_dns).map(S::SanDns))
            .or_else(|| t(&self.tls_san_uri).map(S::SanUri))
            .or_else(|| t(&self.tls_san_ip).map(S::SanIp))
            .or_else(|| t(&self.tls_san_email).map(S::SanEmail))
    }
}

/// A `self_signed_tls_client_auth` client's own certificates.
#[derive(Args, Default)]
pub(super) struct CertificateArgs {
    /// Its own certificate (PEM), for self_signed_tls_client_auth; repeat for several.
    #[arg(long = "certificate-file", value_name = "FILE")]
    pub(super) certificate_files: Vec<std::path::PathBuf>,
    /// Bind its access tokens to the TLS client certificate it presents (RFC 8705 §3): tokens
    /// carry cnf.x5t#S256, and it gets them only over mutual TLS.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(super) certificate_bound_tokens: Option<bool>,
    /// Bind its access tokens to a DPoP key always (RFC 9449): a token request without a DPoP
    /// proof is refused.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(super) dpop_bound_tokens: Option<bool>,
}

impl CertificateArgs {
    /// The thumbprints of the certificates in `--certificate-file`.
    pub(super) fn thumbprints(&self) -> anyhow::Result<Vec<String>> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut out = Vec::new();
        for path in &self.certificate_files {
            let pem =
                std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let cert = CertificateDer::from_pem_slice(&pem)
                .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate ({e})", path.display()))?;
            out.push(crate::model::auth::certificate_thumbprint(&cert));
        }
        Ok(out)
    }
}
