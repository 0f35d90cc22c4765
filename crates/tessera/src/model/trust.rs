//! Trust policies: workload identity federation. An operator trusts an external issuer (a
//! Kubernetes API server, GitHub Actions, a SPIFFE trust domain) for tokens that carry a given
//! audience and whose `sub` and other claims match conditions; such a token then authenticates
//! as one Tessera client, and gets what that client may have. A workload presents the token
//! its platform gives it instead of a secret.
//!
//! A condition is an exact value, or a pattern where `*` stands for any run of characters (`:`
//! and `/` included, so write patterns as tightly as the issuer's format allows:
//! `repo:acme/billing:ref:refs/heads/*`, not `repo:acme*`). A pattern is at most 512 characters
//! with at most 8 `*`; matching is linear in the value's length per `*`.

use std::collections::BTreeMap;

/// Where the issuer's public keys are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TrustKeys {
    /// Found through the issuer's OpenID Connect discovery document
    /// (`{issuer}/.well-known/openid-configuration`, its `jwks_uri`).
    Discovery,
    /// At this `jwks_uri`.
    JwksUri(String),
    /// Given here (for issuers Tessera cannot reach, as a Kubernetes API server often is): the
    /// operator updates them when the issuer rotates.
    Jwks(serde_json::Value),
}

/// A trust policy, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// Its id.
    pub id: String,
    /// A human name.
    pub name: String,
    /// The external issuer (its tokens' `iss`, exactly).
    pub issuer: String,
    /// Where its keys are.
    pub keys: TrustKeys,
    /// The audience its tokens must carry for Tessera (`aud` holds it).
    pub audience: String,
    /// The condition on `sub`.
    pub subject: String,
    /// Conditions on other claims (string, number or boolean claims, compared as text).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    /// The Tessera client a matching token authenticates as.
    pub client_id: String,
    /// Whether it is in force.
    pub enabled: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// Longest condition.
pub const MAX_PATTERN: usize = 512;
/// Most `*` in one condition.
pub const MAX_STARS: usize = 8;
/// Most claim conditions in one policy.
pub const MAX_CLAIM_CONDITIONS: usize = 16;
/// Claims a condition may not be about: the policy's own fields, and the token's timing.
const RESERVED_CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat"];

/// Whether `value` matches the condition `pattern` (`*` is any run of characters).
///
/// ```
/// use tessera::model::trust::matches;
/// assert!(matches("repo:acme/billing:ref:refs/heads/*", "repo:acme/billing:ref:refs/heads/main"));
/// assert!(!matches("repo:acme/billing:ref:refs/heads/*", "repo:acme/billing-evil:ref:refs/heads/main"));
/// assert!(matches("system:serviceaccount:payments:worker", "system:serviceaccount:payments:worker"));
/// assert!(!matches("system:serviceaccount:payments:worker", "system:serviceaccount:payments:worker2"));
/// assert!(matches("spiffe://prod.acme/ns/*/sa/worker", "spiffe://prod.acme/ns/payments/sa/worker"));
/// assert!(matches("*", ""));
/// ```
pub fn matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return value.is_empty();
    };
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: exact.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn validate_pattern(what: &str, pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN || pattern.chars().any(char::is_control) {
        return Err(format!("{what} must be 1 to {MAX_PATTERN} printable characters"));
    }
    if pattern.matches('*').count() > MAX_STARS {
        return Err(format!("{what} may hold at most {MAX_STARS} '*'"));
    }
    if pattern.chars().all(|c| c == '*') {
        return Err(format!(
            "{what} matches anything: name the subjects this policy trusts"
        ));
    }
    Ok(())
}

/// Checks a policy's fields (not whether its client exists: the operation does that).
pub fn validate(p: &TrustPolicy) -> Result<(), String> {
    super::client::validate_name(&p.name)?;
    let issuer = reqwest::Url::parse(&p.issuer).map_err(|_| format!("issuer {:?} is not a URL", p.issuer))?;
    if p.issuer.len() > 512 || issuer.fragment().is_some() || issuer.query().is_some() {
        return Err("issuer must be a URL of at most 512 bytes without query or fragment".into());
    }
    if issuer.scheme() != "https"
        && !(issuer.scheme() == "http"
            && super::auth::is_loopback_host(issuer.host_str().unwrap_or_default()))
    {
        return Err("issuer must be https (http only on loopback)".into());
    }
    match &p.keys {
        TrustKeys::Discovery => {}
        TrustKeys::JwksUri(uri) => super::auth::validate_jwks_uri(uri)?,
        TrustKeys::Jwks(set) => validate_issuer_keys(set)?,
    }
    if p.audience.is_empty() || p.audience.len() > 512 || p.audience.chars().any(char::is_control) {
        return Err("audience must be 1 to 512 printable characters".into());
    }
    validate_pattern("subject", &p.subject)?;
    if p.claims.len() > MAX_CLAIM_CONDITIONS {
        return Err(format!("at most {MAX_CLAIM_CONDITIONS} claim conditions"));
    }
    for (name, pattern) in &p.claims {
        if name.is_empty() || name.len() > 128 || RESERVED_CLAIMS.contains(&name.as_str()) {
            return Err(format!(
                "claim condition {name:?}: a claim name of 1 to 128 characters other than {}",
                RESERVED_CLAIMS.join(", ")
            ));
        }
        validate_pattern(&format!("claim {name}"), pattern)?;
    }
    if p.client_id.is_empty() || p.client_id.len() > 256 {
        return Err("client_id is required".into());
    }
    Ok(())
}

/// An issuer's key set given inline: a JWK Set whose keys (at least one usable) are public.
fn validate_issuer_keys(set: &serde_json::Value) -> Result<(), String> {
    let keys = set
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("keys must be a JWK Set: an object with a \"keys\" array")?;
    if serde_json::to_string(set).map_or(usize::MAX, |s| s.len()) > 64 * 1024 || keys.len() > 20 {
        return Err("an issuer's key set is at most 64 KiB and 20 keys".into());
    }
    if keys
        .iter()
        .any(|k| ["d", "p", "q", "k"].iter().any(|m| k.get(m).is_some()))
    {
        return Err("the key set holds private key material".into());
    }
    let ring = tessera_verify::jws::KeyRing::from_jwks(set, super::auth::ASSERTION_ALGORITHMS);
    if ring.is_empty() {
        return Err("the key set has no usable signing key (each needs a kid)".into());
    }
    Ok(())
}

/// What a token's claims must satisfy beyond its signature and timing: `iss` is the policy's
/// issuer, `aud` holds its audience, `sub` and every claim condition match.
pub fn admits(p: &TrustPolicy, claims: &serde_json::Map<String, serde_json::Value>) -> bool {
    let text = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let audience_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => *a == p.audience,
        Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(p.audience.as_str())),
        _ => false,
    };
    p.enabled
        && claims.get("iss").and_then(|i| i.as_str()) == Some(p.issuer.as_str())
        && audience_ok
        && claims
            .get("sub")
            .and_then(|s| s.as_str())
            .is_some_and(|s| matches(&p.subject, s))
        && p.claims.iter().all(|(name, pattern)| {
            claims
                .get(name)
                .and_then(text)
                .is_some_and(|v| matches(pattern, &v))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> TrustPolicy {
        TrustPolicy {
            id: "t1".into(),
            name: "billing deploys".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            keys: TrustKeys::Discovery,
            audience: "https://auth.example.com".into(),
            subject: "repo:acme/billing:ref:refs/heads/main".into(),
            claims: [("repository_owner".to_string(), "acme".to_string())].into(),
            client_id: "c1".into(),
            enabled: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn patterns() {
        assert!(matches("a*c", "abc"));
        assert!(matches("a*c", "ac"));
        assert!(!matches("a*c", "ab"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxc"));
        assert!(!matches("ab*ba", "aba"), "the ends may not overlap");
        assert!(matches("*worker", "system:serviceaccount:payments:worker"));
        assert!(validate_pattern("s", "*").is_err());
        assert!(validate_pattern("s", "").is_err());
        assert!(validate_pattern("s", "a*b*c*d*e*f*g*h*i*j").is_err());
    }

    #[test]
    fn policies() {
        assert_eq!(validate(&policy()), Ok(()));
        let mut p = policy();
        p.issuer = "http://evil.example".into();
        assert!(validate(&p).is_err());
        let mut p = policy();
        p.claims.insert("aud".into(), "x".into());
        assert!(validate(&p).is_err());
        let mut p = policy();
        p.keys = TrustKeys::Jwks(json!({"keys": [{"kty": "oct", "k": "AAAA", "kid": "x"}]}));
        assert!(validate(&p).is_err());
    }

    #[test]
    fn tokens_admitted() {
        let p = policy();
        let good = json!({
            "iss": p.issuer, "aud": p.audience, "sub": p.subject, "repository_owner": "acme",
        });
        let good = good.as_object().unwrap().clone();
        assert!(admits(&p, &good));
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good.clone();
            c.insert(k.into(), v);
            c
        };
        assert!(admits(&p, &with("aud", json!(["other", p.audience]))));
        assert!(!admits(&p, &with("aud", json!("https://other.example"))));
        assert!(!admits(&p, &with("iss", json!("https://evil.example"))));
        assert!(!admits(
            &p,
            &with("sub", json!("repo:acme/billing:ref:refs/heads/dev"))
        ));
        assert!(!admits(&p, &with("repository_owner", json!("evil"))));
        let mut missing = good.clone();
        missing.remove("repository_owner");
        assert!(!admits(&p, &missing));
        let mut off = policy();
        off.enabled = false;
        assert!(!admits(&off, &good));
    }
}
