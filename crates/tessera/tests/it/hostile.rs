//! The hostile-request table: malformed, oversized, repeated, mis-encoded and forged requests sent
//! as raw bytes to a real `tessera serve`. Each gets its precise status and RFC error, nothing in
//! the store changes, the server keeps answering, and no secret or token reaches its log.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kit;

/// One request and what it must get.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    /// The `error` member of the JSON body, when the answer has one.
    error: Option<&'static str>,
}

/// A request with `Host`, `Content-Length` and `Connection: close` added.
fn http(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: tessera.test\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Sends raw bytes and reads one whole answer: (status, head, body). The answer ends at its
/// `Content-Length`, at the end of a chunked body, or when the server closes.
async fn send(addr: &str, request: &[u8]) -> (u16, String, String) {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before it has read everything: a failed write is fine.
    let _ = c.write_all(request).await;
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = c.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out).to_string();
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                continue;
            };
            let head = head.to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            match length {
                Some(n) if body.len() >= n => break,
                None if head.contains("transfer-encoding: chunked") && body.ends_with("0\r\n\r\n") => break,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), read)
        .await
        .expect("no answer within 15 s");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}

/// A JWS with the given header and payload and a junk signature.
fn forged(header: &str, payload: &serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// What the store holds, as a comparable snapshot.
fn snapshot(dir: &std::path::Path) -> String {
    let clients = kit::cli_json(dir, &["client", "list", "--json"]);
    let keys = kit::cli_json(dir, &["key", "list", "--json"]);
    let audit = kit::cli_json(dir, &["audit", "list", "--json"]);
    format!("{clients}\n{keys}\n{audit}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_precise_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Rates and back-off out of the way: this table is about parsing, and sends many failures
    // from one address on purpose (the limits have their own tests).
    std::fs::write(
        dir.path().join("t.toml"),
        "[limits]\nper_address_rps = 0\nper_client_rps = 0\nfailures_before_backoff = 1000\n\
         address_failures_before_backoff = 100000\n",
    )
    .unwrap();
    let db = kit::db_url(dir.path());
    let mut p = kit::Process::spawn(
        dir.path(),
        &["--config", "t.toml", "serve", "--database", &db],
        &[("TESSERA_LOG", "debug")],
        "hostile",
    )
    .await;
    let out = p.stdout();
    let field = |name: &str| {
        out.split(name)
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let (id, secret) = (field("client_id:"), field("client_secret:"));
    let other = kit::cli_json(dir.path(), &["client", "create", "--name", "other", "--json"]);
    let (other_id, other_secret) = (
        other["client"]["client_id"].as_str().unwrap().to_string(),
        other["client_secret"].as_str().unwrap().to_string(),
    );
    let http_client = reqwest::Client::new();
    let token_for = |id: String, secret: String| {
        let http_client = http_client.clone();
        let base = p.base.clone();
        async move {
            let r: serde_json::Value = http_client
                .post(format!("{base}/oauth2/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["access_token"].as_str().unwrap().to_string()
        }
    };
    // The new client reaches the server's cache within a poll.
    let mut other_token = String::new();
    for _ in 0..50 {
        let r = http_client
            .post(format!("{}/oauth2/token", p.base))
            .basic_auth(&other_id, Some(&other_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            other_token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!other_token.is_empty());
    let token = token_for(id.clone(), secret.clone()).await;
    let before = snapshot(dir.path());

    let auth = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    let other_auth = format!("Basic {}", STANDARD.encode(format!("{other_id}:{other_secret}")));
    let a = ("Authorization", auth.as_str());
    let cc = b"grant_type=client_credentials";
    let post = |path: &str, headers: &[(&str, &str)], body: &[u8]| http("POST", path, headers, body);
    let tok = |body: &[u8]| post("/oauth2/token", &[a, FORM], body);
    let basic = |raw: &str| format!("Basic {}", STANDARD.encode(raw));
    let (parts, sig) = token.rsplit_once('.').unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let mut tampered_claims = claims.clone();
    tampered_claims["scope"] = "everything".into();
    let tampered = format!(
        "{}.{}.{sig}",
        parts.split('.').next().unwrap(),
        URL_SAFE_NO_PAD.encode(tampered_claims.to_string())
    );
    let alg_none = forged(r#"{"alg":"none","typ":"at+jwt"}"#, &claims, b"");
    let hs256 = forged(r#"{"alg":"HS256","typ":"at+jwt","kid":"x"}"#, &claims, b"mac");
    let huge_token = "a".repeat(5000);
    let many_params = (0..80).map(|i| format!("p{i}=1")).collect::<Vec<_>>().join("&");
    let big_body = format!("grant_type=client_credentials&pad={}", "x".repeat(9000));
    let long_id = basic(&format!("{}:{secret}", "i".repeat(300)));
    let long_secret = basic(&format!("{id}:{}", "s".repeat(600)));
    let wrong = basic(&format!("{id}:wrong-secret"));
    let unknown = basic("nobody:wrong-secret");
    // "GET /healthz HTTP/1.1\r\n", "Host: tessera.test\r\n", "Connection: close\r\n" and the
    // final CRLF come to 64 bytes; the pad header adds its name, ": " and CRLF.
    let at_limit = "p".repeat(64 * 1024 - 64 - "X-Pad: \r\n".len());
    let over_limit = format!("{at_limit}p");
    let many_headers: Vec<(String, String)> =
        (0..60).map(|i| (format!("X-H{i}"), "h".repeat(1500))).collect();
    let te = |fields: &[&str]| {
        let mut out = format!(
            "POST /oauth2/token HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        );
        for f in fields {
            out.push_str(&format!("Transfer-Encoding: {f}\r\n"));
        }
        out.push_str("\r\n1d\r\ngrant_type=client_credentials\r\n0\r\n\r\n");
        out.into_bytes()
    };
    let mut cases = vec![
        // Content types and bodies.
        Case { name: "no body", request: post("/oauth2/token", &[a, FORM], b""), status: 400, error: Some("invalid_request") },
        Case { name: "no content type", request: post("/oauth2/token", &[a], cc), status: 400, error: Some("invalid_request") },
        Case { name: "text/plain", request: post("/oauth2/token", &[a, ("Content-Type", "text/plain")], cc), status: 400, error: Some("invalid_request") },
        Case { name: "json body", request: post("/oauth2/token", &[a, ("Content-Type", "application/json")], br#"{"grant_type":"client_credentials"}"#), status: 400, error: Some("invalid_request") },
        Case { name: "latin-1 charset", request: post("/oauth2/token", &[a, ("Content-Type", "application/x-www-form-urlencoded; charset=latin1")], cc), status: 400, error: Some("invalid_request") },
        Case { name: "multipart on the strict path", request: post("/oauth2/token", &[a, ("Content-Type", "multipart/form-data; boundary=x")], b"--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--\r\n"), status: 400, error: Some("invalid_request") },
        Case { name: "body over the limit", request: tok(big_body.as_bytes()), status: 413, error: Some("invalid_request") },
        Case { name: "declared 100 MB", request: b"POST /oauth2/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n".to_vec(), status: 413, error: Some("invalid_request") },
        Case { name: "80 parameters", request: tok(many_params.as_bytes()), status: 400, error: Some("invalid_request") },
        // Parameters and encodings.
        Case { name: "grant_type repeated", request: tok(b"grant_type=client_credentials&grant_type=client_credentials"), status: 400, error: Some("invalid_request") },
        Case { name: "grant_type missing", request: tok(b"scope=a"), status: 400, error: Some("invalid_request") },
        Case { name: "grant_type password", request: tok(b"grant_type=password&username=a&password=b"), status: 400, error: Some("unsupported_grant_type") },
        // RFC 6749 §3.1: a parameter without a value is treated as omitted.
        Case { name: "grant_type empty", request: tok(b"grant_type="), status: 400, error: Some("invalid_request") },
        Case { name: "grant_type in upper case", request: tok(b"grant_type=CLIENT_CREDENTIALS"), status: 400, error: Some("unsupported_grant_type") },
        Case { name: "bad percent escape", request: tok(b"grant_type=client%ZZcredentials"), status: 400, error: Some("invalid_request") },
        Case { name: "truncated percent escape", request: tok(b"grant_type=client_credentials%2"), status: 400, error: Some("invalid_request") },
        Case { name: "escaped invalid UTF-8", request: tok(b"grant_type=client_credentials&scope=%FF%FE"), status: 400, error: Some("invalid_request") },
        Case { name: "raw invalid UTF-8", request: tok(b"grant_type=client_credentials&scope=\xff\xfe"), status: 400, error: Some("invalid_request") },
        // NUL cannot be stored by PostgreSQL: refused as malformed before any lookup, on both engines.
        Case { name: "escaped NUL in grant_type", request: tok(b"grant_type=client_credentials%00"), status: 400, error: Some("invalid_request") },
        Case { name: "raw NUL in body", request: tok(b"grant_type=client_credentials\0"), status: 400, error: Some("invalid_request") },
        Case { name: "escaped NUL in client_id", request: post("/oauth2/token", &[FORM], b"grant_type=client_credentials&client_id=a%00b&client_secret=x"), status: 400, error: Some("invalid_request") },
        Case { name: "NUL in a Basic client id", request: post("/oauth2/token", &[("Authorization", &basic("a\0b:x")), FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "escaped NUL in a Basic client id", request: post("/oauth2/token", &[("Authorization", &basic("a%00b:x")), FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "escaped NUL in a code", request: tok(b"grant_type=authorization_code&code=a%00b&redirect_uri=https%3A%2F%2Fa.example%2F"), status: 400, error: Some("invalid_request") },
        Case { name: "escaped NUL in a revoked token", request: post("/oauth2/revoke", &[a, FORM], b"token=a%00b"), status: 400, error: Some("invalid_request") },
        Case { name: "NUL in an authorize client_id", request: http("GET", "/oauth2/authorize?client_id=a%00b&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fa.example%2F&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", &[], b""), status: 400, error: None },
        Case { name: "NUL in a logout parameter", request: http("GET", "/oauth2/logout?client_id=a%00b&post_logout_redirect_uri=https%3A%2F%2Fa.example%2F", &[], b""), status: 400, error: None },
        Case { name: "NUL in a login email", request: post("/oauth2/login", &[FORM], b"request=x&csrf=y&email=bob%40example.com%00&password=p"), status: 400, error: None },
        Case { name: "NUL in an admin path", request: http("GET", "/admin/v1/clients/a%00b", &[], b""), status: 400, error: Some("invalid_request") },
        Case { name: "NUL in an admin cursor", request: http("GET", "/admin/v1/clients?after=%00", &[], b""), status: 400, error: Some("invalid_request") },
        Case { name: "escaped invalid UTF-8 in a path", request: http("GET", "/admin/v1/users/%FF", &[], b""), status: 400, error: Some("invalid_request") },
        Case { name: "scope repeated", request: tok(b"grant_type=client_credentials&scope=demo:read&scope=demo:read"), status: 400, error: Some("invalid_request") },
        Case { name: "scope not allowed", request: tok(b"grant_type=client_credentials&scope=admin"), status: 400, error: Some("invalid_scope") },
        Case { name: "scope with a control character", request: tok(b"grant_type=client_credentials&scope=demo:read%0A"), status: 400, error: Some("invalid_scope") },
        Case { name: "scope with a quote", request: tok(b"grant_type=client_credentials&scope=%22"), status: 400, error: Some("invalid_scope") },
        Case { name: "resource not absolute", request: tok(b"grant_type=client_credentials&resource=api"), status: 400, error: Some("invalid_target") },
        Case { name: "resource with fragment", request: tok(b"grant_type=client_credentials&resource=https%3A%2F%2Fa.example%2F%23f"), status: 400, error: Some("invalid_target") },
        Case { name: "resource not registered", request: tok(b"grant_type=client_credentials&resource=https%3A%2F%2Fevil.example"), status: 400, error: Some("invalid_target") },
        Case { name: "parameter without =", request: tok(b"grant_type"), status: 400, error: Some("invalid_request") },
        Case { name: "empty pairs", request: tok(b"&&&grant_type=client_credentials&&"), status: 200, error: None },
        // Client authentication.
        Case { name: "two Authorization headers", request: post("/oauth2/token", &[a, a, FORM], cc), status: 400, error: Some("invalid_request") },
        Case { name: "Basic and client_secret", request: tok(format!("grant_type=client_credentials&client_secret={secret}").as_bytes()), status: 400, error: Some("invalid_request") },
        Case { name: "client_id differing from Basic", request: tok(b"grant_type=client_credentials&client_id=someone-else"), status: 400, error: Some("invalid_request") },
        Case { name: "Basic not base64", request: post("/oauth2/token", &[("Authorization", "Basic !!!"), FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "Basic without colon", request: post("/oauth2/token", &[("Authorization", &basic("nocolon")), FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "Basic with invalid UTF-8", request: post("/oauth2/token", &[("Authorization", &format!("Basic {}", STANDARD.encode(b"\xff:\xfe"))), FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "Bearer at the token endpoint", request: post("/oauth2/token", &[("Authorization", &format!("Bearer {token}")), FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "no authentication", request: post("/oauth2/token", &[FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "client_secret without client_id", request: post("/oauth2/token", &[FORM], format!("grant_type=client_credentials&client_secret={secret}").as_bytes()), status: 400, error: Some("invalid_request") },
        Case { name: "client_id without secret", request: post("/oauth2/token", &[FORM], format!("grant_type=client_credentials&client_id={id}").as_bytes()), status: 401, error: Some("invalid_client") },
        Case { name: "credentials in the query", request: post(&format!("/oauth2/token?client_id={id}&client_secret={secret}"), &[FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "wrong secret", request: post("/oauth2/token", &[("Authorization", &wrong), FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "unknown client", request: post("/oauth2/token", &[("Authorization", &unknown), FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "300-byte client id", request: post("/oauth2/token", &[("Authorization", &long_id), FORM], cc), status: 401, error: Some("invalid_client") },
        Case { name: "600-byte secret", request: post("/oauth2/token", &[("Authorization", &long_secret), FORM], cc), status: 401, error: Some("invalid_client") },
        // Methods and paths.
        Case { name: "GET token", request: http("GET", "/oauth2/token", &[a], b""), status: 405, error: Some("invalid_request") },
        Case { name: "PUT token", request: http("PUT", "/oauth2/token", &[a, FORM], cc), status: 405, error: Some("invalid_request") },
        Case { name: "DELETE token", request: http("DELETE", "/oauth2/token", &[a], b""), status: 405, error: Some("invalid_request") },
        Case { name: "unknown path", request: http("GET", "/oauth2/tokens", &[], b""), status: 404, error: Some("not_found") },
        Case { name: "dot segments", request: post("/oauth2/../admin/v1/clients", &[a, FORM], cc), status: 404, error: Some("not_found") },
        Case { name: "escaped path", request: post("/oauth2/%74oken", &[a, FORM], cc), status: 404, error: Some("not_found") },
        Case { name: "POST to discovery", request: post("/.well-known/openid-configuration", &[FORM], cc), status: 405, error: None },
        // HTTP framing.
        Case { name: "no Host", request: b"POST /oauth2/token HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec(), status: 400, error: Some("invalid_request") },
        Case { name: "two Host headers", request: b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), status: 400, error: Some("invalid_request") },
        Case { name: "Host with a space", request: b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(), status: 400, error: Some("invalid_request") },
        Case { name: "Host with user information", request: b"GET /healthz HTTP/1.1\r\nHost: user@a\r\n\r\n".to_vec(), status: 400, error: Some("invalid_request") },
        Case { name: "Host with a non-ASCII byte", request: b"GET /healthz HTTP/1.1\r\nHost: \xe9.example\r\n\r\n".to_vec(), status: 400, error: Some("invalid_request") },
        Case { name: "Content-Length and chunked", request: b"POST /oauth2/token HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), status: 400, error: None },
        Case { name: "two Content-Lengths", request: b"POST /oauth2/token HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(), status: 400, error: None },
        Case { name: "negative Content-Length", request: b"POST /oauth2/token HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n".to_vec(), status: 400, error: None },
        Case { name: "garbage request line", request: b"HELLO\r\n\r\n".to_vec(), status: 400, error: None },
        Case { name: "header without a colon", request: b"GET /healthz HTTP/1.1\r\nHost: t\r\nbroken header\r\n\r\n".to_vec(), status: 400, error: None },
        Case { name: "NUL in a header", request: b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n".to_vec(), status: 400, error: None },
        Case { name: "200 KB header", request: format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000)).into_bytes(), status: 431, error: None },
        // SECURITY.md: a request head is at most 64 KiB, counted as the request line and each
        // `name: value` line with its CRLF. At the limit it is served; one byte more is not.
        Case { name: "head of exactly 64 KiB", request: http("GET", "/healthz", &[("X-Pad", &at_limit)], b""), status: 200, error: None },
        Case { name: "head one byte over 64 KiB", request: http("GET", "/healthz", &[("X-Pad", &over_limit)], b""), status: 431, error: None },
        Case { name: "one 100 KiB header", request: http("GET", "/healthz", &[("X-Big", &"a".repeat(100 * 1024))], b""), status: 431, error: None },
        Case { name: "60 headers of 1.5 KB", request: http("GET", "/healthz", &many_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(), b""), status: 431, error: None },
        // RFC 9112 §6.1, §6.3: only chunked, once and last; an unknown coding is 501.
        Case { name: "gzip then chunked", request: te(&["gzip, chunked"]), status: 501, error: None },
        Case { name: "deflate then chunked", request: te(&["deflate, chunked"]), status: 501, error: None },
        Case { name: "compress then chunked", request: te(&["compress, chunked"]), status: 501, error: None },
        Case { name: "x-custom then chunked", request: te(&["x-custom, chunked"]), status: 501, error: None },
        Case { name: "chunked twice in one header", request: te(&["chunked, chunked"]), status: 400, error: None },
        Case { name: "two Transfer-Encoding headers", request: te(&["chunked", "chunked"]), status: 400, error: None },
        Case { name: "obs-fold", request: b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\r\n  folded\r\n\r\n".to_vec(), status: 400, error: None },
        Case { name: "chunked form", request: format!("POST /oauth2/token HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n1d\r\ngrant_type=client_credentials\r\n0\r\n\r\n").into_bytes(), status: 200, error: None },
        // Introspection.
        Case { name: "introspect without token", request: post("/oauth2/introspect", &[a, FORM], b""), status: 400, error: Some("invalid_request") },
        Case { name: "introspect token repeated", request: post("/oauth2/introspect", &[a, FORM], format!("token={token}&token={token}").as_bytes()), status: 400, error: Some("invalid_request") },
        Case { name: "introspect unauthenticated", request: post("/oauth2/introspect", &[FORM], format!("token={token}").as_bytes()), status: 401, error: Some("invalid_client") },
        // Revocation.
        Case { name: "revoke without token", request: post("/oauth2/revoke", &[a, FORM], b""), status: 400, error: Some("invalid_request") },
        Case { name: "revoke garbage", request: post("/oauth2/revoke", &[a, FORM], b"token=garbage"), status: 200, error: None },
        Case { name: "revoke another client's token", request: post("/oauth2/revoke", &[a, FORM], format!("token={other_token}").as_bytes()), status: 400, error: Some("unauthorized_client") },
        Case { name: "revoke a forged token", request: post("/oauth2/revoke", &[("Authorization", &other_auth), FORM], format!("token={tampered}").as_bytes()), status: 200, error: None },
        Case { name: "revoke unauthenticated", request: post("/oauth2/revoke", &[FORM], format!("token={token}").as_bytes()), status: 401, error: Some("invalid_client") },
        // The admin API with forged or wrong tokens.
        Case { name: "admin without a token", request: http("GET", "/admin/v1/clients", &[], b""), status: 401, error: None },
        Case { name: "admin with a client token", request: http("GET", "/admin/v1/clients", &[("Authorization", &format!("Bearer {token}"))], b""), status: 401, error: None },
        Case { name: "admin with alg none", request: http("GET", "/admin/v1/clients", &[("Authorization", &format!("Bearer {alg_none}"))], b""), status: 401, error: None },
        // RFC 6750 §2.3, §3.1, read alike by the admin API, userinfo and tessera-verify: a token in
        // the query or two Authorization fields are malformed (400), another scheme is no
        // credentials (401 without an error code).
        Case { name: "admin token in the query", request: http("GET", &format!("/admin/v1/clients?access_token={token}"), &[], b""), status: 400, error: Some("invalid_request") },
        Case { name: "admin with Basic", request: http("GET", "/admin/v1/clients", &[("Authorization", &basic("a:b"))], b""), status: 401, error: Some("unauthorized") },
        Case { name: "admin with two Authorization fields", request: http("GET", "/admin/v1/clients", &[("Authorization", &format!("Bearer {token}")), ("Authorization", &format!("Bearer {token}"))], b""), status: 400, error: Some("invalid_request") },
        Case { name: "admin with a token that is not a b64token", request: http("GET", "/admin/v1/clients", &[("Authorization", "Bearer a\"b")], b""), status: 400, error: Some("invalid_request") },
        Case { name: "userinfo with Basic", request: http("GET", "/oauth2/userinfo", &[("Authorization", &basic("a:b"))], b""), status: 401, error: None },
        Case { name: "userinfo token in the query", request: http("GET", &format!("/oauth2/userinfo?access_token={token}"), &[], b""), status: 400, error: None },
        Case { name: "userinfo with two Authorization fields", request: http("GET", "/oauth2/userinfo", &[("Authorization", &format!("Bearer {token}")), ("Authorization", &format!("Bearer {token}"))], b""), status: 400, error: None },
        Case { name: "admin body over 64 KiB", request: http("POST", "/admin/v1/clients", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], &vec![b' '; 70_000]), status: 413, error: Some("invalid_request") },
    ];
    // Forged tokens at introspection: never active.
    for (name, t) in [
        ("introspect alg none", &alg_none),
        ("introspect HS256", &hs256),
        ("introspect tampered payload", &tampered),
        ("introspect 5 KB token", &huge_token),
        ("introspect two segments", &"a.b".to_string()),
    ] {
        cases.push(Case {
            name,
            request: post("/oauth2/introspect", &[a, FORM], format!("token={t}").as_bytes()),
            status: 200,
            error: None,
        });
    }
    assert!(cases.len() >= 60, "{} cases", cases.len());

    let addr = p.base.trim_start_matches("http://").to_string();
    let mut failures = Vec::new();
    for case in &cases {
        let (status, head, body) = send(&addr, &case.request).await;
        let error = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string));
        if status != case.status || (case.error.is_some() && error.as_deref() != case.error) {
            failures.push(format!(
                "{}: got {status} {error:?}, want {} {:?}\n{head}\n{body}",
                case.name, case.status, case.error
            ));
        }
        if case.name.starts_with("introspect") && case.status == 200 {
            assert_eq!(body.trim(), r#"{"active":false}"#, "{}", case.name);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Still serving, and nothing changed.
    let r = http_client
        .get(format!("{}/healthz", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = snapshot(dir.path());
    assert_eq!(before, after, "a hostile request changed the store");
    let introspected: serde_json::Value = http_client
        .post(format!("{}/oauth2/introspect", p.base))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "the client's token was revoked");
    p.stop();
    let log = p.stderr();
    assert!(!log.contains("panicked"), "{log}");
    // A hostile request is the client's error, never the server's (PostgreSQL once logged one
    // for a NUL byte it could not store).
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("\"error\""))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    for (what, s) in [
        ("secret", secret.as_str()),
        ("other secret", other_secret.as_str()),
        ("token", token.as_str()),
        ("token signature", sig),
        ("other token", other_token.as_str()),
        ("forged token", tampered.as_str()),
    ] {
        assert!(!log.contains(s), "the {what} reached the log");
    }
}

/// RFC 9112 §6.3: after a framing error the rest of the connection cannot be trusted (a proxy in
/// front may have framed it differently), so the server answers once and closes: a request
/// smuggled behind the first is never served.
#[tokio::test]
async fn a_framing_error_closes_the_connection_so_nothing_is_smuggled_behind_it() {
    let s = kit::start(kit::Opts::default()).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let smuggled = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    for framing in [
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    ] {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!("POST /oauth2/token HTTP/1.1\r\nHost: t\r\n{framing}\r\n0\r\n\r\n{smuggled}");
        c.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut out))
            .await
            .expect("the connection was left open")
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{framing}: {text}");
        assert!(
            text.starts_with("HTTP/1.1 400") || text.starts_with("HTTP/1.1 501"),
            "{text}"
        );
        assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    }
    // A well-framed request on the same kind of connection is followed by the next one.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(
        format!("{smuggled}GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out).matches("HTTP/1.1 200").count(), 2);
}
