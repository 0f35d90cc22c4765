//! The `--exchange-*` flags of `tessera client create|update`: a client's token exchange policy
//! (RFC 8693).

use clap::Args;

use crate::model::exchange::ExchangePolicy;

/// What a client may exchange; giving any of these sets the whole policy.
#[derive(Args, Default)]
pub(super) struct ExchangeArgs {
    /// An audience (resource URI) its exchanged tokens may be for; repeat for several, the first
    /// is the default. Needs --grant-type urn:ietf:params:oauth:grant-type:token-exchange.
    #[arg(long = "exchange-audience", value_name = "URI")]
    exchange_audiences: Vec<String>,
    /// A subject token it may exchange: access_token (Tessera's), id_token (Tessera's, issued to
    /// it) or jwt (an external issuer's its trust policies admit); repeat [default: access_token].
    #[arg(long = "exchange-subject-type", value_name = "TYPE")]
    exchange_subject_types: Vec<String>,
    /// A subject token must be for this audience (an API it serves) or for the client itself;
    /// repeat for several.
    #[arg(long = "exchange-subject-audience", value_name = "URI")]
    exchange_subject_audiences: Vec<String>,
    /// It may act for the subject, saying so (an actor token: `act` names it).
    #[arg(long = "exchange-delegation")]
    exchange_delegation: bool,
    /// It may become the subject (no actor token).
    #[arg(long = "exchange-impersonation")]
    exchange_impersonation: bool,
    /// Longest an exchanged token lives, in seconds [default: its token lifetime].
    #[arg(long = "exchange-max-ttl", value_name = "SECONDS")]
    exchange_max_ttl: Option<u32>,
    /// Its exchanged tokens may outlive their subject token.
    #[arg(long = "exchange-outlive-subject")]
    exchange_outlive_subject: bool,
}

impl ExchangeArgs {
    /// The policy the flags describe, if any was given.
    pub(super) fn policy(&self) -> Option<ExchangePolicy> {
        let given = !self.exchange_audiences.is_empty()
            || !self.exchange_subject_types.is_empty()
            || !self.exchange_subject_audiences.is_empty()
            || self.exchange_delegation
            || self.exchange_impersonation
            || self.exchange_max_ttl.is_some()
            || self.exchange_outlive_subject;
        given.then(|| ExchangePolicy {
            audiences: self.exchange_audiences.clone(),
            subject_token_types: if self.exchange_subject_types.is_empty() {
                vec!["access_token".into()]
            } else {
                self.exchange_subject_types.clone()
            },
            subject_audiences: self.exchange_subject_audiences.clone(),
            delegation: self.exchange_delegation,
            impersonation: self.exchange_impersonation,
            max_ttl: self.exchange_max_ttl,
            outlive_subject: self.exchange_outlive_subject,
        })
    }
}
