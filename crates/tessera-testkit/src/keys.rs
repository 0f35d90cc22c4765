//! Client key pairs for tests: each algorithm Tessera accepts in a client assertion, generated
//! fresh, with its public JWK, its PKCS#8 PEM, and a signer for compact JWTs.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

enum Pair {
    Ec(EcdsaKeyPair, &'static str),
    Ed(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair, bool),
}

/// A key pair for one algorithm, with a `kid`.
pub struct TestKey {
    /// Its JOSE algorithm name.
    pub alg: &'static str,
    /// Its key id.
    pub kid: String,
    pair: Pair,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    /// A new key for `alg` (`ES256`, `ES384`, `EdDSA`, `RS256` or `PS256`) named `kid`.
    pub fn new(alg: &'static str, kid: &str) -> TestKey {
        let pair = match alg {
            "ES256" | "ES384" => {
                let (signing, crv) = match alg {
                    "ES256" => (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256"),
                    _ => (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384"),
                };
                Pair::Ec(EcdsaKeyPair::generate(signing).unwrap(), crv)
            }
            "EdDSA" => Pair::Ed(Ed25519KeyPair::generate().unwrap()),
            "RS256" | "PS256" => Pair::Rsa(
                aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
                alg == "PS256",
            ),
            other => panic!("no test keys for {other}"),
        };
        TestKey {
            alg,
            kid: kid.to_string(),
            pair,
        }
    }

    /// The public JWK, with `kid`, `alg` and `use`.
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Ec(k, crv) => {
                let point = k.public_key().as_ref();
                let n = (point.len() - 1) / 2;
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..1 + n]), "y": b64(&point[1 + n..])})
            }
            Pair::Ed(k) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())}),
            Pair::Rsa(k, _) => {
                let public = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
        };
        jwk["kid"] = self.kid.clone().into();
        jwk["alg"] = self.alg.into();
        jwk["use"] = "sig".into();
        jwk
    }

    /// A JWK Set of this key alone.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk()]})
    }

    /// The private key as PKCS#8 PEM.
    pub fn pem(&self) -> String {
        let der = match &self.pair {
            Pair::Ec(k, _) => k.to_pkcs8v1().unwrap().as_ref().to_vec(),
            Pair::Ed(k) => k.to_pkcs8v1().unwrap().as_ref().to_vec(),
            Pair::Rsa(k, _) => {
                use aws_lc_rs::encoding::AsDer;
                k.as_der().unwrap().as_ref().to_vec()
            }
        };
        pem("PRIVATE KEY", &der)
    }

    /// The public key as PEM (an X.509 SubjectPublicKeyInfo, as `openssl pkey -pubout` writes).
    pub fn public_pem(&self) -> String {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        let der: PublicKeyX509Der = match &self.pair {
            Pair::Ec(k, _) => k.public_key().as_der().unwrap(),
            Pair::Ed(k) => k.public_key().as_der().unwrap(),
            Pair::Rsa(k, _) => k.public_key().as_der().unwrap(),
        };
        pem("PUBLIC KEY", der.as_ref())
    }

    /// The signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(k, _) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
            Pair::Ed(k) => k.sign(message).as_ref().to_vec(),
            Pair::Rsa(k, pss) => {
                let mut out = vec![0; k.public_modulus_len()];
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = if *pss {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                k.sign(padding, &rng, message, &mut out).unwrap();
                out
            }
        }
    }

    /// A compact JWT of `claims` with `header` (to which `alg` and `kid` are added unless it
    /// has them).
    pub fn jwt_with(&self, header: Value, claims: &Value) -> String {
        let mut header = header;
        if header.get("alg").is_none() {
            header["alg"] = self.alg.into();
        }
        if header.get("kid").is_none() {
            header["kid"] = self.kid.clone().into();
        }
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// The public key alone, as a DPoP proof's header carries it (no `kid`, `alg` or `use`).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.jwk();
        let map = jwk.as_object_mut().unwrap();
        for member in ["kid", "alg", "use"] {
            map.remove(member);
        }
        jwk
    }

    /// The RFC 7638 thumbprint of the public key (computed here, independently of Tessera's).
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let m = |k: &str| jwk[k].as_str().unwrap().to_string();
        let canonical = match jwk["kty"].as_str().unwrap() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                m("crv"),
                m("x"),
                m("y")
            ),
            "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, m("crv"), m("x")),
            _ => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, m("e"), m("n")),
        };
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// A DPoP proof (RFC 9449 §4.2) for `htm` `htu` at `iat`, with a fresh `jti`; `extra`'s
    /// members are added to the claims (a `null` removes one). Header: `typ` `dpop+jwt`, `alg`,
    /// and the public `jwk`.
    pub fn dpop(&self, htm: &str, htu: &str, iat: i64, extra: Value) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk()});
        self.dpop_with(header, htm, htu, iat, extra)
    }

    /// A DPoP proof with `header` as given (nothing added to it).
    pub fn dpop_with(&self, header: Value, htm: &str, htu: &str, iat: i64, extra: Value) -> String {
        let mut claims = json!({"jti": uuid(), "htm": htm, "htu": htu, "iat": iat});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(&k);
            } else {
                claims[k] = v;
            }
        }
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// A compact JWT of `claims`, header `{"alg", "kid", "typ": "JWT"}`.
    pub fn jwt(&self, claims: &Value) -> String {
        self.jwt_with(json!({"typ": "JWT"}), claims)
    }
}

/// The `ath` of an access token: base64url SHA-256.
pub fn ath(access_token: &str) -> String {
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes()).as_ref())
}

fn uuid() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    b64(&bytes)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A compact JWT of `claims` MACed with HS256 under `key`: what an attacker who read a
/// client's public key might try.
pub fn hs256_jwt(key: &[u8], kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "HS256", "kid": kid, "typ": "JWT"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}
