//! Tessera's test kit, shared by the server's integration tests, the libraries' tests, the fuzz
//! targets and the benchmarks: start a real node (in-process on a pre-bound loopback port, on a
//! [`ManualClock`] that tests move instead of sleeping, or the real binary as a process), wait
//! until it has caught up with its store, register clients, make PostgreSQL databases, and talk
//! to it over real HTTP. Not published; nothing here is part of the server's API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity,
    missing_docs
)]

pub mod https;
pub mod keys;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tempfile::TempDir;
use tessera::admin::NewClient;
use tessera::config::{Overrides, Settings};
use tessera::model::clock::ManualClock;
use tessera::server::{Running, start_with_clock};

/// Starts a node on an ephemeral loopback port with its store under `dir` and its own address
/// as issuer, bootstrap off, on the system clock; `overrides` may set anything else.
pub async fn local(dir: &Path, overrides: Overrides) -> Running {
    local_with(dir, overrides, |_| {}).await
}

/// [`local`], with `adjust` changing the settings before the node starts (what a config file
/// would set).
pub async fn local_with(dir: &Path, mut overrides: Overrides, adjust: impl FnOnce(&mut Settings)) -> Running {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let local = |v: String| Some((v, "test kit".to_string()));
    overrides.listen = overrides.listen.or_else(|| local("127.0.0.1:0".into()));
    overrides.issuer = overrides.issuer.or_else(|| local(base));
    overrides.database = overrides
        .database
        .or_else(|| local(format!("sqlite:{}/tessera.db", dir.display())));
    overrides.bootstrap = overrides.bootstrap.or_else(|| local("false".into()));
    let mut settings = Settings::load(None, &overrides).unwrap();
    adjust(&mut settings);
    let clock: Arc<dyn tessera::model::clock::Clock> = Arc::new(tessera::model::clock::SystemClock);
    start_with_clock(settings, Some(listener), clock).await.unwrap()
}

/// Registers a client through the admin operations (as the CLI would) and makes `running` see
/// it at once, as the admin API does.
pub async fn register(running: &Running, new: NewClient) -> tessera::admin::Created {
    let actor = tessera::operation::Actor::cli().on(running.app.clock.clone());
    let created = tessera::admin::create_client(&running.app.store, &actor, new)
        .await
        .unwrap();
    running.app.apply_client(&created.client.id).await;
    created
}

/// Options for an in-process server.
#[derive(Default, Clone)]
pub struct Opts {
    pub alg: Option<&'static str>,
    pub aliases: Option<&'static str>,
    pub presets: Option<&'static str>,
    pub request_timeout: Option<Duration>,
    pub issuer_path: Option<&'static str>,
    pub jwks_max_age: Option<Duration>,
    pub key_rotation_interval: Option<Duration>,
    pub limits: Option<tessera::limits::LimitSettings>,
    pub max_assertion_lifetime: Option<Duration>,
    /// Client assertions must name the issuer alone (`assertion_audience = "issuer"`).
    pub strict_assertion_audience: bool,
    /// Serve TLS with this certificate and key (the base URL is then `https://127.0.0.1:…`).
    pub tls: Option<tessera::config::TlsFiles>,
    /// Mutual TLS (`[mtls]`).
    pub mtls: Option<tessera::config::MtlsSettings>,
    /// DPoP settings (`[dpop]`), when not the defaults.
    pub dpop: Option<tessera::config::DpopSettings>,
    /// Self-registration (`[registration]`), when not the defaults (off).
    pub registration: Option<tessera::config::RegistrationSettings>,
    /// The console (`[console]`), when not the defaults.
    pub console: Option<tessera::config::ConsoleSettings>,
    /// Sign-in lifetimes (`[sign_in]`), when not the defaults.
    pub sign_in: Option<tessera::config::SignInSettings>,
    /// A CA (PEM) trusted for what the node fetches (`[outbound] ca_file`).
    pub outbound_ca: Option<String>,
    /// Keep the default outbound address rules (no loopback), instead of the kit's allowance
    /// for key sets tests serve on loopback.
    pub strict_outbound: bool,
}

/// A server running in this process.
pub struct Server {
    pub running: Option<Running>,
    pub base: String,
    pub dir: TempDir,
    pub http: reqwest::Client,
    /// The node's clock: a test that waits for time to pass moves it instead of sleeping.
    pub clock: Arc<ManualClock>,
    opts: Opts,
}

fn src(v: &str) -> Option<(String, String)> {
    Some((v.to_string(), "test".to_string()))
}

/// The store URL for a test's directory: an SQLite file in it, or, when the integration tests
/// run on PostgreSQL (`TESSERA_TEST_ENGINE=postgres`), a fresh database of its own on the server
/// at `TESSERA_TEST_POSTGRES_URL`, with the master key file in the directory that the nodes of a
/// shared store must be given.
pub fn db_url(dir: &Path) -> String {
    if !pg::integration() {
        return format!("sqlite:{}/tessera.db", dir.display());
    }
    let master = dir.join("master.key");
    if !master.exists() {
        tessera::keys::MasterKey::create(&master).unwrap();
    }
    let name = format!("{}{:016x}", pg::prefix(), {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        dir.hash(&mut h);
        h.finish()
    });
    pg::database(&name)
}

/// PostgreSQL for tests: where it is, and fresh databases on it.
pub mod pg {
    /// The server's URL (a database the tests may create databases from), if given.
    pub fn url() -> Option<String> {
        std::env::var("TESSERA_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
    }

    /// Whether the integration tests run on PostgreSQL instead of SQLite.
    pub fn integration() -> bool {
        std::env::var("TESSERA_TEST_ENGINE").as_deref() == Ok("postgres")
    }

    /// The URL of PostgreSQL for a test that needs it. Without one, says loudly that the test did
    /// not run and returns `None`; under CI (`CI` set) a missing PostgreSQL fails the test.
    pub fn require(test: &str) -> Option<String> {
        let url = url();
        if url.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: TESSERA_TEST_POSTGRES_URL is not set, and CI must run the PostgreSQL tests"
            );
            eprintln!(
                "\n*** {test}: POSTGRESQL TESTS DID NOT RUN: set TESSERA_TEST_POSTGRES_URL \
                 (e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres) ***\n"
            );
        }
        url
    }

    /// When this test process started (seconds since the epoch).
    fn started() -> u64 {
        static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        *STARTED.get_or_init(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        })
    }

    /// How this process's databases begin: `tessera_t_<start time>_`, so that a later run
    /// knows what an earlier one left.
    pub fn prefix() -> String {
        format!("{PREFIX}{}_", started())
    }

    const PREFIX: &str = "tessera_t_";

    /// Drops the databases that earlier test runs left (each test's server has one, ~8 MB, and
    /// nothing else removes them), once per process: those named by this kit, from a process
    /// that started earlier, that nobody is connected to. Run one suite at a time against a
    /// server: a suite still running when another starts may lose a database between two of
    /// its connections.
    async fn sweep(conn: &mut sqlx::PgConnection) {
        static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if SWEPT.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let idle: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database d \
             WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
        let ours = started();
        for name in idle {
            let created = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split('_').next())
                .and_then(|t| t.parse::<u64>().ok());
            if created.is_some_and(|t| t < ours) {
                let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                    .execute(&mut *conn)
                    .await;
            }
        }
    }

    /// Creates (if needed) database `name` on the test server and returns its URL.
    pub fn database(name: &str) -> String {
        let base = url().expect("TESSERA_TEST_POSTGRES_URL must be set with TESSERA_TEST_ENGINE=postgres");
        let db = name.to_string();
        let admin = base.clone();
        on_own_runtime(move || async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sweep(&mut conn).await;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&db)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            if !exists {
                sqlx::raw_sql(&format!("CREATE DATABASE \"{db}\""))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        });
        with_database(&base, name)
    }

    /// Runs `work` to completion on a runtime and a thread of its own: sqlx is async, and the
    /// kit's callers are not always (or are inside a runtime already).
    fn on_own_runtime<T, F>(work: impl FnOnce() -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: std::future::Future<Output = T>,
    {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(work())
        })
        .join()
        .unwrap()
    }

    /// Everything database `url` holds, as bytes: every row of every table as text, and the
    /// sealed private keys raw, for tests that look for what must never be stored.
    pub fn dump(url: &str) -> Vec<u8> {
        let url = url.to_string();
        on_own_runtime(move || async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            let mut all = Vec::new();
            for t in tables {
                let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{t}\" t"))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                for r in rows {
                    all.extend(r.into_bytes());
                }
            }
            let keys: Vec<Vec<u8>> = sqlx::query_scalar("SELECT private_key FROM signing_keys")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            all.extend(keys.concat());
            all
        })
    }

    /// A PostgreSQL server of a test's own (Debian's binaries, `initdb` into a temporary
    /// directory, trust authentication on loopback), which the test may stop and start.
    pub struct Private {
        pub port: u16,
        data: tempfile::TempDir,
        bin: std::path::PathBuf,
    }

    impl Private {
        /// Starts one, or returns `None` (saying so) when PostgreSQL's binaries are missing
        /// outside CI.
        pub fn start(test: &str) -> Option<Private> {
            let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().join("bin"))
                    .find(|b| b.join("initdb").exists())
            });
            let Some(bin) = bin else {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{test}: PostgreSQL binaries missing in CI"
                );
                eprintln!(
                    "\n*** {test}: POSTGRESQL TEST DID NOT RUN: no /usr/lib/postgresql/*/bin/initdb ***\n"
                );
                return None;
            };
            let data = tempfile::tempdir().unwrap();
            let pg = Private {
                port: super::free_port(),
                data,
                bin,
            };
            pg.chown();
            pg.run(
                "initdb",
                &["-A", "trust", "-U", "postgres", "--no-sync", "-D", &pg.dir()],
            );
            pg.ctl("start");
            Some(pg)
        }

        fn dir(&self) -> String {
            self.data.path().join("pg").display().to_string()
        }

        /// As root (CI), PostgreSQL must run as the `postgres` user and own its directory.
        fn root() -> bool {
            std::process::Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
        }

        fn chown(&self) {
            if Self::root() {
                let ok = std::process::Command::new("chown")
                    .args(["-R", "postgres", &self.data.path().display().to_string()])
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
        }

        fn run(&self, tool: &str, args: &[&str]) {
            let path = self.bin.join(tool);
            let mut cmd = if Self::root() {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&path);
                c
            } else {
                std::process::Command::new(&path)
            };
            let out = cmd.args(args).current_dir("/").output().unwrap();
            assert!(
                out.status.success(),
                "{tool} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        fn ctl(&self, action: &str) {
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.data.path().display()
            );
            let log = self.data.path().join("log").display().to_string();
            self.run(
                "pg_ctl",
                &[
                    "-D",
                    &self.dir(),
                    "-o",
                    &opts,
                    "-l",
                    &log,
                    "-w",
                    "-m",
                    "fast",
                    action,
                ],
            );
        }

        /// Stops the server (fast shutdown: open connections are cut).
        pub fn stop(&self) {
            self.ctl("stop");
        }

        /// Starts it again.
        pub fn restart(&self) {
            self.ctl("start");
        }

        pub fn url(&self) -> String {
            format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
        }
    }

    impl Drop for Private {
        fn drop(&mut self) {
            let opts = self.dir();
            let path = self.bin.join("pg_ctl");
            let _ = if Self::root() {
                std::process::Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(&path)
                    .args(["-D", &opts, "-m", "immediate", "stop"])
                    .output()
            } else {
                std::process::Command::new(&path)
                    .args(["-D", &opts, "-m", "immediate", "stop"])
                    .output()
            };
        }
    }

    /// A fresh, empty database with a unique name.
    pub fn fresh_database() -> String {
        database(&format!("{}{}", prefix(), uuid::Uuid::new_v4().simple()))
    }

    /// `url` with its database replaced by `name`.
    pub fn with_database(url: &str, name: &str) -> String {
        let (head, query) = match url.split_once('?') {
            Some((h, q)) => (h, format!("?{q}")),
            None => (url, String::new()),
        };
        let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
        let host_end = head[scheme_end..]
            .find('/')
            .map(|i| scheme_end + i)
            .unwrap_or(head.len());
        format!("{}/{name}{query}", &head[..host_end])
    }
}

pub async fn start(opts: Opts) -> Server {
    start_in(tempfile::tempdir().unwrap(), opts).await
}

pub async fn start_in(dir: TempDir, opts: Opts) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://{}", listener.local_addr().unwrap());
    let over = Overrides {
        listen: src("127.0.0.1:0"),
        issuer: src(&format!("{base}{}", opts.issuer_path.unwrap_or_default())),
        database: src(&db_url(dir.path())),
        bootstrap: src("false"),
        token_endpoint_aliases: opts.aliases.and_then(src),
        token_endpoint_presets: opts.presets.and_then(src),
        signing_alg: opts.alg.and_then(src),
        master_key_file: src(&dir.path().join("master.key").display().to_string()),
        master_key: None,
        key_rotation_interval: None,
        ..Default::default()
    };
    let mut settings = Settings::load(None, &over).unwrap();
    if let Some(t) = opts.request_timeout {
        settings.request_timeout = t;
    }
    if let Some(t) = opts.jwks_max_age {
        settings.jwks_max_age = t;
    }
    settings.key_rotation_interval = opts.key_rotation_interval;
    settings.tls = opts.tls.clone();
    settings.mtls = opts.mtls.clone();
    if let Some(d) = opts.dpop {
        settings.dpop = d;
    }
    if let Some(c) = opts.console.clone() {
        settings.console = c;
    }
    if let Some(si) = opts.sign_in {
        settings.sign_in = si;
    }
    if let Some(r) = opts.registration.clone() {
        settings.registration = r;
    }
    if opts.strict_assertion_audience {
        settings.assertion_audience_token_endpoint = false;
    }
    if let Some(l) = opts.max_assertion_lifetime {
        settings.max_assertion_lifetime = l;
    }
    // Key sets that tests serve on loopback, over plain http, answer fast or not at all.
    settings.outbound.allow_http_loopback = !opts.strict_outbound;
    settings.outbound.timeout = Duration::from_secs(2);
    settings.outbound.ca_pem = opts.outbound_ca.clone().map(String::into_bytes);
    if let Some(l) = opts.limits.clone() {
        settings.limits = tessera::limits::Limits::new(l).unwrap();
    }
    let clock = Arc::new(ManualClock::new());
    let running = start_with_clock(settings, Some(listener), clock.clone())
        .await
        .unwrap();
    Server {
        running: Some(running),
        base,
        dir,
        http: reqwest::Client::new(),
        clock,
        opts,
    }
}

impl Server {
    pub fn app(&self) -> &tessera::app::App {
        &self.running.as_ref().unwrap().app
    }

    /// Waits (at most 10 s) until this node has applied a poll of the change log that began
    /// after this call: what the store holds now is in its caches, and no poll that read the
    /// store earlier can still overwrite it. (Putting a record into the registry by hand can be
    /// undone by such a poll.)
    pub async fn caught_up(&self) {
        let synced = &self.app().synced;
        let start = synced.polls();
        let deadline = Instant::now() + Duration::from_secs(10);
        while synced.polls() < start + 2 {
            assert!(Instant::now() < deadline, "the node stopped polling its store");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The operator at the command line, acting on this node's clock.
    pub fn actor(&self) -> tessera::operation::Actor {
        tessera::operation::Actor::cli().on(self.clock.clone())
    }

    /// Moves this node's clock forward by `by`: tokens, secrets and back-off windows age as if
    /// that much time had passed.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server and starts a new one on the same store (on a new port).
    pub async fn restart(mut self) -> Server {
        self.running.take().unwrap().shutdown().await;
        start_in(self.dir, self.opts).await
    }

    /// Registers a client through the admin operations and makes the registry see it now.
    pub async fn client_with(&self, new: NewClient) -> (String, String) {
        let created = register(self.running.as_ref().unwrap(), new).await;
        (created.client.id.clone(), created.secret.clone())
    }

    pub async fn client(&self, scope: &str, audiences: &[&str]) -> (String, String) {
        self.client_with(NewClient {
            name: "test client".into(),
            scope: scope.into(),
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        })
        .await
    }

    /// POSTs a form to the token endpoint with Basic credentials.
    pub async fn token_basic(&self, id: &str, secret: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_form("/oauth2/token", id, secret, form).await
    }

    /// A token for the client (all its scopes).
    pub async fn token(&self, id: &str, secret: &str) -> String {
        let r = self
            .token_basic(id, secret, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// POSTs a form to `path` with Basic credentials.
    pub async fn post_form(
        &self,
        path: &str,
        id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("authorization", basic(id, secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode_form(form))
            .send()
            .await
            .unwrap()
    }

    /// Introspects `token` as client `id`; expects 200 and returns the body.
    pub async fn introspect(&self, id: &str, secret: &str, token: &str) -> serde_json::Value {
        let r = self
            .post_form("/oauth2/introspect", id, secret, &[("token", token)])
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        r.json().await.unwrap()
    }

    /// POSTs a raw body with the given headers to a path.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }
}

/// `application/x-www-form-urlencoded` of pairs.
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// RFC 6749 §2.3.1 Basic credentials: form-encode id and secret, then base64.
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// Decodes a JWT's header and claims without verifying (for assertions on content).
pub fn decode_unverified(jwt: &str) -> (serde_json::Value, serde_json::Value) {
    let mut parts = jwt.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let claims = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&claims).unwrap(),
    )
}

/// Verifies `jwt` the way a resource server would, with an independent JWT library: keys from
/// the JWKS over HTTP, then signature, `typ`, `iss`, `aud` and `exp`.
pub async fn verify_as_resource_server(
    http: &reqwest::Client,
    jwks_url: &str,
    jwt: &str,
    issuer: &str,
    audience: &str,
) -> Result<serde_json::Value, String> {
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let jwks: JwkSet = http.get(jwks_url).send().await.unwrap().json().await.unwrap();
    let header = decode_header(jwt).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some("at+jwt") {
        return Err(format!("typ is {:?}", header.typ));
    }
    let kid = header.kid.clone().ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("unknown kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    decode::<serde_json::Value>(jwt, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

/// Polls `check` until it returns true or `limit` passes; returns whether it did.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `tessera` binary beside the running test executable (`target/<profile>/tessera`, built
/// with the server's tests), or `TESSERA_BIN`.
pub fn bin() -> PathBuf {
    if let Some(b) = std::env::var_os("TESSERA_BIN") {
        return PathBuf::from(b);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    // Test executables live in `deps/`; the binary one level up.
    let dir = if dir.ends_with("deps") {
        dir.parent().unwrap()
    } else {
        dir
    };
    dir.join(format!("tessera{}", std::env::consts::EXE_SUFFIX))
}

/// A `tessera` command with a clean environment (no stray `TESSERA_*` from the caller).
pub fn tessera_cmd(cwd: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_clear().current_dir(cwd);
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    if pg::integration() && cwd.join("master.key").exists() {
        // The nodes of a shared store are given its master key (see `db_url`).
        cmd.env("TESSERA_MASTER_KEY_FILE", cwd.join("master.key"));
    }
    cmd
}

/// Runs the CLI and returns (status, stdout, stderr).
pub fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = tessera_cmd(dir)
        .args(args)
        .arg("--database")
        .arg(db_url(dir))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs the CLI, expects success and parses stdout as JSON.
pub fn cli_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let (code, out, err) = cli(dir, args);
    assert_eq!(code, 0, "tessera {args:?} failed: {err}");
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("stdout of {args:?} is not one JSON value ({e}): {out}"))
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `tessera serve` binary, its output going to files.
pub struct Process {
    pub child: Child,
    pub base: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Process {
    /// Starts `tessera` in `cwd` with `args` and `env`, and waits until it answers `/healthz`.
    pub async fn spawn(cwd: &Path, args: &[&str], env: &[(&str, &str)], tag: &str) -> Process {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let stdout = cwd.join(format!("{tag}.stdout"));
        let stderr = cwd.join(format!("{tag}.stderr"));
        let mut cmd = tessera_cmd(cwd);
        cmd.args(args).args(["--listen", &format!("127.0.0.1:{port}")]);
        if !args.contains(&"--issuer") {
            cmd.args(["--issuer", &base]);
        }
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut p = Process {
            child,
            base,
            stdout,
            stderr,
        };
        let http = reqwest::Client::new();
        let url = format!("{}/healthz", p.base);
        let up = eventually(Duration::from_secs(30), || {
            let http = http.clone();
            let url = url.clone();
            async move { http.get(&url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        if !up {
            let _ = p.child.kill();
            panic!(
                "tessera did not start: {}",
                std::fs::read_to_string(&p.stderr).unwrap_or_default()
            );
        }
        assert!(p.child.try_wait().unwrap().is_none());
        p
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
