//! `tessera key …`: signing keys and the master key.

use super::{fmt_time, print_json};
use crate::config::Settings;
use crate::operation::Actor;
use crate::signing;
use crate::store::Store;
use crate::views;
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(super) enum KeyCommand {
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

pub(super) async fn key_command(
    store: &Store,
    actor: &Actor,
    settings: &Settings,
    cmd: KeyCommand,
) -> anyhow::Result<ExitCode> {
    let t = crate::model::clock::unix_now();
    match cmd {
        KeyCommand::List { json } => {
            let keys = store.all_keys().await?;
            if json {
                print_json(
                    &keys
                        .iter()
                        .map(|k| views::key_json(k, t))
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
                    let j = views::key_json(k, t);
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
