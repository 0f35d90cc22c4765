//! Signing keys: generation, encryption at rest, the JWKS, and the signer used on the hot path.
//!
//! Keys are generated with aws-lc-rs and stored as PKCS#8, sealed with AES-256-GCM under a
//! key-encryption key (the "master key") that never enters the database. The `kid` is the
//! RFC 7638 thumbprint of the public key, so it is stable, unique and checkable by anyone.

use std::path::Path;
use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

/// A JWS signing algorithm Tessera can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256: the default, small and fast.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys: the algorithm every verifier supports.
    RS256,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl std::str::FromStr for Alg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ES256" => Ok(Alg::ES256),
            "RS256" => Ok(Alg::RS256),
            "EdDSA" => Ok(Alg::EdDSA),
            _ => Err("expected ES256, RS256 or EdDSA".into()),
        }
    }
}

/// An error in key handling. It never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Key generation or parsing failed.
    #[error("key operation failed: {0}")]
    Crypto(&'static str),
    /// The stored key cannot be opened with this master key.
    #[error("cannot decrypt signing key {kid}: wrong master key?")]
    Decrypt {
        /// The key's id.
        kid: String,
    },
    /// The store names a sealing key this node was not given.
    #[error(
        "the store's signing keys are sealed under master key {0}, which this node was not given \
         (add it to the node's master keys)"
    )]
    SealingKey(String),
    /// The master key file is unusable.
    #[error("master key file {path}: {why}")]
    MasterKey {
        /// Its path.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// A freshly generated key: its private PKCS#8 and public JWK.
pub struct GeneratedKey {
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// Its algorithm.
    pub alg: Alg,
    /// PKCS#8 DER of the private key.
    pub pkcs8: Vec<u8>,
    /// The public JWK, with `kid`, `alg` and `use`.
    pub public_jwk: serde_json::Value,
}

/// Generates a new signing key.
pub fn generate(alg: Alg) -> Result<GeneratedKey, KeyError> {
    let pkcs8 = match alg {
        Alg::ES256 => {
            let rng = SystemRandom::new();
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| KeyError::Crypto("ES256 key generation"))?
                .as_ref()
                .to_vec()
        }
        Alg::RS256 => aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .and_then(|k| k.as_der())
            .map_err(|_| KeyError::Crypto("RS256 key generation"))?
            .as_ref()
            .to_vec(),
        Alg::EdDSA => {
            let rng = SystemRandom::new();
            Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Crypto("EdDSA key generation"))?
                .as_ref()
                .to_vec()
        }
    };
    let signer = SignerKey::from_pkcs8(alg, &pkcs8)?;
    let public_jwk = signer.public_jwk();
    let kid = thumbprint(&public_jwk);
    let mut jwk = public_jwk;
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!(alg.as_str());
    jwk["use"] = json!("sig");
    Ok(GeneratedKey {
        kid,
        alg,
        pkcs8,
        public_jwk: jwk,
    })
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order (the one
/// resource servers and DPoP proofs use, `tessera_verify::jws::thumbprint`).
fn thumbprint(jwk: &serde_json::Value) -> String {
    tessera_verify::jws::thumbprint(jwk).unwrap_or_default()
}

enum SignerKey {
    Ec(EcdsaKeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ed(Ed25519KeyPair),
}

impl SignerKey {
    fn from_pkcs8(alg: Alg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        Ok(match alg {
            Alg::ES256 => SignerKey::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|_| KeyError::Crypto("ES256 key parse"))?,
            ),
            Alg::RS256 => SignerKey::Rsa(
                aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8)
                    .map_err(|_| KeyError::Crypto("RS256 key parse"))?,
            ),
            Alg::EdDSA => SignerKey::Ed(
                Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError::Crypto("EdDSA key parse"))?,
            ),
        })
    }

    fn public_jwk(&self) -> serde_json::Value {
        match self {
            SignerKey::Ec(k) => {
                // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
                let point = k.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(32.min(point.len().saturating_sub(1)));
                json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
            }
            SignerKey::Rsa(k) => {
                let public = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
            SignerKey::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(k.public_key().as_ref())})
            }
        }
    }
}

/// A key ready to sign tokens. Its JWS header is encoded once, here.
pub struct Signer {
    kid: String,
    alg: Alg,
    header_b64: String,
    key: SignerKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Builds a signer of access tokens (`typ: at+jwt`) from a decrypted PKCS#8 key.
    pub fn new(kid: &str, alg: Alg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        Self::with_typ(kid, alg, pkcs8, tessera_proto::ACCESS_TOKEN_TYP)
    }

    /// Builds a signer whose tokens carry `typ` (`JWT` for ID tokens).
    pub fn with_typ(kid: &str, alg: Alg, pkcs8: &[u8], typ: &str) -> Result<Self, KeyError> {
        let key = SignerKey::from_pkcs8(alg, pkcs8)?;
        let header = json!({"alg": alg.as_str(), "kid": kid, "typ": typ});
        Ok(Signer {
            kid: kid.to_string(),
            alg,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            key,
            rng: SystemRandom::new(),
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Signs `claims` (JSON bytes) into a compact JWS.
    pub fn sign_jwt(&self, claims_json: &[u8]) -> Result<String, KeyError> {
        let mut out = String::with_capacity(self.header_b64.len() + claims_json.len() * 4 / 3 + 360);
        out.push_str(&self.header_b64);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(claims_json, &mut out);
        let signature = self.sign(out.as_bytes())?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        Ok(out)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.key {
            SignerKey::Ec(k) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto("ES256 sign")),
            SignerKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| KeyError::Crypto("RS256 sign"))?;
                Ok(sig)
            }
            SignerKey::Ed(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

/// Where a node's master key (the key-encryption key of its signing keys) comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// The key itself, 32 bytes in base64, e.g. from `TESSERA_MASTER_KEY`.
    Value {
        /// The key, base64.
        base64: String,
        /// Where it came from, for messages.
        source: String,
    },
    /// A file holding the key in base64.
    File {
        /// Its path.
        path: std::path::PathBuf,
        /// Whether this node may create the file when it is missing (an SQLite store that holds
        /// no signing key yet).
        create: bool,
    },
    /// None given, on a store that needs one from outside (PostgreSQL).
    Missing,
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::Value { source, .. } => write!(f, "<redacted, from {source}>"),
            MasterKeySource::File { path, .. } => write!(f, "{}", path.display()),
            MasterKeySource::Missing => f.write_str("none"),
        }
    }
}

/// The keys that seal private signing keys at rest (AES-256-GCM): one or more, so that the
/// master key can be replaced without downtime. Every key opens; one seals: the key the store
/// names as its sealing key when this node holds it, else the first.
pub struct MasterKey {
    keys: Vec<(LessSafeKey, String)>,
    /// Per key, a secret derived from it for sign-in state (sealed authorization requests,
    /// CSRF tokens): every node holding the master key can check what another node made.
    derived: Vec<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(<redacted>, ids {:?})", self.ids())
    }
}

/// A short public identifier of a master key (an HMAC of a fixed label under the key), so the
/// store can say which key seals without holding anything that helps to find the key.
fn master_key_id(bytes: &[u8]) -> String {
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, bytes),
        b"tessera master key id",
    );
    tag.as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl MasterKey {
    /// Creates a new master key in `path` (mode 0600). If another process created the file
    /// first, reads that one instead, so that two nodes starting together share one key.
    pub fn create(path: &Path) -> Result<Self, KeyError> {
        let err = |why: String| KeyError::MasterKey {
            path: path.display().to_string(),
            why,
        };
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| err("no randomness".into()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        // Written whole under a temporary name, then linked into place: a process that loses
        // the race to create the file never reads it half-written.
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        write_private(&tmp, format!("{}\n", STANDARD.encode(key)).as_bytes())
            .map_err(|e| err(e.to_string()))?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Self::from_bytes(&key).ok_or_else(|| err("key setup failed".into())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Master keys from their base64 text: one key, or several separated by commas or line
    /// breaks (as in a key file or `TESSERA_MASTER_KEY`).
    pub fn from_base64(text: &str) -> Option<Self> {
        let mut keys = Vec::new();
        let mut derived = Vec::new();
        for part in text.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty()) {
            let one = Self::from_bytes(&STANDARD.decode(part).ok()?)?;
            keys.extend(one.keys);
            derived.extend(one.derived);
        }
        (!keys.is_empty()).then_some(MasterKey { keys, derived })
    }

    /// Reads existing master keys from `path` (one per line).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let err = |why: String| KeyError::MasterKey {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::from_base64(&text)
            .ok_or_else(|| err("must hold 32 bytes, base64-encoded (one key per line)".into()))
    }

    /// A master key from raw bytes (32 of them).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 32 {
            return None;
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, bytes),
            b"tessera sign-in state",
        );
        let mut derived = [0u8; 32];
        derived.copy_from_slice(tag.as_ref());
        Some(MasterKey {
            keys: vec![(LessSafeKey::new(key), master_key_id(bytes))],
            derived: vec![derived],
        })
    }

    /// Secrets for sign-in state, one per master key, the first one to make new state with.
    /// Derived (HMAC under the master key), so they say nothing about the master key itself.
    pub fn state_secrets(&self) -> &[[u8; 32]] {
        &self.derived
    }

    /// The identifiers of the keys, sealing key candidates first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(_, id)| id.as_str()).collect()
    }

    /// Seals `plaintext` under the key `sealing` names (or the first key when `None`), binding
    /// it to `kid`. Output: nonce || ciphertext || tag.
    pub fn seal_with(&self, sealing: Option<&str>, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = match sealing {
            None => self.keys.first().map(|(k, _)| k),
            Some(id) => self.keys.iter().find(|(_, i)| i == id).map(|(k, _)| k),
        }
        .ok_or_else(|| KeyError::SealingKey(sealing.unwrap_or_default().to_string()))?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Crypto("nonce"))?;
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kid.as_bytes()),
            &mut buf,
        )
        .map_err(|_| KeyError::Crypto("seal"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Seals under the first key.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.seal_with(None, kid, plaintext)
    }

    /// Opens what [`MasterKey::seal`] sealed, under whichever key sealed it.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let decrypt = || KeyError::Decrypt { kid: kid.to_string() };
        if sealed.len() < NONCE_LEN {
            return Err(decrypt());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        for (key, _) in &self.keys {
            let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| decrypt())?;
            let mut buf = ct.to_vec();
            if let Ok(plain) = key.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf) {
                return Ok(plain.to_vec());
            }
        }
        Err(decrypt())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

/// A signing key with its schedule.
pub struct Slot {
    /// From when it signs.
    pub activates_at: i64,
    /// When it leaves the JWKS, if scheduled: no token it signs may outlive this.
    pub retire_at: Option<i64>,
    /// The signer.
    pub signer: Arc<Signer>,
}

/// What a node signs with and publishes. The signing key is chosen by time at each use, so a
/// node switches to a new key when it activates even if the store cannot be reached then.
pub struct KeySet {
    /// Every published key that signs access tokens, ordered by activation.
    pub slots: Vec<Slot>,
    /// Every published key that signs ID tokens (RS256), ordered by activation; empty until a
    /// client that signs people in exists.
    pub id_slots: Vec<Slot>,
    /// The JWKS document, serialized once.
    pub jwks_json: Arc<str>,
    /// Every published key, by `kid`, parsed once, for checking tokens this server issued (with
    /// the verification code resource servers use, `tessera_verify::jws`).
    pub verifiers: tessera_verify::jws::KeyRing,
    /// When the set must be rebuilt even without a store change (a key activates or retires).
    pub next_change_at: Option<i64>,
}

impl KeySet {
    /// The key that signs at `now`: the latest one already active.
    pub fn current(&self, now: i64) -> Option<&Slot> {
        self.slots.iter().rev().find(|s| s.activates_at <= now)
    }

    /// The key that signs ID tokens at `now`.
    pub fn current_id(&self, now: i64) -> Option<&Slot> {
        self.id_slots.iter().rev().find(|s| s.activates_at <= now)
    }
}

/// The node's view of the signing keys, swapped whole when keys change.
pub struct KeyRing {
    inner: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// A ring holding `set`.
    pub fn new(set: KeySet) -> Self {
        KeyRing {
            inner: RwLock::new(Arc::new(set)),
        }
    }

    /// The current key set.
    pub fn get(&self) -> Arc<KeySet> {
        crate::sync::read(&self.inner).clone()
    }

    /// Replaces the key set. Public keys that did not change stay the same entries, so tokens
    /// they verified stay in the node's cache of verified tokens.
    pub fn replace(&self, mut set: KeySet) {
        let mut current = crate::sync::write(&self.inner);
        set.verifiers = std::mem::take(&mut set.verifiers).keeping(&current.verifiers);
        *current = Arc::new(set);
    }
}

/// Builds the JWKS JSON from public JWKs.
pub fn jwks_json(public_jwks: &[serde_json::Value]) -> String {
    json!({ "keys": public_jwks }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alg_generates_signs_and_has_a_thumbprint_kid() {
        for alg in [Alg::ES256, Alg::RS256, Alg::EdDSA] {
            let k = generate(alg).unwrap();
            assert_eq!(k.kid.len(), 43);
            assert_eq!(k.public_jwk["kid"], k.kid.as_str());
            assert!(k.public_jwk.get("d").is_none(), "private part in JWK");
            let s = Signer::new(&k.kid, alg, &k.pkcs8).unwrap();
            let jwt = s.sign_jwt(br#"{"a":1}"#).unwrap();
            assert_eq!(jwt.split('.').count(), 3);
        }
    }

    #[test]
    fn sealing_round_trips_and_binds_kid() {
        let mk = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = mk.seal("kid1", b"secret key").unwrap();
        assert_eq!(mk.open("kid1", &sealed).unwrap(), b"secret key");
        assert!(mk.open("kid2", &sealed).is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("kid1", &sealed).is_err());
    }
}
