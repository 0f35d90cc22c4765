//! An API protected by Tessera tokens in a few lines.
//!
//! ```sh
//! TESSERA_ISSUER=http://127.0.0.1:8080 API_AUDIENCE=https://api.example.com \
//!   cargo run -p tessera-verify --example protected_api
//! ```
//! Then `GET http://127.0.0.1:3000/invoices` with `Authorization: Bearer <token>`; the token
//! needs the audience and the `invoices:read` scope.

use axum::Router;
use axum::routing::get;
use tessera_verify::{Authenticated, BearerAuthLayer, RequireScopeLayer, Verifier};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("TESSERA_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let audience = std::env::var("API_AUDIENCE").unwrap_or_else(|_| "https://api.example.com".into());
    let verifier = Verifier::builder(issuer).audience(audience).build().await?;

    let app =
        Router::new()
            .route(
                "/invoices",
                get(|Authenticated(claims): Authenticated| async move {
                    format!("invoices for {}\n", claims.sub)
                }),
            )
            .route_layer(RequireScopeLayer::new("invoices:read"))
            .layer(BearerAuthLayer::new(verifier));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("protected API on http://127.0.0.1:3000/invoices");
    axum::serve(listener, app).await?;
    Ok(())
}
