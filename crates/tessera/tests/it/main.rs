//! Integration tests: one binary (each `tests/*.rs` is a link step), real servers on ephemeral
//! loopback ports, real SQLite files and PostgreSQL databases, real HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

// The test kit is a crate of its own, shared with the libraries' tests, the fuzz targets and the
// benchmarks.
use tessera_testkit as kit;

mod admin_api;
mod claims;
mod cli;
mod cluster;
mod console;
mod device;
mod discovery;
mod dpop;
mod exchange;
mod federation;
mod first_run;
mod hardening;
mod hostile;
mod layers;
mod lifecycle;
mod limits;
mod mcp;
mod mtls;
mod oidc;
mod ops;
mod registration;
mod secretless;
mod secrets;
mod store;
mod token;
mod users;
mod vendors;
