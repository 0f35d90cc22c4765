//! `tessera login --device`: sign a person in on another screen (RFC 8628), from a terminal
//! without a browser (a server over SSH, a CI runner, a container), with any server that offers
//! device authorization.

use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct LoginArgs {
    /// Use device authorization: show a code to enter on another device, then wait.
    #[arg(long, required = true)]
    device: bool,
    /// The issuer (its endpoints are discovered).
    #[arg(long)]
    issuer: String,
    /// The client id (a public client registered for the device grant).
    #[arg(long)]
    client_id: String,
    /// The client secret, for a confidential client (better: TESSERA_CLIENT_SECRET).
    #[arg(
        long,
        env = "TESSERA_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    client_secret: Option<String>,
    /// Scopes to ask for, space-separated [default: the client's own].
    #[arg(long)]
    scope: Option<String>,
    /// Print the whole token response as JSON (with the refresh token, if any).
    #[arg(long)]
    json: bool,
}

pub(super) fn run_login(a: LoginArgs) -> anyhow::Result<ExitCode> {
    let _ = a.device;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut flow = tessera_client::DeviceFlow::discover(&a.issuer, a.client_id).await?;
        if let Some(secret) = a.client_secret {
            flow = flow.with_secret(secret);
        }
        let started = flow.start(a.scope.as_deref()).await?;
        // The instructions go to standard error, the token to standard output.
        eprintln!(
            "To sign in, open {} and enter the code {}",
            started.verification_uri, started.user_code
        );
        if let Some(complete) = &started.verification_uri_complete {
            eprintln!("(or open {complete})");
        }
        eprintln!(
            "Waiting for you to allow it (the code works for {} minutes)…",
            started.expires_in.div_ceil(60)
        );
        let tokens = flow.poll(&started).await?;
        super::token::print_response(&tokens, a.json)
    })
}
