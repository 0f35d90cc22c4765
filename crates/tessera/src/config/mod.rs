//! One typed configuration, assembled in layers: defaults < file (TOML) < environment
//! (`TESSERA_*`) < command-line flags.
//!
//! Flags and environment variables arrive together through clap (each flag names its variable),
//! so the layering here is: start from the defaults, apply the file, then apply whatever clap
//! found. Every value is validated once, here; a wrong value stops start-up with one line that
//! names the setting, where it came from and what is wrong with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::client_keys::OutboundSettings;

mod client_auth;
mod console;
mod dpop;
mod mtls;
mod outbound;
mod registration;
mod sign_in;
mod values;

use crate::keys::{Alg, MasterKeySource};
use crate::model::paths::{ALL_PRESETS, PRESET_NAMES, PathRules, preset};
use crate::store::DatabaseUrl;
pub use console::ConsoleSettings;
pub use dpop::DpopSettings;
pub use mtls::MtlsSettings;
pub use registration::{Mode as RegistrationMode, RegistrationSettings};
pub use sign_in::SignInSettings;
use values::{parse_aliases, validate_issuer};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default issuer identifier.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
/// The default database: an embedded SQLite file under `./tessera-data/`.
pub const DEFAULT_DATABASE: &str = "sqlite:./tessera-data/tessera.db";

/// A configuration error: one line, naming the setting and its source.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// The settings file, as written by an operator. Every field is optional; unknown fields are an
/// error so that a typo does not silently fall back to a default.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<String>,
    issuer: Option<String>,
    database: Option<String>,
    bootstrap: Option<bool>,
    token_endpoint_aliases: Option<Vec<String>>,
    token_endpoint_presets: Option<Vec<String>>,
    token_endpoint: Option<Vec<crate::model::paths::PathConfig>>,
    signing_alg: Option<String>,
    master_key_file: Option<String>,
    jwks_max_age: Option<u64>,
    max_assertion_lifetime: Option<u64>,
    assertion_audience: Option<String>,
    max_body_bytes: Option<usize>,
    request_timeout: Option<u64>,
    key_rotation_interval: Option<String>,
    limits: Option<crate::limits::LimitSettings>,
    metrics: Option<bool>,
    shutdown_delay: Option<u64>,
    tls_cert_file: Option<String>,
    tls_key_file: Option<String>,
    plain_http: Option<bool>,
    hsts_max_age: Option<u64>,
    idle_timeout: Option<u64>,
    sign_in: Option<SignInSettings>,
    outbound: Option<outbound::OutboundFile>,
    mtls: Option<mtls::MtlsFile>,
    dpop: Option<dpop::DpopFile>,
    registration: Option<registration::RegistrationFile>,
    console: Option<ConsoleSettings>,
}

/// Values found on the command line or in the environment, each with the name of its source.
/// (No `Debug`: the database URL may hold a password.)
#[derive(Default, Clone)]
pub struct Overrides {
    /// `(value, source)` pairs; `source` is e.g. `--listen` or `TESSERA_LISTEN`.
    pub listen: Option<(String, String)>,
    /// The issuer identifier.
    pub issuer: Option<(String, String)>,
    /// The database URL.
    pub database: Option<(String, String)>,
    /// Whether to create the quickstart client on an empty store.
    pub bootstrap: Option<(String, String)>,
    /// Comma-separated extra paths for the token endpoint.
    pub token_endpoint_aliases: Option<(String, String)>,
    /// Comma-separated vendor presets for extra token-endpoint paths.
    pub token_endpoint_presets: Option<(String, String)>,
    /// The algorithm of a newly created signing key.
    pub signing_alg: Option<(String, String)>,
    /// Where the key-encryption key lives.
    pub master_key_file: Option<(String, String)>,
    /// The key-encryption key itself, base64 (`TESSERA_MASTER_KEY`); wins over the file.
    pub master_key: Option<(String, String)>,
    /// How often signing keys rotate (`90d`, `12h`, or `off`).
    pub key_rotation_interval: Option<(String, String)>,
    /// PEM certificate chain for TLS.
    pub tls_cert_file: Option<(String, String)>,
    /// PEM private key for TLS.
    pub tls_key_file: Option<(String, String)>,
    /// Serve plain HTTP on a non-loopback address (a proxy in front terminates TLS).
    pub plain_http: Option<(String, String)>,
}

/// The validated settings of a Tessera node.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Issuer identifier (`iss`), without a trailing slash.
    pub issuer: String,
    /// The store.
    pub database: DatabaseUrl,
    /// Create the quickstart client on a fresh store.
    pub bootstrap: bool,
    /// Extra paths that serve the token endpoint, each with its rules (aliases are strict).
    pub token_paths: Vec<(String, crate::model::paths::PathRules)>,
    /// Algorithm for signing keys created by this node.
    pub signing_alg: Alg,
    /// Where the key that encrypts private signing keys at rest comes from.
    pub master_key: MasterKeySource,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age: Duration,
    /// Longest a client assertion (`private_key_jwt`) may live, `exp` after `iat` or after now:
    /// one hour by default (what authlib signs for, and what Okta and Auth0 accept), 60 s at
    /// least. Its `jti` is single use whatever the lifetime.
    pub max_assertion_lifetime: Duration,
    /// Whether a client assertion may name the token endpoint URL as its audience besides the
    /// issuer identifier (`assertion_audience = "issuer_or_token_endpoint"`, the default, for
    /// clients that follow OpenID Connect Core §9, authlib among them), or only the issuer
    /// (`"issuer"`, RFC 7523bis).
    pub assertion_audience_token_endpoint: bool,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Longest a request may take, reading included.
    pub request_timeout: Duration,
    /// Scheduled signing-key rotation, if on.
    pub key_rotation_interval: Option<Duration>,
    /// Abuse limits.
    pub limits: crate::limits::Limits,
    /// Serve `/metrics`.
    pub metrics: bool,
    /// How long a node reports itself unready before it stops accepting, on shutdown (so that a
    /// load balancer stops sending it work first).
    pub shutdown_delay: Duration,
    /// TLS certificate and key, if this node terminates TLS itself.
    pub tls: Option<TlsFiles>,
    /// Plain HTTP was asked for on a non-loopback address.
    pub plain_http: bool,
    /// `Strict-Transport-Security: max-age` on the answers of a node that terminates TLS itself
    /// (seconds; 0 sends none).
    pub hsts_max_age: u64,
    /// A connection with no request in flight for this long is closed (HTTP/2 with a GOAWAY).
    pub idle_timeout: Duration,
    /// Session and refresh-token lifetimes.
    pub sign_in: SignInSettings,
    /// Where Tessera may fetch from (clients' `jwks_uri`).
    pub outbound: OutboundSettings,
    /// Mutual TLS client authentication, when the `[mtls]` table is there.
    pub mtls: Option<MtlsSettings>,
    /// How DPoP proofs are checked (`[dpop]`).
    pub dpop: DpopSettings,
    /// Clients that register themselves (`[registration]`).
    pub registration: RegistrationSettings,
    /// The admin console (`[console]`).
    pub console: ConsoleSettings,
}

impl Settings {
    /// Builds settings from an optional config file and the command-line/environment overrides.
    pub fn load(config_file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let file = match config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| {
                    let msg = e.message().replace('\n', " ");
                    ConfigError(format!("invalid config file {}: {msg}", path.display()))
                })?
            }
            None => FileConfig::default(),
        };
        let file_src = |key: &str| match config_file {
            Some(p) => format!("{key} in {}", p.display()),
            None => key.to_string(),
        };

        // Pick the highest layer that has a value, remembering where it came from.
        fn pick<T: Clone>(
            over: &Option<(String, String)>,
            file: Option<T>,
            file_src: String,
            convert: impl Fn(T) -> String,
        ) -> Option<(String, String)> {
            over.clone().or_else(|| file.map(|v| (convert(v), file_src)))
        }

        let listen = match pick(&overrides.listen, file.listen, file_src("listen"), |v| v) {
            Some((v, src)) => v
                .parse::<SocketAddr>()
                .map_err(|e| bad("listen address", &v, &src, &e.to_string()))?,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| ConfigError("bad default".into()))?,
        };
        let issuer = match pick(&overrides.issuer, file.issuer, file_src("issuer"), |v| v) {
            Some((v, src)) => validate_issuer(&v).map_err(|e| bad("issuer", &v, &src, &e))?,
            None => DEFAULT_ISSUER.to_string(),
        };
        let database = match pick(&overrides.database, file.database, file_src("database"), |v| v) {
            Some((v, src)) => DatabaseUrl::parse(&v).map_err(|e| {
                // Never echo a database URL: it may hold a password.
                ConfigError(format!("invalid database URL (from {src}): {e}"))
            })?,
            None => DatabaseUrl::parse(DEFAULT_DATABASE).map_err(ConfigError)?,
        };
        let bootstrap = match pick(&overrides.bootstrap, file.bootstrap, file_src("bootstrap"), |v| {
            v.to_string()
        }) {
            Some((v, src)) => {
                parse_bool(&v).ok_or_else(|| bad("bootstrap", &v, &src, "expected true or false"))?
            }
            None => true,
        };
        let token_endpoint_aliases = match pick(
            &overrides.token_endpoint_aliases,
            file.token_endpoint_aliases,
            file_src("token_endpoint_aliases"),
            |v| v.join(","),
        ) {
            Some((v, src)) => parse_aliases(&v).map_err(|e| bad("token endpoint alias", &v, &src, &e))?,
            None => Vec::new(),
        };
        let mut token_paths: Vec<(String, PathRules)> = token_endpoint_aliases
            .into_iter()
            .map(|a| (a, PathRules::STRICT))
            .collect();
        let mut add_path = |path: String, rules: PathRules, src: &str| -> Result<(), ConfigError> {
            let checked = parse_aliases(&path).map_err(|e| bad("token endpoint path", &path, src, &e))?;
            // Registered exactly as checked (trimmed, one path), never as written.
            let [checked] = <[String; 1]>::try_from(checked)
                .map_err(|_| bad("token endpoint path", &path, src, "must be one path"))?;
            if checked != path || token_paths.iter().any(|(p, _)| *p == checked) {
                return Err(bad(
                    "token endpoint path",
                    &path,
                    src,
                    "given twice, or not a plain path",
                ));
            }
            token_paths.push((checked, rules));
            Ok(())
        };
        if let Some((v, src)) = pick(
            &overrides.token_endpoint_presets,
            file.token_endpoint_presets,
            file_src("token_endpoint_presets"),
            |v| v.join(","),
        ) {
            for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let names: Vec<&str> = if name == "all" {
                    ALL_PRESETS.to_vec()
                } else {
                    vec![name]
                };
                for name in names {
                    let (path, rules) = preset(name).ok_or_else(|| {
                        bad(
                            "token endpoint preset",
                            name,
                            &src,
                            &format!("known presets: {PRESET_NAMES}"),
                        )
                    })?;
                    add_path(path.to_string(), rules, &src)?;
                }
            }
        }
        for table in file.token_endpoint.iter().flatten() {
            let src = file_src("[[token_endpoint]]");
            let (path, rules) = table
                .resolve()
                .map_err(|e| ConfigError(format!("invalid {src}: {e}")))?;
            add_path(path, rules, &src)?;
        }
        let signing_alg = match pick(
            &overrides.signing_alg,
            file.signing_alg,
            file_src("signing_alg"),
            |v| v,
        ) {
            Some((v, src)) => v
                .parse::<Alg>()
                .map_err(|e| bad("signing algorithm", &v, &src, &e))?,
            None => Alg::ES256,
        };
        // A node creates a master key only for an SQLite store (and only while the store holds
        // no signing key): the nodes of a shared store must all be given the same key.
        let create = matches!(database, DatabaseUrl::Sqlite { .. });
        let master_key = match (
            &overrides.master_key,
            pick(
                &overrides.master_key_file,
                file.master_key_file,
                file_src("master_key_file"),
                |v| v,
            ),
        ) {
            (Some((v, src)), _) => MasterKeySource::Value {
                base64: v.trim().to_string(),
                source: src.clone(),
            },
            (None, Some((v, _))) => MasterKeySource::File {
                path: PathBuf::from(v),
                create,
            },
            (None, None) => match &database {
                DatabaseUrl::Sqlite { path, .. } => MasterKeySource::File {
                    path: path
                        .parent()
                        .map(|p| p.join("master.key"))
                        .unwrap_or_else(|| PathBuf::from("master.key")),
                    create,
                },
                DatabaseUrl::Postgres(_) => MasterKeySource::Missing,
            },
        };
        let key_rotation_interval = match pick(
            &overrides.key_rotation_interval,
            file.key_rotation_interval,
            file_src("key_rotation_interval"),
            |v| v,
        ) {
            Some((v, src)) if v.trim() == "off" => {
                let _ = src;
                None
            }
            Some((v, src)) => {
                let d = humantime::parse_duration(v.trim())
                    .map_err(|e| bad("key rotation interval", &v, &src, &e.to_string()))?;
                // Each key stays published for about a day after the next one takes over (the
                // longest token lifetime); rotating faster only piles up keys in the JWKS.
                if d < Duration::from_secs(86_400) {
                    return Err(bad("key rotation interval", &v, &src, "must be at least 1d"));
                }
                Some(d)
            }
            None => Some(Duration::from_secs(90 * 86_400)),
        };
        let within = |name: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError(format!(
                    "invalid {} (from {}): must be {lo} to {hi}, not {v}",
                    name,
                    file_src(name)
                )))
            }
        };
        // The JWKS lifetime sets how far ahead of use a new key is published: 0 would publish
        // and sign at once, more than a day would make a rotation take days.
        let max_assertion_lifetime = Duration::from_secs(within(
            "max_assertion_lifetime",
            file.max_assertion_lifetime.unwrap_or(3600),
            60,
            3600,
        )?);
        let assertion_audience_token_endpoint = client_auth::token_endpoint_audience(
            file.assertion_audience.as_deref(),
            &file_src("assertion_audience"),
        )?;
        let jwks_max_age = Duration::from_secs(within(
            "jwks_max_age",
            file.jwks_max_age.unwrap_or(300),
            1,
            86_400,
        )?);
        let max_body_bytes = within(
            "max_body_bytes",
            file.max_body_bytes.unwrap_or(8 * 1024) as u64,
            256,
            1024 * 1024,
        )? as usize;
        let request_timeout = Duration::from_secs(within(
            "request_timeout",
            file.request_timeout.unwrap_or(10),
            1,
            300,
        )?);
        let tls_cert = pick(
            &overrides.tls_cert_file,
            file.tls_cert_file,
            file_src("tls_cert_file"),
            |v| v,
        );
        let tls_key = pick(
            &overrides.tls_key_file,
            file.tls_key_file,
            file_src("tls_key_file"),
            |v| v,
        );
        let tls = match (tls_cert, tls_key) {
            (Some((cert, _)), Some((key, _))) => Some(TlsFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            }),
            (None, None) => None,
            (Some((_, src)), None) | (None, Some((_, src))) => {
                return Err(ConfigError(format!(
                    "TLS needs both a certificate and a key file (only one given, from {src})"
                )));
            }
        };
        let plain_http = match pick(
            &overrides.plain_http,
            file.plain_http,
            file_src("plain_http"),
            |v| v.to_string(),
        ) {
            Some((v, src)) => {
                parse_bool(&v).ok_or_else(|| bad("plain_http", &v, &src, "expected true or false"))?
            }
            None => false,
        };
        if tls.is_none() && !plain_http && !listen.ip().is_loopback() {
            return Err(ConfigError(format!(
                "listening on {listen} without TLS: give --tls-cert and --tls-key, or --plain-http \
                 when a proxy in front of Tessera terminates TLS"
            )));
        }
        let limits = crate::limits::Limits::new(file.limits.unwrap_or_default())
            .map_err(|e| ConfigError(format!("invalid {}: {e}", file_src("[limits]"))))?;
        let sign_in = file.sign_in.unwrap_or_default();
        within("sign_in.session_ttl", sign_in.session_ttl, 60, 30 * 86_400)?;
        within(
            "sign_in.refresh_token_ttl",
            sign_in.refresh_token_ttl,
            60,
            366 * 86_400,
        )?;
        within(
            "sign_in.refresh_token_idle_ttl",
            sign_in.refresh_token_idle_ttl,
            60,
            sign_in.refresh_token_ttl,
        )?;
        within("sign_in.device_code_ttl", sign_in.device_code_ttl, 5, 3600)?;
        within(
            "sign_in.device_poll_interval",
            sign_in.device_poll_interval,
            1,
            60,
        )?;
        let mtls = file.mtls.map(|m| m.settings(&file_src("[mtls]"))).transpose()?;
        let outbound = match file.outbound {
            None => OutboundSettings::default(),
            Some(o) => o.settings(&file_src("[outbound]"))?,
        };
        let dpop = file.dpop.unwrap_or_default().settings(&file_src("[dpop]"))?;
        let registration = file
            .registration
            .unwrap_or_default()
            .settings(&file_src("[registration]"))?;
        let mut console = file.console.unwrap_or_default();
        console.validate().map_err(ConfigError)?;
        within("console.idle_timeout", console.idle_timeout, 60, 86_400)?;
        within("console.session_ttl", console.session_ttl, 300, 7 * 86_400)?;
        Ok(Settings {
            dpop,
            registration,
            console,
            mtls,
            outbound,
            listen,
            issuer,
            database,
            bootstrap,
            token_paths,
            signing_alg,
            master_key,
            jwks_max_age,
            max_assertion_lifetime,
            assertion_audience_token_endpoint,
            max_body_bytes,
            request_timeout,
            key_rotation_interval,
            limits,
            metrics: file.metrics.unwrap_or(true),
            sign_in,
            tls,
            plain_http,
            // One year by default; at most two (the preload list's own bound).
            hsts_max_age: within(
                "hsts_max_age",
                file.hsts_max_age.unwrap_or(31_536_000),
                0,
                63_072_000,
            )?,
            idle_timeout: Duration::from_secs(within(
                "idle_timeout",
                file.idle_timeout.unwrap_or(60),
                1,
                3600,
            )?),
            shutdown_delay: Duration::from_secs(within(
                "shutdown_delay",
                file.shutdown_delay.unwrap_or(0),
                0,
                300,
            )?),
        })
    }

    /// The path part of the issuer (`/tenant` in `https://host/tenant`), if it has one.
    pub fn issuer_path(&self) -> Option<&str> {
        let rest = self.issuer.split_once("://").map(|(_, r)| r)?;
        rest.find('/')
            .map(|i| &rest[i..])
            .filter(|p| !p.is_empty() && *p != "/")
    }

    /// The token endpoint URL as advertised in metadata.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

fn bad(what: &str, value: &str, source: &str, why: &str) -> ConfigError {
    let why = why.replace('\n', " ");
    ConfigError(format!("invalid {what} {value:?} (from {source}): {why}"))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
