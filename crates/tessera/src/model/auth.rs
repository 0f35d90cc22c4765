//! How a confidential client proves who it is at the token endpoint (RFC 7591
//! `token_endpoint_auth_method`), and the rules its public keys follow.
//!
//! A client has one method. A secret client (the default) presents a secret; a key client
//! (`private_key_jwt`, RFC 7523 §2.2) signs a short-lived assertion with a private key whose
//! public half it registered inline (`jwks`) or publishes at a `jwks_uri`. Registering keys
//! never turns a secret off: only changing the method does, and then the secrets the client had
//! keep working until the grace period the operator chose ends (see `admin::update_client`).
//! `client_secret_jwt` is not offered: it needs the secret in clear, and Tessera stores only
//! hashes of secrets.

use tessera_verify::Algorithm;
use tessera_verify::jws::PublicKey;

/// How a confidential client authenticates. (A public client authenticates with `none`.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TokenAuth {
    /// A secret, in `Authorization: Basic` or in the form (`client_secret_basic` and
    /// `client_secret_post` are both accepted, as they always were).
    #[default]
    #[serde(rename = "client_secret_basic", alias = "client_secret_post")]
    ClientSecret,
    /// A JWT signed with one of its registered keys (RFC 7523 §2.2).
    #[serde(rename = "private_key_jwt")]
    PrivateKeyJwt,
}

impl TokenAuth {
    /// Whether it is the default (kept out of stored records).
    pub fn is_secret(&self) -> bool {
        *self == TokenAuth::ClientSecret
    }

    /// Reads a `token_endpoint_auth_method` name; `none` is a public client, not a method of
    /// a confidential one.
    pub fn parse(name: &str) -> Result<TokenAuth, String> {
        match name {
            "client_secret_basic" | "client_secret_post" | "client_secret" => Ok(TokenAuth::ClientSecret),
            "private_key_jwt" => Ok(TokenAuth::PrivateKeyJwt),
            "client_secret_jwt" => Err(
                "client_secret_jwt is not offered: it needs the secret in clear, which Tessera never stores; use private_key_jwt"
                    .into(),
            ),
            other => Err(format!(
                "unknown token_endpoint_auth_method {other:?} (client_secret_basic, client_secret_post or private_key_jwt)"
            )),
        }
    }
}

/// The algorithms a client's assertion may be signed with: asymmetric only (`none` and HMAC
/// never).
pub const ASSERTION_ALGORITHMS: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// Their names, for discovery (`token_endpoint_auth_signing_alg_values_supported`): `Ed25519`
/// is RFC 9864's fully-specified name for `EdDSA` on Ed25519, which newer libraries send.
pub const ASSERTION_ALGORITHM_NAMES: &[&str] = &["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"];

/// Most keys a client may register or publish.
pub const MAX_CLIENT_KEYS: usize = 10;
/// Largest key set, serialized, in bytes (ten 4096-bit RSA keys fit).
pub const MAX_JWKS_BYTES: usize = 16 * 1024;

/// JWK members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks a client's inline key set: a JSON object with 1 to [`MAX_CLIENT_KEYS`] keys under
/// `keys`, each with a distinct `kid`, public (no private member), and a signing key for one of
/// [`ASSERTION_ALGORITHMS`] whose `kty`/`crv` agree with its `alg` when it states one.
pub fn validate_jwks(jwks: &serde_json::Value) -> Result<(), String> {
    if serde_json::to_string(jwks).map_or(usize::MAX, |s| s.len()) > MAX_JWKS_BYTES {
        return Err(format!("a key set is at most {MAX_JWKS_BYTES} bytes"));
    }
    let keys = jwks
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("jwks must be a JWK Set: an object with a \"keys\" array")?;
    if keys.is_empty() || keys.len() > MAX_CLIENT_KEYS {
        return Err(format!("jwks must hold 1 to {MAX_CLIENT_KEYS} keys"));
    }
    let mut kids: Vec<&str> = Vec::new();
    for (i, jwk) in keys.iter().enumerate() {
        let kid = jwk
            .get("kid")
            .and_then(|k| k.as_str())
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .ok_or_else(|| format!("key {i} needs a \"kid\" (1 to 128 characters)"))?;
        if kids.contains(&kid) {
            return Err(format!("kid {kid:?} given twice"));
        }
        kids.push(kid);
        if PRIVATE_MEMBERS.iter().any(|m| jwk.get(m).is_some()) {
            return Err(format!(
                "key {kid:?} holds private key material: register the public key only"
            ));
        }
        if PublicKey::from_jwk(jwk, ASSERTION_ALGORITHMS).is_none() {
            return Err(format!(
                "key {kid:?} is not a public signing key for {} (EC P-256/P-384, Ed25519 or RSA of 2048 bits or more, its alg matching its type)",
                ASSERTION_ALGORITHM_NAMES.join(", ")
            ));
        }
    }
    Ok(())
}

/// Checks a client's `jwks_uri`: an absolute `https` URL of at most 512 bytes without a
/// fragment or credentials, or `http` to a loopback host (fetched only where the operator
/// allows it; see `outbound` in the settings).
pub fn validate_jwks_uri(uri: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("jwks_uri {uri:?}: {why}"));
    if uri.len() > 512 {
        return bad("longer than 512 bytes");
    }
    let Ok(url) = reqwest::Url::parse(uri) else {
        return bad("not an absolute URL");
    };
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return bad("must not hold a fragment or credentials");
    }
    let Some(host) = url.host_str() else {
        return bad("has no host");
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(host) => Ok(()),
        _ => bad("must be https (http only to a loopback address)"),
    }
}

/// Whether `host` (as a URL holds it) is `localhost` or a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn methods_by_name() {
        assert_eq!(
            TokenAuth::parse("client_secret_post"),
            Ok(TokenAuth::ClientSecret)
        );
        assert_eq!(TokenAuth::parse("private_key_jwt"), Ok(TokenAuth::PrivateKeyJwt));
        assert!(
            TokenAuth::parse("client_secret_jwt")
                .unwrap_err()
                .contains("never stores")
        );
        assert!(TokenAuth::parse("none").is_err());
        assert_eq!(
            serde_json::to_value(TokenAuth::PrivateKeyJwt).unwrap(),
            json!("private_key_jwt")
        );
    }

    #[test]
    fn key_sets() {
        let ec = json!({"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "a"});
        assert_eq!(validate_jwks(&json!({"keys": [ec]})), Ok(()));
        let with_alg = json!({"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "a", "alg": "ES256"});
        assert_eq!(validate_jwks(&json!({"keys": [with_alg]})), Ok(()));
        for bad in [
            json!([]),
            json!({"keys": []}),
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": X, "y": Y}]}),
            json!({"keys": [ec.clone(), ec.clone()]}),
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "a", "d": X}]}),
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "a", "alg": "RS256"}]}),
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "a", "alg": "HS256"}]}),
            json!({"keys": [{"kty": "oct", "k": X, "kid": "a"}]}),
        ] {
            assert!(validate_jwks(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_set_addresses() {
        assert_eq!(validate_jwks_uri("https://app.example/jwks.json"), Ok(()));
        assert_eq!(validate_jwks_uri("http://127.0.0.1:8080/jwks"), Ok(()));
        assert_eq!(validate_jwks_uri("http://[::1]/jwks"), Ok(()));
        for bad in [
            "http://app.example/jwks",
            "https://app.example/jwks#x",
            "https://u:p@app.example/jwks",
            "/jwks",
            "file:///etc/passwd",
        ] {
            assert!(validate_jwks_uri(bad).is_err(), "{bad}");
        }
    }
}
