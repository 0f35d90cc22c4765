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
    /// A TLS client certificate from a trusted CA naming the client's registered subject (RFC
    /// 8705 §2.1).
    #[serde(rename = "tls_client_auth")]
    TlsClientAuth,
    /// A TLS client certificate the client registered, matched by its SHA-256 (RFC 8705 §2.2).
    #[serde(rename = "self_signed_tls_client_auth")]
    SelfSignedTlsClientAuth,
}

/// The one subject a `tls_client_auth` client's certificate must carry (RFC 8705 §2.1.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TlsSubject {
    /// The subject distinguished name, as RFC 4514 writes it (`CN=billing,O=Acme`).
    SubjectDn(String),
    /// A `dNSName` subject alternative name.
    SanDns(String),
    /// A `uniformResourceIdentifier` SAN (a SPIFFE ID: `spiffe://prod.acme/ns/payments/sa/api`).
    SanUri(String),
    /// An `iPAddress` SAN (compared as an address).
    SanIp(String),
    /// An `rfc822Name` SAN.
    SanEmail(String),
}

impl TlsSubject {
    /// Checks the value: printable, at most 1024 characters; an IP that parses.
    pub fn validate(&self) -> Result<(), String> {
        let v = match self {
            TlsSubject::SubjectDn(v)
            | TlsSubject::SanDns(v)
            | TlsSubject::SanUri(v)
            | TlsSubject::SanIp(v)
            | TlsSubject::SanEmail(v) => v,
        };
        if v.is_empty() || v.len() > 1024 || v.chars().any(char::is_control) {
            return Err("a TLS subject is 1 to 1024 printable characters".into());
        }
        if let TlsSubject::SanIp(ip) = self {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("{ip:?} is not an IP address"))?;
        }
        Ok(())
    }
}

/// The certificate chain a client presented on its TLS connection (or that a trusted proxy
/// forwarded), leaf first. Only public material: certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// DER certificates, the client's own first.
    pub chain: Vec<Vec<u8>>,
}

impl PeerCertificate {
    /// The client's own certificate.
    pub fn leaf(&self) -> &[u8] {
        self.chain.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// Its SHA-256, base64url without padding (RFC 8705 §3.1 `x5t#S256`).
    pub fn thumbprint(&self) -> String {
        certificate_thumbprint(self.leaf())
    }
}

/// The `x5t#S256` of a DER certificate: the one resource servers compute (`tessera-verify`).
pub use tessera_verify::certificate_thumbprint;

/// Most certificates a self-signed client registers.
pub const MAX_CLIENT_CERTIFICATES: usize = 10;

impl TokenAuth {
    /// Its RFC 7591 name.
    pub fn name(&self) -> &'static str {
        match self {
            TokenAuth::ClientSecret => "client_secret_basic",
            TokenAuth::PrivateKeyJwt => "private_key_jwt",
            TokenAuth::TlsClientAuth => "tls_client_auth",
            TokenAuth::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

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
            "tls_client_auth" => Ok(TokenAuth::TlsClientAuth),
            "self_signed_tls_client_auth" => Ok(TokenAuth::SelfSignedTlsClientAuth),
            "client_secret_jwt" => Err(
                "client_secret_jwt is not offered: it needs the secret in clear, which Tessera never stores; use private_key_jwt"
                    .into(),
            ),
            other => Err(format!(
                "unknown token_endpoint_auth_method {other:?} (client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth or self_signed_tls_client_auth)"
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

/// The public JWK (RFC 7517) of a PEM `PUBLIC KEY` (an X.509 SubjectPublicKeyInfo, as
/// `openssl pkey -pubout` writes it): EC P-256 or P-384, Ed25519, or RSA. Its `kid` is `kid`, or
/// else the key's RFC 7638 thumbprint.
pub fn jwk_from_public_pem(pem: &str, kid: Option<&str>) -> Result<serde_json::Value, String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let body = pem
        .split("-----BEGIN PUBLIC KEY-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END PUBLIC KEY-----").next())
        .ok_or("not a PEM PUBLIC KEY (openssl pkey -in key.pem -pubout writes one)")?;
    let der = STANDARD
        .decode(body.split_whitespace().collect::<String>())
        .map_err(|_| "the PEM block is not base64")?;
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    const P256: &[u8] = &[
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    const P384: &[u8] = &[
        0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81,
        0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
    ];
    const ED25519: &[u8] = &[
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    const RSA_OID: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let mut jwk = if let Some(point) = der.strip_prefix(P256).filter(|p| p.len() == 64) {
        serde_json::json!({"crv": "P-256", "kty": "EC", "x": b64(&point[..32]), "y": b64(&point[32..])})
    } else if let Some(point) = der.strip_prefix(P384).filter(|p| p.len() == 96) {
        serde_json::json!({"crv": "P-384", "kty": "EC", "x": b64(&point[..48]), "y": b64(&point[48..])})
    } else if let Some(x) = der.strip_prefix(ED25519).filter(|p| p.len() == 32) {
        serde_json::json!({"crv": "Ed25519", "kty": "OKP", "x": b64(x)})
    } else {
        // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { SEQUENCE { n, e } } }
        let mut outer = Der(&der);
        let mut spki = Der(outer.take(0x30).ok_or("not a public key")?);
        let alg = spki.take(0x30).ok_or("not a public key")?;
        if alg.get(..RSA_OID.len()) != Some(RSA_OID) {
            return Err("a public key of a kind other than EC P-256/P-384, Ed25519 or RSA".into());
        }
        let bits = spki.take(0x03).ok_or("not a public key")?;
        let mut key = Der(bits.strip_prefix(&[0]).ok_or("not a public key")?);
        let mut seq = Der(key.take(0x30).ok_or("not an RSA public key")?);
        let trim = |v: &[u8]| -> Vec<u8> { v.iter().skip_while(|b| **b == 0).copied().collect() };
        let n = trim(seq.take(0x02).ok_or("not an RSA public key")?);
        let e = trim(seq.take(0x02).ok_or("not an RSA public key")?);
        serde_json::json!({"e": b64(&e), "kty": "RSA", "n": b64(&n)})
    };
    // RFC 7638 §3, as resource servers and DPoP proofs compute it.
    jwk["kid"] = match kid {
        Some(k) => k.to_string(),
        None => tessera_verify::jws::thumbprint(&jwk).ok_or("not a public key")?,
    }
    .into();
    jwk["use"] = "sig".into();
    Ok(jwk)
}

/// A cursor over DER: [`Der::take`] reads one element of the expected tag.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn take(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (&t, rest) = self.0.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let (value, after) = rest.split_at(len);
        self.0 = after;
        Some(value)
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
    fn public_keys_from_pem() {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
        use base64::Engine;
        let pem = |der: &[u8]| {
            let b = base64::engine::general_purpose::STANDARD.encode(der);
            format!("-----BEGIN PUBLIC KEY-----\n{b}\n-----END PUBLIC KEY-----\n")
        };
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der: PublicKeyX509Der = ec.public_key().as_der().unwrap();
        let jwk = jwk_from_public_pem(&pem(der.as_ref()), Some("ec")).unwrap();
        let point = ec.public_key().as_ref();
        assert_eq!(jwk["x"], b64(&point[1..33]));
        assert_eq!(jwk["y"], b64(&point[33..]));
        assert_eq!(validate_jwks(&json!({"keys": [jwk]})), Ok(()));
        let ed = Ed25519KeyPair::generate().unwrap();
        let der: PublicKeyX509Der = ed.public_key().as_der().unwrap();
        let jwk = jwk_from_public_pem(&pem(der.as_ref()), None).unwrap();
        assert_eq!(jwk["x"], b64(ed.public_key().as_ref()));
        assert_eq!(jwk["kid"].as_str().unwrap().len(), 43, "an RFC 7638 thumbprint");
        let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der: PublicKeyX509Der = rsa.public_key().as_der().unwrap();
        let jwk = jwk_from_public_pem(&pem(der.as_ref()), Some("r")).unwrap();
        assert_eq!(
            jwk["n"],
            b64(rsa.public_key().modulus().big_endian_without_leading_zero())
        );
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(validate_jwks(&json!({"keys": [jwk]})), Ok(()));
        assert!(
            jwk_from_public_pem("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----", None).is_err()
        );
        assert!(jwk_from_public_pem("nothing", None).is_err());
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
