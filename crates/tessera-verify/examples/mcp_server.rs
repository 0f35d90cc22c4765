//! An MCP server (Model Context Protocol, Streamable HTTP transport, JSON answers) protected by
//! Tessera: every request to `/mcp` needs an access token whose audience is this server's URL
//! and whose scope holds `mcp:tools`; a request without one gets a 401 whose challenge points
//! to this server's RFC 9728 metadata, which names Tessera as its authorization server. That is
//! all an MCP client needs to find Tessera, register (or use a client metadata document), sign
//! the person in and come back with a token.
//!
//! ```sh
//! TESSERA_ISSUER=http://127.0.0.1:8080 MCP_RESOURCE=http://127.0.0.1:8090/mcp LISTEN=127.0.0.1:8090 \
//!     cargo run -p tessera-verify --example mcp_server
//! ```
//!
//! Tools: `whoami` (who the token speaks for, and its scopes) and `add` (two numbers). The
//! JSON-RPC here is the little an MCP server needs; a full server would use an MCP SDK and keep
//! the same two lines of protection (the `BearerAuthLayer` and the metadata router).
#![allow(dead_code, clippy::unwrap_used)]

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tessera_verify::{Authenticated, BearerAuthLayer, RequireScopeLayer, Verifier};

/// The MCP protocol revisions this server speaks, newest first.
const VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The scope every MCP request needs.
pub const SCOPE: &str = "mcp:tools";

/// The MCP endpoint at `/mcp` behind `verifier`, and the resource metadata beside it.
pub fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/mcp", post(rpc).get(not_here).delete(not_here))
        .route_layer(RequireScopeLayer::new(SCOPE))
        .layer(BearerAuthLayer::new(verifier.clone()).realm("mcp"))
        .merge(verifier.metadata_router())
}

/// No server-sent event stream and no sessions to end (the transport allows answering 405).
async fn not_here() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

fn answer(id: &Value, result: Value) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn failure(id: &Value, code: i64, message: &str) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
        .into_response()
}

/// One JSON-RPC message: a request is answered with JSON, a notification with 202.
async fn rpc(Authenticated(claims): Authenticated, body: axum::body::Bytes) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return failure(&Value::Null, -32700, "parse error");
    };
    let Some(id) = message.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    match message.get("method").and_then(Value::as_str) {
        Some("initialize") => {
            let asked = params.get("protocolVersion").and_then(Value::as_str);
            let version = asked.filter(|v| VERSIONS.contains(v)).unwrap_or(VERSIONS[0]);
            answer(
                &id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "tessera-example-mcp", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
        }
        Some("ping") => answer(&id, json!({})),
        Some("tools/list") => answer(
            &id,
            json!({"tools": [
                {"name": "whoami", "description": "Who the access token speaks for, and its scopes",
                 "inputSchema": {"type": "object", "properties": {}}},
                {"name": "add", "description": "Adds two numbers",
                 "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                                 "required": ["a", "b"]}},
            ]}),
        ),
        Some("tools/call") => {
            let arguments = params.get("arguments").cloned().unwrap_or(json!({}));
            let text = match params.get("name").and_then(Value::as_str) {
                Some("whoami") => format!(
                    "subject {} via client {} with scope {}",
                    claims.sub,
                    claims.client_id,
                    claims.scopes.iter().cloned().collect::<Vec<_>>().join(" ")
                ),
                Some("add") => {
                    let n = |k: &str| arguments.get(k).and_then(Value::as_f64);
                    match (n("a"), n("b")) {
                        (Some(a), Some(b)) => (a + b).to_string(),
                        _ => return failure(&id, -32602, "a and b must be numbers"),
                    }
                }
                _ => return failure(&id, -32602, "no such tool"),
            };
            answer(
                &id,
                json!({"content": [{"type": "text", "text": text}], "isError": false}),
            )
        }
        _ => failure(&id, -32601, "method not found"),
    }
}

#[tokio::main]
async fn main() {
    let issuer = std::env::var("TESSERA_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let resource = std::env::var("MCP_RESOURCE").unwrap_or_else(|_| "http://127.0.0.1:8090/mcp".into());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let verifier = Verifier::builder(&issuer)
        .resource(&resource)
        .resource_name("Tessera example MCP server")
        .resource_scopes([SCOPE])
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
    println!("MCP server for {resource}, tokens from {issuer}");
    axum::serve(listener, app(verifier)).await.unwrap();
}
