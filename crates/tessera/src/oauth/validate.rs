//! Checking tokens this server issued: for introspection, revocation and the admin API.
//!
//! A token is active when its signature checks out against a key this server still publishes,
//! its `typ`, `iss` and `exp` are right, its `jti` is not revoked, and its client exists, is
//! enabled and has not had its tokens revoked since the token was issued.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_proto::{ACCESS_TOKEN_TYP, AccessTokenClaims};

use crate::app::App;
use crate::clients::CachedClient;
use crate::keys::KeySet;

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

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    kid: String,
    typ: String,
}

/// Most tokens remembered as verified. When full, entries of expired tokens are dropped, and if
/// that is not enough, all of them: a miss costs one signature verification, nothing more.
pub const MAX_VERIFIED: usize = 10_000;

/// Tokens whose signature, header and issuer were checked recently, keyed by the SHA-256 of the
/// whole token, so a token introspected again and again pays for one signature verification.
/// Everything that can change while a token lives (expiry, revocation, its client, its key still
/// being published) is checked on every use.
#[derive(Default)]
pub struct VerifiedTokens {
    map: RwLock<HashMap<[u8; 32], Verified>>,
}

struct Verified {
    kid: Box<str>,
    claims: AccessTokenClaims,
}

impl VerifiedTokens {
    /// The remembered claims of the token with digest `key`, if its key is still in `keys`.
    fn get(&self, key: &[u8; 32], keys: &KeySet) -> Option<AccessTokenClaims> {
        let g = crate::sync::read(&self.map);
        let v = g.get(key)?;
        keys.verifiers.contains_key(&*v.kid).then(|| v.claims.clone())
    }

    fn insert(&self, key: [u8; 32], kid: &str, claims: &AccessTokenClaims, now: i64) {
        let mut g = crate::sync::write(&self.map);
        if g.len() >= MAX_VERIFIED {
            g.retain(|_, v| v.claims.exp as i64 > now);
            if g.len() >= MAX_VERIFIED {
                g.clear();
            }
        }
        let verified = Verified {
            kid: kid.into(),
            claims: claims.clone(),
        };
        g.insert(key, verified);
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        crate::sync::read(&self.map).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks `token` at time `now`.
pub fn check(app: &App, token: &str, now: i64) -> Result<Active, Inactive> {
    let claims = authentic(app, token)?;
    active(app, claims, now)
}

/// The claims of `token` if it is a well-formed token signed by a key this server publishes and
/// issued by this server, whether or not it is still active.
pub fn authentic(app: &App, token: &str) -> Result<AccessTokenClaims, Inactive> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Inactive::Malformed);
    }
    let keys = app.keys.get();
    let mut key = [0u8; 32];
    key.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
    let cached = app.verified.get(&key, &keys);
    app.metrics.lookup("verified_tokens", cached.is_some());
    if let Some(claims) = cached {
        return Ok(claims);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Inactive::Malformed);
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| Inactive::Malformed);
    let header: Header = serde_json::from_slice(&decode(h)?).map_err(|_| Inactive::Malformed)?;
    if header.typ != ACCESS_TOKEN_TYP {
        return Err(Inactive::Malformed);
    }
    let verifier = keys.verifiers.get(&header.kid).ok_or(Inactive::Signature)?;
    if verifier.alg().as_str() != header.alg {
        return Err(Inactive::Signature);
    }
    let signing_input = &token[..h.len() + 1 + p.len()];
    if !verifier.verify(signing_input.as_bytes(), &decode(sig)?) {
        return Err(Inactive::Signature);
    }
    let claims: AccessTokenClaims = serde_json::from_slice(&decode(p)?).map_err(|_| Inactive::Malformed)?;
    if claims.iss != app.settings.issuer {
        return Err(Inactive::Issuer);
    }
    app.verified
        .insert(key, &header.kid, &claims, crate::store::now());
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
