//! The offline core of verification: compact JWS parsing, public keys parsed once, and a bounded
//! cache of tokens already verified.
//!
//! [`Verifier`](crate::Verifier) is built on it, and so are the Tessera server's own checks of the
//! tokens it issued (introspection, revocation, the admin API): one implementation of the
//! signature rules for both ends. Most users want [`Verifier`](crate::Verifier), not this.
//!
//! ```
//! use tessera_verify::jws::{self, KeyRing};
//! use tessera_verify::{Algorithm, VerifyError};
//! let keys = KeyRing::from_jwks(&serde_json::json!({"keys": []}), &[Algorithm::ES256]);
//! assert!(keys.is_empty());
//! assert_eq!(jws::parse("a.b").err(), Some(VerifyError::Malformed));
//! ```

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::{Algorithm, MAX_TOKEN_LEN, VerifyError};

/// Longest JOSE header decoded (base64url characters): room for a DPoP proof's `jwk` with a
/// 4096-bit RSA key.
const MAX_HEADER_LEN: usize = 2048;

/// One published public key, parsed once (for an EC key, with its on-curve check), for each
/// algorithm it may verify: the one its JWK states, or, without `alg`, those of its family that
/// are allowed.
pub struct PublicKey {
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<_> = self.parsed.iter().map(|(a, _)| a).collect();
        f.debug_struct("PublicKey")
            .field("algorithms", &algs)
            .finish_non_exhaustive()
    }
}

const RSA_FAMILY: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

impl PublicKey {
    /// The key of JWK `jwk` and its `kid`, if it is a signing key for an algorithm in
    /// `allowed`. A JWK with `alg` verifies that algorithm only (and must fit its `kty` and
    /// `crv`); without, an EC or OKP key verifies its curve's algorithm (`ES256` for P-256,
    /// `ES384` for P-384, `EdDSA` for Ed25519) and an RSA key every allowed RSA algorithm. An
    /// encryption key (`use` other than `sig`, or `key_ops` without `verify`) is no signing key.
    pub fn from_jwk(jwk: &serde_json::Value, allowed: &[Algorithm]) -> Option<(String, PublicKey)> {
        let kid = jwk["kid"].as_str()?;
        Some((kid.to_string(), PublicKey::from_jwk_without_kid(jwk, allowed)?))
    }

    /// The key of JWK `jwk` as [`PublicKey::from_jwk`] reads it, whether or not it has a `kid`
    /// (the key a DPoP proof carries in its header).
    pub fn from_jwk_without_kid(jwk: &serde_json::Value, allowed: &[Algorithm]) -> Option<PublicKey> {
        if jwk.get("use").is_some_and(|u| u != "sig") {
            return None;
        }
        if let Some(ops) = jwk.get("key_ops") {
            if !ops.as_array()?.iter().any(|o| o == "verify") {
                return None;
            }
        }
        let field = |k: &str| jwk[k].as_str().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        let (kty, crv) = (jwk["kty"].as_str()?, jwk["crv"].as_str());
        let (family, bytes): (&[Algorithm], Vec<u8>) = match (kty, crv) {
            ("EC", Some(c @ ("P-256" | "P-384"))) => {
                let (x, y) = (field("x")?, field("y")?);
                let (alg, size) = match c {
                    "P-256" => (&[Algorithm::ES256], 32),
                    _ => (&[Algorithm::ES384], 48),
                };
                if x.len() != size || y.len() != size {
                    return None;
                }
                (alg, [&[4u8][..], &x, &y].concat())
            }
            ("OKP", Some("Ed25519")) => (&[Algorithm::EdDSA], field("x")?),
            ("RSA", _) => (&RSA_FAMILY, rsa_public_key_der(&field("n")?, &field("e")?)?),
            _ => return None,
        };
        let algs: Vec<Algorithm> = match jwk.get("alg") {
            Some(a) => vec![algorithm(a.as_str()?)?],
            None => family.to_vec(),
        };
        let parsed = algs
            .into_iter()
            .filter(|a| family.contains(a) && allowed.contains(a))
            .map(|a| Some((a, ParsedPublicKey::new(verification_algorithm(a)?, &bytes).ok()?)))
            .collect::<Option<Vec<_>>>()?;
        if parsed.is_empty() {
            return None;
        }
        Some(PublicKey { parsed })
    }

    /// The algorithms this key verifies.
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.parsed.iter().map(|(a, _)| *a)
    }

    /// Whether `signature` is this key's `alg` signature of `message` (false for an algorithm
    /// the key is not for).
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.parsed_for(alg)
            .is_some_and(|key| key.verify_sig(message, signature).is_ok())
    }

    fn parsed_for(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        self.parsed.iter().find(|(a, _)| *a == alg).map(|(_, k)| k)
    }

    /// Whether `other` is the same key material for the same algorithms.
    fn same_as(&self, other: &PublicKey) -> bool {
        self.parsed.len() == other.parsed.len()
            && self
                .parsed
                .iter()
                .zip(&other.parsed)
                .all(|((a, k), (b, l))| a == b && k.as_ref() == l.as_ref())
    }
}

fn verification_algorithm(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match alg {
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &sig::ED25519,
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        // Symmetric algorithms have no public key.
        _ => return None,
    })
}

/// The RFC 7638 thumbprint of public JWK `jwk` (EC, OKP or RSA): the base64url SHA-256 of its
/// required members, in lexicographic order, without whitespace.
pub fn thumbprint(jwk: &serde_json::Value) -> Option<String> {
    let s = |k: &str| -> Option<String> {
        let v = jwk.get(k)?.as_str()?;
        // Base64url values need no escaping; anything else has no place in a key.
        v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            .then(|| v.to_string())
    };
    let canonical = match jwk.get("kty")?.as_str()? {
        "EC" => {
            let crv = jwk.get("crv")?.as_str()?;
            if !matches!(crv, "P-256" | "P-384" | "P-521") {
                return None;
            }
            format!(
                r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                s("x")?,
                s("y")?
            )
        }
        "OKP" => {
            let crv = jwk.get("crv")?.as_str()?;
            if !matches!(crv, "Ed25519" | "Ed448" | "X25519" | "X448") {
                return None;
            }
            format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{}"}}"#, s("x")?)
        }
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    )))
}

/// DER of PKCS #1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Option<Vec<u8>> {
    fn length(len: usize, out: &mut Vec<u8>) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    fn integer(v: &[u8], out: &mut Vec<u8>) -> Option<()> {
        let v = &v[v.iter().take_while(|b| **b == 0).count()..];
        let first = *v.first()?;
        out.push(0x02);
        let pad = first & 0x80 != 0;
        length(v.len() + usize::from(pad), out);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
        Some(())
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(n, &mut body)?;
    integer(e, &mut body)?;
    let mut der = vec![0x30];
    length(body.len(), &mut der);
    der.extend(body);
    Some(der)
}

/// Published keys by `kid`.
#[derive(Default, Clone, Debug)]
pub struct KeyRing {
    keys: HashMap<String, Arc<PublicKey>>,
}

impl KeyRing {
    /// The usable keys of JWKS `set` for algorithms in `allowed`. Each key counts on its own: one
    /// of a kind this library does not know (an encryption key, another curve) leaves the others
    /// usable.
    pub fn from_jwks(set: &serde_json::Value, allowed: &[Algorithm]) -> KeyRing {
        let keys = set["keys"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|jwk| PublicKey::from_jwk(jwk, allowed))
            .map(|(kid, key)| (kid, Arc::new(key)))
            .collect();
        KeyRing { keys }
    }

    /// This ring, keeping `old`'s entry for every key that did not change, so that tokens
    /// verified with it stay in a [`VerifiedTokens`] cache.
    pub fn keeping(mut self, old: &KeyRing) -> KeyRing {
        for (kid, key) in &mut self.keys {
            if let Some(prev) = old.keys.get(kid).filter(|p| p.same_as(key)) {
                *key = prev.clone();
            }
        }
        self
    }

    /// The key with id `kid`.
    pub fn get(&self, kid: &str) -> Option<&Arc<PublicKey>> {
        self.keys.get(kid)
    }

    /// The one key for `alg`, if exactly one key of the ring verifies it (what a JWS without
    /// `kid` may be checked against).
    pub fn only_for(&self, alg: Algorithm) -> Option<&Arc<PublicKey>> {
        let mut found = self.keys.values().filter(|k| k.algorithms().any(|a| a == alg));
        match (found.next(), found.next()) {
            (Some(k), None) => Some(k),
            _ => None,
        }
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A JWS in compact serialization, split and its header decoded (once), not yet verified.
#[derive(Debug)]
pub struct Compact<'a> {
    /// The signature algorithm the header names.
    pub alg: Algorithm,
    /// The header's `typ`, if any.
    pub typ: Option<String>,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// The header's `jwk`, if any (a DPoP proof's key; never trusted for other tokens).
    pub jwk: Option<serde_json::Value>,
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    jwk: Option<serde_json::Value>,
    #[serde(default)]
    crit: Present,
}

/// Whether a member is there at all, whatever its value (`null` included).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Present(true))
    }
}

/// Splits compact JWS `token` and decodes its header. Refuses (as [`VerifyError::Malformed`])
/// anything longer than [`MAX_TOKEN_LEN`], with a header over 2 KiB, with characters outside
/// unpadded base64url, without exactly three parts, with a header that is not a JSON object
/// with a known `alg` (so `none` is malformed), with duplicate header members, or with `crit`
/// (RFC 7515 §4.1.11: no extension is understood here).
pub fn parse(token: &str) -> Result<Compact<'_>, VerifyError> {
    if token.len() > MAX_TOKEN_LEN || !token.bytes().all(|b| COMPACT[usize::from(b)]) {
        return Err(VerifyError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(VerifyError::Malformed);
    };
    if h.len() > MAX_HEADER_LEN {
        return Err(VerifyError::Malformed);
    }
    let json = decode(h)?;
    // A JSON object (RFC 7515 §4): serde would read an array into the struct too.
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(VerifyError::Malformed);
    }
    let header: RawHeader = serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)?;
    if header.crit.0 {
        return Err(VerifyError::Malformed);
    }
    let alg = algorithm(&header.alg).ok_or(VerifyError::Malformed)?;
    Ok(Compact {
        alg,
        typ: header.typ,
        kid: header.kid,
        jwk: header.jwk,
        signing_input: &token[..h.len() + 1 + p.len()],
        payload: p,
        signature: s,
    })
}

/// The algorithm a JOSE `alg` names. `Ed25519` (RFC 9864's fully-specified name, which
/// openid-client and jose send) is `EdDSA` on the Ed25519 curve, the only curve verified here.
pub fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "Ed25519" => Some(Algorithm::EdDSA),
        other => other.parse().ok(),
    }
}

/// The bytes of a compact JWS: unpadded base64url and the dots between its parts.
const COMPACT: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
        b += 1;
    }
    table
};

fn decode(part: &str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| VerifyError::Malformed)
}

impl Compact<'_> {
    /// The payload, decoded but **not verified**: only to learn which key to verify it with
    /// (who claims to have signed it), never to trust what it says.
    pub fn unverified_payload(&self) -> Result<Vec<u8>, VerifyError> {
        decode(self.payload)
    }

    /// The payload, if `key` signed it with this token's algorithm.
    pub fn verify(&self, key: &PublicKey) -> Result<Vec<u8>, VerifyError> {
        let parsed = key.parsed_for(self.alg).ok_or(VerifyError::AlgorithmNotAllowed)?;
        if parsed
            .verify_sig(self.signing_input.as_bytes(), &decode(self.signature)?)
            .is_err()
        {
            return Err(VerifyError::BadSignature);
        }
        decode(self.payload)
    }
}

/// The SHA-256 of a whole token: what [`VerifiedTokens`] is keyed by.
pub type Digest = [u8; 32];

/// The digest of `token`.
pub fn digest(token: &str) -> Digest {
    let mut d = [0u8; 32];
    d.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
    d
}

/// Tokens whose signature and fixed claims were checked, keyed by the [`digest`] of the whole
/// token, so that a token seen again costs a hash and a lookup. An entry is used only while the
/// key that verified it is still in the [`KeyRing`] (a retired or replaced key ends it); the
/// caller checks what changes with time (expiry, `nbf`, revocation) on every hit.
///
/// Bounded: when full, entries past their expiry go, and if that is not enough, all of them
/// (only tokens with a good signature get in, and a miss costs one verification, nothing more).
pub struct VerifiedTokens<T> {
    map: RwLock<HashMap<Digest, Entry<T>>>,
    capacity: usize,
    hits: std::sync::atomic::AtomicU64,
}

struct Entry<T> {
    kid: Box<str>,
    key: Arc<PublicKey>,
    value: Arc<T>,
    expires: u64,
}

impl<T> VerifiedTokens<T> {
    /// A cache of at most `capacity` tokens (0: remembers none).
    pub fn new(capacity: usize) -> Self {
        VerifiedTokens {
            map: RwLock::new(HashMap::new()),
            capacity,
            hits: Default::default(),
        }
    }

    /// What was remembered of the token with digest `d`, if the key that verified it is still
    /// `keys`' key of that `kid`.
    pub fn get(&self, d: &Digest, keys: &KeyRing) -> Option<Arc<T>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let e = map.get(d)?;
        let current = keys.get(&e.kid)?;
        let hit = Arc::ptr_eq(current, &e.key).then(|| e.value.clone());
        if hit.is_some() {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        hit
    }

    /// How many lookups found a usable entry so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Remembers `value` for the token with digest `d`, verified with `key` (`kid`), expiring at
    /// `expires` (seconds since the epoch); `now` is the time, for making room.
    pub fn insert(&self, d: Digest, kid: &str, key: &Arc<PublicKey>, value: Arc<T>, expires: u64, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity {
            map.retain(|_, e| e.expires > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(
            d,
            Entry {
                kid: kid.into(),
                key: key.clone(),
                value,
                expires,
            },
        );
    }

    /// The most it remembers.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_is_eddsa() {
        assert_eq!(algorithm("Ed25519"), Some(Algorithm::EdDSA));
        assert_eq!(algorithm("EdDSA"), Some(Algorithm::EdDSA));
        assert_eq!(algorithm("ES256"), Some(Algorithm::ES256));
        assert_eq!(algorithm("none"), None);
        assert_eq!(algorithm("Ed448"), None);
    }

    #[test]
    fn rsa_der_encodes_lengths_and_sign_bits() {
        // A 2048-bit modulus with its high bit set takes a leading zero and a two-byte length.
        let n = [0xffu8; 256];
        let der = rsa_public_key_der(&n, &[1, 0, 1]).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert_eq!(&der[4..9], &[0x02, 0x82, 0x01, 0x01, 0x00]);
        assert_eq!(&der[der.len() - 5..], &[0x02, 0x03, 1, 0, 1]);
        // Leading zero bytes are not part of the integer; an empty one is refused.
        let der = rsa_public_key_der(&[0, 0, 0x7f], &[3]).unwrap();
        assert_eq!(der, vec![0x30, 0x06, 0x02, 0x01, 0x7f, 0x02, 0x01, 3]);
        assert!(rsa_public_key_der(&[0, 0], &[3]).is_none());
    }

    #[test]
    fn headers_are_decoded_strictly() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let with = |h: &str| format!("{}.e30.c2ln", b64(h));
        assert!(parse(&with(r#"{"alg":"ES256","typ":"at+jwt","kid":"k"}"#)).is_ok());
        for bad in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"ES256","alg":"RS256"}"#,
            r#"{"alg":"ES256","crit":["exp"]}"#,
            r#"{"alg":"ES256","crit":null}"#,
            r#"{"typ":"at+jwt"}"#,
            r#"["ES256","at+jwt","k"]"#,
            r#" ["ES256","at+jwt","k",null]"#,
        ] {
            assert_eq!(parse(&with(bad)).err(), Some(VerifyError::Malformed), "{bad}");
        }
        assert_eq!(parse("a.b.c.d").err(), Some(VerifyError::Malformed));
        assert_eq!(parse("a.b=.c").err(), Some(VerifyError::Malformed));
    }

    #[test]
    fn the_cache_is_bounded_and_follows_its_keys() {
        use aws_lc_rs::signature::KeyPair;
        let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
        let jwks = serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "kid": "k",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        }]});
        let ring = KeyRing::from_jwks(&jwks, &[Algorithm::EdDSA]);
        let cache = VerifiedTokens::new(2);
        let key = ring.get("k").unwrap();
        cache.insert(digest("a"), "k", key, Arc::new(1), 100, 50);
        cache.insert(digest("b"), "k", key, Arc::new(2), 10, 50);
        assert_eq!(cache.get(&digest("a"), &ring).as_deref(), Some(&1));
        // Full: the expired entry goes to make room.
        cache.insert(digest("c"), "k", key, Arc::new(3), 100, 50);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&digest("b"), &ring).is_none());
        // The same key fetched again keeps the entries; a key not kept (or gone) ends them.
        let again = KeyRing::from_jwks(&jwks, &[Algorithm::EdDSA]);
        assert!(cache.get(&digest("a"), &again.clone().keeping(&ring)).is_some());
        assert!(cache.get(&digest("a"), &again).is_none());
        assert!(cache.get(&digest("a"), &KeyRing::default()).is_none());
        // Not for an algorithm not allowed, nor a symmetric one.
        assert!(KeyRing::from_jwks(&jwks, &[Algorithm::ES256]).is_empty());
    }

    #[test]
    fn an_rsa_key_without_alg_verifies_every_allowed_rsa_algorithm() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
        use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256};
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let public = pair.public_key();
        let jwk = |alg: Option<&str>| {
            let mut k = serde_json::json!({
                "kty": "RSA", "kid": "r",
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            });
            if let Some(a) = alg {
                k["alg"] = a.into();
            }
            k
        };
        let sign = |padding: &'static dyn aws_lc_rs::signature::RsaEncoding| {
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(padding, &SystemRandom::new(), b"m", &mut sig).unwrap();
            sig
        };
        let (pkcs1, pss) = (sign(&RSA_PKCS1_SHA256), sign(&RSA_PSS_SHA256));
        let both = [Algorithm::RS256, Algorithm::PS256];
        let (_, key) = PublicKey::from_jwk(&jwk(None), &both).unwrap();
        assert_eq!(key.algorithms().collect::<Vec<_>>(), both);
        assert!(key.verify(Algorithm::RS256, b"m", &pkcs1));
        assert!(key.verify(Algorithm::PS256, b"m", &pss));
        assert!(
            !key.verify(Algorithm::RS256, b"m", &pss),
            "one padding is not the other"
        );
        assert!(
            !key.verify(Algorithm::RS384, b"m", &pkcs1),
            "not an algorithm of this key"
        );
        // A stated alg binds the key to it; one that does not fit the key type makes no key.
        let (_, key) = PublicKey::from_jwk(&jwk(Some("RS256")), &both).unwrap();
        assert!(!key.verify(Algorithm::PS256, b"m", &pss));
        assert!(PublicKey::from_jwk(&jwk(Some("RS256")), &[Algorithm::PS256]).is_none());
        assert!(PublicKey::from_jwk(&jwk(Some("ES256")), &[Algorithm::ES256]).is_none());
        assert!(PublicKey::from_jwk(&jwk(None), &[Algorithm::ES256]).is_none());
    }
}
