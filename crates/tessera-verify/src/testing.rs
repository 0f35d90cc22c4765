//! Tokens for testing an API without a token server (feature `test-kit`).
//!
//! A [`TestIssuer`] holds an ES256 key made for the test; its [`TestIssuer::verifier`] trusts
//! exactly that key (given in-process, never fetched), and [`TestIssuer::token`] mints RFC 9068
//! access tokens the way Tessera does, with whatever scopes and claims the test needs, or with
//! the one defect the test is about (expired, another audience).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use tessera_verify::testing::TestIssuer;
//! let issuer = TestIssuer::new("https://auth.example.com");
//! let verifier = issuer.verifier("https://api.example.com").await;
//! let token = issuer
//!     .token("https://api.example.com")
//!     .scope("orders:read")
//!     .claim("partner", "acme")
//!     .sign();
//! let claims = verifier.verify(&token).await.unwrap();
//! assert!(claims.has_scope("orders:read"));
//! assert_eq!(claims.claim::<String>("partner").as_deref(), Some("acme"));
//! let expired = issuer.token("https://api.example.com").expires_in(-120).sign();
//! assert!(verifier.verify(&expired).await.is_err());
//! # });
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::{Algorithm, Verifier};

/// An issuer that exists only in the test: one ES256 key.
pub struct TestIssuer {
    issuer: String,
    kid: String,
    key: EncodingKey,
    jwks: Value,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TestIssuer {
    /// A new issuer named `issuer`, with a fresh key.
    ///
    /// # Panics
    /// If the system has no randomness (key generation fails): a test cannot go on then.
    #[allow(clippy::expect_used)]
    pub fn new(issuer: &str) -> Self {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("ES256 key generation");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("ES256 key parse");
        // Uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        let kid = format!("test-{}", &b64(x)[..8]);
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y),
            "kid": kid, "alg": "ES256", "use": "sig",
        }]});
        TestIssuer {
            issuer: issuer.trim_end_matches('/').to_string(),
            kid,
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwks,
        }
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Its public keys, as a JWKS document.
    pub fn jwks(&self) -> Value {
        self.jwks.clone()
    }

    /// A verifier for `audience` that trusts this issuer's key (nothing is fetched).
    ///
    /// # Panics
    /// Never for a non-empty audience.
    #[allow(clippy::expect_used)]
    pub async fn verifier(&self, audience: &str) -> Verifier {
        Verifier::builder(&self.issuer)
            .audience(audience)
            .jwks(self.jwks())
            .build()
            .await
            .expect("a verifier with given keys")
    }

    /// Starts a token for `audience`: subject and client `test-client`, valid for an hour, no
    /// scope.
    pub fn token(&self, audience: &str) -> TestToken<'_> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!("test-client"));
        claims.insert("aud".into(), json!(audience));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + 3600));
        claims.insert("jti".into(), json!(format!("test-{now}-{}", rand_suffix())));
        claims.insert("client_id".into(), json!("test-client"));
        TestToken {
            issuer: self,
            claims,
            now,
        }
    }
}

fn rand_suffix() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 8];
    let _ = SystemRandom::new().fill(&mut b);
    b64(&b)
}

/// A token being made; [`TestToken::sign`] finishes it.
#[derive(Debug)]
pub struct TestToken<'a> {
    issuer: &'a TestIssuer,
    claims: Map<String, Value>,
    now: i64,
}

impl TestToken<'_> {
    /// The subject (a client id, or a person's id for a sign-in token).
    pub fn subject(mut self, sub: &str) -> Self {
        self.claims.insert("sub".into(), json!(sub));
        self
    }

    /// The client the token was issued to.
    pub fn client_id(mut self, client_id: &str) -> Self {
        self.claims.insert("client_id".into(), json!(client_id));
        self
    }

    /// The granted scopes (space-separated).
    pub fn scope(mut self, scope: &str) -> Self {
        self.claims.insert("scope".into(), json!(scope));
        self
    }

    /// Any other claim.
    pub fn claim(mut self, name: &str, value: impl serde::Serialize) -> Self {
        self.claims
            .insert(name.into(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }

    /// Seconds until expiry, from now (negative: already expired).
    pub fn expires_in(mut self, seconds: i64) -> Self {
        self.claims.insert("exp".into(), json!(self.now + seconds));
        self
    }

    /// The signed token (ES256, `typ: at+jwt`).
    ///
    /// # Panics
    /// If signing fails (it does not with the key the issuer made): a test cannot go on then.
    #[allow(clippy::expect_used)]
    pub fn sign(self) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.issuer.kid.clone());
        jsonwebtoken::encode(&header, &Value::Object(self.claims), &self.issuer.key).expect("ES256 signing")
    }
}
