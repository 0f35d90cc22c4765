//! Tessera as the authorization server of an MCP deployment: an MCP client built with the
//! official TypeScript SDK, knowing only the MCP server's URL, finds Tessera through the
//! server's 401 and RFC 9728 metadata, registers itself (RFC 7591) or names its client ID
//! metadata document, sends a person (a real browser) through Tessera's login and consent
//! pages with PKCE and a resource indicator, calls a tool on the example MCP server
//! (`tessera-verify/examples/mcp_server.rs`, protected by tessera-verify), and refreshes its
//! token when it goes bad.

use std::path::Path;

use serde_json::{Value, json};
use tessera::config::{RegistrationMode, RegistrationSettings};
use tessera::model::client_metadata::Policy;

use crate::kit::https::{DocumentServer, Reply};
use crate::kit::{self, Opts, Server};
use crate::oidc::{PASSWORD, REDIRECT, run_script, tool_ready, user};

#[path = "../../../tessera-verify/examples/mcp_server.rs"]
mod mcp_server;

/// Serves the example MCP server at `url` on `listener`, protected by tessera-verify for tokens
/// of `issuer`.
async fn start_mcp_server(listener: std::net::TcpListener, url: &str, issuer: &str) {
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let verifier = tessera_verify::Verifier::builder(issuer)
        .resource(url)
        .resource_name("Example MCP server")
        .resource_scopes([mcp_server::SCOPE])
        .build()
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, mcp_server::app(verifier)).await.unwrap() });
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn ready(test: &str) -> bool {
    let rp = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rp");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    tool_ready(
        test,
        Path::new(&chromium).exists()
            && rp.join("node_modules/@modelcontextprotocol/sdk").exists()
            && rp.join("node_modules/playwright-core").exists(),
        "install Debian's chromium and run `npm ci --prefix crates/tessera/tests/rp`",
    )
}

async fn run_client(mcp_url: &str, metadata_url: Option<&str>) -> Value {
    let (mcp_url, metadata_url) = (mcp_url.to_string(), metadata_url.map(str::to_string));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    tokio::task::spawn_blocking(move || {
        let mut env = vec![
            ("MCP_URL", mcp_url.as_str()),
            ("REDIRECT_URI", REDIRECT),
            ("EMAIL", "ada@example.com"),
            ("PASSWORD", PASSWORD),
            ("CHROMIUM", chromium.as_str()),
        ];
        if let Some(m) = &metadata_url {
            env.push(("CLIENT_METADATA_URL", m));
        }
        run_script("node", "mcp_client.mjs", &env)
    })
    .await
    .unwrap()
}

/// What every run must show, whichever way the client got its id.
fn check_run(r: &Value, s: &Server, mcp_url: &str, sub: &str) {
    assert_eq!(
        r["resource"], mcp_url,
        "RFC 8707 resource from the server's metadata: {r}"
    );
    assert_eq!(r["scope"], "mcp:tools", "the scopes the server's metadata names");
    assert_eq!(r["code_challenge_method"], "S256");
    let consent = r["consent_text"].as_str().unwrap();
    assert!(
        consent.contains("Not verified"),
        "a self-registered client is marked: {consent}"
    );
    assert!(
        consent.contains("127.0.0.1:9"),
        "the redirect URI's host is shown: {consent}"
    );
    assert_eq!(r["tools"], json!(["whoami", "add"]));
    assert!(
        consent.contains("Stay signed in"),
        "the refresh token it will get is said: {consent}"
    );
    let whoami = r["whoami"].as_str().unwrap();
    assert!(
        whoami.contains(&format!("subject {sub}")) && whoami.contains("mcp:tools"),
        "{whoami}"
    );
    assert_eq!(r["sum"], "5");
    assert_eq!(r["refreshed"], true, "the SDK refreshed the spoiled token: {r}");
    let claims = &r["claims"];
    assert_eq!(claims["aud"], mcp_url, "the token is for the MCP server alone");
    assert_eq!(claims["iss"], s.base);
    assert_eq!(claims["sub"], sub);
    assert_eq!(claims["client_id"], r["client_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_registers_signs_a_person_in_and_calls_a_tool() {
    if !ready("an_mcp_client_registers_signs_a_person_in_and_calls_a_tool") {
        return;
    }
    let docs = DocumentServer::start().await;
    // The MCP server's address first: Tessera's registration policy names it as the audience
    // (the RFC 8707 resource) self-registered clients may get tokens for.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mcp_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let s = kit::start(Opts {
        registration: Some(RegistrationSettings {
            mode: RegistrationMode::Open,
            metadata_documents: true,
            policy: Policy {
                scopes: vec!["mcp:tools".into()],
                audiences: vec![mcp_url.clone()],
                ..Policy::default()
            },
            ..RegistrationSettings::default()
        }),
        outbound_ca: Some(docs.ca_pem.clone()),
        ..Default::default()
    })
    .await;
    start_mcp_server(listener, &mcp_url, &s.base).await;
    let sub = user(&s, "ada@example.com").await;

    // 1. Dynamic registration.
    let r = run_client(&mcp_url, None).await;
    check_run(&r, &s, &mcp_url, &sub);
    let id = r["client_id"].as_str().unwrap();
    assert!(uuid_like(id), "a client id Tessera made: {id}");
    let client = s.app().store.client(id).await.unwrap().unwrap();
    assert_eq!(
        client.registration.unwrap().origin,
        tessera::model::registration::Origin::Registration
    );

    // 2. A client ID metadata document the test serves.
    let metadata_url = docs.url("/mcp/client.json");
    docs.set(
        "/mcp/client.json",
        Reply::json(&json!({
            "client_id": metadata_url,
            "client_name": "Tessera MCP test client (document)",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })),
    );
    let r = run_client(&mcp_url, Some(&metadata_url)).await;
    check_run(&r, &s, &mcp_url, &sub);
    assert_eq!(r["client_id"], metadata_url.as_str());
    let client = s.app().store.client(&metadata_url).await.unwrap().unwrap();
    assert_eq!(
        client.registration.unwrap().origin,
        tessera::model::registration::Origin::MetadataDocument
    );
}
