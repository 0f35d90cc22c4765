//! `tessera client …`: register, change, rotate and remove clients.

use super::certificates::{CertificateArgs, TlsArgs};
use super::{fmt_time, print_json};
use crate::admin::{self, ClientUpdate, NewClient};
use crate::model::ClientRecord;
use crate::model::auth::TokenAuth;
use crate::operation::Actor;
use crate::store::Store;
use crate::views;
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};
use std::process::ExitCode;

/// How a client may get tokens (create and update).
#[derive(Args, Default)]
pub(super) struct FlowArgs {
    /// A grant type it may use: client_credentials, authorization_code, refresh_token,
    /// urn:ietf:params:oauth:grant-type:device_code (device sign-in) or another of the list;
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
    /// How it authenticates: client_secret_basic (a secret, also accepted in the form) or
    /// private_key_jwt (an assertion signed with its key: give --jwks-file or --jwks-uri).
    #[arg(long, value_name = "METHOD")]
    auth_method: Option<String>,
    /// A file holding its public keys (a JWK Set, or one JWK); replaces a --jwks-uri.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["jwks_uri", "public_key_file"])]
    jwks_file: Option<std::path::PathBuf>,
    /// Its public key as PEM (`openssl pkey -in client.pem -pubout`), made a JWK Set of one.
    #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
    public_key_file: Option<std::path::PathBuf>,
    /// The key id of --public-key-file [default: the key's RFC 7638 thumbprint].
    #[arg(long, value_name = "KID", requires = "public_key_file")]
    kid: Option<String>,
    /// Where it publishes its public keys (https); replaces inline keys.
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    certificates: CertificateArgs,
    #[command(flatten)]
    exchange: super::exchange::ExchangeArgs,
}

impl FlowArgs {
    fn auth(&self) -> anyhow::Result<Option<TokenAuth>> {
        self.auth_method
            .as_deref()
            .map(TokenAuth::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// The key set in `--jwks-file` (a JWK Set, or a single JWK made into one), or made of the
    /// PEM in `--public-key-file`.
    fn jwks(&self) -> anyhow::Result<Option<serde_json::Value>> {
        if let Some(path) = &self.public_key_file {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let jwk = crate::model::auth::jwk_from_public_pem(&pem, self.kid.as_deref())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            return Ok(Some(serde_json::json!({ "keys": [jwk] })));
        }
        let Some(path) = &self.jwks_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))?;
        Ok(Some(if value.get("kty").is_some() {
            serde_json::json!({ "keys": [value] })
        } else {
            value
        }))
    }
}

#[derive(Subcommand)]
pub(super) enum ClientCommand {
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
        /// On a move from a secret to --auth-method private_key_jwt: how long its secrets keep
        /// working (e.g. 1h), so its deployments can switch to the key without downtime
        /// [default: 0, they stop at once; at most 30d].
        #[arg(long, value_name = "DURATION")]
        secret_grace: Option<String>,
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

pub(super) fn print_client(c: &ClientRecord, out: &mut impl Write) -> std::io::Result<()> {
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
    if c.flows.auth == TokenAuth::PrivateKeyJwt {
        writeln!(out, "auth:       private_key_jwt")?;
    }
    for jwk in c
        .flows
        .jwks
        .iter()
        .flat_map(|j| j["keys"].as_array().into_iter().flatten())
    {
        let (kid, kty) = (
            jwk["kid"].as_str().unwrap_or("?"),
            jwk["kty"].as_str().unwrap_or("?"),
        );
        writeln!(out, "key:        {kid} ({kty})")?;
    }
    if let Some(uri) = &c.flows.jwks_uri {
        writeln!(out, "jwks_uri:   {uri}")?;
    }
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

pub(super) fn emit_client(c: &ClientRecord, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", views::client_json(c))?;
    } else {
        print_client(c, &mut out)?;
    }
    Ok(())
}

pub(super) async fn client_command(
    store: &Store,
    actor: &Actor,
    cmd: ClientCommand,
) -> anyhow::Result<ExitCode> {
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
            let (auth, jwks) = (flows.auth()?.unwrap_or_default(), flows.jwks()?);
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
                    auth,
                    jwks,
                    jwks_uri: flows.jwks_uri.clone(),
                    tls_client_auth: flows.tls.subject(),
                    tls_client_certificates: flows.certificates.thumbprints()?,
                    certificate_bound_tokens: flows.certificates.certificate_bound_tokens.unwrap_or(false),
                    dpop_bound_tokens: flows.certificates.dpop_bound_tokens.unwrap_or(false),
                    token_exchange: flows.exchange.policy(),
                    redirect_uris: flows.redirect_uris,
                    first_party: flows.first_party.unwrap_or(false),
                },
            )
            .await?;
            let mut out = std::io::stdout().lock();
            let secret = (!created.secret.is_empty()).then_some(&created.secret);
            if json {
                // The same document as the admin API's `POST /admin/v1/clients`.
                writeln!(out, "{}", views::json(views::CreatedClientView::from(&created)))?;
            } else {
                writeln!(out, "client_id:     {}", created.client.id)?;
                match secret {
                    Some(secret) => {
                        writeln!(out, "client_secret: {secret}")?;
                        writeln!(out, "Store the secret now: Tessera keeps only a hash of it.")?;
                    }
                    None if created.client.flows.public => {
                        writeln!(out, "A public client: no secret (it uses PKCE).")?
                    }
                    None if created.client.flows.jwks.is_some()
                        || created.client.flows.jwks_uri.is_some() =>
                    {
                        writeln!(
                            out,
                            "No secret: the client signs its assertions (private_key_jwt) with its key."
                        )?
                    }
                    None => writeln!(
                        out,
                        "No secret and no keys: its workloads present platform tokens that a trust policy \
                         admits (tessera trust create … --client {}), or give it keys (client update \
                         --public-key-file, --jwks-file or --jwks-uri).",
                        created.client.id
                    )?,
                }
            }
        }
        ClientCommand::List { json } => {
            let clients = store.clients().await?;
            let mut out = std::io::stdout().lock();
            if json {
                let list: Vec<_> = clients
                    .iter()
                    .map(|c| views::json(views::ClientView::from(c)))
                    .collect();
                writeln!(out, "{}", serde_json::Value::from(list))?;
            } else {
                writeln!(
                    out,
                    "{:<36}  {:<8}  {:<17}  {:<24}  SCOPE",
                    "CLIENT_ID", "ENABLED", "ORIGIN", "NAME"
                )?;
                for c in &clients {
                    writeln!(
                        out,
                        "{:<36}  {:<8}  {:<17}  {:<24}  {}",
                        c.id,
                        c.enabled,
                        c.registration.as_ref().map_or("operator", |r| r.origin.as_str()),
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
            secret_grace,
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
            let (auth, jwks) = (flows.auth()?, flows.jwks()?);
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
                auth,
                secret_grace: secret_grace
                    .as_deref()
                    .map(humantime::parse_duration)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("invalid --secret-grace: {e}"))?,
                jwks: jwks.map(Some),
                jwks_uri: flows.jwks_uri.clone().map(Some),
                tls_client_auth: flows.tls.subject().map(Some),
                tls_client_certificates: (!flows.certificates.certificate_files.is_empty())
                    .then(|| flows.certificates.thumbprints())
                    .transpose()?,
                certificate_bound_tokens: flows.certificates.certificate_bound_tokens,
                dpop_bound_tokens: flows.certificates.dpop_bound_tokens,
                token_exchange: flows.exchange.policy().map(Some),
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
            let expire = crate::model::clock::unix_now() + grace.as_secs() as i64;
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

pub(super) async fn set_enabled(
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
