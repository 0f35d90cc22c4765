//! Client secrets: generated (256 random bits, stored as SHA-256) or imported (Argon2id), and
//! the form the registry's cache holds them in.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::model::clock::unix_now;
use crate::model::{SecretKind, SecretRecord};

/// How long a successful Argon2id verification is remembered.
pub const ARGON2_CACHE_TTL: Duration = Duration::from_secs(600);

/// Generates a client secret: 32 random bytes, base64url without padding (43 characters, all
/// unreserved, so they need no escaping in Basic credentials, forms or shells).
///
/// A secret never starts with `-`, so that it cannot be mistaken for an option on a command line;
/// drawing again in that case leaves well over 255 bits of entropy.
pub fn generate_secret() -> Result<String, &'static str> {
    loop {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "no randomness")?;
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        if !secret.starts_with('-') {
            return Ok(secret);
        }
    }
}

/// Generates a client id: a random UUID.
pub fn generate_client_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// SHA-256 of `secret`, in hex.
pub(crate) fn sha256_hex(secret: &str) -> String {
    let d = digest(&SHA256, secret.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes a secret for storage.
pub fn hash_secret(secret: &str, kind: SecretKind) -> Result<String, String> {
    match kind {
        SecretKind::Sha256 => Ok(sha256_hex(secret)),
        SecretKind::Argon2id => {
            use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
            let salt = SaltString::generate(&mut OsRng);
            argon2::Argon2::default()
                .hash_password(secret.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| format!("argon2: {e}"))
        }
    }
}

/// A new secret record for `secret`.
pub fn new_secret_record(secret: &str, kind: SecretKind) -> Result<SecretRecord, String> {
    Ok(SecretRecord {
        id: uuid::Uuid::new_v4().to_string(),
        kind,
        hash: hash_secret(secret, kind)?,
        created_at: unix_now(),
        expires_at: None,
    })
}

/// A secret as the cache holds it: the hash only, no identifiers.
pub(super) enum CachedSecret {
    Sha256 {
        digest: [u8; 32],
        expires_at: Option<i64>,
    },
    /// Boxed: imported secrets are the rare case, and this keeps the common one small.
    Argon2(Box<Argon2Secret>),
}

pub(super) struct Argon2Secret {
    pub(super) phc: Box<str>,
    pub(super) expires_at: Option<i64>,
    /// MAC of the last secret that verified, and when.
    pub(super) verified: Mutex<Option<([u8; 32], Instant)>>,
}

impl CachedSecret {
    pub(super) fn from_record(s: &SecretRecord) -> Option<Self> {
        match s.kind {
            SecretKind::Sha256 => {
                let bytes = hex_decode(&s.hash)?;
                let digest: [u8; 32] = bytes.try_into().ok()?;
                Some(CachedSecret::Sha256 {
                    digest,
                    expires_at: s.expires_at,
                })
            }
            SecretKind::Argon2id => Some(CachedSecret::Argon2(Box::new(Argon2Secret {
                phc: s.hash.as_str().into(),
                expires_at: s.expires_at,
                verified: Mutex::new(None),
            }))),
        }
    }

    /// Whether this is the cached form of `s` (same hash, same expiry).
    pub(super) fn same_as(&self, s: &SecretRecord) -> bool {
        match (self, s.kind) {
            (CachedSecret::Sha256 { digest, expires_at }, SecretKind::Sha256) => {
                *expires_at == s.expires_at && hex_decode(&s.hash).is_some_and(|d| d == digest)
            }
            (CachedSecret::Argon2(a), SecretKind::Argon2id) => {
                a.expires_at == s.expires_at && *a.phc == *s.hash
            }
            _ => false,
        }
    }
}

pub(super) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

pub(super) fn verify_phc(phc: &str, secret: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(phc) {
        Ok(hash) => argon2::Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}
