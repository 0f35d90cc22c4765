//! A service calling a protected API: tokens are fetched, cached and renewed by the middleware.
//!
//! ```sh
//! TESSERA_ISSUER=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... \
//!   cargo run -p tessera-client --example call_api
//! ```
//! (Start `cargo run -p tessera-verify --example protected_api` first.)

use tessera_client::{BearerMiddleware, TokenClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("TESSERA_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let tokens = TokenClient::builder(std::env::var("CLIENT_ID")?, std::env::var("CLIENT_SECRET")?)
        .issuer(issuer)
        .build()
        .await?;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            BearerMiddleware::new(tokens)
                .scope("invoices:read")
                .audience("https://api.example.com"),
        )
        .build();
    for _ in 0..3 {
        let body = http
            .get("http://127.0.0.1:3000/invoices")
            .send()
            .await?
            .text()
            .await?;
        print!("{body}");
    }
    Ok(())
}
