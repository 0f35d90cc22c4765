//! The client registry: secrets (generation, hashing, verification) and the in-memory cache the
//! token endpoint authenticates against.
//!
//! Generated secrets carry 256 bits from the operating system's CSPRNG, so a single SHA-256 is
//! enough to store them: nobody can search a 2^256 space, however fast the hash. Imported secrets
//! may be weak, so they are stored with Argon2id; a successful verification is remembered (as a
//! keyed MAC of the secret, never the secret) for a while, so the slow hash is paid once per cache
//! period instead of on every request. A wrong secret always pays the full Argon2id cost.

mod keys;
mod secrets;

pub use keys::{ClientKeys, KeySource};

pub(crate) use secrets::sha256_hex;
pub use secrets::{ARGON2_CACHE_TTL, generate_client_id, generate_secret, hash_secret, new_secret_record};
use secrets::{CachedSecret, verify_phc};

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::model::auth::TokenAuth;
use crate::model::clock::{Clock, SystemClock};
use crate::model::{ClientRecord, SecretKind};

/// What a client may ask for. Clients registered alike share one copy (the registry interns
/// them), so a million clients with the same scopes hold these strings once.
#[derive(PartialEq, Eq, Hash)]
pub struct Grants {
    /// Allowed scopes.
    pub scopes: Box<[Box<str>]>,
    /// The scopes as one space-delimited string, ready for tokens.
    pub all_scopes: Box<str>,
    /// Allowed audiences; the first is the default.
    pub audiences: Box<[Box<str>]>,
}

impl Grants {
    fn new(scopes: &[String], audiences: &[String]) -> Self {
        Grants {
            scopes: scopes.iter().map(|s| s.as_str().into()).collect(),
            all_scopes: scopes.join(" ").into(),
            audiences: audiences.iter().map(|s| s.as_str().into()).collect(),
        }
    }

    fn matches(&self, scopes: &[String], audiences: &[String]) -> bool {
        self.scopes.len() == scopes.len()
            && self.scopes.iter().zip(scopes).all(|(a, b)| **a == **b)
            && self.audiences.len() == audiences.len()
            && self.audiences.iter().zip(audiences).all(|(a, b)| **a == **b)
    }
}

/// A client as the token endpoint sees it: what issuing and checking tokens needs, and no more
/// (names and secret ids stay in the store). About 200 bytes per client plus its id.
pub struct CachedClient {
    /// The client id.
    pub id: Box<str>,
    /// Scopes and audiences, shared with clients that have the same ones.
    pub grants: Arc<Grants>,
    /// Lifetime of its tokens, in seconds.
    pub token_ttl: u32,
    /// Whether it may get tokens.
    pub enabled: bool,
    /// May introspect other clients' tokens.
    pub can_introspect: bool,
    /// A public client (no secret; `token_endpoint_auth_method` `none`).
    pub public: bool,
    /// The grant types it may use: bit `i` for `model::flows::GRANT_TYPES[i]`.
    grant_types: u32,
    /// Tokens issued at or before this time are revoked (0: none).
    pub tokens_revoked_before: i64,
    /// Its claims as a JSON fragment to splice into each token (`"a":1,"b":"x"`), if any.
    pub claims: Option<Box<str>>,
    /// How it authenticates when confidential.
    pub auth: TokenAuth,
    /// Its public keys, if it registered any.
    pub keys: Option<Arc<ClientKeys>>,
    /// The subject its TLS certificate carries (`tls_client_auth`).
    pub tls_subject: Option<Box<crate::model::auth::TlsSubject>>,
    /// Its certificates' thumbprints (`self_signed_tls_client_auth`).
    pub tls_thumbprints: Box<[Box<str>]>,
    /// Its tokens are bound to its TLS client certificate (RFC 8705 §3).
    pub bound_to_certificate: bool,
    /// Its tokens are always bound to a DPoP key (RFC 9449 §5.2).
    pub requires_dpop: bool,
    /// What it may exchange (RFC 8693).
    pub exchange: Option<Box<crate::model::exchange::ExchangePolicy>>,
    /// The record's last change, part of what a refresh compares.
    updated_at: i64,
    secrets: Box<[CachedSecret]>,
}

/// The secrets of `record` a client may present: all of a secret client's, and of a key or
/// certificate client only those still in the grace period of its move (they have an end).
fn usable_secrets(record: &ClientRecord) -> impl Iterator<Item = &crate::model::SecretRecord> {
    let keyed = record.flows.auth != TokenAuth::ClientSecret;
    record
        .secrets
        .iter()
        .filter(move |s| !keyed || s.expires_at.is_some())
}

impl CachedClient {
    fn new(record: &ClientRecord, grants: Arc<Grants>) -> Self {
        CachedClient {
            id: record.id.as_str().into(),
            grants,
            token_ttl: record.token_ttl,
            enabled: record.enabled,
            can_introspect: record.can_introspect,
            public: record.flows.public,
            grant_types: grant_bits(&record.flows),
            tokens_revoked_before: record.tokens_revoked_before,
            claims: crate::claims::fragment(&record.claims),
            auth: record.flows.auth,
            keys: ClientKeys::of(&record.flows).map(Arc::new),
            tls_subject: record.flows.tls_client_auth.clone().map(Box::new),
            tls_thumbprints: record
                .flows
                .tls_client_certificates
                .iter()
                .map(|t| t.as_str().into())
                .collect(),
            bound_to_certificate: record.flows.tls_client_certificate_bound_access_tokens,
            requires_dpop: record.flows.dpop_bound_access_tokens,
            exchange: record.flows.token_exchange.clone(),
            updated_at: record.updated_at,
            secrets: usable_secrets(record)
                .filter_map(CachedSecret::from_record)
                .collect(),
        }
    }

    /// Whether it may present a secret: a confidential client whose method is a secret, or
    /// one moving to a key while its secrets' grace lasts.
    pub fn accepts_secrets(&self) -> bool {
        !self.public && (self.auth == TokenAuth::ClientSecret || !self.secrets.is_empty())
    }

    /// Whether it may use the grant type `name` (one of `model::flows::GRANT_TYPES`).
    pub fn may_use(&self, name: &str) -> bool {
        crate::model::flows::GRANT_TYPES
            .iter()
            .position(|g| *g == name)
            .is_some_and(|i| self.grant_types & (1 << i) != 0)
    }

    /// Whether this entry was built from a record identical to `r` in everything it keeps.
    fn same_version(&self, r: &ClientRecord) -> bool {
        *self.id == *r.id
            && self.updated_at == r.updated_at
            && self.token_ttl == r.token_ttl
            && self.enabled == r.enabled
            && self.can_introspect == r.can_introspect
            && self.public == r.flows.public
            && self.grant_types == grant_bits(&r.flows)
            && self.tokens_revoked_before == r.tokens_revoked_before
            && self.claims == crate::claims::fragment(&r.claims)
            && self.grants.matches(&grant_scopes(r), &r.audiences)
            && self.auth == r.flows.auth
            && self.tls_subject.as_deref() == r.flows.tls_client_auth.as_ref()
            && self.bound_to_certificate == r.flows.tls_client_certificate_bound_access_tokens
            && self.requires_dpop == r.flows.dpop_bound_access_tokens
            && self.tls_thumbprints.len() == r.flows.tls_client_certificates.len()
            && self
                .tls_thumbprints
                .iter()
                .zip(&r.flows.tls_client_certificates)
                .all(|(a, b)| **a == **b)
            && match &self.keys {
                Some(k) => k.same_as(&r.flows),
                None => r.flows.jwks.is_none() && r.flows.jwks_uri.is_none(),
            }
            && self.secrets.len() == usable_secrets(r).count()
            && self
                .secrets
                .iter()
                .zip(usable_secrets(r))
                .all(|(c, s)| c.same_as(s))
    }
}

/// The grant types of `flows` as bits over `model::flows::GRANT_TYPES` (unknown names, which
/// validation refuses, are left out).
fn grant_bits(flows: &crate::model::flows::Flows) -> u32 {
    crate::model::flows::GRANT_TYPES
        .iter()
        .enumerate()
        .filter(|(_, g)| flows.allows(g))
        .fold(0, |bits, (i, _)| bits | (1 << i))
}

/// A registry entry, hashed and compared by client id, so the id is stored once (in the client)
/// rather than again as a map key.
struct Entry(Arc<CachedClient>);

impl std::borrow::Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        &self.0.id
    }
}
impl std::hash::Hash for Entry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Must hash exactly as `str` does, for lookups by `&str`.
        (*self.0.id).hash(state)
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for Entry {}

/// A set of clients being built, to be installed with [`Registry::replace_map`].
#[derive(Default)]
pub struct ClientMap {
    clients: HashSet<Entry>,
    grants: HashSet<Arc<Grants>>,
}

impl ClientMap {
    /// Frees spare capacity once everything is in.
    pub fn shrink_to_fit(&mut self) {
        self.clients.shrink_to_fit();
        self.grants.shrink_to_fit();
    }
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
    clients: RwLock<ClientMap>,
    /// Keys the MAC under which verified Argon2id secrets are remembered; fresh per process.
    mac_key: hmac::Key,
    /// Bounds concurrent Argon2id verifications so a flood of guesses cannot eat every core.
    argon2_permits: Arc<tokio::sync::Semaphore>,
    /// A hash of a random secret, checked against on failures that ran no Argon2id of their own.
    dummy_phc: Arc<std::sync::OnceLock<String>>,
    /// The node's time: secrets expire, and a remembered Argon2id success ages, by it.
    clock: Arc<dyn Clock>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// The scopes a client may be granted: its scopes, with templates filled from its claims
/// (`principal:{principal}`), without repeats. A scope that is not a fillable template (one
/// stored before templates existed, such as `a{b`) stays what it was: a literal scope.
fn grant_scopes(r: &ClientRecord) -> std::borrow::Cow<'_, [String]> {
    if !r.scopes.iter().any(|s| s.contains('{')) {
        return std::borrow::Cow::Borrowed(&r.scopes);
    }
    let mut out: Vec<String> = Vec::with_capacity(r.scopes.len());
    for s in &r.scopes {
        let scope = crate::claims::expand_scopes(std::slice::from_ref(s), &r.claims)
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_else(|| s.clone());
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The interned grants equal to `scopes` and `audiences`, from `map` or else from `current`,
/// or new ones (remembered in `map`).
fn intern(
    map: &mut HashSet<Arc<Grants>>,
    current: Option<&HashSet<Arc<Grants>>>,
    scopes: &[String],
    audiences: &[String],
) -> Arc<Grants> {
    let candidate = Grants::new(scopes, audiences);
    if let Some(g) = map.get(&candidate) {
        return g.clone();
    }
    let g = current
        .and_then(|c| c.get(&candidate).cloned())
        .unwrap_or_else(|| Arc::new(candidate));
    map.insert(g.clone());
    g
}

impl Registry {
    /// An empty registry on the system's clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty registry on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let mut key = [0u8; 32];
        // If the system RNG fails, the zero key still keeps the cache correct (it only hides
        // secrets less well in memory); the RNG failing also fails every key generation.
        let _ = SystemRandom::new().fill(&mut key);
        let parallel = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Registry {
            clients: RwLock::new(ClientMap::default()),
            mac_key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            argon2_permits: Arc::new(tokio::sync::Semaphore::new(parallel)),
            dummy_phc: Arc::default(),
            clock,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ClientMap> {
        crate::sync::read(&self.clients)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ClientMap> {
        crate::sync::write(&self.clients)
    }

    /// Replaces the whole registry. Clients whose record did not change keep their cache entry
    /// (and with it their remembered Argon2id verification).
    pub fn replace_all(&self, records: Vec<ClientRecord>) {
        let mut map = ClientMap::default();
        for r in records {
            self.insert_into(&mut map, r);
        }
        self.replace_map(map);
    }

    /// Adds `record` to a map being rebuilt, reusing the current entry if nothing changed.
    pub fn insert_into(&self, map: &mut ClientMap, record: ClientRecord) {
        let current = self.read();
        let entry = match current.clients.get(record.id.as_str()) {
            Some(cached) if cached.0.same_version(&record) => {
                map.grants.insert(cached.0.grants.clone());
                cached.0.clone()
            }
            _ => {
                let grants = intern(
                    &mut map.grants,
                    Some(&current.grants),
                    &grant_scopes(&record),
                    &record.audiences,
                );
                Arc::new(CachedClient::new(&record, grants))
            }
        };
        drop(current);
        map.clients.replace(Entry(entry));
    }

    /// Installs a rebuilt map.
    pub fn replace_map(&self, map: ClientMap) {
        *self.write() = map;
    }

    /// Inserts, replaces or (with `None`) removes one client.
    pub fn upsert(&self, id: &str, record: Option<ClientRecord>) {
        let mut g = self.write();
        match record {
            Some(r) => {
                let grants = intern(&mut g.grants, None, &grant_scopes(&r), &r.audiences);
                let client = Arc::new(CachedClient::new(&r, grants));
                g.clients.replace(Entry(client));
            }
            None => {
                g.clients.remove(id);
            }
        }
    }

    /// Number of cached clients.
    pub fn len(&self) -> usize {
        self.read().clients.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any cached client signs people in (may redeem authorization codes).
    pub fn any_signs_in(&self) -> bool {
        self.read()
            .clients
            .iter()
            .any(|e| e.0.may_use(crate::model::flows::AUTHORIZATION_CODE))
    }

    /// The cached client `id`.
    pub fn get(&self, id: &str) -> Option<Arc<CachedClient>> {
        self.read().clients.get(id).map(|e| e.0.clone())
    }

    /// Authenticates `client_id` with `secret`, in constant time with respect to the secret.
    ///
    /// Every failure costs one Argon2id computation: a client with an imported secret runs its
    /// own, and an unknown id or a wrong generated secret runs one on a dummy hash. So a failed
    /// guess takes as long for a client that exists as for one that does not, whatever its kind
    /// of secret, and timing does not tell which ids exist. (The failure back-off keeps guessers
    /// from turning this into a way to burn CPU.)
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<Arc<CachedClient>, AuthFailure> {
        let Some(client) = self.get(client_id) else {
            self.dummy_check(secret).await;
            return Err(AuthFailure::UnknownClient);
        };
        let now_s = self.clock.now();
        let mut ok = self.cheap_match(&client, secret, now_s);
        if !ok {
            let (matched, ran) = self.verify_argon2(&client, secret, now_s).await;
            if !ran {
                self.dummy_check(secret).await;
            }
            ok = matched;
        }
        if !ok {
            return Err(AuthFailure::BadSecret);
        }
        // Checked after the secret, so a disabled client's status is not told to a guesser.
        if !client.enabled {
            return Err(AuthFailure::Disabled);
        }
        Ok(client)
    }

    /// Authenticates with a generated secret only (one SHA-256). Used while a back-off runs, so
    /// that a client holding its right generated secret keeps working while guessers are held
    /// off without any hashing. Imported secrets are not checked at all then, not even against
    /// the MAC of their last success: that check costs nothing, so a guesser in back-off could
    /// otherwise try it as fast as it can send.
    pub fn authenticate_cheaply(&self, client_id: &str, secret: &str) -> Option<Arc<CachedClient>> {
        let client = self.get(client_id)?;
        (self.generated_match(&client, secret, self.clock.now()) && client.enabled).then_some(client)
    }

    /// A live generated secret's digest matches, in constant time.
    fn generated_match(&self, client: &CachedClient, secret: &str, now_s: i64) -> bool {
        let presented = digest(&SHA256, secret.as_bytes());
        let mut matched = subtle::Choice::from(0u8);
        for s in client.secrets.iter() {
            if let CachedSecret::Sha256 { digest, expires_at } = s {
                let live = expires_at.is_none_or(|e| e > now_s);
                matched |= digest.as_slice().ct_eq(presented.as_ref()) & subtle::Choice::from(live as u8);
            }
        }
        bool::from(matched)
    }

    /// A generated secret's digest, or an imported secret's recently verified MAC, matches.
    fn cheap_match(&self, client: &CachedClient, secret: &str, now_s: i64) -> bool {
        let presented = digest(&SHA256, secret.as_bytes());
        let live = |exp: &Option<i64>| exp.is_none_or(|e| e > now_s);
        let mut matched = subtle::Choice::from(0u8);
        let mut mac = None;
        for s in client.secrets.iter() {
            match s {
                CachedSecret::Sha256 { digest, expires_at } => {
                    let eq = digest.as_slice().ct_eq(presented.as_ref());
                    matched |= eq & subtle::Choice::from(live(expires_at) as u8);
                }
                CachedSecret::Argon2(a) => {
                    if !live(&a.expires_at) {
                        continue;
                    }
                    let cached = *crate::sync::lock(&a.verified);
                    if let Some((m, _)) = cached.filter(|(_, at)| {
                        self.clock.instant().saturating_duration_since(*at) < ARGON2_CACHE_TTL
                    }) {
                        let mac = mac.get_or_insert_with(|| hmac::sign(&self.mac_key, secret.as_bytes()));
                        matched |= m.as_slice().ct_eq(mac.as_ref());
                    }
                }
            }
        }
        bool::from(matched)
    }

    /// Verifies `secret` against the client's live imported secrets. Returns whether one matched
    /// and whether any Argon2id computation ran.
    async fn verify_argon2(&self, client: &Arc<CachedClient>, secret: &str, now_s: i64) -> (bool, bool) {
        let mut ran = false;
        for s in client.secrets.iter() {
            let CachedSecret::Argon2(a) = s else {
                continue;
            };
            if a.expires_at.is_some_and(|e| e <= now_s) {
                continue;
            }
            ran = true;
            if self.run_argon2(a.phc.to_string(), secret).await {
                let mac = hmac::sign(&self.mac_key, secret.as_bytes());
                let mut m = [0u8; 32];
                m.copy_from_slice(mac.as_ref());
                *crate::sync::lock(&a.verified) = Some((m, self.clock.instant()));
                return (true, ran);
            }
        }
        (false, ran)
    }

    /// Checks a user's password against its Argon2id hash in the bounded pool; with no hash (no
    /// such user, or one without a password) it runs the dummy check instead, so the answer takes
    /// as long either way.
    pub async fn check_password(&self, phc: Option<&str>, password: &str) -> bool {
        match phc {
            Some(phc) => self.run_argon2(phc.to_string(), password).await,
            None => {
                self.dummy_check(password).await;
                false
            }
        }
    }

    /// One Argon2id verification on a dummy hash, made with the parameters imported secrets get.
    /// The hash itself is made on first use, inside the bounded pool like every Argon2id run.
    async fn dummy_check(&self, secret: &str) {
        let Ok(permit) = self.argon2_permits.clone().acquire_owned().await else {
            return;
        };
        let cell = self.dummy_phc.clone();
        let secret = secret.to_owned();
        let _ = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let phc = cell.get_or_init(|| {
                let mut random = [0u8; 32];
                let _ = SystemRandom::new().fill(&mut random);
                hash_secret(&URL_SAFE_NO_PAD.encode(random), SecretKind::Argon2id).unwrap_or_default()
            });
            verify_phc(phc, &secret)
        })
        .await;
    }

    /// Runs one Argon2id verification in the bounded pool.
    async fn run_argon2(&self, phc: String, secret: &str) -> bool {
        // The permit moves into the blocking task: if the request is dropped (the client hung
        // up), the hash still holds its permit until it finishes, so hanging up cannot be used
        // to run more Argon2id computations at once than there are cores.
        let Ok(permit) = self.argon2_permits.clone().acquire_owned().await else {
            return false;
        };
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_phc(&phc, &secret)
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests;
