//! `tessera audit …`: read the audit trail.

use super::{fmt_time, print_json};
use crate::store::Store;
use crate::views;
use clap::Subcommand;
use std::io::Write;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
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

pub(super) fn parse_since(since: &str) -> anyhow::Result<i64> {
    if let Ok(d) = humantime::parse_duration(since) {
        return Ok(crate::model::clock::unix_now() - d.as_secs() as i64);
    }
    let t = humantime::parse_rfc3339_weak(since).map_err(|_| {
        anyhow::anyhow!("--since {since:?}: expected a duration (24h) or a time (2026-01-31T12:00:00Z)")
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0))
}

pub(super) async fn audit_command(store: &Store, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
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
        print_json(
            &events
                .iter()
                .map(|e| views::json(views::AuditView::from(e)))
                .collect::<Vec<_>>()
                .into(),
        )?;
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
