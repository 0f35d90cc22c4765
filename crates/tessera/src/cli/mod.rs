//! The `tessera` command line: `serve`, and the admin commands that work on the same store.

mod users;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::admin::{self, ClientUpdate, NewClient};
use crate::config::{Overrides, Settings};
use crate::model::ClientRecord;
use crate::operation::Actor;
use crate::signing;
use crate::store::Store;

/// Tessera: an OAuth 2.0 authorization server for machine-to-machine access tokens.
/// No `Debug`: arguments may hold a secret or a database password.
#[derive(Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// Settings file (TOML).
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Store URL: sqlite:PATH (default sqlite:./tessera-data/tessera.db) or postgres://...
    #[arg(
        long,
        global = true,
        env = "TESSERA_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// `serve` options, also accepted without the `serve` command.
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users (people who sign in with OpenID Connect).
    #[command(subcommand)]
    User(users::UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Read the audit trail of administrative changes.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Fetch a token from any RFC 6749 server (client credentials), or decode and verify one.
    Token(TokenCommand),
    /// Create the store, or bring its schema up to date (every start does this too).
    Migrate,
    /// Write everything the store holds (clients with hashed secrets, sealed keys, revocations,
    /// the audit trail) to a file, to move it to another store with `import`.
    Export {
        /// Where to write (a new file, mode 0600), or `-` for standard output.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
    },
    /// Load an export into an empty store (the target nodes need the same master key).
    Import {
        /// The export file, or `-` for standard input.
        #[arg(value_name = "FILE")]
        input: PathBuf,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct TokenCommand {
    #[command(subcommand)]
    decode: Option<TokenSub>,
    #[command(flatten)]
    fetch: FetchArgs,
}

#[derive(Subcommand)]
enum TokenSub {
    /// Print a token's header and claims; with --verify, check it against its issuer's keys.
    Decode {
        /// The token (or `-` to read it from standard input).
        token: String,
        /// Check the signature against the issuer's JWKS, and typ, iss, aud, exp.
        #[arg(long)]
        verify: bool,
        /// The issuer to verify against (required with --verify: never taken from the token).
        #[arg(long)]
        issuer: Option<String>,
        /// The audience to require [default: the token's first aud].
        #[arg(long)]
        audience: Option<String>,
    },
}

#[derive(Args, Default)]
struct FetchArgs {
    /// The issuer (its token endpoint is discovered).
    #[arg(long, conflicts_with = "token_url")]
    issuer: Option<String>,
    /// The token endpoint URL.
    #[arg(long)]
    token_url: Option<String>,
    /// The client id.
    #[arg(long)]
    client_id: Option<String>,
    /// The client secret (better: TESSERA_CLIENT_SECRET, which stays out of the process list).
    #[arg(
        long,
        env = "TESSERA_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    client_secret: Option<String>,
    /// Scopes to ask for, space-separated.
    #[arg(long)]
    scope: Option<String>,
    /// Resource (audience) to ask for.
    #[arg(long)]
    resource: Option<String>,
    /// Client authentication: basic or post [default: basic, or what the issuer supports].
    #[arg(long)]
    auth: Option<String>,
    /// Print the whole token response as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// List signing keys and their state (pending, active, retiring, retired).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a new signing key: published now, signing after one JWKS cache lifetime; the old
    /// key retires once every token it signed has expired.
    Rotate {
        /// Algorithm of the new key: ES256, RS256 or EdDSA [default: the configured one].
        #[arg(long, conflicts_with = "id_token")]
        alg: Option<String>,
        /// Rotate the key that signs ID tokens (RS256) instead of the access-token key.
        #[arg(long)]
        id_token: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Seal every signing key under a new master key, without downtime: first give every node
    /// both keys (the new one on the second line of its key file, or after a comma in
    /// TESSERA_MASTER_KEY), then run this, then drop the old key from the nodes at leisure.
    RotateMaster {
        /// The new master key file (32 random bytes, base64; e.g.
        /// `head -c 32 /dev/urandom | base64 > new.key`).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// List audit events, oldest first.
    List {
        /// Only events since this long ago (e.g. 24h) or since this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Show at most this many events, the newest.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Default, Args)]
struct ServeArgs {
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
    log_format: Option<String>,
}

/// How a client may get tokens (create and update).
#[derive(Args, Default)]
struct FlowArgs {
    /// A grant type it may use: client_credentials, authorization_code or refresh_token;
    /// repeat for several (on update, replaces the old ones).
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// A redirect URI, matched exactly (any port on http://127.0.0.1 or http://[::1]); repeat
    /// for several (on update, replaces the old ones).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// A first-party app: its users are not asked for consent.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    first_party: Option<bool>,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client and print its id and secret (the secret is shown this once).
    Create {
        /// A human name.
        #[arg(long)]
        name: String,
        /// Allowed scopes, space-separated.
        #[arg(long, default_value = "")]
        scope: String,
        /// Allowed audience (absolute URI); repeat for several; the first is the default.
        #[arg(long = "audience", value_name = "URI")]
        audiences: Vec<String>,
        /// Token lifetime in seconds [default: 3600].
        #[arg(long, value_name = "SECONDS")]
        token_ttl: Option<u32>,
        /// Import an existing secret instead of generating one (stored with Argon2id).
        #[arg(long, conflicts_with = "secret_stdin", allow_hyphen_values = true)]
        secret: Option<String>,
        /// Read the secret to import from the first line of standard input.
        #[arg(long)]
        secret_stdin: bool,
        /// Add the `tessera:admin` scope, for calling the admin API.
        #[arg(long)]
        admin: bool,
        /// Allow this client (a resource server) to introspect other clients' tokens.
        #[arg(long)]
        introspect: bool,
        /// A public client (a single-page or native app): no secret; it signs people in with
        /// the authorization code flow and PKCE.
        #[arg(long)]
        public: bool,
        #[command(flatten)]
        flows: FlowArgs,
        /// A claim put in every token it gets; repeat for several. The value is JSON if it
        /// parses as JSON (42, true, {"a":1}, "quoted"), else a string. Scopes may use it as
        /// {NAME}, e.g. --scope "principal:{principal}".
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one client (never its secret).
    Show {
        /// Client id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a client's name, scopes, audiences or token lifetime.
    Update {
        /// Client id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New scopes, space-separated (replaces the old ones).
        #[arg(long)]
        scope: Option<String>,
        /// New audiences (replace the old ones); repeat for several.
        #[arg(long = "audience", value_name = "URI")]
        audiences: Vec<String>,
        /// Remove every audience.
        #[arg(long, conflicts_with = "audiences")]
        clear_audiences: bool,
        /// Allow (true) or forbid (false) introspecting other clients' tokens.
        #[arg(long, value_name = "BOOL")]
        introspect: Option<bool>,
        /// New token lifetime in seconds.
        #[arg(long, value_name = "SECONDS")]
        token_ttl: Option<u32>,
        /// Set a claim (as in `create`); repeat for several.
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
        /// Remove a claim; repeat for several.
        #[arg(long = "remove-claim", value_name = "NAME")]
        remove_claims: Vec<String>,
        /// Remove every claim (before any --claim).
        #[arg(long)]
        clear_claims: bool,
        #[command(flatten)]
        flows: FlowArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a client from getting tokens.
    Disable {
        /// Client id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled client get tokens again.
    Enable {
        /// Client id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give a client a new secret; the old one keeps working for the grace period.
    RotateSecret {
        /// Client id.
        id: String,
        /// How long the previous secret keeps working, e.g. 24h, 30m, 0s.
        #[arg(long, default_value = "24h")]
        grace: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every token the client holds now.
    RevokeTokens {
        /// Client id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and its secrets.
    Delete {
        /// Client id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn source(matches: &ArgMatches, id: &str, flag: &str, env: &str) -> String {
    match matches.value_source(id) {
        Some(ValueSource::EnvVariable) => env.to_string(),
        _ => flag.to_string(),
    }
}

fn overrides(cli: &Cli, top: &ArgMatches, serve: Option<(&ServeArgs, &ArgMatches)>) -> Overrides {
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
fn init_logging(default: &str, json: bool) -> tracing_appender::non_blocking::WorkerGuard {
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

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let (serve, sub_matches) = match (&cli.command, matches.subcommand()) {
        (Some(Command::Serve(s)), Some((_, m))) => (Some(s), m.clone()),
        (None, _) => (Some(&cli.serve), matches.clone()),
        // Admin commands read the same settings (master key file, signing algorithm) from the
        // top-level options and the environment.
        _ => (Some(&cli.serve), matches.clone()),
    };
    let over = overrides(&cli, &matches, serve.map(|s| (s, &sub_matches)));
    let settings = match Settings::load(cli.config.as_deref(), &over) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tessera: {e}");
            return ExitCode::from(2);
        }
    };
    let json = match serve.and_then(|s| s.log_format.as_deref()) {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            eprintln!(
                "tessera: invalid log format {other:?} (from --log-format or TESSERA_LOG_FORMAT): expected text or json"
            );
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        None | Some(Command::Serve(_)) => {
            let _guard = init_logging("info", json);
            run_serve(settings)
        }
        Some(Command::Token(cmd)) => {
            let _guard = init_logging("warn", json);
            run_token(cmd)
        }
        Some(cmd) => {
            let _guard = init_logging("warn", json);
            run_admin(settings, cmd)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let running = crate::server::start(settings).await?;
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() {
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

fn fmt_time(t: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64))
        .to_string()
}

fn print_client(c: &ClientRecord, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "client_id:  {}", c.id)?;
    writeln!(out, "name:       {}", c.name)?;
    writeln!(out, "enabled:    {}", c.enabled)?;
    writeln!(out, "scope:      {}", c.scopes.join(" "))?;
    writeln!(
        out,
        "audiences:  {}",
        if c.audiences.is_empty() {
            "(issuer)".to_string()
        } else {
            c.audiences.join(" ")
        }
    )?;
    writeln!(out, "token_ttl:  {}s", c.token_ttl)?;
    let kind = if c.flows.public { "public" } else { "confidential" };
    writeln!(
        out,
        "type:       {kind}{}",
        if c.flows.first_party { ", first party" } else { "" }
    )?;
    writeln!(out, "grants:     {}", c.flows.grant_types.join(" "))?;
    for uri in &c.flows.redirect_uris {
        writeln!(out, "redirect:   {uri}")?;
    }
    for (name, value) in &c.claims {
        writeln!(out, "claim:      {name} = {value}")?;
    }
    writeln!(out, "created_at: {}", fmt_time(c.created_at))?;
    writeln!(out, "updated_at: {}", fmt_time(c.updated_at))?;
    for s in &c.secrets {
        let kind = match s.kind {
            crate::model::SecretKind::Sha256 => "generated",
            crate::model::SecretKind::Argon2id => "imported",
        };
        let expiry = s
            .expires_at
            .map(|e| format!(", expires {}", fmt_time(e)))
            .unwrap_or_default();
        writeln!(
            out,
            "secret:     {} ({kind}, created {}{expiry})",
            s.id,
            fmt_time(s.created_at)
        )?;
    }
    Ok(())
}

fn emit_client(c: &ClientRecord, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", admin::client_json(c))?;
    } else {
        print_client(c, &mut out)?;
    }
    Ok(())
}

fn run_admin(settings: Settings, cmd: Command) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let create = matches!(cmd, Command::Migrate | Command::Import { .. });
        let store = Store::open(&settings.database, create).await?;
        let actor = Actor::cli();
        let result = match cmd {
            Command::Migrate => {
                println!(
                    "{} store at schema version {}",
                    store.engine_name(),
                    store.schema_version().await?
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Export { output } => export_command(&store, &output).await,
            Command::Import { input } => import_command(&store, &settings, &input).await,
            Command::Client(c) => client_command(&store, &actor, c).await,
            Command::Key(k) => key_command(&store, &actor, &settings, k).await,
            Command::User(u) => users::command(&store, &actor, u).await,
            Command::Audit(a) => audit_command(&store, a).await,
            Command::Token(_) => Ok(ExitCode::SUCCESS),
            Command::Serve(_) => Ok(ExitCode::SUCCESS),
        };
        store.close().await;
        result
    })
}

async fn export_command(store: &Store, output: &std::path::Path) -> anyhow::Result<ExitCode> {
    use crate::transfer;
    let count = if output.as_os_str() == "-" {
        transfer::export(store, &mut std::io::BufWriter::new(std::io::stdout().lock())).await?
    } else {
        // The file holds secret hashes and sealed keys: private from the start.
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(output)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", output.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let written = match transfer::export(store, &mut out).await {
            Ok(count) => out
                .into_inner()
                .map_err(|e| anyhow::anyhow!("{e}"))
                .and_then(|f| Ok(f.sync_all()?))
                .map(|()| count),
            Err(e) => Err(e),
        };
        // A partial export is worse than none: it would import as a smaller store.
        written.inspect_err(|_| {
            let _ = std::fs::remove_file(output);
        })?
    };
    eprintln!("exported {count} records");
    Ok(ExitCode::SUCCESS)
}

async fn import_command(
    store: &Store,
    settings: &Settings,
    input: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use crate::transfer;
    let records = if input.as_os_str() == "-" {
        transfer::read(std::io::stdin().lock())?
    } else {
        let file = std::fs::File::open(input)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", input.display()))?;
        transfer::read(std::io::BufReader::new(file))?
    };
    // The nodes of the target store must open its keys: check this node's master key now,
    // before anything is written, rather than at their start.
    let source = match &settings.master_key {
        crate::keys::MasterKeySource::File { path, .. } => crate::keys::MasterKeySource::File {
            path: path.clone(),
            create: false,
        },
        other => other.clone(),
    };
    let master = signing::master_key(&source, store).await?;
    for r in &records {
        if let crate::store::Record::Key(k) = r {
            if master.open(&k.kid, &k.sealed_private_key).is_err() {
                anyhow::bail!(
                    "the master key ({:?}) cannot open signing key {} in the export: give import \
                     the master key of the old store (--master-key-file or TESSERA_MASTER_KEY)",
                    settings.master_key,
                    k.kid
                );
            }
        }
    }
    store.import(&records).await?;
    eprintln!("imported {} records", records.len());
    Ok(ExitCode::SUCCESS)
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    writeln!(std::io::stdout().lock(), "{value}")?;
    Ok(())
}

async fn key_command(
    store: &Store,
    actor: &Actor,
    settings: &Settings,
    cmd: KeyCommand,
) -> anyhow::Result<ExitCode> {
    let t = crate::store::now();
    match cmd {
        KeyCommand::List { json } => {
            let keys = store.all_keys().await?;
            if json {
                print_json(
                    &keys
                        .iter()
                        .map(|k| signing::key_json(k, t))
                        .collect::<Vec<_>>()
                        .into(),
                )?;
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{:<43}  {:<6}  {:<8}  {:<20}  RETIRES",
                    "KID", "ALG", "STATE", "ACTIVATES"
                )?;
                for k in &keys {
                    let j = signing::key_json(k, t);
                    let retires = k.retired_at.map(fmt_time).unwrap_or_else(|| "-".into());
                    writeln!(
                        out,
                        "{:<43}  {:<6}  {:<8}  {:<20}  {retires}",
                        k.kid,
                        k.alg,
                        j["state"].as_str().unwrap_or_default(),
                        fmt_time(k.activates_at)
                    )?;
                }
            }
        }
        KeyCommand::RotateMaster { to } => {
            let master = signing::master_key(&settings.master_key, store).await?;
            let new = crate::keys::MasterKey::load(&to)?;
            let id = new.ids().first().map(|s| s.to_string()).unwrap_or_default();
            // The nodes must be able to open what is sealed under the new key before anything is
            // sealed under it: a configuration that lacks it would stop every node at its next
            // start. This configuration is what they were given.
            if !master.ids().contains(&id.as_str()) {
                anyhow::bail!(
                    "master key {id} ({}) is not among the keys this configuration opens ({:?}): add it \
                     to every node first (a second line of the key file, or after a comma in \
                     TESSERA_MASTER_KEY), then run rotate-master again; nothing was changed",
                    to.display(),
                    settings.master_key
                );
            }
            let n = signing::rotate_master(store, &master, &new, actor).await?;
            println!(
                "{n} signing keys are now sealed under master key {id} ({}); nodes that were not given it turn \
                 unready until they are",
                to.display()
            );
        }
        KeyCommand::Rotate { alg, id_token, json } => {
            let (alg, purpose) = match alg {
                _ if id_token => (signing::ID_TOKEN_ALG, crate::model::KeyPurpose::IdToken),
                Some(a) => (
                    a.parse()
                        .map_err(|e: String| anyhow::anyhow!("invalid --alg {a:?}: {e}"))?,
                    crate::model::KeyPurpose::Access,
                ),
                None => (settings.signing_alg, crate::model::KeyPurpose::Access),
            };
            let master = signing::master_key(&settings.master_key, store).await?;
            let r = signing::rotate(store, &master, actor, alg, purpose, settings.jwks_max_age, None)
                .await?
                .ok_or_else(|| anyhow::anyhow!("rotation did not happen"))?;
            if json {
                print_json(&serde_json::json!({
                    "kid": r.kid, "alg": r.alg.as_str(), "activates_at": r.activates_at,
                    "previous_retire_at": r.previous_retire_at,
                }))?;
            } else {
                println!(
                    "new key {} ({}) is published now and signs from {}; the previous key retires at {}",
                    r.kid,
                    r.alg.as_str(),
                    fmt_time(r.activates_at),
                    fmt_time(r.previous_retire_at)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_since(since: &str) -> anyhow::Result<i64> {
    if let Ok(d) = humantime::parse_duration(since) {
        return Ok(crate::store::now() - d.as_secs() as i64);
    }
    let t = humantime::parse_rfc3339_weak(since).map_err(|_| {
        anyhow::anyhow!("--since {since:?}: expected a duration (24h) or a time (2026-01-31T12:00:00Z)")
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0))
}

async fn audit_command(store: &Store, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::List { since, limit, json } = cmd;
    let since = since.as_deref().map(parse_since).transpose()?.unwrap_or(0);
    // Page through everything since then and keep the newest `limit` events.
    let mut events = std::collections::VecDeque::new();
    let mut after = 0;
    loop {
        let page = store.audit_events(since, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        events.extend(page);
        while events.len() > limit as usize {
            events.pop_front();
        }
    }
    if json {
        print_json(&events.iter().map(admin::audit_json).collect::<Vec<_>>().into())?;
    } else {
        let mut out = std::io::stdout().lock();
        for e in &events {
            writeln!(
                out,
                "{}  {:<22}  {:<20}  {:<24}  {}  {}",
                fmt_time(e.at),
                e.entry.action,
                e.entry.actor,
                e.entry.source,
                e.entry.target,
                e.entry.details
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn client_command(store: &Store, actor: &Actor, cmd: ClientCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ClientCommand::Create {
            name,
            scope,
            audiences,
            token_ttl,
            secret,
            secret_stdin,
            admin,
            introspect,
            public,
            flows,
            claims,
            json,
        } => {
            let claims = crate::claims::parse_pairs(&claims).map_err(|e| anyhow::anyhow!(e))?;
            let secret = if secret_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                secret
            };
            if secret
                .as_deref()
                .is_some_and(|s| s.contains(['%', '+']) || !s.is_ascii())
            {
                eprintln!(
                    "tessera: note: this secret holds '%', '+' or non-ASCII characters; clients must \
                     form-urlencode it inside Basic credentials (RFC 6749 §2.3.1), which some \
                     libraries skip: client_secret_post avoids the question"
                );
            }
            let created = admin::create_client(
                store,
                actor,
                NewClient {
                    name,
                    scope,
                    audiences,
                    token_ttl,
                    secret,
                    admin,
                    introspect,
                    claims,
                    public,
                    grant_types: (!flows.grant_types.is_empty()).then_some(flows.grant_types),
                    redirect_uris: flows.redirect_uris,
                    first_party: flows.first_party.unwrap_or(false),
                },
            )
            .await?;
            let mut out = std::io::stdout().lock();
            let secret = (!created.client.flows.public).then_some(&created.secret);
            if json {
                let body = serde_json::json!({"client_id": created.client.id, "client_secret": secret});
                writeln!(out, "{body}")?;
            } else {
                writeln!(out, "client_id:     {}", created.client.id)?;
                match secret {
                    Some(secret) => {
                        writeln!(out, "client_secret: {secret}")?;
                        writeln!(out, "Store the secret now: Tessera keeps only a hash of it.")?;
                    }
                    None => writeln!(out, "A public client: no secret (it uses PKCE).")?,
                }
            }
        }
        ClientCommand::List { json } => {
            let clients = store.clients().await?;
            let mut out = std::io::stdout().lock();
            if json {
                let list: Vec<_> = clients.iter().map(admin::client_json).collect();
                writeln!(out, "{}", serde_json::Value::from(list))?;
            } else {
                writeln!(
                    out,
                    "{:<36}  {:<8}  {:<24}  SCOPE",
                    "CLIENT_ID", "ENABLED", "NAME"
                )?;
                for c in &clients {
                    writeln!(
                        out,
                        "{:<36}  {:<8}  {:<24}  {}",
                        c.id,
                        c.enabled,
                        c.name,
                        c.scopes.join(" ")
                    )?;
                }
            }
        }
        ClientCommand::Show { id, json } => emit_client(&admin::get_client(store, &id).await?, json)?,
        ClientCommand::Update {
            id,
            name,
            scope,
            audiences,
            clear_audiences,
            token_ttl,
            introspect,
            claims,
            remove_claims,
            clear_claims,
            flows,
            json,
        } => {
            let mut claims = crate::claims::parse_pairs(&claims).map_err(|e| anyhow::anyhow!(e))?;
            for name in remove_claims {
                claims.insert(name, serde_json::Value::Null);
            }
            let audiences = if clear_audiences {
                Some(Vec::new())
            } else {
                (!audiences.is_empty()).then_some(audiences)
            };
            let update = ClientUpdate {
                name,
                scope,
                audiences,
                token_ttl,
                enabled: None,
                introspect,
                claims: (!claims.is_empty()).then_some(claims),
                clear_claims,
                grant_types: (!flows.grant_types.is_empty()).then_some(flows.grant_types),
                redirect_uris: (!flows.redirect_uris.is_empty()).then_some(flows.redirect_uris),
                first_party: flows.first_party,
            };
            emit_client(&admin::update_client(store, actor, &id, update).await?, json)?
        }
        ClientCommand::Disable { id, json } => set_enabled(store, actor, &id, false, json).await?,
        ClientCommand::Enable { id, json } => set_enabled(store, actor, &id, true, json).await?,
        ClientCommand::RotateSecret { id, grace, json } => {
            let grace = humantime::parse_duration(&grace)
                .map_err(|e| anyhow::anyhow!("invalid --grace {grace:?}: {e}"))?;
            let rotated = admin::rotate_secret(store, actor, &id, grace).await?;
            let expire = crate::store::now() + grace.as_secs() as i64;
            if json {
                print_json(&serde_json::json!({
                    "client_id": rotated.client.id, "client_secret": rotated.secret,
                    "previous_secrets_expire_at": expire,
                }))?;
            } else {
                println!("client_id:     {}", rotated.client.id);
                println!("client_secret: {}", rotated.secret);
                println!(
                    "The previous secret works until {}. Store the new one now: Tessera keeps only a hash of it.",
                    fmt_time(expire)
                );
            }
        }
        ClientCommand::RevokeTokens { id, json } => {
            let c = admin::revoke_tokens(store, actor, &id).await?;
            if json {
                print_json(
                    &serde_json::json!({"client_id": c.id, "tokens_revoked_before": c.tokens_revoked_before}),
                )?;
            } else {
                println!(
                    "revoked every token of client {} issued until {}",
                    c.id,
                    fmt_time(c.tokens_revoked_before)
                );
            }
        }
        ClientCommand::Delete { id, json } => {
            admin::delete_client(store, actor, &id).await?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::json!({"client_id": id, "deleted": true}))?;
            } else {
                writeln!(out, "deleted client {id}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_enabled(
    store: &Store,
    actor: &Actor,
    id: &str,
    enabled: bool,
    json: bool,
) -> anyhow::Result<()> {
    let update = ClientUpdate {
        enabled: Some(enabled),
        ..Default::default()
    };
    emit_client(&admin::update_client(store, actor, id, update).await?, json)
}

fn run_token(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cmd.decode {
            Some(TokenSub::Decode {
                token,
                verify,
                issuer,
                audience,
            }) => decode_token(token, verify, issuer, audience).await,
            None => fetch_token(cmd.fetch).await,
        }
    })
}

async fn fetch_token(a: FetchArgs) -> anyhow::Result<ExitCode> {
    let id = a
        .client_id
        .ok_or_else(|| anyhow::anyhow!("--client-id is required"))?;
    let secret = a
        .client_secret
        .ok_or_else(|| anyhow::anyhow!("--client-secret or TESSERA_CLIENT_SECRET is required"))?;
    let mut builder =
        tessera_client::TokenClient::builder(id, secret).retries(2, std::time::Duration::from_millis(200));
    builder = match (a.issuer, a.token_url) {
        (Some(i), _) => builder.issuer(i),
        (None, Some(u)) => builder.token_url(u),
        (None, None) => anyhow::bail!("--issuer or --token-url is required"),
    };
    if let Some(m) = a.auth {
        builder = builder.auth_method(match m.as_str() {
            "basic" => tessera_client::AuthMethod::Basic,
            "post" => tessera_client::AuthMethod::Post,
            other => anyhow::bail!("--auth {other:?}: expected basic or post"),
        });
    }
    let client = builder.build().await?;
    let response = client.request(a.scope.as_deref(), a.resource.as_deref()).await?;
    if a.json {
        print_json(&serde_json::to_value(&response)?)?;
    } else {
        println!("{}", response.access_token);
    }
    Ok(ExitCode::SUCCESS)
}

async fn decode_token(
    token: String,
    verify: bool,
    issuer: Option<String>,
    audience: Option<String>,
) -> anyhow::Result<ExitCode> {
    use base64::Engine;
    let token = if token == "-" {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim().to_string()
    } else {
        token
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, _] = parts.as_slice() else {
        anyhow::bail!("not a JWT: expected three dot-separated parts")
    };
    let decode = |s: &str| -> anyhow::Result<serde_json::Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| anyhow::anyhow!("not a JWT: bad base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| anyhow::anyhow!("not a JWT: not JSON"))
    };
    let (header, claims) = (decode(h)?, decode(p)?);
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"header": header, "claims": claims}))?
    );
    if !verify {
        return Ok(ExitCode::SUCCESS);
    }
    // The issuer to trust comes from the caller, never from the token: a forged token could
    // name an issuer its forger runs.
    let issuer = issuer.ok_or_else(|| anyhow::anyhow!("--verify needs --issuer (the issuer you trust)"))?;
    let audience = audience
        .or_else(|| match &claims["aud"] {
            serde_json::Value::String(a) => Some(a.clone()),
            serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no --audience and no aud claim"))?;
    let verifier = tessera_verify::Verifier::builder(&issuer)
        .audience(&audience)
        .leeway(std::time::Duration::ZERO)
        .build()
        .await?;
    match verifier.verify(&token).await {
        Ok(_) => {
            eprintln!("valid: signed by {issuer}, for {audience}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("invalid: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
