//! `tessera trust …`: trust policies (workload identity federation), the tokens of an external
//! issuer that authenticate as one client.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::fmt_time;
use crate::admin::trust::{self, NewTrustPolicy, TrustPolicyUpdate};
use crate::model::trust::{TrustKeys, TrustPolicy};
use crate::operation::Actor;
use crate::store::Store;

/// Where the issuer's keys are (one of them).
#[derive(Args, Default)]
#[group(multiple = false)]
pub(super) struct KeyArgs {
    /// Find them through the issuer's discovery document ({issuer}/.well-known/openid-configuration).
    #[arg(long)]
    discovery: bool,
    /// At this address (https).
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// In this file, a JWK Set (for an issuer Tessera cannot reach, such as a Kubernetes API
    /// server: `kubectl get --raw /openid/v1/jwks`). Update the policy when the issuer rotates.
    #[arg(long, value_name = "FILE")]
    jwks_file: Option<PathBuf>,
}

impl KeyArgs {
    fn keys(&self) -> anyhow::Result<Option<TrustKeys>> {
        if self.discovery {
            return Ok(Some(TrustKeys::Discovery));
        }
        if let Some(uri) = &self.jwks_uri {
            return Ok(Some(TrustKeys::JwksUri(uri.clone())));
        }
        let Some(path) = &self.jwks_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let set = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))?;
        Ok(Some(TrustKeys::Jwks(set)))
    }
}

/// `NAME=PATTERN` pairs.
fn conditions(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--claim {p:?}: write NAME=PATTERN"))
        })
        .collect()
}

#[derive(Subcommand)]
pub(super) enum TrustCommand {
    /// Trust an issuer's tokens that match conditions, as one client.
    Create {
        /// A human name.
        #[arg(long)]
        name: String,
        /// The issuer (its tokens' `iss`, exactly).
        #[arg(long, value_name = "URL")]
        issuer: String,
        #[command(flatten)]
        keys: KeyArgs,
        /// The audience its tokens must carry for Tessera.
        #[arg(long)]
        audience: String,
        /// The token's `sub`: exact, or a pattern where `*` is any run of characters.
        #[arg(long, value_name = "PATTERN")]
        subject: String,
        /// A condition on another claim, NAME=PATTERN; repeat for several.
        #[arg(long = "claim", value_name = "NAME=PATTERN")]
        claims: Vec<String>,
        /// The client its tokens authenticate as (it must use private_key_jwt).
        #[arg(long, value_name = "CLIENT_ID")]
        client: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List trust policies.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one trust policy.
    Show {
        /// Its id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a trust policy.
    Update {
        /// Its id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
        /// New audience.
        #[arg(long)]
        audience: Option<String>,
        /// New subject condition.
        #[arg(long, value_name = "PATTERN")]
        subject: Option<String>,
        /// Set a claim condition, NAME=PATTERN (NAME= removes it); repeat for several.
        #[arg(long = "claim", value_name = "NAME=PATTERN")]
        claims: Vec<String>,
        /// Another client.
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
        /// Put it in force (true) or out of force (false).
        #[arg(long, value_name = "BOOL")]
        enabled: Option<bool>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a trust policy.
    Delete {
        /// Its id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn print(p: &TrustPolicy, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", crate::views::trust_json(p))?;
        return Ok(());
    }
    writeln!(out, "id:        {}", p.id)?;
    writeln!(out, "name:      {}", p.name)?;
    writeln!(out, "enabled:   {}", p.enabled)?;
    writeln!(out, "issuer:    {}", p.issuer)?;
    let keys = match &p.keys {
        TrustKeys::Discovery => "discovery".to_string(),
        TrustKeys::JwksUri(u) => u.clone(),
        TrustKeys::Jwks(set) => format!("inline ({} keys)", set["keys"].as_array().map_or(0, Vec::len)),
    };
    writeln!(out, "keys:      {keys}")?;
    writeln!(out, "audience:  {}", p.audience)?;
    writeln!(out, "subject:   {}", p.subject)?;
    for (name, pattern) in &p.claims {
        writeln!(out, "claim:     {name} = {pattern}")?;
    }
    writeln!(out, "client:    {}", p.client_id)?;
    writeln!(out, "updated:   {}", fmt_time(p.updated_at))?;
    Ok(())
}

pub(super) async fn trust_command(
    store: &Store,
    actor: &Actor,
    cmd: TrustCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        TrustCommand::Create {
            name,
            issuer,
            keys,
            audience,
            subject,
            claims,
            client,
            json,
        } => {
            let keys = keys.keys()?.ok_or_else(|| {
                anyhow::anyhow!("say where the issuer's keys are: --discovery, --jwks-uri or --jwks-file")
            })?;
            let new = NewTrustPolicy {
                name,
                issuer,
                keys,
                audience,
                subject,
                claims: conditions(&claims)?,
                client_id: client,
            };
            print(&trust::create(store, actor, new).await?, json)?;
        }
        TrustCommand::List { json } => {
            let all = store.trust_policies().await?;
            let mut out = std::io::stdout().lock();
            if json {
                let list: Vec<_> = all.iter().map(crate::views::trust_json).collect();
                writeln!(out, "{}", serde_json::Value::from(list))?;
            } else {
                writeln!(
                    out,
                    "{:<36}  {:<8}  {:<36}  ISSUER / SUBJECT",
                    "ID", "ENABLED", "CLIENT"
                )?;
                for p in &all {
                    writeln!(
                        out,
                        "{:<36}  {:<8}  {:<36}  {} {}",
                        p.id, p.enabled, p.client_id, p.issuer, p.subject
                    )?;
                }
            }
        }
        TrustCommand::Show { id, json } => print(&trust::get(store, &id).await?, json)?,
        TrustCommand::Update {
            id,
            name,
            keys,
            audience,
            subject,
            claims,
            client,
            enabled,
            json,
        } => {
            let update = TrustPolicyUpdate {
                name,
                keys: keys.keys()?,
                audience,
                subject,
                claims: (!claims.is_empty()).then(|| conditions(&claims)).transpose()?,
                client_id: client,
                enabled,
            };
            print(&trust::update(store, actor, &id, update).await?, json)?;
        }
        TrustCommand::Delete { id, json } => {
            trust::delete(store, actor, &id).await?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::json!({"id": id, "deleted": true}))?;
            } else {
                writeln!(out, "deleted trust policy {id}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
