//! `tessera serve`: the settings from flags, environment and file, logging, and the server
//! until a signal ends it.

use super::Cli;
use crate::config::{Overrides, Settings};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use std::process::ExitCode;

#[derive(Default, Args)]
pub(super) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TESSERA_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// Issuer identifier, the `iss` of every token [default: http://127.0.0.1:8080].
    #[arg(long, env = "TESSERA_ISSUER", value_name = "URL")]
    issuer: Option<String>,
    /// Create and print a quickstart client on an empty store [default: true].
    #[arg(long, env = "TESSERA_BOOTSTRAP", value_name = "BOOL")]
    bootstrap: Option<String>,
    /// Extra paths serving the token endpoint, comma-separated (e.g. /connect/token).
    #[arg(long, env = "TESSERA_TOKEN_ENDPOINT_ALIASES", value_name = "PATHS")]
    token_endpoint_aliases: Option<String>,
    /// Serve known vendors' token endpoints at their paths, with their behaviour,
    /// comma-separated: ist-skolid, configapi, screening-eagle, instructure, or all.
    #[arg(long, env = "TESSERA_TOKEN_ENDPOINT_PRESETS", value_name = "PRESETS")]
    token_endpoint_presets: Option<String>,
    /// Algorithm of a newly created signing key: ES256, RS256 or EdDSA [default: ES256].
    #[arg(long, env = "TESSERA_SIGNING_ALG", value_name = "ALG")]
    signing_alg: Option<String>,
    /// File holding the key that encrypts signing keys at rest [default: beside the SQLite file].
    #[arg(long, env = "TESSERA_MASTER_KEY_FILE", value_name = "FILE")]
    master_key_file: Option<String>,
    /// How often signing keys rotate, e.g. 90d or 12h; `off` to rotate by hand only [default: 90d].
    #[arg(long, env = "TESSERA_KEY_ROTATION_INTERVAL", value_name = "DURATION")]
    key_rotation_interval: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (reloaded when the file changes).
    #[arg(long, env = "TESSERA_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<String>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TESSERA_TLS_KEY", value_name = "FILE")]
    tls_key: Option<String>,
    /// Allow plain HTTP on a non-loopback address (when a proxy in front terminates TLS).
    #[arg(long, env = "TESSERA_PLAIN_HTTP", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    plain_http: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_name = "FORMAT")]
    pub(super) log_format: Option<String>,
}

pub(super) fn source(matches: &ArgMatches, id: &str, flag: &str, env: &str) -> String {
    match matches.value_source(id) {
        Some(ValueSource::EnvVariable) => env.to_string(),
        _ => flag.to_string(),
    }
}

pub(super) fn overrides(cli: &Cli, top: &ArgMatches, serve: Option<(&ServeArgs, &ArgMatches)>) -> Overrides {
    let with = |v: &Option<String>, m: &ArgMatches, id: &str, flag: &str, env: &str| {
        v.clone().map(|v| (v, source(m, id, flag, env)))
    };
    let mut o = Overrides {
        database: with(
            &cli.database,
            top,
            "database",
            "--database",
            "TESSERA_DATABASE_URL",
        ),
        ..Default::default()
    };
    // The master key is taken from the environment only: a flag would show it in the process
    // list.
    o.master_key = std::env::var("TESSERA_MASTER_KEY")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| (v, "TESSERA_MASTER_KEY".to_string()));
    if let Some((s, m)) = serve {
        o.listen = with(&s.listen, m, "listen", "--listen", "TESSERA_LISTEN");
        o.issuer = with(&s.issuer, m, "issuer", "--issuer", "TESSERA_ISSUER");
        o.bootstrap = with(&s.bootstrap, m, "bootstrap", "--bootstrap", "TESSERA_BOOTSTRAP");
        o.token_endpoint_aliases = with(
            &s.token_endpoint_aliases,
            m,
            "token_endpoint_aliases",
            "--token-endpoint-aliases",
            "TESSERA_TOKEN_ENDPOINT_ALIASES",
        );
        o.token_endpoint_presets = with(
            &s.token_endpoint_presets,
            m,
            "token_endpoint_presets",
            "--token-endpoint-presets",
            "TESSERA_TOKEN_ENDPOINT_PRESETS",
        );
        o.signing_alg = with(
            &s.signing_alg,
            m,
            "signing_alg",
            "--signing-alg",
            "TESSERA_SIGNING_ALG",
        );
        o.master_key_file = with(
            &s.master_key_file,
            m,
            "master_key_file",
            "--master-key-file",
            "TESSERA_MASTER_KEY_FILE",
        );
        o.key_rotation_interval = with(
            &s.key_rotation_interval,
            m,
            "key_rotation_interval",
            "--key-rotation-interval",
            "TESSERA_KEY_ROTATION_INTERVAL",
        );
        o.tls_cert_file = with(&s.tls_cert, m, "tls_cert", "--tls-cert", "TESSERA_TLS_CERT");
        o.tls_key_file = with(&s.tls_key, m, "tls_key", "--tls-key", "TESSERA_TLS_KEY");
        o.plain_http = with(
            &s.plain_http,
            m,
            "plain_http",
            "--plain-http",
            "TESSERA_PLAIN_HTTP",
        );
    }
    o
}

/// Starts logging to standard error, as text or JSON lines. Lines go through a bounded queue
/// to a writer thread, so a slow terminal or pipe never slows a request: when the queue is full,
/// lines are dropped and counted (`tessera_log_lines_dropped_total`). The guard flushes on drop.
pub(super) fn init_logging(default: &str, json: bool) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = std::env::var("TESSERA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(64 * 1024)
        .finish(std::io::stderr());
    let _ = crate::metrics::LOG_ERRORS.set(writer.error_counter());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    guard
}

pub(super) fn run_serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let running = crate::server::start(settings).await?;
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
