//! Tessera, an OAuth 2.0 authorization server for machine-to-machine access tokens.
//!
//! The crate is the server: a library (so tests and embedders can start a node in-process) and
//! the `tessera` binary. Modules follow the domain:
//!
//! - [`oauth`]: the protocol: request admission, client authentication methods and grants
//!   (one module each behind one trait), one `mint` for access and ID tokens, the token,
//!   authorization, userinfo, introspection and revocation endpoints (tokens checked with the
//!   JWS code resource servers use, `tessera_verify::jws`), the RFC 6749 error type.
//! - [`clients`]: the client registry, secrets and the in-memory cache used on the hot path.
//! - [`claims`]: per-client claims and the scope templates built from them.
//! - [`json`]: strict JSON for outside input (no repeated member names, no NUL).
//! - [`keys`]: signing keys, their encryption at rest, the JWKS and the signer.
//! - [`signing`]: the life of signing keys: first key, rotation, the key set a node serves.
//! - [`limits`]: abuse limits: rates per address and per client, the back-off after failed
//!   authentications, the cap on requests in flight.
//! - [`metrics`]: `/metrics` in the Prometheus text format.
//! - [`revocations`]: the node's cache of revoked token ids.
//! - [`store`]: persistence behind one contract: SQLite (embedded default) or PostgreSQL (many
//!   nodes), migrations per dialect, the change log every node follows, export and import.
//! - [`transfer`]: the export file format (`tessera export` / `import`): moving a store.
//! - [`users`]: the user directory (people who sign in), shared by the CLI and the admin API.
//! - [`http`]: router, request framing (RFC 9112), connection limits and timeouts, TLS,
//!   discovery, health, the admin API, and the pages that sign people in (`http::interaction`).
//! - [`config`]: one typed configuration, layered defaults < file < environment < flags.
//! - [`admin`]: the administrative operations the CLI and the admin API share.
//! - [`operation`]: who performs an operation (recorded in the audit trail) and how one fails.
//! - [`model`]: the domain's rules and limits, below everything else.
//! - [`server`]: starting a node, and the loop that keeps its caches fresh from the change log.
//! - [`app`]: the state a node serves from (it depends on no handler module; handlers depend on
//!   it).
//! - [`cli`]: the `tessera` command line.
#![deny(missing_docs)]

pub mod admin;
pub mod app;
pub mod claims;
pub mod cli;
pub mod clients;
pub mod config;
pub mod http;
pub mod json;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod oauth;
pub mod operation;
pub mod revocations;
pub mod server;
pub mod signing;
pub mod store;
mod sync;
pub mod transfer;
pub mod users;
pub mod views;

/// The README's Rust snippets, compiled as doc tests so that they stay true as written.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeSnippets;
