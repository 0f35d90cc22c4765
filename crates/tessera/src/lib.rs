//! Tessera, an OAuth 2.0 authorization server for machine-to-machine access tokens.
//!
//! The crate is the server: a library (so tests and embedders can start a node in-process) and
//! the `tessera` binary. Its modules form layers, bottom up; a module imports only its own layer
//! and those below (ARCHITECTURE.md at the repository's root has the table and where new things
//! go; `tests/it/layers.rs` enforces it):
//!
//! 1. Foundations. [`model`]: the records the store keeps and the rules they follow, the scope
//!    grammar, token-endpoint path rules, flows, token lifetimes, the [`model::clock::Clock`].
//!    [`claims`]: per-client claims and the scope templates built from them. [`json`]: strict
//!    JSON for outside input (no repeated member names, no NUL).
//! 2. [`store`]: persistence behind one contract, SQLite (embedded default) or PostgreSQL (many
//!    nodes); each entity's SQL written once for both; migrations per dialect, checked; the
//!    change log every node follows.
//! 3. Domain services. [`operation`]: who acts, on which clock, and how an operation fails.
//!    [`keys`]: signing keys, sealing at rest, the JWKS and the signer. [`clients`]: the client
//!    registry and the in-memory cache of the hot path. [`users`]: the user directory.
//!    [`signing`]: first key, rotation, the key set a node serves. [`revocations`]: the node's
//!    cache of revoked token ids. [`trust`]: the node's trust policies (workload identity
//!    federation). [`client_keys`]: keys clients and trusted issuers publish, fetched safely. [`limits`]: rates, back-off, requests in flight. [`metrics`]:
//!    counters for `/metrics`.
//! 4. Node state. [`config`]: one typed configuration, defaults < file < environment < flags.
//!    [`app`]: the state a node serves from.
//! 5. [`oauth`]: the protocol, free of the web framework: request admission, client
//!    authentication methods and grants (one module each behind one trait), one `mint` for access
//!    and ID tokens, the token, authorization, userinfo, introspection and revocation endpoints
//!    (tokens checked with `tessera_verify::jws`, the code resource servers use), `OAuthError`.
//! 6. Operations. [`admin`]: client operations. [`transfer`]: the export file format.
//!    [`views`]: the documents the CLI and the admin API print.
//! 7. [`http`]: router, framing (RFC 9112), limits and timeouts, TLS, discovery, the protocol's
//!    HTTP face, the sign-in pages ([`http::interaction`]), the admin API.
//! 8. [`server`]: starting a node, and the loop that keeps its caches fresh.
//! 9. [`cli`]: the `tessera` command line.
#![deny(missing_docs)]

pub mod admin;
pub mod app;
pub mod claims;
pub mod cli;
pub mod client_documents;
pub mod client_keys;
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
pub mod replay;
pub mod revocations;
pub mod server;
pub mod signing;
pub mod store;
mod sync;
pub mod transfer;
pub mod trust;
pub mod users;
pub mod views;

/// The README's Rust snippets, compiled as doc tests so that they stay true as written.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeSnippets;
