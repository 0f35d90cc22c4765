//! Checking tokens this server issued: for introspection, revocation and the admin API.
//!
//! A token is active when its signature checks out against a key this server still publishes,
//! its `typ`, `iss` and `exp` are right, its `jti` is not revoked, and its client exists, is
//! enabled and has not had its tokens revoked since the token was issued.

use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_proto::{ACCESS_TOKEN_TYP, AccessTokenClaims};
use tessera_verify::jws;

use crate::app::App;
use crate::clients::CachedClient;

/// Longest token accepted for checking.
pub const MAX_TOKEN_LEN: usize = 4 * 1024;

/// Why a token is not active (for the log; callers see only "inactive").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// Not a well-formed JWT of ours.
    Malformed,
    /// Unknown key or bad signature.
    Signature,
    /// Issued by someone else.
    Issuer,
    /// Past its `exp`.
    Expired,
    /// Revoked, by `jti` or for its whole client.
    Revoked,
    /// Its client is gone or disabled.
    Client,
}

/// An active token.
pub struct Active {
    /// Its claims.
    pub claims: AccessTokenClaims,
    /// The client it was issued to.
    pub client: Arc<CachedClient>,
}

/// Most tokens remembered as verified (see [`jws::VerifiedTokens`]).
pub const MAX_VERIFIED: usize = 10_000;

/// Tokens whose signature, header and issuer were checked, so a token introspected again and
/// again pays for one signature verification. Everything that can change while a token lives
/// (expiry, revocation, its client, its key still being published) is checked on every use.
pub type VerifiedTokens = jws::VerifiedTokens<AccessTokenClaims>;

/// An empty cache of [`MAX_VERIFIED`] tokens.
pub fn verified_tokens() -> VerifiedTokens {
    VerifiedTokens::new(MAX_VERIFIED)
}

/// Checks `token` at time `now`.
pub fn check(app: &App, token: &str, now: i64) -> Result<Active, Inactive> {
    let claims = authentic(app, token)?;
    active(app, claims, now)
}

/// The claims of `token` if it is a well-formed token signed by a key this server publishes and
/// issued by this server, whether or not it is still active. The JWS rules (one header decode,
/// keys parsed once, the cache) are `tessera_verify`'s, as in every resource server.
pub fn authentic(app: &App, token: &str) -> Result<AccessTokenClaims, Inactive> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Inactive::Malformed);
    }
    let keys = app.keys.get();
    let digest = jws::digest(token);
    let cached = app.verified.get(&digest, &keys.verifiers);
    app.metrics.lookup("verified_tokens", cached.is_some());
    if let Some(claims) = cached {
        return Ok((*claims).clone());
    }
    let parsed = jws::parse(token).map_err(|_| Inactive::Malformed)?;
    if parsed.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
        return Err(Inactive::Malformed);
    }
    let kid = parsed.kid.as_deref().ok_or(Inactive::Signature)?;
    let key = keys.verifiers.get(kid).ok_or(Inactive::Signature)?;
    let payload = parsed.verify(key).map_err(|e| match e {
        tessera_verify::VerifyError::Malformed => Inactive::Malformed,
        _ => Inactive::Signature,
    })?;
    let claims: AccessTokenClaims = serde_json::from_slice(&payload).map_err(|_| Inactive::Malformed)?;
    if claims.iss != app.settings.issuer {
        return Err(Inactive::Issuer);
    }
    let now = u64::try_from(app.clock.now()).unwrap_or(0);
    app.verified
        .insert(digest, kid, key, Arc::new(claims.clone()), claims.exp, now);
    Ok(claims)
}

/// Whether authentic `claims` are active at `now`: unexpired, not revoked, of an enabled client.
pub fn active(app: &App, claims: AccessTokenClaims, now: i64) -> Result<Active, Inactive> {
    if claims.exp as i64 <= now {
        return Err(Inactive::Expired);
    }
    if app.revocations.contains(&claims.jti) {
        return Err(Inactive::Revoked);
    }
    let client = app.registry.get(&claims.client_id).ok_or(Inactive::Client)?;
    if !client.enabled {
        return Err(Inactive::Client);
    }
    if claims.iat as i64 <= client.tokens_revoked_before {
        return Err(Inactive::Revoked);
    }
    Ok(Active { claims, client })
}
/// The claims of an ID token this server signed (signature, `typ`, `iss`), expired or not:
/// what an `id_token_hint` must be.
pub fn id_token_claims(app: &App, token: &str) -> Option<Map<String, Value>> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let parsed = tessera_verify::jws::parse(token).ok()?;
    if parsed.typ.as_deref() != Some("JWT") {
        return None;
    }
    let keys = app.keys.get();
    let key = keys.verifiers.get(parsed.kid.as_deref()?)?;
    let claims: Map<String, Value> = serde_json::from_slice(&parsed.verify(key).ok()?).ok()?;
    (claims.get("iss")?.as_str()? == app.settings.issuer).then_some(claims)
}
