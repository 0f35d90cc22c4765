//! DPoP (RFC 9449): the client proves, with each request, that it holds the key its tokens are
//! bound to; a copied token is of no use without it.
//!
//! Give a [`TokenClient`](crate::TokenClient) a [`DpopKey`] with
//! [`TokenClientBuilder::dpop`](crate::TokenClientBuilder::dpop): its token requests carry a
//! proof (the server binds the token to the key and answers `token_type: DPoP`), and
//! [`BearerMiddleware`](crate::BearerMiddleware) sends such tokens as `Authorization: DPoP` with
//! a fresh proof for each API call (`ath` the token's hash). A server or API that asks for a
//! nonce (`use_dpop_nonce`) is answered once more with a proof carrying it; nonces are
//! remembered per origin.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{ClientError, ClientKey};

/// A DPoP key: made fresh for one client instance ([`DpopKey::generate`]), or loaded (a key
/// that survives restarts keeps refresh tokens bound to it usable).
pub struct DpopKey {
    key: ClientKey,
    jkt: String,
    /// The last nonce each origin gave.
    nonces: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.key.algorithm())
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

/// Most origins whose nonce is remembered.
const MAX_ORIGINS: usize = 1024;

impl DpopKey {
    /// A new ES256 key.
    pub fn generate() -> Result<DpopKey, ClientError> {
        Ok(DpopKey::from_key(ClientKey::generate()?))
    }

    /// `key` as a DPoP key (EC P-256/P-384, Ed25519 or RSA, as [`ClientKey::from_pem`] reads).
    pub fn from_key(key: ClientKey) -> DpopKey {
        let jkt = thumbprint(&key.bare_public_jwk());
        DpopKey {
            key,
            jkt,
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// The RFC 7638 thumbprint of its public key: what bound tokens carry as `cnf.jkt`, and the
    /// `dpop_jkt` of an authorization request (RFC 9449 §10).
    pub fn thumbprint(&self) -> &str {
        &self.jkt
    }

    /// A proof for a `method` request to `url` (query and fragment are left out of `htu`),
    /// with `ath` when it carries `access_token`, and the nonce `url`'s origin last gave.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> Result<String, ClientError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| ClientError::Config(format!("not a URL: {e}")))?;
        let mut htu = parsed.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        // Credentials in a URL never go into a proof.
        let _ = htu.set_username("");
        let _ = htu.set_password(None);
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| ClientError::Config("no randomness for a DPoP proof".into()))?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut claims = serde_json::json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": htu.as_str(),
            "iat": now,
        });
        if let Some(token) = access_token {
            let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            claims["ath"] = URL_SAFE_NO_PAD.encode(hash).into();
        }
        if let Some(nonce) = self.nonce_for(&parsed) {
            claims["nonce"] = nonce.into();
        }
        let header = serde_json::json!({
            "typ": "dpop+jwt",
            "alg": self.key.algorithm(),
            "jwk": self.key.bare_public_jwk(),
        });
        self.key.sign_with_header(&header, &claims)
    }

    fn nonce_for(&self, url: &reqwest::Url) -> Option<String> {
        let nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        nonces.get(&url.origin().ascii_serialization()).cloned()
    }

    /// Remembers the `DPoP-Nonce` of a response from `url`, if it has one; whether it had.
    pub fn remember_nonce(&self, url: &reqwest::Url, headers: &reqwest::header::HeaderMap) -> bool {
        let Some(nonce) = headers
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .filter(|n| !n.is_empty() && n.len() <= 256)
        else {
            return false;
        };
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        if nonces.len() >= MAX_ORIGINS {
            nonces.clear();
        }
        nonces.insert(url.origin().ascii_serialization(), nonce.to_string());
        true
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, written out here (not
/// left to the order of a JSON map, which a feature of serde_json can change).
fn thumbprint(jwk: &serde_json::Value) -> String {
    let m = |k: &str| jwk.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let canonical = match m("kty") {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            m("crv"),
            m("x"),
            m("y")
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, m("crv"), m("x")),
        _ => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, m("e"), m("n")),
    };
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// Whether `response` asks for a DPoP nonce: a token endpoint's `use_dpop_nonce` error (400
/// with a JSON body, read by the caller) or an API's `DPoP error="use_dpop_nonce"` challenge.
pub(crate) fn nonce_challenge(response: &reqwest::Response) -> bool {
    response.status() == reqwest::StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("use_dpop_nonce")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_name_the_request_and_carry_the_nonce_of_its_origin() {
        let key = DpopKey::generate().unwrap();
        assert_eq!(key.thumbprint().len(), 43);
        let url = reqwest::Url::parse("https://api.example.com/x").unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        assert!(!key.remember_nonce(&url, &headers));
        headers.insert("dpop-nonce", reqwest::header::HeaderValue::from_static("n-1"));
        assert!(key.remember_nonce(&url, &headers));
        let proof = key
            .proof("GET", "https://api.example.com/invoices?page=2#top", Some("tok"))
            .unwrap();
        let parts: Vec<&str> = proof.split('.').collect();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert!(header["jwk"].get("d").is_none() && header["jwk"].get("kid").is_none());
        assert_eq!(claims["htu"], "https://api.example.com/invoices");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["ath"].as_str().unwrap().len(), 43);
        let elsewhere = key.proof("POST", "https://auth.example.com/token", None).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(elsewhere.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(claims.get("nonce").is_none() && claims.get("ath").is_none());
    }
}
