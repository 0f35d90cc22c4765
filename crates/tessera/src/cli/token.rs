//! `tessera token …`: fetch a token from any RFC 6749 server, or decode and verify one.

use super::print_json;
use clap::{Args, Subcommand};
use std::io::BufRead;
use std::process::ExitCode;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct TokenCommand {
    #[command(subcommand)]
    decode: Option<TokenSub>,
    #[command(flatten)]
    fetch: FetchArgs,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub(super) enum TokenSub {
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
    /// Exchange a token for another (RFC 8693): with --resource and --scope, a narrower token
    /// for another API, as the subject (impersonation) or, with --actor-token, for it
    /// (delegation). Prints the new token.
    Exchange {
        /// The token to exchange (`-`: read it from standard input, which keeps it out of the
        /// process list).
        #[arg(long, value_name = "TOKEN")]
        subject_token: String,
        /// A token of this client for itself, making the exchange a delegation.
        #[arg(long, value_name = "TOKEN")]
        actor_token: Option<String>,
        #[command(flatten)]
        fetch: FetchArgs,
    },
}

#[derive(Args, Default)]
pub(super) struct FetchArgs {
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
    /// Authenticate with this private key (PEM) instead of a secret: private_key_jwt.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["client_secret", "token_file"])]
    private_key_file: Option<std::path::PathBuf>,
    /// The key id to name in the assertion (with --private-key-file).
    #[arg(long, value_name = "KID", requires = "private_key_file")]
    kid: Option<String>,
    /// Present the platform token in this file instead of a secret (workload identity
    /// federation: a projected Kubernetes token, a CI job's OIDC token).
    #[arg(long, value_name = "FILE", conflicts_with = "client_secret")]
    token_file: Option<std::path::PathBuf>,
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

pub(super) fn run_token(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
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
            Some(TokenSub::Exchange {
                subject_token,
                actor_token,
                fetch,
            }) => exchange_token(fetch, subject_token, actor_token).await,
            None => fetch_token(cmd.fetch).await,
        }
    })
}

pub(super) async fn fetch_token(a: FetchArgs) -> anyhow::Result<ExitCode> {
    let (scope, resource, json) = (a.scope.clone(), a.resource.clone(), a.json);
    let client = client_of(a).await?;
    let response = client.request(scope.as_deref(), resource.as_deref()).await?;
    print_response(&response, json)
}

async fn exchange_token(a: FetchArgs, subject: String, actor: Option<String>) -> anyhow::Result<ExitCode> {
    let subject = if subject == "-" {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim().to_string()
    } else {
        subject
    };
    let (scope, resource, json) = (a.scope.clone(), a.resource.clone(), a.json);
    let client = client_of(a).await?;
    let response = client
        .exchange_as(&subject, actor.as_deref(), resource.as_deref(), scope.as_deref())
        .await?;
    print_response(&response, json)
}

pub(super) fn print_response(
    response: &tessera_proto::TokenResponse,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        print_json(&serde_json::to_value(response)?)?;
    } else {
        println!("{}", response.access_token);
    }
    Ok(ExitCode::SUCCESS)
}

/// The token client the flags describe.
async fn client_of(a: FetchArgs) -> anyhow::Result<tessera_client::TokenClient> {
    let id = a
        .client_id
        .ok_or_else(|| anyhow::anyhow!("--client-id is required"))?;
    let builder = match (a.private_key_file, a.token_file, a.client_secret) {
        (Some(pem), _, _) => {
            let mut key = tessera_client::ClientKey::from_pem_file(pem)?;
            if let Some(kid) = a.kid {
                key = key.with_kid(kid);
            }
            tessera_client::TokenClient::builder_with_key(id, key)
        }
        (None, Some(file), _) => tessera_client::TokenClient::builder_with_token_file(id, file),
        (None, None, Some(secret)) => tessera_client::TokenClient::builder(id, secret),
        (None, None, None) => anyhow::bail!(
            "--client-secret (or TESSERA_CLIENT_SECRET), --private-key-file or --token-file is required"
        ),
    };
    let mut builder = builder.retries(2, std::time::Duration::from_millis(200));
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
    Ok(builder.build().await?)
}

pub(super) async fn decode_token(
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
