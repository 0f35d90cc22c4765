//! Prints signed JWTs, one per line, for the token-endpoint benchmark (`bench/token.sh` with
//! `AUTH=private_key_jwt` or `AUTH=federated`): signed with the PEM key given, as a client would
//! make them, each client assertion with its own `jti`.
//!
//! ```text
//! cargo run --release -p tessera-client --example assertions -- KEY.pem ISS SUB AUD COUNT [KID]
//! ```
//!
//! With `DPOP_HTU` set, it prints DPoP proofs (RFC 9449) of the key instead, for a `POST` to that
//! URL, each with its own `jti` (`TOKEN_TYPES="Bearer DPoP" bench/token.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pem, iss, sub, aud, count, rest @ ..] = args.as_slice() else {
        eprintln!("usage: assertions KEY.pem ISS SUB AUD COUNT [KID]");
        std::process::exit(2);
    };
    let mut key = tessera_client::ClientKey::from_pem_file(pem).expect("a private key");
    if let Some(kid) = rest.first() {
        key = key.with_kid(kid.clone());
    }
    if std::env::var_os("PUBLIC_JWK").is_some() {
        println!("{}", key.public_jwk());
        return;
    }
    let count: u64 = count.parse().expect("a count");
    if let Ok(htu) = std::env::var("DPOP_HTU") {
        let key = tessera_client::DpopKey::from_key(key);
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for _ in 0..count {
            writeln!(out, "{}", key.proof("POST", &htu, None).unwrap()).unwrap();
        }
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut n = 0u64;
    for _ in 0..count {
        // The client's own assertion when ISS is the client (iss = sub, a fresh jti, living 15
        // minutes so that a long run does not outlive them); otherwise a platform token's
        // shape (iss the platform, sub the workload), living an hour.
        let line = if iss == sub {
            n += 1;
            key.sign_jwt(&serde_json::json!({
                "iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + 900,
                "jti": format!("{now}-{n}"),
            }))
            .unwrap()
        } else {
            key.sign_jwt(&serde_json::json!({
                "iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + 3600,
            }))
            .unwrap()
        };
        writeln!(out, "{line}").unwrap();
    }
}
