//! `tessera registration …`: initial access tokens for RFC 7591 registration, and vouching for
//! clients that registered themselves.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

use super::fmt_time;
use crate::admin::registration as ops;
use crate::operation::Actor;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum RegistrationCommand {
    /// Initial access tokens: what a client presents to register when `[registration] mode =
    /// "token"`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Vouch for a client that registered itself (or was known by its metadata document): its
    /// consent page no longer warns, a consent once given is remembered, and it is never pruned.
    Approve {
        /// Client id.
        id: String,
        /// Withdraw the approval instead.
        #[arg(long)]
        withdraw: bool,
    },
}

#[derive(Subcommand)]
pub(super) enum TokenCommand {
    /// Issue an initial access token; its value is printed once.
    Create {
        /// How long it works, e.g. `1h`, `7d` (1 minute to 90 days).
        #[arg(long, default_value = "1d")]
        expires_in: String,
        /// How many registrations it allows.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// What it is for.
        #[arg(long, default_value = "")]
        note: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List initial access tokens (never their values).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw an initial access token.
    Revoke {
        /// Its id.
        id: String,
    },
}

pub(super) async fn command(
    store: &Store,
    actor: &Actor,
    cmd: RegistrationCommand,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        RegistrationCommand::Token(TokenCommand::Create {
            expires_in,
            uses,
            note,
            json,
        }) => {
            let lifetime = humantime::parse_duration(&expires_in)
                .map_err(|e| anyhow::anyhow!("--expires-in {expires_in:?}: {e}"))?;
            let (token, value) = ops::create_initial_token(store, actor, &note, lifetime, uses).await?;
            if json {
                let mut v = crate::views::registration_token_json(&token);
                v["token"] = value.into();
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "initial access token {} (shown once; store it now):",
                    token.id
                )?;
                writeln!(out, "{value}")?;
                writeln!(
                    out,
                    "good for {} registration(s) until {}",
                    token.uses_left,
                    fmt_time(token.expires_at)
                )?;
            }
        }
        RegistrationCommand::Token(TokenCommand::List { json }) => {
            let tokens = ops::initial_tokens(store).await?;
            if json {
                let list: Vec<_> = tokens.iter().map(crate::views::registration_token_json).collect();
                writeln!(out, "{}", serde_json::Value::from(list))?;
            } else {
                writeln!(out, "{:<36}  {:<9}  {:<20}  NOTE", "ID", "USES_LEFT", "EXPIRES")?;
                for t in &tokens {
                    writeln!(
                        out,
                        "{:<36}  {:<9}  {:<20}  {}",
                        t.id,
                        t.uses_left,
                        fmt_time(t.expires_at),
                        t.note
                    )?;
                }
            }
        }
        RegistrationCommand::Token(TokenCommand::Revoke { id }) => {
            ops::revoke_initial_token(store, actor, &id).await?;
            writeln!(out, "initial access token {id} withdrawn")?;
        }
        RegistrationCommand::Approve { id, withdraw } => {
            ops::approve(store, actor, &id, !withdraw).await?;
            let what = if withdraw {
                "no longer approved"
            } else {
                "approved"
            };
            writeln!(out, "client {id} {what}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
