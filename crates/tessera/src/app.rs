//! The state a node serves from: settings, store, and the caches kept fresh from the store.

use std::sync::Arc;

use crate::clients::Registry;
use crate::config::Settings;
use crate::keys::KeyRing;
use crate::store::Store;

/// Everything a request handler may need, passed explicitly (no globals).
pub struct App {
    /// Validated settings.
    pub settings: Settings,
    /// The store.
    pub store: Store,
    /// Cached clients.
    pub registry: Registry,
    /// Current signing keys.
    pub keys: KeyRing,
    /// The key that seals signing keys at rest (for rotation through the admin API).
    pub master: crate::keys::MasterKey,
    /// Revoked token ids.
    pub revocations: crate::revocations::Revocations,
    /// Tokens whose signature was checked recently (introspection, revocation, admin API).
    pub verified: tessera_verify::jws::VerifiedTokens<tessera_proto::AccessTokenClaims>,
    /// Metadata documents, serialized once at start.
    pub metadata: Metadata,
    /// When the caches last caught up with the store.
    pub synced: Synced,
    /// Abuse limits and their state.
    pub guard: crate::limits::Guard,
    /// Counters and histograms for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// What keeps the node from being ready, if anything.
    pub readiness: Readiness,
    /// Held while the registry is written from what was read from the store (by a poll, or by
    /// [`App::apply_client`]), so that an older read never lands after a newer one.
    pub registry_writes: tokio::sync::Mutex<()>,
    /// Trust policies in force (workload identity federation).
    pub trust: crate::trust::TrustPolicies,
    /// Key sets clients publish at their `jwks_uri`.
    pub remote_keys: crate::client_keys::RemoteKeys,
    /// Fetches client ID metadata documents.
    pub documents: crate::client_documents::Documents,
    /// Writes single-use ids (assertion and proof `jti`s) to the store, batched.
    pub used_once: crate::replay::Ledger,
    /// DPoP nonces (RFC 9449 §8), the same on every node holding the master key.
    pub dpop_nonces: tessera_verify::dpop::Nonces,
    /// The node's time: the system's, or a test's manual clock.
    pub clock: Arc<dyn crate::model::clock::Clock>,
    /// Registrations (and first fetches of client metadata documents) per address per hour,
    /// counted on this node (`None`: no limit).
    pub register_rate: Option<Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>>,
}

impl App {
    /// What `/metrics` reports of this node's state, read now.
    pub fn gauges(&self) -> crate::metrics::Gauges {
        let now = self.clock.now();
        let keys = self.keys.get();
        let limit = self.guard.settings().max_concurrent_requests as usize;
        crate::metrics::Gauges {
            clients: self.registry.len(),
            revocations: self.revocations.len(),
            verified_tokens: self.verified.len(),
            published_keys: keys.verifiers.len(),
            key_age: keys.current(now).map_or(0, |s| now - s.activates_at),
            synced_ago: now - self.synced.at(),
            in_flight: limit.saturating_sub(self.guard.in_flight.available_permits()),
            backoff_tracked: self.guard.tracked_failures(),
        }
    }

    /// Counts a registration attempt (or a metadata document fetch) from `address` against
    /// `[registration] per_address_per_hour`: `Err` with how long to wait when over it.
    pub fn admit_registration(&self, address: std::net::IpAddr) -> Result<(), crate::limits::Refused> {
        let Some(rate) = &self.register_rate else {
            return Ok(());
        };
        rate.check_key(&crate::limits::address_key(address))
            .map_err(|not_until| crate::limits::Refused {
                limit: "registrations per address",
                retry_after: not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                )),
            })
    }

    /// Reads client `id` from the store and puts it (or its absence) into this node's registry
    /// at once: what an administrative change on this node must do before it answers, so that a
    /// disabled or narrowed client gets nothing more here. Other nodes follow within a poll.
    /// On a store error the entry is dropped (fail closed) until the next poll brings it back.
    pub async fn apply_client(&self, id: &str) {
        let _turn = self.registry_writes.lock().await;
        match self.store.client(id).await {
            Ok(record) => self.registry.upsert(id, record),
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read a changed client; its entry waits for the next poll");
                self.registry.upsert(id, None);
            }
        }
    }
}

/// The metadata documents (RFC 8414, OpenID Connect Discovery), serialized once at start by
/// `http::discovery::metadata`.
pub struct Metadata {
    /// At `/.well-known/oauth-authorization-server`.
    pub oauth: std::sync::Arc<str>,
    /// At `/.well-known/openid-configuration`.
    pub openid: std::sync::Arc<str>,
}

/// Why a node is not ready: it is shutting down, or it cannot open a signing key the store
/// holds (it then keeps signing with the keys it has, and says so here and in its log).
#[derive(Debug, Default)]
pub struct Readiness {
    draining: std::sync::atomic::AtomicBool,
    key_problem: std::sync::Mutex<Option<String>>,
}

impl Readiness {
    /// Marks the node as shutting down.
    pub fn drain(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records the outcome of the last key set rebuild.
    pub fn keys(&self, problem: Option<String>) {
        *crate::sync::lock(&self.key_problem) = problem;
    }

    /// Why the node is not ready, or `None` when it is.
    pub fn problem(&self) -> Option<String> {
        if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            return Some("shutting down".into());
        }
        crate::sync::lock(&self.key_problem).clone()
    }
}

/// When a node's caches last caught up with the store's change log (seconds since the epoch).
/// While the database is away this stops moving; `/readyz` reports its age.
#[derive(Debug, Default)]
pub struct Synced {
    at: std::sync::atomic::AtomicI64,
    polls: std::sync::atomic::AtomicU64,
}

impl Synced {
    /// Records a successful poll at `at`.
    pub fn mark(&self, at: i64) {
        self.at.store(at, std::sync::atomic::Ordering::Relaxed);
        self.polls.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The time of the last successful poll.
    pub fn at(&self) -> i64 {
        self.at.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many polls have succeeded: once it has grown by two, a poll that began after a
    /// given moment has been applied, so the node's caches hold what the store held then.
    pub fn polls(&self) -> u64 {
        self.polls.load(std::sync::atomic::Ordering::Acquire)
    }
}
