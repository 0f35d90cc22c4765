//! Workload identity federation: a token from an external issuer (a Kubernetes service-account
//! token, a GitHub Actions OIDC token, a SPIFFE JWT-SVID) authenticates as the Tessera client a
//! trust policy maps it to (`model::trust`). Used by `private_key_jwt` (the external token as
//! the `client_assertion`, with the client's id) and by the JWT bearer grant (RFC 7523 §2.1).
//!
//! The token must be signed (an asymmetric algorithm) by a key of the policy's issuer (inline,
//! at a `jwks_uri`, or found through the issuer's discovery document; fetched as
//! `client_keys` allows), have `exp` in the future, `nbf` and `iat` not ahead (30 s leeway),
//! `iss` the policy's issuer, `aud` holding the policy's audience, and `sub` and every claim
//! condition matching. A platform token is reused by its workload for its lifetime (a
//! projected Kubernetes token for an hour), so its `jti`, if any, is not made single use; the
//! token it buys lives no longer than the client's token lifetime.

use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_verify::jws;

use crate::app::App;
use crate::clients::CachedClient;
use crate::model::auth::{ASSERTION_ALGORITHMS, TokenAuth};
use crate::model::trust::{TrustKeys, admits};

/// Clock difference tolerated, in seconds.
const LEEWAY: i64 = 30;

/// A token accepted: the client it authenticates as, and what it said.
pub struct Federated {
    /// The client.
    pub client: Arc<CachedClient>,
    /// The trust policy that admitted it.
    pub policy_id: String,
    /// The token's issuer and subject (for the log).
    pub issuer: String,
    /// The token's subject.
    pub subject: String,
}

/// Why a token was refused (for the log; the caller sees one error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWS with an allowed algorithm, or claims that are not a JSON object.
    Malformed,
    /// No trust policy for its issuer (and client).
    UnknownIssuer,
    /// No key of the issuer verifies it.
    Signature,
    /// Expired, no `exp`, or not valid yet.
    Timing,
    /// Audience, subject or claims do not match any policy.
    NoPolicy,
    /// Policies of several clients match it (it names no client).
    Ambiguous,
    /// The client is unknown, disabled, or does not authenticate with keys.
    Client,
}

impl Refusal {
    /// A short reason for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed external token",
            Refusal::UnknownIssuer => "no trust policy for its issuer",
            Refusal::Signature => "no key of the issuer verifies it",
            Refusal::Timing => "expired or not valid yet",
            Refusal::NoPolicy => "audience, subject or claims match no trust policy",
            Refusal::Ambiguous => "trust policies of several clients match",
            Refusal::Client => "the client is unknown, disabled or not a key client",
        }
    }
}

/// The `iss` a token claims, unverified: whether it is a federated token at all.
pub fn claimed_issuer(token: &str) -> Option<String> {
    let payload = jws::parse(token).ok()?.unverified_payload().ok()?;
    let claims: Map<String, Value> = crate::json::from_slice(&payload).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// An external token a trust policy admitted: its verified claims and where it maps.
pub struct Admitted {
    /// Its claims, signature and times checked.
    pub claims: Map<String, Value>,
    /// The client the policy maps it to.
    pub client_id: String,
    /// The policy.
    pub policy_id: String,
    /// Its issuer.
    pub issuer: String,
}

/// Checks external `token` against the trust policies in force; with `client_id`, only those
/// that map to that client. The client must authenticate with keys (the token stands for it).
pub async fn verify(app: &App, token: &str, client_id: Option<&str>) -> Result<Federated, Refusal> {
    let admitted = admit(app, token, client_id).await?;
    let client = app
        .registry
        .get(&admitted.client_id)
        .filter(|c| c.enabled && !c.public && c.auth == TokenAuth::PrivateKeyJwt)
        .ok_or(Refusal::Client)?;
    Ok(Federated {
        client,
        policy_id: admitted.policy_id,
        subject: admitted
            .claims
            .get("sub")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string(),
        issuer: admitted.issuer,
    })
}

/// Checks external `token` against the trust policies in force (with `client_id`, only those
/// that map to that client): signed by a key of its issuer, in time, matching exactly one
/// client's policies. Token exchange takes such a token as a subject.
pub async fn admit(app: &App, token: &str, client_id: Option<&str>) -> Result<Admitted, Refusal> {
    let parsed = jws::parse(token).map_err(|_| Refusal::Malformed)?;
    if !ASSERTION_ALGORITHMS.contains(&parsed.alg) {
        return Err(Refusal::Malformed);
    }
    let unverified: Map<String, Value> = parsed
        .unverified_payload()
        .ok()
        .and_then(|p| crate::json::from_slice(&p).ok())
        .ok_or(Refusal::Malformed)?;
    let issuer = unverified
        .get("iss")
        .and_then(|i| i.as_str())
        .ok_or(Refusal::UnknownIssuer)?;
    let set = app.trust.get();
    let candidates: Vec<_> = set
        .for_issuer(issuer)
        .iter()
        .filter(|c| client_id.is_none_or(|id| c.policy.client_id == id))
        .cloned()
        .collect();
    if candidates.is_empty() {
        return Err(Refusal::UnknownIssuer);
    }
    // The signature, with the keys of the first policy whose key source verifies it (policies
    // of one issuer normally share their keys).
    let mut payload = None;
    for c in &candidates {
        let key = match &c.policy.keys {
            TrustKeys::Jwks(_) => c
                .inline_keys
                .as_ref()
                .and_then(|ring| crate::client_keys::pick(ring, parsed.kid.as_deref(), parsed.alg)),
            TrustKeys::JwksUri(uri) => app
                .remote_keys
                .key(uri, parsed.kid.as_deref(), parsed.alg)
                .await
                .ok(),
            TrustKeys::Discovery => app
                .remote_keys
                .issuer_key(issuer, parsed.kid.as_deref(), parsed.alg)
                .await
                .ok(),
        };
        if let Some(p) = key.and_then(|k| parsed.verify(&k).ok()) {
            payload = Some(p);
            break;
        }
    }
    let payload = payload.ok_or(Refusal::Signature)?;
    let claims: Map<String, Value> = crate::json::from_slice(&payload).map_err(|_| Refusal::Malformed)?;
    let now = app.clock.now();
    let time = |name: &str| claims.get(name).and_then(Value::as_f64).map(|t| t as i64);
    match time("exp") {
        Some(exp) if exp > now - LEEWAY => {}
        _ => return Err(Refusal::Timing),
    }
    if time("nbf").is_some_and(|t| t > now + LEEWAY) || time("iat").is_some_and(|t| t > now + LEEWAY) {
        return Err(Refusal::Timing);
    }
    let mut clients: Vec<(&str, &str)> = candidates
        .iter()
        .filter(|c| admits(&c.policy, &claims))
        .map(|c| (c.policy.client_id.as_str(), c.policy.id.as_str()))
        .collect();
    clients.dedup_by(|a, b| a.0 == b.0);
    let (client, policy) = match clients.as_slice() {
        [] => return Err(Refusal::NoPolicy),
        [one] => *one,
        [first, rest @ ..] if rest.iter().all(|r| r.0 == first.0) => *first,
        _ => return Err(Refusal::Ambiguous),
    };
    Ok(Admitted {
        client_id: client.to_string(),
        policy_id: policy.to_string(),
        issuer: issuer.to_string(),
        claims,
    })
}
