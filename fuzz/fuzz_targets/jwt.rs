//! JWT parsing where tokens come in from the network: introspection's check of tokens this
//! server issued, and `tessera-verify`'s check at a resource server. A real node runs in the
//! process (once); any input is refused or accepted without a panic, and nothing but the
//! node's own unmodified token is accepted.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

struct Node {
    runtime: tokio::runtime::Runtime,
    running: tessera::server::Running,
    verifier: tessera_verify::Verifier,
    token: String,
    _dir: tempfile::TempDir,
}

/// A token from the node's token endpoint, over plain HTTP/1.1.
async fn fetch_token(running: &tessera::server::Running, id: &str, secret: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let request = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut c = tokio::net::TcpStream::connect(running.addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    c.write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut answer = String::new();
    c.read_to_string(&mut answer)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    answer
        .split("\"access_token\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no token in {answer}"))
        .to_string()
}

fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let (running, verifier, token) = runtime.block_on(async {
            let running = tessera_testkit::local(dir.path(), Default::default()).await;
            let created = tessera_testkit::register(&running, tessera::admin::NewClient {
                    name: "fuzz".into(),
                    scope: "a".into(),
                    ..Default::default()
                }).await;
            let token = fetch_token(&running, &created.client.id, &created.secret).await;
            let verifier = tessera_verify::Verifier::builder(running.base_url())
                .audience(running.base_url())
                .build()
                .await
                .unwrap_or_else(|e| panic!("verifier: {e}"));
            (running, verifier, token)
        });
        Node {
            runtime,
            running,
            verifier,
            token,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let n = node();
    // `~`, an offset, a length, then bytes: the node's own token with that span replaced, so
    // that mutations reach signature checks, not only the parsers in front of them.
    let owned;
    let text = match data {
        [b'~', at, len, rest @ ..] => {
            let t = n.token.as_bytes();
            let at = usize::from(*at) * t.len() / 256;
            let end = (at + usize::from(*len)).min(t.len());
            owned = [&t[..at], rest, &t[end..]].concat();
            match std::str::from_utf8(&owned) {
                Ok(s) => s,
                Err(_) => return,
            }
        }
        _ => match std::str::from_utf8(data) {
            Ok(s) => s,
            Err(_) => return,
        },
    };
    let introspected = tessera::oauth::validate::check(&n.running.app, text, tessera::model::clock::unix_now()).is_ok();
    let verified = n.runtime.block_on(n.verifier.verify(text)).is_ok();
    if text != n.token {
        assert!(
            !introspected,
            "introspection accepted a token the node did not issue"
        );
        assert!(!verified, "the verifier accepted a token the node did not issue");
    }
});
