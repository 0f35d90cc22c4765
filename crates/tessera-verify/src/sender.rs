//! Sender-constrained tokens at a resource server: a whole request checked, the access token
//! and what it is bound to (a DPoP key, RFC 9449 §7; a TLS client certificate, RFC 8705 §3).
//!
//! [`Verifier::verify_request`] is the framework-free entry; [`BearerAuthLayer`] calls it. What
//! the verifier accepts is set on its builder: [`VerifierBuilder::binding`] (bearer and bound
//! tokens, bound only, or bearer only), [`VerifierBuilder::public_url`] (the API's URL as
//! clients address it, for the proof's `htu`: behind a proxy the request's own `Host` cannot be
//! trusted), the proof window, the replay cache and nonces.
//!
//! [`BearerAuthLayer`]: crate::BearerAuthLayer

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::dpop::{self, Binding, BindingError, Nonces, Presentation, ProofError, ReplayCache, Window};
use crate::{Claims, Verifier, VerifierBuilder, VerifyError};

/// Proofs remembered by default, for their single use.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// A TLS client certificate (DER) the request came with: put it into the request's extensions
/// from your TLS acceptor, and certificate-bound tokens are checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate(pub Vec<u8>);

/// What a verified token was bound to, as the request proved it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenBinding {
    /// The thumbprint of the DPoP key whose proof came with the request (`cnf.jkt`).
    pub dpop_jkt: Option<String>,
    /// The thumbprint of the TLS client certificate presented (`cnf.x5t#S256`).
    pub certificate: Option<String>,
}

impl TokenBinding {
    /// Whether the token was bound at all (else it was a bearer token).
    pub fn is_bound(&self) -> bool {
        self.dpop_jkt.is_some() || self.certificate.is_some()
    }
}

/// A request's verified token and its binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The token's claims.
    pub claims: Claims,
    /// What it was bound to.
    pub binding: TokenBinding,
}

/// Why a request was refused. [`RequestError::challenge`] is the answer to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No credentials (or another scheme): 401 with the challenges and no error code.
    #[error("no access token")]
    NoCredentials,
    /// Unreadable credentials (RFC 6750 §3.1 `invalid_request`, 400).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The token itself was refused (`invalid_token`), or the issuer is unavailable.
    #[error(transparent)]
    Token(VerifyError),
    /// The token is fine but not presented as its binding requires.
    #[error(transparent)]
    Binding(BindingError),
}

/// The HTTP answer to a refused request: status, `WWW-Authenticate` values, and a `DPoP-Nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// 400, 401 or 503.
    pub status: u16,
    /// One `WWW-Authenticate` field per value.
    pub www_authenticate: Vec<String>,
    /// The nonce to send in `DPoP-Nonce`, when nonces are required.
    pub dpop_nonce: Option<String>,
}

/// How the verifier treats bound tokens; part of [`Verifier`].
pub(crate) struct Sender {
    pub(crate) binding: Binding,
    pub(crate) public_url: Option<String>,
    pub(crate) window: Window,
    pub(crate) replay: ReplayCache,
    pub(crate) nonces: Option<Nonces>,
    pub(crate) certificate_header: Option<String>,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
}

/// The builder's sender settings, before the verifier exists.
#[derive(Clone)]
pub(crate) struct SenderSettings {
    pub(crate) binding: Binding,
    pub(crate) public_url: Option<String>,
    pub(crate) window: Window,
    pub(crate) replay_capacity: usize,
    pub(crate) nonces: Option<(Arc<[u8]>, Duration)>,
    pub(crate) certificate_header: Option<String>,
    pub(crate) trusted_proxies: Vec<String>,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            binding: Binding::Accept,
            public_url: None,
            window: Window::default(),
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
            nonces: None,
            certificate_header: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl SenderSettings {
    pub(crate) fn build(self, audiences: &[String]) -> Result<Sender, VerifyError> {
        // The URL proofs name: as configured, else the (first) audience when it is a URL.
        let public_url = match self.public_url {
            Some(u) => Some(
                dpop::normalize_url(&u)
                    .ok_or_else(|| VerifyError::Config(format!("public_url {u:?} is not an http(s) URL")))?,
            ),
            None => audiences.iter().find_map(|a| dpop::normalize_url(a)),
        };
        let public_url = public_url.map(|u| u.trim_end_matches('/').to_string());
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|n| {
                n.parse::<ipnet::IpNet>()
                    .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        VerifyError::Config(format!("trusted proxy {n:?} is not an address or network"))
                    })
            })
            .collect::<Result<Vec<ipnet::IpNet>, _>>()?;
        if let Some((secret, _)) = &self.nonces {
            // RFC 9449 §8: nonces must be unpredictable; a short secret would make them guessable.
            if secret.len() < 32 {
                return Err(VerifyError::Config(
                    "the DPoP nonce secret must be at least 32 bytes".into(),
                ));
            }
        }
        if self.certificate_header.is_some() && trusted_proxies.is_empty() {
            tracing::warn!(
                "certificate_header without trusted_proxies: the header is believed from any peer; \
                 make sure your proxy always sets or removes it"
            );
        }
        Ok(Sender {
            binding: self.binding,
            public_url,
            window: self.window,
            replay: ReplayCache::new(self.replay_capacity),
            nonces: self
                .nonces
                .map(|(secret, lifetime)| Nonces::new(&secret, lifetime.as_secs())),
            certificate_header: self.certificate_header.map(|h| h.to_ascii_lowercase()),
            trusted_proxies,
        })
    }
}

impl VerifierBuilder {
    /// Which tokens to accept: bearer and bound tokens ([`Binding::Accept`], the default), bound
    /// tokens only ([`Binding::Require`]), or bearer tokens only ([`Binding::BearerOnly`]).
    pub fn binding(mut self, binding: Binding) -> Self {
        self.sender.binding = binding;
        self
    }

    /// The API's base URL as its clients address it (`https://api.example.com`): DPoP proofs
    /// must name it and the request's path as `htu`. By default, the first audience that is an
    /// `http(s)` URL.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.sender.public_url = Some(url.into());
        self
    }

    /// How old (and how far ahead) a DPoP proof's `iat` may be (two minutes back, fifteen
    /// seconds ahead by default).
    pub fn dpop_window(mut self, window: Window) -> Self {
        self.sender.window = window;
        self
    }

    /// How many recent proofs to remember for their single use (100,000 by default). When all
    /// are still young, new proofs are refused rather than one forgotten.
    pub fn dpop_replay_capacity(mut self, proofs: usize) -> Self {
        self.sender.replay_capacity = proofs;
        self
    }

    /// Require a nonce in every DPoP proof (RFC 9449 §9): a proof without one is answered
    /// `use_dpop_nonce` with a nonce to use. Nonces are made from `secret` and change every
    /// `lifetime`; give every instance of the API the same secret and each takes the others'.
    pub fn dpop_nonces(mut self, secret: &[u8], lifetime: Duration) -> Self {
        self.sender.nonces = Some((secret.into(), lifetime));
        self
    }

    /// Read the client's TLS certificate from this header (URL-encoded PEM, as nginx's
    /// `$ssl_client_escaped_cert`) for certificate-bound tokens. Only when a proxy you run
    /// terminates TLS and always sets or removes the header: a client could send it otherwise.
    /// With [`Self::trusted_proxies`], only requests from those addresses are read.
    pub fn certificate_header(mut self, name: &str) -> Self {
        self.sender.certificate_header = Some(name.into());
        self
    }

    /// The proxies (addresses or networks, `10.0.0.0/8`) whose certificate header is believed:
    /// the request's peer (axum's `ConnectInfo`, or [`RequestParts::peer`]) must be one of them,
    /// else the header is ignored. An invalid entry fails [`Self::build`].
    pub fn trusted_proxies<'a>(mut self, networks: impl IntoIterator<Item = &'a str>) -> Self {
        self.sender.trusted_proxies = networks.into_iter().map(str::to_string).collect();
        self
    }
}

/// The SHA-256 thumbprint (base64url) of DER certificate `der`, as `cnf.x5t#S256` carries it.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// The DER of the first certificate in `escaped`, a header in which a proxy that terminates TLS
/// forwards the client's certificate as URL-encoded PEM (nginx's `$ssl_client_escaped_cert`):
/// how both the Tessera server and resource servers read it.
pub fn certificate_from_header(escaped: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    if escaped.len() > 16 * 1024 {
        return None;
    }
    let pem = percent_encoding::percent_decode(escaped).decode_utf8().ok()?;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}

/// A request, as much of it as verification needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// Its method.
    pub method: &'a str,
    /// Its path (without query), as the API received it.
    pub path: &'a str,
    /// Its query string, if any (a token there is refused).
    pub query: Option<&'a str>,
    /// Its headers.
    pub headers: &'a http::HeaderMap,
    /// The TLS client certificate of its connection (DER), if any.
    pub certificate: Option<&'a [u8]>,
    /// The address it came from (for [`VerifierBuilder::trusted_proxies`]), if known.
    pub peer: Option<std::net::IpAddr>,
}

impl Verifier {
    /// Verifies the access token of a request and how it was presented: `Bearer`, or `DPoP`
    /// with a proof of the token's key (checked, and remembered for its single use), and with
    /// the certificate a certificate-bound token names.
    pub async fn verify_request(&self, request: &RequestParts<'_>) -> Result<Verified, RequestError> {
        let sender = &self.inner.sender;
        let authorization = request
            .headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .map(|v| v.as_bytes());
        let (token, dpop_scheme) = match crate::bearer::presented(authorization, request.query) {
            crate::bearer::Presented::None => return Err(RequestError::NoCredentials),
            crate::bearer::Presented::Malformed(why) => return Err(RequestError::Malformed(why)),
            crate::bearer::Presented::Token(t) => (t, false),
            crate::bearer::Presented::Dpop(t) => (t, true),
        };
        if dpop_scheme && sender.binding == Binding::BearerOnly {
            return Err(RequestError::Binding(BindingError::DpopNotAccepted));
        }
        if dpop_scheme && sender.public_url.is_none() {
            // No URL for the proofs' htu to name: DPoP cannot be checked here.
            tracing::warn!(
                "a DPoP request, but the verifier has no public_url (and no audience that is a URL)"
            );
            return Err(RequestError::Binding(BindingError::DpopNotAccepted));
        }
        let claims = self.verify_any(token).await.map_err(RequestError::Token)?;
        let certificate = match (request.certificate, &sender.certificate_header) {
            (Some(der), _) => Some(certificate_thumbprint(der)),
            (None, Some(name))
                if sender.trusted_proxies.is_empty()
                    || request
                        .peer
                        .is_some_and(|p| sender.trusted_proxies.iter().any(|n| n.contains(&p))) =>
            {
                request
                    .headers
                    .get(name.as_str())
                    .and_then(|v| certificate_from_header(v.as_bytes()))
                    .map(|der| certificate_thumbprint(&der))
            }
            (None, _) => None,
        };
        let proof = match dpop::header(request.headers) {
            Ok(p) => p,
            Err(e) => return Err(RequestError::Binding(e.into())),
        };
        // The URL a proof names is needed only under the DPoP scheme (a bearer request, the
        // common case, skips making it).
        let url = match (&sender.public_url, dpop_scheme) {
            (Some(base), true) => format!("{base}{}", request.path),
            _ => String::new(),
        };
        let checked = dpop::check_presentation(
            claims.extra.get("cnf"),
            &Presentation {
                dpop_scheme,
                proof,
                certificate: certificate.as_deref(),
            },
            &dpop::Request {
                method: request.method,
                url: &url,
                access_token: Some(token),
                nonces: sender.nonces.as_ref(),
            },
            sender.binding,
            (self.inner.clock)() as i64,
            sender.window,
        )
        .map_err(RequestError::Binding)?;
        if let Some(proof) = &checked {
            sender
                .replay
                .record(proof, (self.inner.clock)() as i64)
                .map_err(|e| RequestError::Binding(e.into()))?;
        }
        let (_, x5t) = dpop::confirmation(claims.extra.get("cnf"));
        let binding = TokenBinding {
            dpop_jkt: checked.map(|p| p.jkt),
            certificate: x5t.map(str::to_string),
        };
        Ok(Verified { claims, binding })
    }

    /// The answer to refusal `error` in `realm`: RFC 6750 §3 and RFC 9449 §7.1 challenges.
    pub fn challenge(&self, error: &RequestError, realm: &str) -> Challenge {
        let sender = &self.inner.sender;
        let dpop_offered = sender.binding != Binding::BearerOnly && sender.public_url.is_some();
        let bearer = |e: Option<(&str, &str)>| match e {
            Some((code, description)) => {
                format!("Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{description}\"")
            }
            None => format!("Bearer realm=\"{realm}\""),
        };
        let mut www = Vec::new();
        let mut status = 401;
        let mut dpop_nonce = None;
        match error {
            RequestError::NoCredentials => {
                www.push(bearer(None));
                if dpop_offered {
                    www.push(dpop::challenge(realm, None));
                }
            }
            RequestError::Malformed(_) => {
                status = 400;
                www.push(bearer(Some((
                    "invalid_request",
                    "the request carries no usable bearer token",
                ))));
            }
            RequestError::Token(VerifyError::Unavailable(_) | VerifyError::Config(_)) => status = 503,
            RequestError::Token(_) => {
                www.push(bearer(Some((
                    "invalid_token",
                    "the access token is invalid, expired or revoked",
                ))));
                if dpop_offered {
                    www.push(dpop::challenge(realm, None));
                }
            }
            RequestError::Binding(e @ (BindingError::Certificate | BindingError::BindingRequired)) => {
                www.push(bearer(Some(("invalid_token", &e.to_string()))));
                if dpop_offered {
                    www.push(dpop::challenge(realm, None));
                }
            }
            // RFC 9449 §7.2: the error on the scheme the client used, and the DPoP challenge.
            RequestError::Binding(e @ BindingError::BoundAsBearer) => {
                www.push(bearer(Some(("invalid_token", &e.to_string()))));
                www.push(dpop::challenge(realm, Some(*e)));
            }
            // DPoP is not taken here: say so on the scheme that is.
            RequestError::Binding(e @ BindingError::DpopNotAccepted) if !dpop_offered => {
                www.push(bearer(Some(("invalid_token", &e.to_string()))));
            }
            RequestError::Binding(e) => {
                www.push(dpop::challenge(realm, Some(*e)));
                if let (BindingError::Proof(ProofError::UseNonce), Some(n)) = (e, &sender.nonces) {
                    dpop_nonce = Some(n.current((self.inner.clock)() as i64));
                }
            }
        }
        // RFC 9728 §5.1: where the client learns which authorization server to ask.
        if let Some(url) = self.resource_metadata_url() {
            for value in &mut www {
                value.push_str(&format!(", resource_metadata=\"{url}\""));
            }
        }
        Challenge {
            status,
            www_authenticate: www,
            dpop_nonce,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn certificates_are_read_from_an_escaped_pem_header() {
        let der = b"not really a certificate, but bytes";
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            STANDARD.encode(der)
        );
        let escaped: String =
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string();
        assert_eq!(
            certificate_from_header(escaped.as_bytes()).as_deref(),
            Some(&der[..])
        );
        assert_eq!(certificate_from_header(b"garbage"), None);
        assert_eq!(certificate_thumbprint(der).len(), 43);
    }
}
