//! Keys that clients publish at their `jwks_uri`, fetched safely and cached.
//!
//! - A key already known is served from memory: a request never waits on the network for it.
//!   A key set older than [`REFRESH_AFTER`] is fetched again in the background.
//! - An unknown `kid` fetches the set at once, at most once per [`MIN_INTERVAL`] per address, so
//!   assertions naming made-up keys cannot make Tessera fetch in a loop.
//! - A set fetched once serves for [`MAX_AGE`] even when its address fails since, so an outage of
//!   a client's web server does not lock out its already-known keys; after that it is dropped.
//! - Only `https` (plain `http` only to loopback, and only where the operator allows it), only to
//!   addresses the operator allows (by default public ones: no loopback, private, link-local —
//!   cloud metadata —, shared or multicast addresses, checked on every address a name resolves
//!   to and on every redirect), redirects only within the same origin, at most
//!   [`MAX_BYTES`] and [`MAX_KEYS`] keys, within the configured timeout.
//! - Each address has its own entry and its own lock: a slow or failing `jwks_uri` delays only
//!   the requests of clients that use it.
//!
//! What is fetched is only ever an address an operator registered for a client: nothing a caller
//! sends names a URL.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_verify::Algorithm;
use tessera_verify::jws::{KeyRing, PublicKey};

use crate::model::auth::ASSERTION_ALGORITHMS;
use crate::model::clock::Clock;

/// A key set this old is fetched again, in the background.
pub const REFRESH_AFTER: Duration = Duration::from_secs(300);
/// At most one fetch per address in this long, for unknown keys.
pub const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// A key set not refreshed for this long is no longer used.
pub const MAX_AGE: Duration = Duration::from_secs(86_400);
/// Largest key set document.
pub const MAX_BYTES: usize = 64 * 1024;
/// Most keys in a fetched set.
pub const MAX_KEYS: usize = 20;
/// Most addresses remembered; beyond, the least recently fetched is forgotten.
pub const MAX_ENTRIES: usize = 10_000;
/// Most redirects followed (within the same origin).
const MAX_REDIRECTS: usize = 3;

/// Where Tessera may fetch from. By default only public (globally routable) addresses over
/// `https`: loopback, private, link-local (cloud metadata at 169.254.169.254 among them),
/// shared, multicast and unspecified addresses are refused unless a network here allows them.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Networks allowed beside the public ones (e.g. `10.20.0.0/16` for an internal issuer).
    pub allow_networks: Vec<ipnet::IpNet>,
    /// Plain `http` to loopback addresses (and those addresses) allowed: for development and
    /// tests only.
    pub allow_http_loopback: bool,
    /// A fetch ends after this long, connection included.
    pub timeout: Duration,
    /// Certificates (PEM) of CAs trusted beside the system's, for internal servers.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings {
            allow_networks: Vec::new(),
            allow_http_loopback: false,
            timeout: Duration::from_secs(5),
            ca_pem: None,
        }
    }
}

/// An HTTP client for what Tessera fetches: no proxy, `redirects`, the settings' timeout and
/// extra roots, and names resolved only to the addresses `policy` allows.
pub fn outbound_client(
    settings: &OutboundSettings,
    redirects: reqwest::redirect::Policy,
    policy: Arc<AddressPolicy>,
) -> Result<reqwest::Client, String> {
    let roots = match &settings.ca_pem {
        Some(pem) => reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("cannot read the outbound CA certificates: {e}"))?,
        None => Vec::new(),
    };
    reqwest::Client::builder()
        .no_proxy()
        .redirect(redirects)
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .tls_certs_merge(roots)
        .dns_resolver(Resolver(policy))
        .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// The body of `response`, refused once it is larger than `max` bytes (by its announced length,
/// or as it arrives).
pub async fn read_within(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("larger than {max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > max {
            return Err(format!("larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why no key was found (for the log; the client sees `invalid_client`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFailure {
    /// The set has no such key (and was fetched as recently as allowed).
    UnknownKey,
    /// The address could not be fetched, or did not hold a key set.
    Fetch(String),
}

impl KeyFailure {
    /// A short reason for the log.
    pub fn as_str(&self) -> &str {
        match self {
            KeyFailure::UnknownKey => "no such key",
            KeyFailure::Fetch(why) => why,
        }
    }
}

struct Entry {
    state: Mutex<EntryState>,
    /// Held while fetching, so concurrent requests for one address make one fetch.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct EntryState {
    ring: Option<Arc<KeyRing>>,
    /// For a discovery document: the `jwks_uri` it names.
    document: Option<String>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

struct Inner {
    http: reqwest::Client,
    entries: Mutex<HashMap<Box<str>, Arc<Entry>>>,
    clock: Arc<dyn Clock>,
    allow_http_loopback: bool,
    policy: Arc<AddressPolicy>,
}

/// The cache of clients' published key sets (cheap to clone: one shared cache).
#[derive(Clone)]
pub struct RemoteKeys {
    inner: Arc<Inner>,
}

impl RemoteKeys {
    /// A cache that fetches as `settings` allow, timed by `clock`.
    pub fn new(settings: &OutboundSettings, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let policy = Arc::new(AddressPolicy::from_settings(settings));
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let same_origin = attempt.previous().first().is_some_and(|first| {
                let next = attempt.url();
                first.scheme() == next.scheme()
                    && first.host_str() == next.host_str()
                    && first.port_or_known_default() == next.port_or_known_default()
            });
            if !same_origin {
                attempt.error("a redirect to another origin")
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        let http = outbound_client(settings, redirects, policy.clone())?;
        Ok(RemoteKeys {
            inner: Arc::new(Inner {
                http,
                entries: Mutex::default(),
                clock,
                allow_http_loopback: settings.allow_http_loopback,
                policy,
            }),
        })
    }

    /// The key at `uri` that verifies `alg`: the one named `kid`, or without a `kid` the only
    /// key for `alg`. Fetches as the module says.
    pub async fn key(
        &self,
        uri: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<PublicKey>, KeyFailure> {
        let entry = self.entry(uri);
        let now = self.inner.clock.instant();
        let (cached, stale) = {
            let st = crate::sync::lock(&entry.state);
            let fresh = st
                .fetched_at
                .is_some_and(|t| now.saturating_duration_since(t) < MAX_AGE);
            let stale = st
                .fetched_at
                .is_none_or(|t| now.saturating_duration_since(t) >= REFRESH_AFTER);
            (st.ring.clone().filter(|_| fresh), stale)
        };
        if let Some(key) = cached.as_deref().and_then(|r| pick(r, kid, alg)) {
            if stale {
                let this = self.clone();
                let uri = uri.to_string();
                tokio::spawn(async move {
                    let entry = this.entry(&uri);
                    let _ = this.refresh(&uri, &entry).await;
                });
            }
            return Ok(key);
        }
        let ring = self.refresh(uri, &entry).await?;
        pick(&ring, kid, alg).ok_or(KeyFailure::UnknownKey)
    }

    fn entry(&self, uri: &str) -> Arc<Entry> {
        let mut entries = crate::sync::lock(&self.inner.entries);
        if let Some(e) = entries.get(uri) {
            return e.clone();
        }
        if entries.len() >= MAX_ENTRIES {
            // Forget the entry fetched longest ago (or never).
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| crate::sync::lock(&e.state).fetched_at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
        let e = Arc::new(Entry {
            state: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        });
        entries.insert(uri.into(), e.clone());
        e
    }

    /// Fetches `uri` again unless it was tried within [`MIN_INTERVAL`]; returns the set in use
    /// afterwards (the previous one when the fetch failed and it is not too old).
    async fn refresh(&self, uri: &str, entry: &Entry) -> Result<Arc<KeyRing>, KeyFailure> {
        let _one = entry.fetching.lock().await;
        let now = self.inner.clock.instant();
        let current = {
            let mut st = crate::sync::lock(&entry.state);
            let usable = st
                .fetched_at
                .is_some_and(|t| now.saturating_duration_since(t) < MAX_AGE);
            let current = st.ring.clone().filter(|_| usable);
            if st
                .attempted_at
                .is_some_and(|t| now.saturating_duration_since(t) < MIN_INTERVAL)
            {
                return current.ok_or(KeyFailure::UnknownKey);
            }
            st.attempted_at = Some(now);
            current
        };
        match self.fetch(uri).await {
            Ok(ring) => {
                let ring = Arc::new(match &current {
                    Some(old) => ring.keeping(old),
                    None => ring,
                });
                let mut st = crate::sync::lock(&entry.state);
                st.ring = Some(ring.clone());
                st.fetched_at = Some(self.inner.clock.instant());
                Ok(ring)
            }
            Err(why) => {
                tracing::warn!(jwks_uri = %uri, reason = %why, "cannot fetch a client's key set");
                current.ok_or(KeyFailure::Fetch(why))
            }
        }
    }

    /// One fetch of the key set at `uri`, within every limit.
    async fn fetch(&self, uri: &str) -> Result<KeyRing, String> {
        let set = self.get_json(uri).await?;
        let keys = set
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or("not a JWK Set")?;
        if keys.len() > MAX_KEYS {
            return Err(format!("more than {MAX_KEYS} keys"));
        }
        Ok(KeyRing::from_jwks(&set, ASSERTION_ALGORITHMS))
    }

    /// The JSON document at `uri`, fetched within every limit.
    async fn get_json(&self, uri: &str) -> Result<serde_json::Value, String> {
        let url = reqwest::Url::parse(uri).map_err(|_| "not a URL".to_string())?;
        let host = url.host_str().unwrap_or_default();
        match url.scheme() {
            "https" => {}
            "http" if self.inner.allow_http_loopback && crate::model::auth::is_loopback_host(host) => {}
            _ => return Err("only https may be fetched".into()),
        }
        self.inner.policy.check_literal(&url)?;
        let response = self
            .inner
            .http
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| describe(&e))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("answered {}", response.status().as_u16()));
        }
        let body = read_within(response, MAX_BYTES).await?;
        crate::json::from_slice(&body).map_err(|_| "not a JSON document".to_string())
    }

    /// The key of an external `issuer` (a trust policy's, found through its OpenID Connect
    /// discovery document) that verifies `alg`, named `kid`. The document's `jwks_uri` is
    /// remembered like a key set: fetched again after [`REFRESH_AFTER`] in the background, at
    /// most once per [`MIN_INTERVAL`] on demand.
    pub async fn issuer_key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<PublicKey>, KeyFailure> {
        let uri = self.jwks_uri_of(issuer).await?;
        self.key(&uri, kid, alg).await
    }

    async fn jwks_uri_of(&self, issuer: &str) -> Result<String, KeyFailure> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let entry = self.entry(&discovery);
        let now = self.inner.clock.instant();
        {
            let st = crate::sync::lock(&entry.state);
            let fresh = st
                .fetched_at
                .is_some_and(|t| now.saturating_duration_since(t) < REFRESH_AFTER);
            if let (true, Some(uri)) = (fresh, &st.document) {
                return Ok(uri.clone());
            }
        }
        let _one = entry.fetching.lock().await;
        let previous = {
            let mut st = crate::sync::lock(&entry.state);
            let usable = st
                .fetched_at
                .is_some_and(|t| now.saturating_duration_since(t) < MAX_AGE);
            let previous = st.document.clone().filter(|_| usable);
            let recent = st
                .attempted_at
                .is_some_and(|t| now.saturating_duration_since(t) < MIN_INTERVAL);
            if recent
                || st
                    .fetched_at
                    .is_some_and(|t| now.saturating_duration_since(t) < REFRESH_AFTER)
            {
                return previous.ok_or(KeyFailure::Fetch("discovery failed recently".into()));
            }
            st.attempted_at = Some(now);
            previous
        };
        let found = async {
            let doc = self.get_json(&discovery).await?;
            if doc.get("issuer").and_then(|i| i.as_str()) != Some(issuer) {
                return Err("the discovery document names another issuer".to_string());
            }
            let uri = doc
                .get("jwks_uri")
                .and_then(|u| u.as_str())
                .ok_or("the discovery document has no jwks_uri")?;
            crate::model::auth::validate_jwks_uri(uri)?;
            Ok(uri.to_string())
        }
        .await;
        match found {
            Ok(uri) => {
                let mut st = crate::sync::lock(&entry.state);
                st.document = Some(uri.clone());
                st.fetched_at = Some(self.inner.clock.instant());
                Ok(uri)
            }
            Err(why) => {
                tracing::warn!(issuer = %issuer, reason = %why, "cannot read a trusted issuer's discovery document");
                previous.ok_or(KeyFailure::Fetch(why))
            }
        }
    }
}

/// The key for `alg` named `kid`, or without `kid` the only key of the set for `alg`.
pub fn pick(ring: &KeyRing, kid: Option<&str>, alg: Algorithm) -> Option<Arc<PublicKey>> {
    match kid {
        Some(kid) => ring
            .get(kid)
            .filter(|k| k.algorithms().any(|a| a == alg))
            .cloned(),
        None => ring.only_for(alg).cloned(),
    }
}

/// A fetch error, said without the URL's query (reqwest's message names the URL).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_redirect() {
        "a redirect that is not allowed"
    } else if e.is_connect() {
        "cannot connect (or no allowed address)"
    } else if e.is_body() || e.is_decode() {
        "the body could not be read"
    } else {
        "the request failed"
    };
    kind.to_string()
}

/// Which addresses may be fetched from.
#[derive(Debug)]
pub struct AddressPolicy {
    networks: Vec<ipnet::IpNet>,
    loopback: bool,
}

impl AddressPolicy {
    /// Refuses an address written in `url` that the policy does not allow (an address is not
    /// resolved, so the resolver never sees it; names are checked there).
    pub fn check_literal(&self, url: &reqwest::Url) -> Result<(), String> {
        let host = url.host_str().unwrap_or_default();
        match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) if !self.allows(ip) => Err(format!("address {ip} is not allowed")),
            _ => Ok(()),
        }
    }

    /// The policy `settings` describe.
    pub fn from_settings(settings: &OutboundSettings) -> Self {
        AddressPolicy {
            networks: settings.allow_networks.clone(),
            loopback: settings.allow_http_loopback,
        }
    }
}

impl AddressPolicy {
    /// Whether `ip` may be connected to: a network the operator allowed, loopback where plain
    /// http to loopback is allowed, or else a globally routable address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.networks.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        if ip.is_loopback() {
            return self.loopback;
        }
        is_public(ip)
    }
}

/// Whether `ip` is globally routable: not unspecified, loopback, private, shared (RFC 6598),
/// link-local, documentation, benchmarking, multicast, broadcast or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0064 && s[1] == 0xff9b)
                || v6.to_ipv4_mapped().is_some())
        }
    }
}

/// Resolves names as the system does, keeping only the addresses the policy allows: a name that
/// resolves only to refused addresses cannot be connected to at all.
struct Resolver(Arc<AddressPolicy>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no allowed address").into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let strict = AddressPolicy {
            networks: Vec::new(),
            loopback: false,
        };
        for refused in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "fe80::1",
            "fd00::1",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!strict.allows(refused.parse().unwrap()), "{refused}");
        }
        for allowed in ["93.184.216.34", "2606:4700::1111", "::ffff:93.184.216.34"] {
            assert!(strict.allows(allowed.parse().unwrap()), "{allowed}");
        }
        let internal = AddressPolicy {
            networks: vec!["10.20.0.0/16".parse().unwrap()],
            loopback: true,
        };
        assert!(internal.allows("10.20.3.4".parse().unwrap()));
        assert!(!internal.allows("10.21.3.4".parse().unwrap()));
        assert!(internal.allows("127.0.0.1".parse().unwrap()));
        assert!(!internal.allows("169.254.169.254".parse().unwrap()));
    }
}
