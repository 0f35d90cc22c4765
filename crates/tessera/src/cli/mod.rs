//! The `tessera` command line: `serve`, and the admin commands that work on the same store.

mod audit;
mod certificates;
mod client;
mod exchange;
mod key;
mod login;
mod registration;
mod serve;
mod token;
mod transfer;
mod trust;
mod users;

use crate::model::clock::rfc3339 as fmt_time;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Settings;
use crate::operation::Actor;
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
    serve: serve::ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
enum Command {
    /// Run the server (the default when no command is given).
    Serve(serve::ServeArgs),
    /// Manage clients.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage users (people who sign in with OpenID Connect).
    #[command(subcommand)]
    User(users::UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Manage trust policies: tokens of an external issuer (Kubernetes, GitHub Actions, SPIFFE)
    /// that authenticate as a client, instead of a secret.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Clients that register themselves: initial access tokens, and vouching for a client.
    #[command(subcommand)]
    Registration(registration::RegistrationCommand),
    /// Read the audit trail of administrative changes.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Fetch a token from any RFC 6749 server (client credentials), or decode and verify one.
    Token(token::TokenCommand),
    /// Sign a person in from a terminal: `--device` shows a code to enter on another device
    /// (RFC 8628), then prints the token.
    Login(login::LoginArgs),
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
    let over = serve::overrides(&cli, &matches, serve.map(|s| (s, &sub_matches)));
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
            let _guard = serve::init_logging("info", json);
            serve::run_serve(settings)
        }
        Some(Command::Token(cmd)) => {
            let _guard = serve::init_logging("warn", json);
            token::run_token(cmd)
        }
        Some(Command::Login(args)) => {
            let _guard = serve::init_logging("warn", json);
            login::run_login(args)
        }
        Some(cmd) => {
            let _guard = serve::init_logging("warn", json);
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
            Command::Export { output } => transfer::export_command(&store, &output).await,
            Command::Import { input } => transfer::import_command(&store, &settings, &input).await,
            Command::Client(c) => client::client_command(&store, &actor, c).await,
            Command::Key(k) => key::key_command(&store, &actor, &settings, k).await,
            Command::User(u) => users::command(&store, &actor, u).await,
            Command::Audit(a) => audit::audit_command(&store, a).await,
            Command::Trust(t) => trust::trust_command(&store, &actor, t).await,
            Command::Registration(r) => registration::command(&store, &actor, r).await,
            Command::Token(_) | Command::Login(_) => Ok(ExitCode::SUCCESS),
            Command::Serve(_) => Ok(ExitCode::SUCCESS),
        };
        store.close().await;
        result
    })
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    writeln!(std::io::stdout().lock(), "{value}")?;
    Ok(())
}
