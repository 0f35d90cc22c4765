//! `private_key_jwt` (RFC 7523 §2.2 and §3, OpenID Connect Core §9): the client signs a short
//! JWT with its private key and sends it as `client_assertion`, with `client_assertion_type`
//! `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`. No secret exists to leak.
//!
//! What an assertion must be, each a refusal (`invalid_client`, the same for every reason;
//! the reason goes to the log, never the assertion):
//! - signed with `ES256`, `ES384`, `EdDSA`, `RS256` or `PS256` by a key the client registered
//!   (inline, or published at its `jwks_uri`); `none` and HMAC never. `typ`, when present, is
//!   `JWT` or `client-authentication+jwt` (so another kind of JWT the client signs, an ID token
//!   or an access token, is not taken for an assertion);
//! - `iss` and `sub` the client id (and `client_id`, when sent too, the same);
//! - `aud` exactly this server's issuer identifier, or exactly its token endpoint URL (which
//!   clients following OpenID Connect Core §9 send, authlib among them; `assertion_audience =
//!   "issuer"` refuses it, as RFC 7523bis has it), as a string or a one-member array: never any
//!   other value and never several. The 2025 audience-injection attack needs a client tricked
//!   into signing for a token endpoint URL it read from a malicious server's metadata; a client
//!   configured with this server's URL by hand, or one that names the issuer, is not exposed,
//!   and an operator whose clients all name the issuer closes the door with the setting;
//! - `exp` present, not past, at most `max_assertion_lifetime` (one hour unless the operator
//!   sets less) after `iat` and after now (with [`LEEWAY`] for clocks apart); `nbf`, if present,
//!   reached; `iat`, if present, not ahead;
//! - `jti` present and used once: the store records it (by a digest of the issuer, the client and
//!   the `jti`) until the assertion expires, in one insert, so every node sharing the store
//!   refuses a replay. That insert is the method's cost on top of one signature check; the
//!   secret path does not pay it.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use tessera_verify::jws::{self, PublicKey};

use super::{AuthMethod, Credentials, Presented, Verifying, log_id};
use crate::app::App;
use crate::clients::{AuthFailure, CachedClient, KeySource};
use crate::limits::Subject;
use crate::model::auth::{ASSERTION_ALGORITHMS, TokenAuth};
use crate::oauth::{OAuthError, federation};

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest assertion accepted.
const MAX_ASSERTION: usize = 8 * 1024;
/// Clock difference tolerated, in seconds.
pub const LEEWAY: i64 = 30;
/// Longest `jti`.
const MAX_JTI: usize = 256;

/// `private_key_jwt`.
pub struct PrivateKeyJwt;

impl AuthMethod for PrivateKeyJwt {
    fn name(&self) -> &'static str {
        "private_key_jwt"
    }

    fn names(&self) -> &'static [&'static str] {
        &["private_key_jwt"]
    }

    fn presented_as(&self) -> &'static str {
        "client_assertion"
    }

    fn max_proof_len(&self) -> usize {
        MAX_ASSERTION
    }

    fn find(&self, request: &Presented<'_>) -> Result<Option<Credentials>, OAuthError> {
        let form = request.form;
        let (assertion, kind) = match (form.get("client_assertion"), form.get("client_assertion_type")) {
            (None, None) => return Ok(None),
            (Some(a), Some(t)) => (a, t),
            _ => {
                return Err(OAuthError::InvalidRequest(
                    "client_assertion and client_assertion_type go together".into(),
                ));
            }
        };
        if kind != ASSERTION_TYPE {
            return Err(OAuthError::InvalidClient(
                format!("unsupported client_assertion_type (only {ASSERTION_TYPE})").into(),
            ));
        }
        // RFC 7521 §4.2: the client is `client_id` when sent, else the assertion's `sub`. (An
        // assertion the client signed must name it as `iss` and `sub`; a platform token of
        // workload identity federation names the workload, and comes with `client_id`.)
        let client_id = match form.get("client_id") {
            Some(id) => id.to_string(),
            None => claimed_subject(assertion).ok_or_else(failed)?,
        };
        Ok(Some(Credentials {
            client_id,
            secret: assertion.to_string(),
            method: &PrivateKeyJwt,
            certificate: None,
        }))
    }

    fn allowed(&self, client: &CachedClient) -> bool {
        !client.public && client.auth == TokenAuth::PrivateKeyJwt
    }

    fn verify<'a>(&'a self, app: &'a App, creds: &'a Credentials, address: IpAddr) -> Verifying<'a> {
        Box::pin(verify(app, creds, address))
    }
}

fn failed() -> OAuthError {
    OAuthError::InvalidClient("client authentication failed".into())
}

/// The `sub` an assertion claims, unverified: which client's keys to check it with.
fn claimed_subject(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Sub {
        sub: String,
    }
    let payload = jws::parse(assertion).ok()?.unverified_payload().ok()?;
    crate::json::from_slice::<Sub>(&payload).ok().map(|s| s.sub)
}

/// Checks the assertion. While a back-off runs for the client or the address, a good assertion
/// still passes (checking one costs a signature, not a slow hash) and anything else gets 429.
async fn verify(app: &App, creds: &Credentials, address: IpAddr) -> Result<Arc<CachedClient>, OAuthError> {
    let log = |why: Refusal| {
        let logged = match why {
            Refusal::UnknownClient => log_id(&creds.client_id, AuthFailure::UnknownClient),
            _ => creds.client_id.clone(),
        };
        tracing::info!(client = %logged, method = "private_key_jwt", reason = why.as_str(), "client authentication failed");
    };
    let subject = Subject::Client(&creds.client_id);
    super::settle(app, subject, address, check(app, creds), log, failed()).await
}

/// Why an assertion was refused (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Refusal {
    UnknownClient,
    NotKeyClient,
    Malformed,
    Type,
    Algorithm,
    NoKey,
    Signature,
    Issuer,
    Audience,
    Expired,
    TooLong,
    NotYet,
    Jti,
    Replayed,
    Disabled,
    Store,
    Federated(federation::Refusal),
}

impl Refusal {
    /// A short reason for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownClient => "unknown client",
            Refusal::NotKeyClient => "the client does not use private_key_jwt",
            Refusal::Malformed => "malformed assertion",
            Refusal::Type => "typ is not an assertion's",
            Refusal::Algorithm => "algorithm not allowed",
            Refusal::NoKey => "no registered key for the assertion's kid and alg",
            Refusal::Signature => "bad signature",
            Refusal::Issuer => "iss and sub are not the client id",
            Refusal::Audience => "aud is not this server",
            Refusal::Expired => "expired or no exp",
            Refusal::TooLong => "lives longer than allowed",
            Refusal::NotYet => "not valid yet",
            Refusal::Jti => "no jti, or too long",
            Refusal::Replayed => "jti already used",
            Refusal::Disabled => "client disabled",
            Refusal::Store => "the store did not answer",
            Refusal::Federated(why) => why.as_str(),
        }
    }
}

/// An assertion's claims, types checked (no member repeated: `crate::json`).
#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    iat: Option<f64>,
    nbf: Option<f64>,
    jti: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

async fn check(app: &App, creds: &Credentials) -> Result<Arc<CachedClient>, Refusal> {
    let client = app.registry.get(&creds.client_id).ok_or(Refusal::UnknownClient)?;
    if !PrivateKeyJwt.allowed(&client) {
        return Err(Refusal::NotKeyClient);
    }
    // Issued by someone else than the client: a platform token, for the trust policies.
    if federation::claimed_issuer(&creds.secret).as_deref() != Some(&*client.id) {
        let federated = federation::verify(app, &creds.secret, Some(&client.id))
            .await
            .map_err(Refusal::Federated)?;
        tracing::info!(client = %federated.client.id, issuer = %federated.issuer, subject = %federated.subject, policy = %federated.policy_id, "workload authenticated by a trust policy");
        return Ok(federated.client);
    }
    let keys = client.keys.as_ref().ok_or(Refusal::NotKeyClient)?;
    let token = preflight(&creds.secret)?;
    let key: Arc<PublicKey> = match &keys.source {
        KeySource::Inline(ring) => {
            crate::client_keys::pick(ring, token.kid.as_deref(), token.alg).ok_or(Refusal::NoKey)?
        }
        KeySource::Remote(uri) => app
            .remote_keys
            .key(uri, token.kid.as_deref(), token.alg)
            .await
            .map_err(|_| Refusal::NoKey)?,
    };
    let issuer = app.settings.issuer.as_str();
    let token_endpoint = app.settings.endpoint(crate::model::paths::TOKEN_PATH);
    let expect = Expect {
        client_id: &client.id,
        issuer,
        token_endpoint: app
            .settings
            .assertion_audience_token_endpoint
            .then_some(token_endpoint.as_str()),
        now: app.clock.now(),
        max_lifetime: app.settings.max_assertion_lifetime.as_secs() as i64,
    };
    let (jti, exp) = verify_signed(&token, &key, &expect)?;
    let (id, now) = (&*client.id, expect.now);
    // Checked after the signature, so a disabled client's status is told only to its key holder.
    if !client.enabled {
        return Err(Refusal::Disabled);
    }
    let used = assertion_id(issuer, id, &jti);
    match app.used_once.record(used, exp + LEEWAY, now).await {
        Some(true) => Ok(client),
        Some(false) => Err(Refusal::Replayed),
        None => Err(Refusal::Store),
    }
}

/// What an assertion signed by the client must say: who it is, whom it is for, and when.
pub struct Expect<'a> {
    /// The client id (`iss` and `sub`).
    pub client_id: &'a str,
    /// This server's issuer identifier (an `aud` accepted).
    pub issuer: &'a str,
    /// Its token endpoint URL, when that is accepted as `aud` too.
    pub token_endpoint: Option<&'a str>,
    /// Now, in Unix seconds.
    pub now: i64,
    /// The longest lifetime allowed, in seconds.
    pub max_lifetime: i64,
}

/// An assertion split and its header checked: a compact JWS, `typ` absent or an assertion's,
/// and an allowed algorithm.
pub fn preflight(assertion: &str) -> Result<jws::Compact<'_>, Refusal> {
    let token = jws::parse(assertion).map_err(|_| Refusal::Malformed)?;
    if let Some(typ) = &token.typ {
        let t = typ.to_ascii_lowercase();
        let t = t.strip_prefix("application/").unwrap_or(&t);
        if t != "jwt" && t != "client-authentication+jwt" {
            return Err(Refusal::Type);
        }
    }
    if !ASSERTION_ALGORITHMS.contains(&token.alg) {
        return Err(Refusal::Algorithm);
    }
    Ok(token)
}

/// The signature by `key` and the claims of `token` checked against `expect` (everything but
/// the `jti`'s single use, which needs the store): returns the `jti` and `exp`.
pub fn verify_signed(
    token: &jws::Compact<'_>,
    key: &PublicKey,
    expect: &Expect<'_>,
) -> Result<(String, i64), Refusal> {
    let payload = token.verify(key).map_err(|_| Refusal::Signature)?;
    let claims: Claims = crate::json::from_slice(&payload).map_err(|_| Refusal::Malformed)?;
    let id = expect.client_id;
    if claims.iss.as_deref() != Some(id) || claims.sub.as_deref() != Some(id) {
        return Err(Refusal::Issuer);
    }
    let names_us = |a: &str| a == expect.issuer || expect.token_endpoint == Some(a);
    match &claims.aud {
        Some(Audience::One(a)) if names_us(a) => {}
        Some(Audience::Many(list)) if list.len() == 1 && names_us(&list[0]) => {}
        _ => return Err(Refusal::Audience),
    }
    let (now, max_lifetime) = (expect.now, expect.max_lifetime);
    let exp = claims.exp.filter(|e| e.is_finite()).ok_or(Refusal::Expired)? as i64;
    if exp <= now - LEEWAY {
        return Err(Refusal::Expired);
    }
    if exp > now + max_lifetime + LEEWAY {
        return Err(Refusal::TooLong);
    }
    if let Some(iat) = claims.iat {
        let iat = iat as i64;
        if iat > now + LEEWAY {
            return Err(Refusal::NotYet);
        }
        if exp - iat > max_lifetime {
            return Err(Refusal::TooLong);
        }
    }
    if claims.nbf.is_some_and(|nbf| nbf as i64 > now + LEEWAY) {
        return Err(Refusal::NotYet);
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI)
        .ok_or(Refusal::Jti)?;
    Ok((jti, exp))
}

/// What the store remembers of a used assertion: the SHA-256 of who issued it, for which client,
/// and its `jti` (length-prefixed, so no two triples share a digest).
fn assertion_id(issuer: &str, client_id: &str, jti: &str) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [issuer, client_id, jti] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(ctx.finish().as_ref());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertion_ids_do_not_collide_across_parts() {
        assert_ne!(assertion_id("a", "bc", "d"), assertion_id("a", "b", "cd"));
        assert_eq!(crate::replay::hex(&assertion_id("i", "c", "j")).len(), 64);
    }
}
