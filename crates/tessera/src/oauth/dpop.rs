//! DPoP (RFC 9449) on Tessera's own endpoints: the proof of a request checked with
//! `tessera_verify::dpop` (one implementation for both ends of the wire), its `jti` recorded in
//! the store, and the confirmation a bound token carries.
//!
//! **Replay across nodes.** A proof's `jti` (keyed with its key's thumbprint) is recorded in the
//! store's `used_assertions` by an insert that succeeds only if no live record exists, kept
//! until the proof is too old to be accepted anyway (`crate::replay`, which batches the inserts
//! of concurrent requests into one statement). Every node shares the store, so a proof used at
//! one node is refused at every other.
//!
//! **Nonces across nodes.** With `[dpop] require_nonce`, a nonce is a time step and an HMAC of
//! it under a secret derived from the master key, which every node of a deployment holds: any
//! node accepts a nonce another issued, and none is stored.

use http::HeaderMap;
use tessera_verify::dpop::{self, Binding, BindingError, Nonces, Presentation, Proof, ProofError, Request};

use super::OAuthError;
use crate::app::App;

/// The nonces of a node holding master key secret `secret` (`[dpop]` lifetime `lifetime`).
pub fn nonces(secret: &[u8], lifetime: u64) -> Nonces {
    let derived = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
        b"tessera dpop nonces",
    );
    Nonces::new(derived.as_ref(), lifetime)
}

/// The error for refused proof `why`, with a fresh nonce when nonces are required. A proof whose
/// single use the store could not record is not refused for what it is: 503, retry.
pub fn refusal(app: &App, why: ProofError) -> OAuthError {
    if why == ProofError::Busy {
        return OAuthError::TemporarilyUnavailable;
    }
    tracing::info!(reason = %why, "DPoP proof refused");
    OAuthError::Dpop {
        error: why,
        nonce: app
            .settings
            .dpop
            .require_nonce
            .then(|| app.dpop_nonces.current(app.clock.now())),
    }
}

/// Checks the DPoP proof of a token request that came in at `path`, if it has one, and records
/// its `jti`: `Ok(None)` when the request carries none (the common case costs a header lookup).
pub async fn token_request_proof(
    app: &App,
    headers: &HeaderMap,
    path: &str,
) -> Result<Option<Proof>, ProofError> {
    let Some(value) = dpop::header(headers)? else {
        return Ok(None);
    };
    let url = app.settings.endpoint(path);
    let request = Request {
        method: "POST",
        url: &url,
        access_token: None,
        nonces: app.settings.dpop.require_nonce.then_some(&app.dpop_nonces),
    };
    let now = app.clock.now();
    let proof = dpop::check(value, &request, now, app.settings.dpop.window)?;
    used_once(app, &proof, now).await?;
    Ok(Some(proof))
}

/// Records `proof`'s single use in the shared store (every node refuses it from then on).
async fn used_once(app: &App, proof: &Proof, now: i64) -> Result<(), ProofError> {
    match app
        .used_once
        .record(proof.replay_id(), proof.remember_until, now)
        .await
    {
        Some(true) => Ok(()),
        Some(false) => Err(ProofError::Replayed),
        None => Err(ProofError::Busy),
    }
}

/// Checks how a token Tessera issued, with `cnf` its confirmation claim, was presented to one of
/// Tessera's protected resources (userinfo, the admin API) at `method` `url`: under the `DPoP`
/// scheme with a proof of its key (whose `jti` is then recorded), with its certificate, or as
/// `Bearer` when bound to neither (RFC 9449 §7, RFC 8705 §3).
pub async fn check_presented(
    app: &App,
    headers: &HeaderMap,
    (method, url): (&str, &str),
    (token, dpop_scheme): (&str, bool),
    cnf: Option<&serde_json::Value>,
    certificate: Option<&str>,
) -> Result<(), BindingError> {
    let presented = Presentation {
        dpop_scheme,
        proof: dpop::header(headers)?,
        certificate,
    };
    let request = Request {
        method,
        url,
        access_token: Some(token),
        nonces: app.settings.dpop.require_nonce.then_some(&app.dpop_nonces),
    };
    let now = app.clock.now();
    let window = app.settings.dpop.window;
    if let Some(proof) = dpop::check_presentation(cnf, &presented, &request, Binding::Accept, now, window)? {
        used_once(app, &proof, now).await?;
    }
    Ok(())
}

/// The nonce to send with refusal `why` in `DPoP-Nonce`, if any.
pub fn nonce_for(app: &App, why: &BindingError) -> Option<String> {
    (app.settings.dpop.require_nonce && matches!(why, BindingError::Proof(_)))
        .then(|| app.dpop_nonces.current(app.clock.now()))
}

/// What a token is bound to (its `cnf` claim, RFC 7800): a DPoP key, a TLS client certificate,
/// or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmation {
    /// `jkt`: the RFC 7638 thumbprint of the DPoP key (RFC 9449 §6.1).
    pub jkt: Option<String>,
    /// `x5t#S256`: the SHA-256 thumbprint of the certificate (RFC 8705 §3.1).
    pub x5t: Option<String>,
}

impl Confirmation {
    /// Bound to nothing: a bearer token.
    pub const NONE: Confirmation = Confirmation { jkt: None, x5t: None };

    /// The token type of a token bound so: `DPoP` with a DPoP key, else `Bearer`.
    pub fn token_type(&self) -> &'static str {
        if self.jkt.is_some() { "DPoP" } else { "Bearer" }
    }

    /// Appends `,"cnf":{…}` to JSON object members being written, when bound.
    pub fn write_claim(&self, out: &mut Vec<u8>) {
        if self.jkt.is_none() && self.x5t.is_none() {
            return;
        }
        // Both are base64url: nothing to escape.
        out.extend_from_slice(b",\"cnf\":{");
        if let Some(jkt) = &self.jkt {
            out.extend_from_slice(b"\"jkt\":\"");
            out.extend_from_slice(jkt.as_bytes());
            out.push(b'"');
        }
        if let Some(x5t) = &self.x5t {
            if self.jkt.is_some() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"x5t#S256\":\"");
            out.extend_from_slice(x5t.as_bytes());
            out.push(b'"');
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmations_are_written_as_json() {
        let mut out = b"{\"a\":1".to_vec();
        Confirmation::NONE.write_claim(&mut out);
        assert_eq!(out, b"{\"a\":1");
        let both = Confirmation {
            jkt: Some("k".into()),
            x5t: Some("c".into()),
        };
        both.write_claim(&mut out);
        out.push(b'}');
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["cnf"], serde_json::json!({"jkt": "k", "x5t#S256": "c"}));
        assert_eq!(both.token_type(), "DPoP");
        assert_eq!(Confirmation::NONE.token_type(), "Bearer");
    }
}
