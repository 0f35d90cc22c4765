//! `/metrics`, in the OpenMetrics text format (which Prometheus reads): requests by endpoint and outcome, latency, limit
//! rejections, and gauges read when scraped (cache sizes, key age, time since the last sync).

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Counts the log lines the non-blocking log writer dropped (set where logging starts).
pub static LOG_ERRORS: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();

/// What the gauges read when `/metrics` is scraped (the node's state, gathered by the app).
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Clients in the registry cache.
    pub clients: usize,
    /// Revoked token ids cached.
    pub revocations: usize,
    /// Verified tokens cached.
    pub verified_tokens: usize,
    /// Keys in the published JWKS.
    pub published_keys: usize,
    /// Seconds since the current signing key became active.
    pub key_age: i64,
    /// Seconds since the node last synced with the store.
    pub synced_ago: i64,
    /// Requests in flight.
    pub in_flight: usize,
    /// Client ids, accounts and addresses with failures remembered.
    pub backoff_tracked: usize,
}

/// The RFC error code an error response carried, put in the response's extensions by whoever
/// built it, so that metrics count outcomes without reading bodies.
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub &'static str);

/// The limit that refused a request, put in the response's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Limited(pub &'static str);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
}

type Histograms = Family<EndpointLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 3.3 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.00005, 4.0, 9,
    ))
}

/// The metrics of one node.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms,
    rejections: Family<LimitLabels, Counter>,
    cache_entries: Family<CacheLabels, Gauge>,
    cache_lookups: Family<CacheLabels, Counter>,
    cache_hits: Family<CacheLabels, Counter>,
    key_age: Gauge,
    synced_ago: Gauge,
    in_flight: Gauge,
    backoff_tracked: Gauge,
    dropped_logs: Counter,
    started: std::time::Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by endpoint and outcome (ok, or the RFC error code)",
            requests.clone(),
        );
        let latency: Histograms = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer a request, by endpoint",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let rejections = Family::<LimitLabels, Counter>::default();
        registry.register(
            "limit_rejections",
            "Requests refused by an abuse limit, by limit",
            rejections.clone(),
        );
        let cache_entries = Family::<CacheLabels, Gauge>::default();
        registry.register(
            "cache_entries",
            "Entries in each in-memory cache",
            cache_entries.clone(),
        );
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        registry.register("cache_lookups", "Lookups in each cache", cache_lookups.clone());
        let cache_hits = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_hits",
            "Lookups that found what they looked for",
            cache_hits.clone(),
        );
        let key_age = Gauge::default();
        registry.register_with_unit(
            "signing_key_age",
            "Age of the key signing tokens now",
            prometheus_client::registry::Unit::Seconds,
            key_age.clone(),
        );
        let synced_ago = Gauge::default();
        registry.register_with_unit(
            "store_synced_age",
            "Time since this node's caches last caught up with the store",
            prometheus_client::registry::Unit::Seconds,
            synced_ago.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests being served now",
            in_flight.clone(),
        );
        let backoff_tracked = Gauge::default();
        registry.register(
            "failed_authentication_keys",
            "Client ids and addresses with failed authentications remembered",
            backoff_tracked.clone(),
        );
        let dropped_logs = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the log writer fell behind",
            dropped_logs.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            rejections,
            cache_entries,
            cache_lookups,
            cache_hits,
            key_age,
            synced_ago,
            in_flight,
            backoff_tracked,
            dropped_logs,
            started: std::time::Instant::now(),
        }
    }

    /// Requests answered since the node started, how many of them were not `ok`, and for how
    /// long it has run: summed from the request counters when asked (the console's overview),
    /// so that answering a request counts it once.
    pub fn totals(&self) -> (u64, u64, Duration) {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        let (mut answered, mut refused) = (0, 0);
        for line in text
            .lines()
            .filter(|l| l.starts_with("tessera_http_requests_total{"))
        {
            let n = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
            answered += n;
            if !line.contains("outcome=\"ok\"") {
                refused += n;
            }
        }
        (answered, refused, self.started.elapsed())
    }

    /// Counts one answered request.
    pub fn request(&self, endpoint: &'static str, outcome: &'static str, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, outcome })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(took.as_secs_f64());
    }

    /// Counts one request refused by `limit`.
    pub fn rejected(&self, limit: &'static str) {
        self.rejections.get_or_create(&LimitLabels { limit }).inc();
    }

    /// Counts one lookup in `cache`.
    pub fn lookup(&self, cache: &'static str, hit: bool) {
        let labels = CacheLabels { cache };
        self.cache_lookups.get_or_create(&labels).inc();
        if hit {
            self.cache_hits.get_or_create(&labels).inc();
        }
    }

    fn refresh(&self, g: &Gauges) {
        let set = |cache: &'static str, n: usize| {
            self.cache_entries
                .get_or_create(&CacheLabels { cache })
                .set(n as i64);
        };
        set("clients", g.clients);
        set("revocations", g.revocations);
        set("verified_tokens", g.verified_tokens);
        set("published_keys", g.published_keys);
        self.key_age.set(g.key_age.max(0));
        self.synced_ago.set(g.synced_ago.max(0));
        self.in_flight.set(g.in_flight as i64);
        self.backoff_tracked.set(g.backoff_tracked as i64);
        let dropped = LOG_ERRORS.get().map(|c| c.dropped_lines() as u64).unwrap_or(0);
        let counted = self.dropped_logs.get();
        if dropped > counted {
            self.dropped_logs.inc_by(dropped - counted);
        }
    }

    /// The text exposition, with the gauges read at scrape time.
    pub fn render(&self, gauges: &Gauges) -> Result<String, std::fmt::Error> {
        self.refresh(gauges);
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_summed_from_the_request_counters() {
        let m = Metrics::new();
        assert_eq!((m.totals().0, m.totals().1), (0, 0));
        m.request("token", "ok", Duration::from_millis(1));
        m.request("token", "ok", Duration::from_millis(1));
        m.request("introspect", "invalid_client", Duration::from_millis(1));
        let (answered, refused, _) = m.totals();
        assert_eq!((answered, refused), (3, 1));
    }
}
