//! Abuse limits: request rates per source address and per client, a growing back-off after failed
//! client authentications, and a cap on requests in flight.
//!
//! Every limit is per node: the hot path never writes to the store, so a cluster of N nodes
//! behind a load balancer allows at most N times one node's budget. That is enough for what the
//! limits are for (keeping one address or one client from eating a node, and making guessing
//! slow); the limits that bound what is *stored* (revocations per client, pending signing keys)
//! are counted in the store and hold for the whole cluster.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};

use crate::model::clock::{self, SystemClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// The `[limits]` table of the settings file. Every rate may be `0` to turn it off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Requests per second one source address may make to the token, introspection and
    /// revocation endpoints (IPv6 addresses count per /64).
    pub per_address_rps: u32,
    /// Requests an address may make at once above its rate.
    pub per_address_burst: u32,
    /// Requests per second one authenticated client may make to those endpoints.
    pub per_client_rps: u32,
    /// Requests a client may make at once above its rate.
    pub per_client_burst: u32,
    /// Failed authentications for one client id (known or not) before the back-off starts.
    pub failures_before_backoff: u32,
    /// Failed authentications from one address (any client id or account) before the back-off
    /// starts.
    pub address_failures_before_backoff: u32,
    /// Failed sign-ins for one account from any address before the account's back-off starts:
    /// the ceiling against guessing spread over many addresses. While it runs, only a browser
    /// that signed in to the account before (it holds the account's device cookie) may try.
    pub account_failures_before_backoff: u32,
    /// Seconds after the last failure when a failure count starts again from zero.
    pub failure_window: u64,
    /// Longest back-off, in seconds.
    pub max_backoff: u64,
    /// Requests served at once; more are refused at once with 503.
    pub max_concurrent_requests: u32,
    /// Unexpired revoked tokens one client may hold in the store.
    pub max_revocations_per_client: u32,
    /// Header that carries the client's address, set by a proxy (`X-Forwarded-For`): read only
    /// on connections from `trusted_proxies`.
    pub trusted_proxy_header: Option<String>,
    /// Networks (CIDR) of the proxies whose `trusted_proxy_header` is believed.
    pub trusted_proxies: Vec<String>,
    /// Allow a catch-all network (`0.0.0.0/0`, `::/0`) in `trusted_proxies`: every peer could
    /// then say which address it has. Off by default; on, a warning is logged at start.
    pub allow_any_proxy: bool,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            per_address_rps: 1000,
            per_address_burst: 2000,
            per_client_rps: 500,
            per_client_burst: 1000,
            failures_before_backoff: 5,
            address_failures_before_backoff: 30,
            account_failures_before_backoff: 20,
            failure_window: 600,
            max_backoff: 900,
            max_concurrent_requests: 1024,
            max_revocations_per_client: 10_000,
            trusted_proxy_header: None,
            trusted_proxies: Vec::new(),
            allow_any_proxy: false,
        }
    }
}

/// [`LimitSettings`], checked.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// As configured.
    pub settings: LimitSettings,
    /// The header, parsed.
    pub proxy_header: Option<axum::http::HeaderName>,
    /// The proxies, parsed.
    pub proxies: Vec<ipnet::IpNet>,
}

impl Limits {
    /// Checks bounds and parses the proxy settings; the error names the setting.
    pub fn new(settings: LimitSettings) -> Result<Self, String> {
        let s = &settings;
        let within = |name: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("limits.{name} must be {lo} to {hi}, not {v}"))
            }
        };
        within("per_address_rps", s.per_address_rps.into(), 0, 1_000_000)?;
        within("per_address_burst", s.per_address_burst.into(), 0, 1_000_000)?;
        within("per_client_rps", s.per_client_rps.into(), 0, 1_000_000)?;
        within("per_client_burst", s.per_client_burst.into(), 0, 1_000_000)?;
        within(
            "failures_before_backoff",
            s.failures_before_backoff.into(),
            1,
            1000,
        )?;
        within(
            "address_failures_before_backoff",
            s.address_failures_before_backoff.into(),
            1,
            100_000,
        )?;
        within(
            "account_failures_before_backoff",
            s.account_failures_before_backoff.into(),
            1,
            100_000,
        )?;
        within("failure_window", s.failure_window, 1, 86_400)?;
        within("max_backoff", s.max_backoff, 1, 86_400)?;
        within(
            "max_concurrent_requests",
            s.max_concurrent_requests.into(),
            1,
            1_000_000,
        )?;
        within(
            "max_revocations_per_client",
            s.max_revocations_per_client.into(),
            1,
            100_000_000,
        )?;
        let proxy_header = s
            .trusted_proxy_header
            .as_deref()
            .map(|h| {
                axum::http::HeaderName::try_from(h.trim())
                    .map_err(|_| format!("limits.trusted_proxy_header {h:?} is not a header name"))
            })
            .transpose()?;
        let proxies = s
            .trusted_proxies
            .iter()
            .map(|p| {
                p.trim()
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| p.trim().parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("limits.trusted_proxies: {p:?} is not an address or CIDR network"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proxy_header.is_some() == proxies.is_empty() {
            return Err("limits.trusted_proxy_header and limits.trusted_proxies go together".into());
        }
        if let Some(any) = proxies.iter().find(|n| n.prefix_len() == 0) {
            if !s.allow_any_proxy {
                return Err(format!(
                    "limits.trusted_proxies: {any} trusts every peer to name its own address; list \
                     the proxies' networks, or set limits.allow_any_proxy = true if every peer \
                     really is a proxy"
                ));
            }
        }
        Ok(Limits {
            settings,
            proxy_header,
            proxies,
        })
    }
}

/// Why a request was refused by a limit, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Which limit.
    pub limit: &'static str,
    /// How long to wait (rounded up to whole seconds when sent).
    pub retry_after: Duration,
}

impl Limits {
    /// Whether `trusted_proxies` holds a catch-all network (allowed by `allow_any_proxy`).
    pub fn trusts_any_proxy(&self) -> bool {
        self.proxies.iter().any(|n| n.prefix_len() == 0)
    }
}

/// How many times an account's ceiling (`account_failures_before_backoff`) wrong device user
/// codes from every address may reach before every address backs off (signed-in browsers
/// excepted): 1,000 with the defaults.
pub const USER_CODE_CEILING_FACTOR: u32 = 50;

/// Whose failed authentications are counted. Each kind has key spaces of its own, so no input
/// of one kind can touch the count of another (a client id that looks like an email is still a
/// client id).
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A client id presented at the token, introspection or revocation endpoint.
    Client(&'a str),
    /// A person's account at the login page, by its email key ([`crate::model::email_key`]).
    Account(&'a str),
    /// Device user codes (RFC 8628 §5.1), all as one: a wrong code counts against the address
    /// that sent it and, past a ceiling ([`USER_CODE_CEILING_FACTOR`]), against guessing from
    /// everywhere. A right code clears nothing (it is no proof that the guesser stopped).
    UserCode,
}

impl Subject<'_> {
    fn digest(&self) -> [u8; 16] {
        let id = match self {
            Subject::Client(id) | Subject::Account(id) => id,
            // Not an email key (those have an `@`) nor a client id (a client's id is printable).
            Subject::UserCode => "\0device user codes",
        };
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&d.as_ref()[..16]);
        k
    }
}

/// A count of failures. Ids are digests: an unknown client id may be a secret typed in the
/// wrong field.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum FailKey {
    /// A client id, from any address.
    Client([u8; 16]),
    /// An account, from one address: what holds a guesser without holding the account's owner.
    AccountAt([u8; 16], IpAddr),
    /// An account, from any address: the ceiling against guessing spread over many addresses.
    Account([u8; 16]),
    /// An address, for any client id or account.
    Address(IpAddr),
}

impl FailKey {
    /// Whether a success of this subject can clear the key (see [`Guard::succeeded`]).
    fn is_subject(&self) -> bool {
        !matches!(self, FailKey::Address(_))
    }
}

struct Failures {
    count: u32,
    last: Instant,
    until: Option<Instant>,
}

/// Most client ids and addresses whose failures are remembered at once.
const MAX_TRACKED: usize = 100_000;
/// How long every expensive check is refused once that table is full of live entries.
const SATURATED_BACKOFF: Duration = Duration::from_secs(60);

/// Whether an entry still matters: a back-off runs, or the window since the last failure (or
/// the end of the last back-off) has not passed.
fn live(f: &Failures, now: Instant, window: Duration) -> bool {
    f.until.map_or(f.last, |u| u.max(f.last)) + window > now
}

/// The limits of one node, with their state.
pub struct Guard {
    limits: Limits,
    by_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    by_client: Option<DefaultKeyedRateLimiter<Box<str>>>,
    failures: std::sync::Mutex<HashMap<FailKey, Failures>>,
    /// Milliseconds after `epoch` until which some back-off may still run: while it lies in the
    /// past, no lookup is needed (the common case costs one atomic load).
    backoff_horizon: AtomicU64,
    /// Until when (ms after `epoch`) every expensive check is refused: the table was full.
    saturated_until: AtomicU64,
    /// When the table was last swept (ms after `epoch`).
    last_sweep: AtomicU64,
    /// Client ids and accounts with failures remembered: while none, a success needs no lookup.
    id_entries: std::sync::atomic::AtomicUsize,
    epoch: Instant,
    /// The node's time.
    clock: Arc<dyn clock::Clock>,
    /// Requests in flight.
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

fn quota(rps: u32, burst: u32) -> Option<Quota> {
    let rps = NonZeroU32::new(rps)?;
    let burst = NonZeroU32::new(burst.max(rps.get())).unwrap_or(rps);
    Some(Quota::per_second(rps).allow_burst(burst))
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 (one host usually holds a
/// whole /64), an IPv4-mapped IPv6 address as the IPv4 address.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Guard {
    /// A guard with fresh state, on the system's clock.
    pub fn new(limits: Limits) -> Self {
        Self::with_clock(limits, Arc::new(SystemClock))
    }

    /// A guard with fresh state whose back-off windows run on `clock`.
    pub fn with_clock(limits: Limits, clock: Arc<dyn clock::Clock>) -> Self {
        let s = &limits.settings;
        Guard {
            by_address: quota(s.per_address_rps, s.per_address_burst).map(RateLimiter::keyed),
            by_client: quota(s.per_client_rps, s.per_client_burst).map(RateLimiter::keyed),
            failures: Default::default(),
            backoff_horizon: AtomicU64::new(0),
            id_entries: Default::default(),
            saturated_until: AtomicU64::new(0),
            last_sweep: AtomicU64::new(0),
            epoch: clock.instant(),
            clock,
            in_flight: Arc::new(tokio::sync::Semaphore::new(s.max_concurrent_requests as usize)),
            limits,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &LimitSettings {
        &self.limits.settings
    }

    /// Whether `peer` is one of the trusted proxies (whose forwarding headers are believed).
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.limits.proxies.iter().any(|n| n.contains(&peer))
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    /// address in the proxy header that is not itself a trusted proxy.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        // An IPv4 peer of a dual-stack listener arrives as ::ffff:a.b.c.d.
        let peer = peer.to_canonical();
        let Some(name) = &self.limits.proxy_header else {
            return peer;
        };
        let trusted = |ip: &IpAddr| self.limits.proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let mut found = peer;
        // The header's lines, read right to left (the nearest hop is last).
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        for item in values.iter().rev().flat_map(|v| v.rsplit(',')) {
            let item = item.trim();
            let Ok(ip) = item
                .parse::<IpAddr>()
                .or_else(|_| item.parse::<std::net::SocketAddr>().map(|a| a.ip()))
            else {
                // Garbage from an unknown hop: stop at the last address a trusted hop vouched for.
                return found;
            };
            found = ip;
            if !trusted(&ip) {
                return ip;
            }
        }
        found
    }

    /// Counts a request from `address` against its rate.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Refused> {
        let Some(l) = &self.by_address else {
            return Ok(());
        };
        l.check_key(&address_key(address)).map_err(|n| Refused {
            limit: "address_rate",
            retry_after: n.wait_time_from(DefaultClock::default().now()),
        })
    }

    /// Counts a request by an authenticated client against its rate.
    // The limiter is keyed by the id type the client cache holds, so a lookup clones nothing.
    #[allow(clippy::borrowed_box)]
    pub fn check_client(&self, client_id: &Box<str>) -> Result<(), Refused> {
        let Some(l) = &self.by_client else {
            return Ok(());
        };
        l.check_key(client_id).map_err(|n| Refused {
            limit: "client_rate",
            retry_after: n.wait_time_from(DefaultClock::default().now()),
        })
    }

    /// The keys a failure of `subject` from `address` counts under, with their thresholds.
    fn keys(&self, subject: Subject<'_>, address: IpAddr) -> [(FailKey, u32); 3] {
        let s = &self.limits.settings;
        let at = address_key(address);
        let d = subject.digest();
        let by_address = (FailKey::Address(at), s.address_failures_before_backoff);
        match subject {
            // A client id's count holds for every address (a secret is guessed from anywhere,
            // and a generated secret still succeeds during the back-off).
            Subject::Client(_) => [
                (FailKey::Client(d), s.failures_before_backoff),
                by_address,
                by_address,
            ],
            // Wrong user codes count on keys of their own: a typo on a shared network does not
            // bring the login page's address count nearer its back-off, and the ceiling for
            // codes from everywhere is higher than an account's (a device's code is not a
            // person's password: refusing everyone at 20 would let anyone lock the page).
            Subject::UserCode => [
                (FailKey::AccountAt(d, at), s.failures_before_backoff),
                (FailKey::AccountAt(d, at), s.failures_before_backoff),
                (
                    FailKey::Account(d),
                    s.account_failures_before_backoff
                        .saturating_mul(USER_CODE_CEILING_FACTOR),
                ),
            ],
            Subject::Account(_) => [
                (FailKey::AccountAt(d, at), s.failures_before_backoff),
                by_address,
                (FailKey::Account(d), s.account_failures_before_backoff),
            ],
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// How long the back-off for `subject` from `address` still runs, if it does. For an
    /// account, `known_browser` (the request carries the account's device cookie) lifts the
    /// account-wide ceiling, not the count for this address.
    pub fn backoff(&self, subject: Subject<'_>, address: IpAddr, known_browser: bool) -> Option<Refused> {
        let now = self.clock.instant();
        if self.backoff_horizon.load(Ordering::Relaxed) <= self.millis(now) {
            return None;
        }
        let saturated = self.saturated_until.load(Ordering::Relaxed);
        if saturated > self.millis(now) {
            return Some(Refused {
                limit: "failed_authentications",
                retry_after: Duration::from_millis(saturated - self.millis(now)),
            });
        }
        let map = crate::sync::lock(&self.failures);
        self.keys(subject, address)
            .iter()
            .filter(|(k, _)| !(known_browser && matches!(k, FailKey::Account(_))))
            .filter_map(|(k, _)| map.get(k)?.until)
            .filter(|u| *u > now)
            .max()
            .map(|u| Refused {
                limit: "failed_authentications",
                retry_after: u - now,
            })
    }

    /// Records a failed authentication of `subject` from `address`.
    pub fn failed(&self, subject: Subject<'_>, address: IpAddr) {
        let s = &self.limits.settings;
        let now = self.clock.instant();
        let window = Duration::from_secs(s.failure_window);
        let mut map = crate::sync::lock(&self.failures);
        let mut keys = self.keys(subject, address).to_vec();
        keys.dedup_by(|a, b| a.0 == b.0);
        for (key, threshold) in keys {
            if !map.contains_key(&key) && map.len() >= MAX_TRACKED {
                // Sweep at most once a second: a full map must not cost a scan per failure.
                let now_ms = self.millis(now);
                if self.last_sweep.load(Ordering::Relaxed) + 1000 <= now_ms {
                    self.last_sweep.store(now_ms, Ordering::Relaxed);
                    map.retain(|_, f| live(f, now, window));
                    self.recount(&map);
                }
                if map.len() >= MAX_TRACKED {
                    // Full of live entries (someone is spraying ids and addresses): rather than
                    // forget failures, every expensive check is refused for a minute. Generated
                    // secrets, checked for free, keep working.
                    let until = self.millis(now + SATURATED_BACKOFF);
                    let before = self.saturated_until.fetch_max(until, Ordering::Relaxed);
                    self.backoff_horizon.fetch_max(until + 1, Ordering::Relaxed);
                    if before <= self.millis(now) {
                        tracing::warn!(
                            "failed-authentication table full: expensive checks refused for a minute"
                        );
                    }
                    continue;
                }
            }
            if key.is_subject() && !map.contains_key(&key) {
                self.id_entries.fetch_add(1, Ordering::Relaxed);
            }
            let f = map.entry(key).or_insert(Failures {
                count: 0,
                last: now,
                until: None,
            });
            // The window runs from the last failure or the end of the last back-off, whichever
            // is later: a count never starts over while (or just after) its longest back-off.
            let quiet_since = f.until.map_or(f.last, |u| u.max(f.last));
            if quiet_since + window <= now {
                f.count = 0;
                f.until = None;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            if f.count >= threshold {
                let doublings = (f.count - threshold).min(30);
                let secs = (1u64 << doublings).min(s.max_backoff);
                let until = now + Duration::from_secs(secs);
                f.until = Some(until);
                self.backoff_horizon
                    .fetch_max(self.millis(until) + 1, Ordering::Relaxed);
            }
        }
    }

    /// Forgets the failures of a client id or account that authenticated from `address` (an
    /// address's own count stays). Free (one atomic load) while no client id or account has
    /// failures remembered, which is the common case.
    pub fn succeeded(&self, subject: Subject<'_>, address: IpAddr) {
        if self.id_entries.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut map = crate::sync::lock(&self.failures);
        for (key, _) in self.keys(subject, address) {
            if key.is_subject() && map.remove(&key).is_some() {
                self.id_entries.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn recount(&self, map: &HashMap<FailKey, Failures>) {
        let ids = map.keys().filter(|k| k.is_subject()).count();
        self.id_entries.store(ids, Ordering::Relaxed);
    }

    /// Drops state that no longer matters (run now and then).
    pub fn prune(&self) {
        let now = self.clock.instant();
        let window = Duration::from_secs(self.limits.settings.failure_window);
        {
            let mut map = crate::sync::lock(&self.failures);
            map.retain(|_, f| live(f, now, window));
            self.recount(&map);
        }
        for l in [&self.by_address].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.by_client {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Client ids and addresses with failures remembered.
    pub fn tracked_failures(&self) -> usize {
        crate::sync::lock(&self.failures).len()
    }
}

/// Seconds for a `Retry-After` header: whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0).max(u64::from(d.is_zero()))
}

#[cfg(test)]
mod tests;
