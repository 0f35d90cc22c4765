//! DPoP proofs (RFC 9449): the one check of a `DPoP` header, for both ends of the wire.
//!
//! A DPoP-bound access token carries `cnf.jkt`, the RFC 7638 thumbprint of a key only its client
//! holds; with each request the client sends a fresh proof, a JWT signed by that key naming the
//! request's method and URL (and, at an API, the hash of the access token). A copied token is
//! worthless without the key. The Tessera server checks proofs at its token endpoint, its
//! userinfo endpoint and its admin API with [`check`]; [`Verifier`](crate::Verifier) checks them
//! at an API.
//!
//! [`check`] does what RFC 9449 §4.3 lists, except the single use of `jti`, which needs
//! memory shared by whoever receives proofs: the server records it in its store (so every node
//! refuses a replay), an API in a [`ReplayCache`]. Server nonces (§8) are [`Nonces`]: stateless,
//! so any node holding the same secret accepts a nonce another node issued.
//!
//! ```
//! use tessera_verify::dpop::{self, ProofError, Request, Window};
//! let request = Request::new("POST", "https://auth.example.com/token");
//! assert_eq!(dpop::check("not-a-proof", &request, 0, Window::default()).err(), Some(ProofError::Malformed));
//! assert_eq!(dpop::normalize_url("HTTPS://Auth.Example.com:443/token?x=1").as_deref(), Some("https://auth.example.com/token"));
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::Algorithm;
use crate::jws::{self, PublicKey};

/// The `typ` of a DPoP proof.
pub const PROOF_TYPE: &str = "dpop+jwt";
/// The algorithms a proof may be signed with (asymmetric only: never `none`, never an HMAC).
pub const ALGORITHMS: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];
/// Their names, as `dpop_signing_alg_values_supported` and the `algs` of a challenge list them.
pub const ALGORITHM_NAMES: &[&str] = &["ES256", "ES384", "EdDSA", "RS256", "PS256"];
/// Longest proof looked at.
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// Longest `jti` or `nonce`.
const MAX_ID_LEN: usize = 256;

/// Why a proof was refused. Its text may be sent to the client (it names no secret); its
/// [`ProofError::error_code`] is the `error` of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Not a compact JWS with the members a proof needs, or more than one `DPoP` header.
    #[error("the DPoP proof is malformed or lacks a required member")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ is not dpop+jwt")]
    Type,
    /// `alg` is not an allowed asymmetric algorithm.
    #[error("the DPoP proof's alg is not allowed")]
    Algorithm,
    /// `jwk` is not a public key of an allowed kind, or carries private members.
    #[error("the DPoP proof's jwk is not an acceptable public key")]
    Key,
    /// The signature is not `jwk`'s.
    #[error("the DPoP proof's signature does not verify")]
    Signature,
    /// `htm` is not the request's method.
    #[error("the DPoP proof's htm is not this request's method")]
    Method,
    /// `htu` is not the request's URL.
    #[error("the DPoP proof's htu is not this request's URL")]
    Url,
    /// `iat` is too far in the past.
    #[error("the DPoP proof is too old")]
    Stale,
    /// `iat` is in the future.
    #[error("the DPoP proof's iat is in the future")]
    Future,
    /// `ath` is missing or is not the hash of the access token.
    #[error("the DPoP proof's ath is missing or not the access token's hash")]
    AccessTokenHash,
    /// This proof was seen before.
    #[error("the DPoP proof was already used")]
    Replayed,
    /// Too many recent proofs to remember one more: refused rather than risk a replay.
    #[error("too many recent DPoP proofs; try again")]
    Busy,
    /// The proof's key is not the one the token or grant is bound to.
    #[error("the DPoP proof's key is not the one the token is bound to")]
    WrongKey,
    /// A nonce from the server is required, and the proof has none or an old one.
    #[error("a DPoP nonce from this server is required")]
    UseNonce,
}

impl ProofError {
    /// The `error` code of the answer (RFC 9449 §5.1, §7.1, §8).
    pub fn error_code(self) -> &'static str {
        match self {
            ProofError::UseNonce => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }
}

/// How far a proof's `iat` may be from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Oldest accepted, in seconds: also how long a `jti` must be remembered.
    pub max_age: u64,
    /// How far ahead of this clock (clocks apart), in seconds.
    pub leeway: u64,
}

impl Default for Window {
    /// Two minutes back, fifteen seconds ahead.
    fn default() -> Self {
        Window {
            max_age: 120,
            leeway: 15,
        }
    }
}

/// The request a proof came with.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Its HTTP method.
    pub method: &'a str,
    /// Its URL as the client addressed it (behind a proxy, the public one); query and fragment
    /// are ignored.
    pub url: &'a str,
    /// The access token it carries (`ath` is then required), if any.
    pub access_token: Option<&'a str>,
    /// The nonces it must carry one of, if this server requires them.
    pub nonces: Option<&'a Nonces>,
}

impl<'a> Request<'a> {
    /// A request without an access token, nonces not required.
    pub fn new(method: &'a str, url: &'a str) -> Self {
        Request {
            method,
            url,
            access_token: None,
            nonces: None,
        }
    }
}

/// A proof that passed [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of its key: what a token bound to it carries as `cnf.jkt`.
    pub jkt: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `iat`.
    pub iat: i64,
    /// Until when its `jti` must be remembered: after that the proof is too old anyway.
    pub remember_until: i64,
}

impl Proof {
    /// What identifies this proof among all proofs: the SHA-256 of its key's thumbprint and its
    /// `jti` (so that clients cannot block each other's `jti`s).
    pub fn replay_id(&self) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"dpop\0");
        ctx.update(&(self.jkt.len() as u64).to_be_bytes());
        ctx.update(self.jkt.as_bytes());
        ctx.update(self.jti.as_bytes());
        let mut id = [0u8; 32];
        id.copy_from_slice(ctx.finish().as_ref());
        id
    }
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: serde_json::Number,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Checks `proof` for `request` at time `now` (RFC 9449 §4.3, all but the single use of
/// `jti`): one compact JWS, `typ` `dpop+jwt`, an allowed asymmetric `alg`, a public `jwk` (no
/// private member) whose signature it is, `htm` the method, `htu` the URL (both normalized as
/// RFC 3986 §6.2.2 and §6.2.3 say, without query and fragment), `iat` within `window`, `ath` the
/// hash of the access token when one comes with it, and a nonce of `request.nonces` when given.
pub fn check(proof: &str, request: &Request<'_>, now: i64, window: Window) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::Malformed);
    }
    let parsed = jws::parse(proof).map_err(|_| ProofError::Malformed)?;
    if parsed.typ.as_deref() != Some(PROOF_TYPE) {
        return Err(ProofError::Type);
    }
    if !ALGORITHMS.contains(&parsed.alg) {
        return Err(ProofError::Algorithm);
    }
    let jwk = parsed.jwk.as_ref().ok_or(ProofError::Malformed)?;
    let jkt = public_thumbprint(jwk).ok_or(ProofError::Key)?;
    let key = PublicKey::from_jwk_without_kid(jwk, ALGORITHMS).ok_or(ProofError::Key)?;
    let payload = parsed.verify(&key).map_err(|e| match e {
        crate::VerifyError::AlgorithmNotAllowed => ProofError::Algorithm,
        crate::VerifyError::BadSignature => ProofError::Signature,
        _ => ProofError::Malformed,
    })?;
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return Err(ProofError::Malformed);
    }
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| ProofError::Malformed)?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_ID_LEN {
        return Err(ProofError::Malformed);
    }
    if claims.htm != request.method {
        return Err(ProofError::Method);
    }
    if !same_url(&claims.htu, request.url) {
        return Err(ProofError::Url);
    }
    if let Some(nonces) = request.nonces {
        match &claims.nonce {
            Some(n) if n.len() <= MAX_ID_LEN && nonces.accepts(n, now) => {}
            _ => return Err(ProofError::UseNonce),
        }
    }
    let iat = claims
        .iat
        .as_i64()
        .or_else(|| claims.iat.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        .ok_or(ProofError::Malformed)?;
    if iat > now.saturating_add(window.leeway as i64) {
        return Err(ProofError::Future);
    }
    if iat < now.saturating_sub(window.max_age as i64) {
        return Err(ProofError::Stale);
    }
    if let Some(token) = request.access_token {
        let expected = access_token_hash(token);
        let matches = claims.ath.as_deref().is_some_and(|ath| {
            aws_lc_rs::constant_time::verify_slices_are_equal(ath.as_bytes(), expected.as_bytes()).is_ok()
        });
        if !matches {
            return Err(ProofError::AccessTokenHash);
        }
    }
    Ok(Proof {
        jkt,
        jti: claims.jti,
        iat,
        remember_until: iat.saturating_add(window.max_age as i64).saturating_add(1),
    })
}

/// How a resource server treats sender-constrained tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Binding {
    /// Bearer tokens and bound tokens, each as it must be presented (the default): a token
    /// bound to a DPoP key with its proof under the `DPoP` scheme, a certificate-bound token with
    /// its certificate, any other token as `Bearer`.
    #[default]
    Accept,
    /// Bound tokens only: a bearer token is refused.
    Require,
    /// Bearer tokens only: the `DPoP` scheme is refused, and so is a DPoP-bound token (it cannot
    /// be checked here, and must not be taken as a bearer token).
    BearerOnly,
}

/// An access token as a request presented it.
#[derive(Debug, Clone, Copy)]
pub struct Presentation<'a> {
    /// Under the `DPoP` scheme (else `Bearer`).
    pub dpop_scheme: bool,
    /// The `DPoP` header, if one came.
    pub proof: Option<&'a str>,
    /// The SHA-256 thumbprint (base64url) of the TLS client certificate the request came with,
    /// directly or through a trusted proxy.
    pub certificate: Option<&'a str>,
}

/// Why a presented token is refused for its binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// The proof is refused (`invalid_dpop_proof` or `use_dpop_nonce`).
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A DPoP-bound token presented as `Bearer` (RFC 9449 §7.2: the downgrade is refused).
    #[error("the token is bound to a DPoP key: present it under the DPoP scheme with a proof")]
    BoundAsBearer,
    /// A token that is not DPoP-bound presented under the `DPoP` scheme.
    #[error("the token is not bound to a DPoP key")]
    NotDpopBound,
    /// A certificate-bound token without its certificate (RFC 8705 §3).
    #[error("the token is bound to a TLS client certificate this request did not present")]
    Certificate,
    /// A bearer token where only bound tokens are accepted.
    #[error("only sender-constrained tokens are accepted here")]
    BindingRequired,
    /// DPoP where it is not accepted.
    #[error("DPoP is not accepted here")]
    DpopNotAccepted,
}

impl BindingError {
    /// The `error` code of the answer: the proof's, or `invalid_token`.
    pub fn error_code(self) -> &'static str {
        match self {
            BindingError::Proof(p) => p.error_code(),
            _ => "invalid_token",
        }
    }
}

/// The `cnf` members of a token's claims: `jkt` and `x5t#S256`, when they are strings.
pub fn confirmation(cnf: Option<&serde_json::Value>) -> (Option<&str>, Option<&str>) {
    let member = |name: &str| cnf.and_then(|c| c.get(name)).and_then(|v| v.as_str());
    (member("jkt"), member("x5t#S256"))
}

/// Checks how a token with confirmation `cnf` (its `cnf` claim, if any) was presented to
/// `request` (whose `access_token` must be the token) under `policy`: RFC 9449 §7 for a DPoP key,
/// RFC 8705 §3 for a certificate. Returns the checked proof, whose `jti` the caller must then
/// record (for single use), or `None` for a token not bound to a DPoP key.
pub fn check_presentation(
    cnf: Option<&serde_json::Value>,
    presented: &Presentation<'_>,
    request: &Request<'_>,
    policy: Binding,
    now: i64,
    window: Window,
) -> Result<Option<Proof>, BindingError> {
    let (jkt, x5t) = confirmation(cnf);
    if let Some(x5t) = x5t {
        let same = presented.certificate.is_some_and(|c| {
            aws_lc_rs::constant_time::verify_slices_are_equal(c.as_bytes(), x5t.as_bytes()).is_ok()
        });
        if !same {
            return Err(BindingError::Certificate);
        }
    }
    match (policy, jkt, presented.dpop_scheme) {
        (Binding::BearerOnly, _, true) => Err(BindingError::DpopNotAccepted),
        (Binding::BearerOnly, Some(_), false) => Err(BindingError::DpopNotAccepted),
        (_, Some(_), false) => Err(BindingError::BoundAsBearer),
        (_, None, true) => Err(BindingError::NotDpopBound),
        (Binding::Require, None, false) if x5t.is_none() => Err(BindingError::BindingRequired),
        (_, None, false) => Ok(None),
        (_, Some(jkt), true) => {
            let proof = presented.proof.ok_or(ProofError::Malformed)?;
            let proof = check(proof, request, now, window)?;
            if aws_lc_rs::constant_time::verify_slices_are_equal(proof.jkt.as_bytes(), jkt.as_bytes())
                .is_err()
            {
                return Err(ProofError::WrongKey.into());
            }
            Ok(Some(proof))
        }
    }
}

/// The `WWW-Authenticate` challenge of the `DPoP` scheme (RFC 9449 §7.1) in `realm`, with
/// `error` when a token or proof was refused, and the algorithms proofs may use.
pub fn challenge(realm: &str, error: Option<BindingError>) -> String {
    let mut value = format!("DPoP realm=\"{realm}\"");
    if let Some(e) = error {
        value.push_str(&format!(
            ", error=\"{}\", error_description=\"{e}\"",
            e.error_code()
        ));
    }
    value.push_str(&format!(", algs=\"{}\"", ALGORITHM_NAMES.join(" ")));
    value
}

/// The one `DPoP` header of a request, if any; several are refused (RFC 9449 §4.3).
pub fn header(headers: &http::HeaderMap) -> Result<Option<&str>, ProofError> {
    let mut all = headers.get_all("dpop").iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v.to_str().map(Some).map_err(|_| ProofError::Malformed),
        (Some(_), Some(_)) => Err(ProofError::Malformed),
    }
}

/// The `ath` of `access_token`: the base64url SHA-256 of its ASCII (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, access_token.as_bytes()))
}

/// Private (or secret) members of a JWK (RFC 7518 §6): a proof's key has none of them.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The RFC 7638 thumbprint of `jwk` if it is a public key (no private member) of a kind
/// proofs may use.
fn public_thumbprint(jwk: &serde_json::Value) -> Option<String> {
    let object = jwk.as_object()?;
    if PRIVATE_MEMBERS.iter().any(|m| object.contains_key(*m)) {
        return None;
    }
    thumbprint(jwk)
}

/// RFC 7638 thumbprints (re-exported from [`crate::jws`], where keys are read).
pub use crate::jws::thumbprint;

/// Whether `htu` names `url` (RFC 9449 §4.3): equal as written, or after normalization.
fn same_url(htu: &str, url: &str) -> bool {
    let strip = |u: &str| u.split(['?', '#']).next().unwrap_or_default().len();
    let absolute = |u: &str| u.starts_with("https://") || u.starts_with("http://");
    if htu.len() <= 4096 && absolute(url) && htu[..strip(htu)] == url[..strip(url)] {
        return true;
    }
    matches!((normalize_url(htu), normalize_url(url)), (Some(a), Some(b)) if a == b)
}

/// `url` normalized as RFC 9449 §4.3 compares it: syntax-based and scheme-based normalization
/// (RFC 3986 §6.2.2, §6.2.3: case of scheme and host, default port, dot segments, empty path),
/// without query and fragment. `None` for what is not an absolute `http` or `https` URL.
pub fn normalize_url(url: &str) -> Option<String> {
    if url.len() > 4096 {
        return None;
    }
    let mut parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host().is_none() {
        return None;
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return None;
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    let path = unreserved_decoded(parsed.path());
    parsed.set_path(&path);
    Some(parsed.into())
}

/// `path` with percent-encoded unreserved characters decoded and other escapes in upper case
/// (RFC 3986 §6.2.2.1, §6.2.2.2).
fn unreserved_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
                out.push(char::from(b));
                i += 3;
            }
            Some(b) => {
                out.push_str(&format!("%{b:02X}"));
                i += 3;
            }
            None => {
                out.push(char::from(bytes[i]));
                i += 1;
            }
        }
    }
    out
}

/// Server nonces (RFC 9449 §8) made without state: a nonce is a time step and a MAC of it, so
/// every node that holds the same secret issues the same nonce and accepts any other node's.
/// A nonce is good for one to two `lifetime`s.
pub struct Nonces {
    key: hmac::Key,
    lifetime: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Nonces {
    /// Nonces MACed with `secret` (at least 32 bytes of it used), changing every `lifetime`
    /// seconds (at least one).
    pub fn new(secret: &[u8], lifetime: u64) -> Self {
        Nonces {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime: lifetime.max(1),
        }
    }

    /// Nonces with a fresh random secret: for one process alone.
    pub fn random(lifetime: u64) -> Self {
        let mut secret = [0u8; 32];
        // aws-lc's generator does not fail once initialized; a zero secret would still be a
        // MAC key, only not a secret one, so the error is not ignored quietly.
        if aws_lc_rs::rand::fill(&mut secret).is_err() {
            tracing::error!("no randomness for DPoP nonces");
        }
        Nonces::new(&secret, lifetime)
    }

    fn step(&self, now: i64) -> u64 {
        (now.max(0) as u64) / self.lifetime
    }

    fn nonce_for(&self, step: u64) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"tessera dpop nonce\0");
        ctx.update(&step.to_be_bytes());
        let tag = ctx.sign();
        let mut raw = [0u8; 24];
        raw[..8].copy_from_slice(&step.to_be_bytes());
        raw[8..].copy_from_slice(&tag.as_ref()[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: i64) -> String {
        self.nonce_for(self.step(now))
    }

    /// Whether `nonce` was handed out by a holder of the secret at most two steps ago.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Ok(step) = <[u8; 8]>::try_from(raw.get(..8).unwrap_or_default()).map(u64::from_be_bytes) else {
            return false;
        };
        let current = self.step(now);
        if step != current && step.saturating_add(1) != current {
            return false;
        }
        let expected = self.nonce_for(step);
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), nonce.as_bytes()).is_ok()
    }
}

/// The `jti`s of recent proofs, for one process: refuses a proof seen before while it could
/// still be accepted. Bounded: when full of proofs still young, it refuses new ones
/// ([`ProofError::Busy`]) rather than forget one and let it be replayed.
pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<Seen>,
}

struct Seen {
    until: HashMap<[u8; 16], i64>,
    swept_at: i64,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl ReplayCache {
    /// A cache for at most `capacity` proofs.
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Seen {
                until: HashMap::new(),
                swept_at: i64::MIN,
            }),
        }
    }

    /// Records `proof` at `now`, or refuses it if it was recorded before (or there is no room).
    pub fn record(&self, proof: &Proof, now: i64) -> Result<(), ProofError> {
        let mut id = [0u8; 16];
        id.copy_from_slice(&proof.replay_id()[..16]);
        let mut seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = seen.until.get(&id) {
            if *until >= now {
                return Err(ProofError::Replayed);
            }
        }
        if seen.until.len() >= self.capacity && !seen.until.contains_key(&id) {
            // Sweeping walks the whole map: at most once a second.
            if seen.swept_at >= now {
                return Err(ProofError::Busy);
            }
            seen.swept_at = now;
            seen.until.retain(|_, until| *until >= now);
            if seen.until.len() >= self.capacity {
                return Err(ProofError::Busy);
            }
        }
        seen.until.insert(id, proof.remember_until);
        Ok(())
    }

    /// How many proofs are remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).until.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_after_normalization_without_query() {
        for (a, b) in [
            ("https://a.example/token", "https://a.example/token"),
            ("HTTPS://A.Example:443/token", "https://a.example/token"),
            ("https://a.example/x/../token", "https://a.example/token"),
            ("https://a.example/token?x=1#f", "https://a.example/token"),
            ("http://a.example:80", "http://a.example/"),
            ("https://a.example/%7Euser", "https://a.example/~user"),
            ("https://a.example/a%2fb", "https://a.example/a%2Fb"),
        ] {
            assert!(same_url(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("https://a.example/token", "https://a.example/token2"),
            ("http://a.example/token", "https://a.example/token"),
            ("https://a.example:8443/token", "https://a.example/token"),
            ("https://b.example/token", "https://a.example/token"),
            ("https://u@a.example/token", "https://a.example/token?"),
            ("/token", "https://a.example/token"),
            ("/token", "/token"),
        ] {
            assert!(!same_url(a, b), "{a} {b}");
        }
    }

    #[test]
    fn thumbprint_is_rfc_7638s() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        let mut private = jwk.clone();
        private["d"] = "AQAB".into();
        assert_eq!(public_thumbprint(&private), None);
        assert_eq!(thumbprint(&serde_json::json!({"kty": "oct", "k": "AAAA"})), None);
        assert_eq!(
            thumbprint(&serde_json::json!({"kty": "EC", "crv": "P-256", "x": "a\"b", "y": "c"})),
            None
        );
    }

    #[test]
    fn one_dpop_header_at_most() {
        let mut h = http::HeaderMap::new();
        assert_eq!(header(&h), Ok(None));
        h.append("dpop", http::HeaderValue::from_static("a"));
        assert_eq!(header(&h), Ok(Some("a")));
        h.append("dpop", http::HeaderValue::from_static("b"));
        assert_eq!(header(&h), Err(ProofError::Malformed));
    }

    #[test]
    fn nonces_are_accepted_for_two_steps_by_any_holder_of_the_secret() {
        let a = Nonces::new(b"0123456789abcdef0123456789abcdef", 60);
        let b = Nonces::new(b"0123456789abcdef0123456789abcdef", 60);
        let other = Nonces::new(b"another secret, another server!!", 60);
        let n = a.current(1_000);
        assert!(b.accepts(&n, 1_000));
        assert!(b.accepts(&n, 1_079), "the next step still takes it");
        assert!(!b.accepts(&n, 1_140), "two steps later it is stale");
        assert!(!b.accepts(&n, 900), "never one from the future");
        assert!(!other.accepts(&n, 1_000));
        assert!(!a.accepts("", 1_000));
        assert!(!a.accepts("not base64!", 1_000));
        let mut forged = URL_SAFE_NO_PAD.decode(&n).unwrap();
        forged[23] ^= 1;
        assert!(!a.accepts(&URL_SAFE_NO_PAD.encode(forged), 1_000));
    }

    #[test]
    fn the_replay_cache_refuses_a_second_use_and_stays_bounded() {
        let cache = ReplayCache::new(2);
        let proof = |jti: &str, until| Proof {
            jkt: "k".into(),
            jti: jti.into(),
            iat: 0,
            remember_until: until,
        };
        cache.record(&proof("1", 100), 10).unwrap();
        assert_eq!(cache.record(&proof("1", 100), 11), Err(ProofError::Replayed));
        // The same jti under another key is another proof.
        let mut other_key = proof("1", 100);
        other_key.jkt = "j".into();
        cache.record(&other_key, 11).unwrap();
        assert_eq!(
            cache.record(&proof("2", 100), 12),
            Err(ProofError::Busy),
            "full of young proofs"
        );
        assert_eq!(
            cache.record(&proof("3", 200), 101),
            Ok(()),
            "the old ones were swept"
        );
        assert_eq!(cache.len(), 1);
    }
}
