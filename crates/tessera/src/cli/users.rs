//! `tessera user …`: the user directory from the command line. Passwords come from standard
//! input or a prompt, never from an argument (the process list and shell history would keep it).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Subcommand;

use crate::model::UserRecord;
use crate::operation::Actor;
use crate::store::Store;
use crate::users::{self, NewUser, UserUpdate};
use crate::views;

#[derive(Subcommand)]
pub(super) enum UserCommand {
    /// Add a user (people who sign in with OpenID Connect).
    Create {
        /// Email address (unique, without regard to case).
        #[arg(long)]
        email: String,
        /// Full name.
        #[arg(long)]
        name: Option<String>,
        /// Given name.
        #[arg(long)]
        given_name: Option<String>,
        /// Family name.
        #[arg(long)]
        family_name: Option<String>,
        /// The address is known to be the user's.
        #[arg(long)]
        email_verified: bool,
        /// A custom attribute released as a claim; repeat for several (VALUE as JSON if it
        /// parses, else a string).
        #[arg(long = "attribute", value_name = "NAME=VALUE")]
        attributes: Vec<String>,
        /// Read a password from the first line of standard input, or ask for it when standard
        /// input is a terminal. Without it the user has no password until `set-password`.
        #[arg(long)]
        password: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// Start after this user id (for paging).
        #[arg(long)]
        after: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one user (by id or email), never the password.
    Show {
        /// User id or email.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a user's email, names, verification state or attributes.
    Update {
        /// User id or email.
        user: String,
        /// New email (marks it unverified unless --email-verified true).
        #[arg(long)]
        email: Option<String>,
        /// New full name (empty to clear).
        #[arg(long)]
        name: Option<String>,
        /// New given name (empty to clear).
        #[arg(long)]
        given_name: Option<String>,
        /// New family name (empty to clear).
        #[arg(long)]
        family_name: Option<String>,
        /// Whether the email is verified.
        #[arg(long, value_name = "BOOL")]
        email_verified: Option<bool>,
        /// Set an attribute; repeat for several.
        #[arg(long = "attribute", value_name = "NAME=VALUE")]
        attributes: Vec<String>,
        /// Remove an attribute; repeat for several.
        #[arg(long = "remove-attribute", value_name = "NAME")]
        remove_attributes: Vec<String>,
        /// A console role: admin (everything the admin API allows) or auditor (read only);
        /// repeat for several; replaces the old ones. `--role none` takes them all away.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a user from signing in.
    Disable {
        /// User id or email.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled user sign in again.
    Enable {
        /// User id or email.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user.
    Delete {
        /// User id or email.
        user: String,
    },
    /// Set a user's password: from the first line of standard input, or asked for twice when
    /// standard input is a terminal.
    SetPassword {
        /// User id or email.
        user: String,
    },
}

/// Reads a password: the first line of standard input, or, on a terminal, asked for twice
/// without echo.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            anyhow::bail!("the passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// One line on what ending a user's sign-ins ended (running nodes refuse the revoked tokens
/// within a poll of the change log).
fn say_ended(ended: &crate::model::SignInsEnded) -> anyhow::Result<()> {
    writeln!(
        std::io::stdout().lock(),
        "signed out everywhere: {} sessions and {} refresh-token families ended, {} access tokens revoked",
        ended.sessions,
        ended.refresh_token_families,
        ended.revoked.len()
    )?;
    Ok(())
}

fn emit(u: &UserRecord, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", views::user_json(u))?;
        return Ok(());
    }
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    writeln!(out, "id:             {}", u.id)?;
    writeln!(out, "email:          {}", u.email)?;
    writeln!(out, "email_verified: {}", u.email_verified)?;
    writeln!(out, "name:           {}", opt(&u.name))?;
    writeln!(out, "given_name:     {}", opt(&u.given_name))?;
    writeln!(out, "family_name:    {}", opt(&u.family_name))?;
    writeln!(out, "enabled:        {}", u.enabled)?;
    writeln!(
        out,
        "password:       {}",
        if u.password_hash.is_some() { "set" } else { "none" }
    )?;
    if !u.attributes.is_empty() {
        writeln!(
            out,
            "attributes:     {}",
            serde_json::Value::Object(u.attributes.clone())
        )?;
    }
    Ok(())
}

fn attributes(pairs: &[String]) -> anyhow::Result<crate::claims::Claims> {
    crate::claims::parse_pairs(pairs).map_err(|e| anyhow::anyhow!(e))
}

pub(super) async fn command(store: &Store, actor: &Actor, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Create {
            email,
            name,
            given_name,
            family_name,
            email_verified,
            attributes: attrs,
            password,
            json,
        } => {
            let password = if password { Some(read_password()?) } else { None };
            let new = NewUser {
                email,
                email_verified,
                given_name,
                family_name,
                name,
                password,
                attributes: attributes(&attrs)?,
                roles: Vec::new(),
            };
            emit(&users::create_user(store, actor, new).await?, json)?;
        }
        UserCommand::List { after, limit, json } => {
            if !(1..=1000).contains(&limit) {
                anyhow::bail!("--limit must be 1 to 1000");
            }
            let page = store.users_page(after.as_deref(), limit).await?;
            let mut out = std::io::stdout().lock();
            if json {
                let list: Vec<serde_json::Value> = page
                    .iter()
                    .map(|u| views::json(views::UserView::from(u)))
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(list))?;
            } else {
                for u in &page {
                    let state = if u.enabled { "enabled" } else { "disabled" };
                    writeln!(out, "{}  {}  {}", u.id, u.email, state)?;
                }
            }
        }
        UserCommand::Show { user, json } => emit(&users::get_user(store, &user).await?, json)?,
        UserCommand::Update {
            user,
            email,
            name,
            given_name,
            family_name,
            email_verified,
            attributes: attrs,
            remove_attributes,
            roles,
            json,
        } => {
            let id = users::get_user(store, &user).await?.id;
            let roles = match roles.as_slice() {
                [] => None,
                [none] if none == "none" => Some(Vec::new()),
                _ => Some(roles),
            };
            let update = UserUpdate {
                email,
                email_verified,
                given_name,
                family_name,
                name,
                attributes: (!attrs.is_empty()).then(|| attributes(&attrs)).transpose()?,
                remove_attributes,
                roles,
            };
            emit(&users::update_user(store, actor, &id, update).await?, json)?;
        }
        UserCommand::Disable { user, json } => {
            let id = users::get_user(store, &user).await?.id;
            let (u, ended) = users::set_enabled(store, actor, &id, false).await?;
            if json {
                let mut view = views::user_json(&u);
                view["sign_ins_ended"] = views::ended_json(&ended);
                writeln!(std::io::stdout().lock(), "{view}")?;
            } else {
                emit(&u, false)?;
                say_ended(&ended)?;
            }
        }
        UserCommand::Enable { user, json } => {
            let id = users::get_user(store, &user).await?.id;
            emit(&users::set_enabled(store, actor, &id, true).await?.0, json)?;
        }
        UserCommand::Delete { user } => {
            let id = users::get_user(store, &user).await?.id;
            users::delete_user(store, actor, &id).await?;
            println!("deleted user {id}");
        }
        UserCommand::SetPassword { user } => {
            let id = users::get_user(store, &user).await?.id;
            let password = read_password()?;
            let (_, ended) = users::set_password(store, actor, &id, &password).await?;
            println!("password set for user {id}");
            say_ended(&ended)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
