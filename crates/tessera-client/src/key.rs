//! A client's own signing key, for `private_key_jwt` (RFC 7523 §2.2): no secret is shared with
//! the token server, which holds only the public key.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::ClientError;

enum Signer {
    Ec(EcdsaKeyPair, &'static str, &'static str),
    Ed(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

/// A private key that signs client assertions: EC P-256 (`ES256`), EC P-384 (`ES384`), Ed25519
/// (`EdDSA`) or RSA of 2048 bits or more (`RS256`). Read from PEM (PKCS#8 `PRIVATE KEY`, SEC1
/// `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`, as `openssl genpkey` and `openssl ecparam`
/// write them). Its `Debug` shows the algorithm and key id, never the key.
///
/// ```
/// use tessera_client::ClientKey;
/// assert!(ClientKey::from_pem("not a key").is_err());
/// ```
pub struct ClientKey {
    signer: Signer,
    kid: Option<String>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("alg", &self.algorithm())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn config(why: impl Into<String>) -> ClientError {
    ClientError::Config(why.into())
}

/// The DER inside the first PEM block of `pem`, and its label.
fn pem_block(pem: &str) -> Result<(String, Vec<u8>), ClientError> {
    let begin = pem
        .find("-----BEGIN ")
        .ok_or_else(|| config("no PEM block (-----BEGIN …-----) in the key"))?;
    let rest = &pem[begin + 11..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| config("a malformed PEM header"))?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end = rest
        .find(&format!("-----END {label}-----"))
        .ok_or_else(|| config(format!("no -----END {label}----- in the key")))?;
    let b64: String = rest[body_start..end].split_whitespace().collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|_| config("the PEM block is not base64"))?;
    Ok((label, der))
}

impl ClientKey {
    /// The key in PEM text.
    pub fn from_pem(pem: &str) -> Result<ClientKey, ClientError> {
        let (label, der) = pem_block(pem)?;
        let signer = match label.as_str() {
            "PRIVATE KEY" => Self::pkcs8(&der)?,
            "EC PRIVATE KEY" => {
                EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map(|k| Signer::Ec(k, "ES256", "P-256"))
                    .or_else(|_| {
                        EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &der)
                            .map(|k| Signer::Ec(k, "ES384", "P-384"))
                    })
                    .map_err(|_| config("an EC key on a curve other than P-256 or P-384"))?
            }
            "RSA PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_der(&der)
                .map(Signer::Rsa)
                .map_err(|_| config("not a usable RSA key (2048 to 8192 bits)"))?,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(config(
                    "the key is encrypted: give it unencrypted (and protect the file)",
                ));
            }
            other => {
                return Err(config(format!(
                    "a PEM block of type {other:?} is not a private key"
                )));
            }
        };
        Ok(ClientKey { signer, kid: None })
    }

    fn pkcs8(der: &[u8]) -> Result<Signer, ClientError> {
        if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(Signer::Ed(k));
        }
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            return Ok(Signer::Ec(k, "ES256", "P-256"));
        }
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der) {
            return Ok(Signer::Ec(k, "ES384", "P-384"));
        }
        aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
            .map(Signer::Rsa)
            .map_err(|_| config("not an EC P-256/P-384, Ed25519 or RSA (2048 bits or more) private key"))
    }

    /// The key in the PEM file at `path`.
    pub fn from_pem_file(path: impl AsRef<std::path::Path>) -> Result<ClientKey, ClientError> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path)
            .map_err(|e| config(format!("cannot read the key file {}: {e}", path.display())))?;
        Self::from_pem(&pem)
    }

    /// The key in PEM text in the environment variable `name`.
    pub fn from_env(name: &str) -> Result<ClientKey, ClientError> {
        let pem =
            std::env::var(name).map_err(|_| config(format!("the environment variable {name} is not set")))?;
        Self::from_pem(&pem)
    }

    /// Names the key (`kid`) in each assertion, so the server picks it among the client's keys
    /// without trying them. Without one, Tessera accepts the assertion when the client has one
    /// key for its algorithm.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The JOSE algorithm it signs with.
    pub fn algorithm(&self) -> &'static str {
        match &self.signer {
            Signer::Ec(_, alg, _) => alg,
            Signer::Ed(_) => "EdDSA",
            Signer::Rsa(_) => "RS256",
        }
    }

    /// The public key as a JWK (with `kid`, `alg` and `use`), to register with the server
    /// (`tessera client create --auth-method private_key_jwt --jwks-file …`).
    pub fn public_jwk(&self) -> serde_json::Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match &self.signer {
            Signer::Ec(k, _, crv) => {
                let point = k.public_key().as_ref();
                let n = (point.len() - 1) / 2;
                serde_json::json!({"kty": "EC", "crv": crv, "x": b64(&point[1..1 + n]), "y": b64(&point[1 + n..])})
            }
            Signer::Ed(k) => {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
            Signer::Rsa(k) => {
                let p = k.public_key();
                serde_json::json!({
                    "kty": "RSA",
                    "n": b64(p.modulus().big_endian_without_leading_zero()),
                    "e": b64(p.exponent().big_endian_without_leading_zero()),
                })
            }
        };
        jwk["alg"] = self.algorithm().into();
        jwk["use"] = "sig".into();
        if let Some(kid) = &self.kid {
            jwk["kid"] = kid.clone().into();
        }
        jwk
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ClientError> {
        let rng = SystemRandom::new();
        let failed = |_| config("signing the client assertion failed");
        Ok(match &self.signer {
            Signer::Ec(k, _, _) => k.sign(&rng, message).map_err(failed)?.as_ref().to_vec(),
            Signer::Ed(k) => k.sign(message).as_ref().to_vec(),
            Signer::Rsa(k) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(failed)?;
                out
            }
        })
    }

    /// A client assertion (RFC 7523 §3) for `client_id`, for the server `audience` (its issuer
    /// identifier, or its token endpoint URL), issued `now` (Unix seconds), living 60 seconds,
    /// with a fresh `jti` and `typ: client-authentication+jwt`.
    pub fn assertion(&self, client_id: &str, audience: &str, now: u64) -> Result<String, ClientError> {
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| config("no randomness for the assertion's jti"))?;
        let claims = serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": audience,
            "iat": now, "exp": now + 60, "jti": URL_SAFE_NO_PAD.encode(jti),
        });
        // Explicitly typed, as RFC 7523bis asks of clients.
        self.sign_typed("client-authentication+jwt", &claims)
    }

    /// A compact JWT of `claims` signed with this key (header: `alg`, `typ: JWT`, and `kid` if
    /// set), for assertions of other shapes (RFC 7523 §2.1 grants).
    pub fn sign_jwt(&self, claims: &serde_json::Value) -> Result<String, ClientError> {
        self.sign_typed("JWT", claims)
    }

    fn sign_typed(&self, typ: &str, claims: &serde_json::Value) -> Result<String, ClientError> {
        let mut header = serde_json::json!({"alg": self.algorithm(), "typ": typ});
        if let Some(kid) = &self.kid {
            header["kid"] = kid.clone().into();
        }
        self.sign_with_header(&header, claims)
    }

    /// A new ES256 key, made now (a DPoP key for one client instance).
    pub fn generate() -> Result<ClientKey, ClientError> {
        let pkcs8 = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| config("cannot generate a key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| config("cannot generate a key"))?;
        Ok(ClientKey {
            signer: Signer::Ec(key, "ES256", "P-256"),
            kid: None,
        })
    }

    /// The public key's members alone (no `kid`, `alg` or `use`), as a DPoP proof carries it.
    pub(crate) fn bare_public_jwk(&self) -> serde_json::Value {
        let mut jwk = self.public_jwk();
        if let Some(map) = jwk.as_object_mut() {
            for member in ["kid", "alg", "use"] {
                map.remove(member);
            }
        }
        jwk
    }

    /// A compact JWS of `claims` under `header` (which must name this key's `alg`).
    pub(crate) fn sign_with_header(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, ClientError> {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PEM block of `label` around `body` (test input: a few bytes, never a key).
    fn block(label: &str, body: &str) -> String {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    }

    #[test]
    fn pem_blocks_are_read_strictly() {
        let label = "PRIVATE KEY";
        assert!(pem_block(&block(label, "!!!")).is_err());
        assert!(pem_block(&format!("-----BEGIN {label}-----\nAAAA\n")).is_err());
        let (found, der) = pem_block(&format!("x\n{}", block(label, "AAEC"))).unwrap();
        assert_eq!((found.as_str(), der), (label, vec![0, 1, 2]));
        assert!(ClientKey::from_pem(&block("CERTIFICATE", "AAEC")).is_err());
    }
}
