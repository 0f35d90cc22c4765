//! TLS with rustls, from a certificate chain and a private key in PEM files, reloaded when the
//! files change (a renewed certificate is served without a restart). HTTP/2 and HTTP/1.1 are
//! offered by ALPN.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::config::TlsFiles;

/// How often the files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Largest certificate or key file read.
const MAX_PEM: u64 = 1024 * 1024;

fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM + 1).read_to_end(&mut out))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if out.len() as u64 > MAX_PEM {
        return Err(format!("{} is larger than 1 MiB", path.display()));
    }
    Ok(out)
}

/// Loads and checks a certificate chain and its key. The error is one line naming the file.
pub fn load(files: &TlsFiles) -> Result<CertifiedKey, String> {
    let cert_pem = read_pem(&files.cert)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain ({e})", files.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", files.cert.display()));
    }
    let key_pem = read_pem(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{}: not a PEM private key ({e})", files.key.display()))?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|e| format!("{}: unusable private key ({e})", files.key.display()))?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| {
        format!(
            "{} does not belong to the certificate in {} ({e})",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(certified)
}

/// Serves the current certificate, swapped whole when the files change.
#[derive(Debug)]
pub struct Reloading {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(crate::sync::read(&self.current).clone())
    }
}

fn stamp(files: &TlsFiles) -> Option<(SystemTime, u64, SystemTime, u64)> {
    let c = std::fs::metadata(&files.cert).ok()?;
    let k = std::fs::metadata(&files.key).ok()?;
    Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
}

/// Asks every client for a certificate and takes whatever it presents (or nothing), once the
/// handshake proves it holds the certificate's key: which certificates a client may use is the
/// token endpoint's business (`tls_client_auth` validates the chain against the `[mtls]` CAs,
/// `self_signed_tls_client_auth` compares thumbprints), and a client without one is unaffected.
#[derive(Debug)]
struct RequestedClientCertificate {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::server::danger::ClientCertVerifier for RequestedClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS acceptor for `files` (asking clients for certificates with `client_certificates`), and
/// the resolver that a reload task updates.
pub fn acceptor(
    files: &TlsFiles,
    client_certificates: bool,
) -> Result<(tokio_rustls::TlsAcceptor, Arc<Reloading>), String> {
    let certified = load(files)?;
    let resolver = Arc::new(Reloading {
        files: files.clone(),
        current: RwLock::new(Arc::new(certified)),
    });
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if client_certificates {
        builder.with_client_cert_verifier(Arc::new(RequestedClientCertificate { algorithms }))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), resolver))
}

/// Reloads the certificate when its files change, until `shutdown`. A change that does not
/// load (a half-written file, a key that does not match) is logged and the old certificate
/// stays; the next change is tried again.
pub async fn reload_loop(resolver: Arc<Reloading>, mut shutdown: watch::Receiver<bool>) {
    let mut last = stamp(&resolver.files);
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = stamp(&resolver.files);
        if now == last {
            continue;
        }
        match load(&resolver.files) {
            Ok(certified) => {
                *crate::sync::write(&resolver.current) = Arc::new(certified);
                last = now;
                tracing::info!(cert = %resolver.files.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate changed but cannot be loaded; serving the previous one");
                last = now;
            }
        }
    }
}
