//! The client registry: secrets (generation, hashing, verification) and the in-memory cache the
//! token endpoint authenticates against.
//!
//! Generated secrets carry 256 bits from the operating system's CSPRNG, so a single SHA-256 is
//! enough to store them: nobody can search a 2^256 space, however fast the hash. Imported secrets
//! may be weak, so they are stored with Argon2id; a successful verification is remembered (as a
//! keyed MAC of the secret, never the secret) for a while, so the slow hash is paid once per cache
//! period instead of on every request. A wrong secret always pays the full Argon2id cost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::store::{ClientRecord, SecretKind, SecretRecord, now};

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

fn sha256_hex(secret: &str) -> String {
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
        created_at: now(),
        expires_at: None,
    })
}

enum CachedSecret {
    Sha256 {
        digest: [u8; 32],
        expires_at: Option<i64>,
    },
    Argon2 {
        phc: String,
        expires_at: Option<i64>,
        /// MAC of the last secret that verified, and when.
        verified: Mutex<Option<([u8; 32], Instant)>>,
    },
}

/// A client as the token endpoint sees it.
pub struct CachedClient {
    /// The stored record, secrets' hashes included.
    pub record: ClientRecord,
    /// The scopes as one space-delimited string, ready for tokens.
    pub all_scopes: String,
    secrets: Vec<CachedSecret>,
}

impl CachedClient {
    fn new(record: ClientRecord) -> Self {
        let secrets = record
            .secrets
            .iter()
            .filter_map(|s| match s.kind {
                SecretKind::Sha256 => {
                    let mut digest = [0u8; 32];
                    let bytes = hex_decode(&s.hash)?;
                    if bytes.len() != 32 {
                        return None;
                    }
                    digest.copy_from_slice(&bytes);
                    Some(CachedSecret::Sha256 {
                        digest,
                        expires_at: s.expires_at,
                    })
                }
                SecretKind::Argon2id => Some(CachedSecret::Argon2 {
                    phc: s.hash.clone(),
                    expires_at: s.expires_at,
                    verified: Mutex::new(None),
                }),
            })
            .collect();
        // The hashes now live in `secrets`; the record keeps only what identifies each secret.
        let mut record = record;
        for s in &mut record.secrets {
            s.hash = String::new();
        }
        CachedClient {
            all_scopes: record.scopes.join(" "),
            record,
            secrets,
        }
    }
}

/// Whether two records describe the same version of a client (secret hashes aside, which a
/// cached record no longer holds).
fn same_version(a: &ClientRecord, b: &ClientRecord) -> bool {
    a.id == b.id
        && a.name == b.name
        && a.scopes == b.scopes
        && a.audiences == b.audiences
        && a.token_ttl == b.token_ttl
        && a.enabled == b.enabled
        && a.can_introspect == b.can_introspect
        && a.tokens_revoked_before == b.tokens_revoked_before
        && a.updated_at == b.updated_at
        && a.secrets.len() == b.secrets.len()
        && a.secrets.iter().zip(&b.secrets).all(|(x, y)| {
            x.id == y.id && x.kind == y.kind && x.created_at == y.created_at && x.expires_at == y.expires_at
        })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Why authentication failed (for the log only; the client always sees `invalid_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No such client.
    UnknownClient,
    /// The client is disabled.
    Disabled,
    /// No secret matched.
    BadSecret,
}

impl AuthFailure {
    /// A short reason for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::UnknownClient => "unknown client",
            AuthFailure::Disabled => "client disabled",
            AuthFailure::BadSecret => "wrong secret",
        }
    }
}

/// The in-memory registry of clients.
pub struct Registry {
    clients: RwLock<HashMap<String, Arc<CachedClient>>>,
    /// Keys the MAC under which verified Argon2id secrets are remembered; fresh per process.
    mac_key: hmac::Key,
    /// Bounds concurrent Argon2id verifications so a flood of guesses cannot eat every core.
    argon2_permits: Arc<tokio::sync::Semaphore>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        // If the system RNG fails, the zero key still keeps the cache correct (it only hides
        // secrets less well in memory); the RNG failing also fails every key generation.
        let _ = SystemRandom::new().fill(&mut key);
        let parallel = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Registry {
            clients: RwLock::new(HashMap::new()),
            mac_key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            argon2_permits: Arc::new(tokio::sync::Semaphore::new(parallel)),
        }
    }

    /// Replaces the whole registry. Clients whose record did not change keep their cache entry
    /// (and with it their remembered Argon2id verification).
    pub fn replace_all(&self, records: Vec<ClientRecord>) {
        let mut map = HashMap::with_capacity(records.len());
        for r in records {
            self.insert_into(&mut map, r);
        }
        self.replace_map(map);
    }

    /// Adds `record` to a map being rebuilt, reusing the current entry if nothing changed.
    pub fn insert_into(&self, map: &mut HashMap<String, Arc<CachedClient>>, record: ClientRecord) {
        let entry = match self.get(&record.id) {
            Some(cached) if same_version(&cached.record, &record) => cached,
            _ => Arc::new(CachedClient::new(record)),
        };
        map.insert(entry.record.id.clone(), entry);
    }

    /// Installs a rebuilt map.
    pub fn replace_map(&self, map: HashMap<String, Arc<CachedClient>>) {
        match self.clients.write() {
            Ok(mut g) => *g = map,
            Err(p) => *p.into_inner() = map,
        }
    }

    /// Inserts, replaces or (with `None`) removes one client.
    pub fn upsert(&self, id: &str, record: Option<ClientRecord>) {
        let mut g = match self.clients.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match record {
            Some(r) => {
                g.insert(id.to_string(), Arc::new(CachedClient::new(r)));
            }
            None => {
                g.remove(id);
            }
        }
    }

    /// Number of cached clients.
    pub fn len(&self) -> usize {
        match self.clients.read() {
            Ok(g) => g.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached client `id`.
    pub fn get(&self, id: &str) -> Option<Arc<CachedClient>> {
        match self.clients.read() {
            Ok(g) => g.get(id).cloned(),
            Err(p) => p.into_inner().get(id).cloned(),
        }
    }

    /// Authenticates `client_id` with `secret`, in constant time with respect to the secret.
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<Arc<CachedClient>, AuthFailure> {
        let presented = digest(&SHA256, secret.as_bytes());
        let Some(client) = self.get(client_id) else {
            return Err(AuthFailure::UnknownClient);
        };
        let now_s = now();
        let live = |exp: &Option<i64>| exp.is_none_or(|e| e > now_s);
        // Fast path: generated secrets.
        let mut matched = subtle::Choice::from(0u8);
        for s in &client.secrets {
            if let CachedSecret::Sha256 { digest, expires_at } = s {
                let eq = digest.as_slice().ct_eq(presented.as_ref());
                matched |= eq & subtle::Choice::from(live(expires_at) as u8);
            }
        }
        let mut ok = bool::from(matched);
        if !ok {
            ok = self.verify_argon2(&client, secret, now_s).await;
        }
        if !ok {
            return Err(AuthFailure::BadSecret);
        }
        // Checked after the secret, so a disabled client's status is not told to a guesser.
        if !client.record.enabled {
            return Err(AuthFailure::Disabled);
        }
        Ok(client)
    }

    async fn verify_argon2(&self, client: &Arc<CachedClient>, secret: &str, now_s: i64) -> bool {
        let mac = hmac::sign(&self.mac_key, secret.as_bytes());
        let mut pending = Vec::new();
        for (i, s) in client.secrets.iter().enumerate() {
            let CachedSecret::Argon2 {
                expires_at, verified, ..
            } = s
            else {
                continue;
            };
            if !expires_at.is_none_or(|e| e > now_s) {
                continue;
            }
            let cached = match verified.lock() {
                Ok(g) => *g,
                Err(p) => *p.into_inner(),
            };
            if let Some((m, at)) = cached {
                if at.elapsed() < ARGON2_CACHE_TTL && bool::from(m.as_slice().ct_eq(mac.as_ref())) {
                    return true;
                }
            }
            pending.push(i);
        }
        for i in pending {
            let Some(CachedSecret::Argon2 { phc, verified, .. }) = client.secrets.get(i) else {
                continue;
            };
            // The permit moves into the blocking task: if the request is dropped (the client hung
            // up), the hash still holds its permit until it finishes, so hanging up cannot be
            // used to run more Argon2id computations at once than there are cores.
            let Ok(permit) = self.argon2_permits.clone().acquire_owned().await else {
                return false;
            };
            let phc_owned = phc.clone();
            let secret_owned = secret.to_owned();
            let ok = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                verify_phc(&phc_owned, &secret_owned)
            })
            .await
            .unwrap_or(false);
            if ok {
                let mut m = [0u8; 32];
                m.copy_from_slice(mac.as_ref());
                match verified.lock() {
                    Ok(mut g) => *g = Some((m, Instant::now())),
                    Err(p) => *p.into_inner() = Some((m, Instant::now())),
                }
                return true;
            }
        }
        false
    }
}

fn verify_phc(phc: &str, secret: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(phc) {
        Ok(hash) => argon2::Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(secret: &str, kind: SecretKind, enabled: bool) -> ClientRecord {
        ClientRecord {
            id: "c1".into(),
            name: "n".into(),
            scopes: vec!["a".into()],
            audiences: vec![],
            token_ttl: 60,
            enabled,
            created_at: 0,
            updated_at: 0,
            can_introspect: false,
            tokens_revoked_before: 0,
            secrets: vec![new_secret_record(secret, kind).unwrap()],
        }
    }

    #[tokio::test]
    async fn generated_and_imported_secrets_verify() {
        let secret = generate_secret().unwrap();
        assert_eq!(secret.len(), 43);
        assert!((0..200).all(|_| !generate_secret().unwrap().starts_with('-')));
        let reg = Registry::new();
        reg.replace_all(vec![record(&secret, SecretKind::Sha256, true)]);
        assert!(reg.authenticate("c1", &secret).await.is_ok());
        assert_eq!(
            reg.authenticate("c1", "nope").await.err(),
            Some(AuthFailure::BadSecret)
        );
        assert_eq!(
            reg.authenticate("c2", &secret).await.err(),
            Some(AuthFailure::UnknownClient)
        );

        reg.replace_all(vec![record("hunter2", SecretKind::Argon2id, true)]);
        assert!(reg.authenticate("c1", "hunter2").await.is_ok());
        assert!(reg.authenticate("c1", "hunter2").await.is_ok(), "cached path");
        assert_eq!(
            reg.authenticate("c1", "hunter3").await.err(),
            Some(AuthFailure::BadSecret)
        );

        reg.replace_all(vec![record("hunter2", SecretKind::Argon2id, false)]);
        assert_eq!(
            reg.authenticate("c1", "hunter2").await.err(),
            Some(AuthFailure::Disabled)
        );
    }
}
