//! Operating a node: TLS (with a certificate swapped while serving), JSON logs with request ids,
//! graceful shutdown under load, start-up errors as one line.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kit;

/// A self-signed certificate for localhost and 127.0.0.1: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// Connects with TLS trusting `ca_pem`, asking for `alpn`; returns the stream.
async fn connect(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    try_connect(addr, ca_pem, alpn).await.unwrap()
}

async fn try_connect(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_http1_and_http2_and_picks_up_a_new_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert1, key1) = certificate();
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, &cert1).unwrap();
    std::fs::write(&key_path, &key1).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let src = |v: String| Some((v, "test".to_string()));
    let over = tessera::config::Overrides {
        listen: src("127.0.0.1:0".into()),
        issuer: src(format!("https://localhost:{}", addr.port())),
        database: src(kit::db_url(dir.path())),
        bootstrap: src("false".into()),
        master_key_file: src(dir.path().join("master.key").display().to_string()),
        tls_cert_file: src(cert_path.display().to_string()),
        tls_key_file: src(key_path.display().to_string()),
        ..Default::default()
    };
    // Idle connections are closed after a second here, HSTS for a day.
    let config = dir.path().join("t.toml");
    std::fs::write(&config, "idle_timeout = 1\nhsts_max_age = 86400\n").unwrap();
    let settings = tessera::config::Settings::load(Some(&config), &over).unwrap();
    let running = tessera::server::start_with_listener(settings, Some(listener))
        .await
        .unwrap();
    assert!(running.base_url().starts_with("https://"));

    // HTTP/1.1 over TLS.
    let mut s = connect(addr, &cert1, &[b"http/1.1"]).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    // A TLS listener tells browsers to come back over TLS only (RFC 6797), for the configured time.
    assert!(
        out.to_ascii_lowercase()
            .contains("\r\nstrict-transport-security: max-age=86400\r\n"),
        "{out}"
    );
    // A kept-alive HTTP/1.1 connection with nothing in flight is closed after idle_timeout.
    let mut s = connect(addr, &cert1, &[b"http/1.1"]).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "an idle HTTP/1.1 connection was kept open");
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    // HTTP/2 is offered and chosen by a client that asks for it; an idle HTTP/2 connection is
    // sent a GOAWAY (frame type 7) and closed (this client never answers the server's PING, so
    // the close comes after the short wait the server gives an idle connection's goodbye).
    let mut s = connect(addr, &cert1, &[b"h2", b"http/1.1"]).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut frames = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut frames)).await;
    assert!(closed.is_ok(), "an idle HTTP/2 connection was kept open");
    let mut at = 0;
    let mut types = Vec::new();
    while at + 9 <= frames.len() {
        let len = (usize::from(frames[at]) << 16)
            | (usize::from(frames[at + 1]) << 8)
            | usize::from(frames[at + 2]);
        types.push(frames[at + 3]);
        at += 9 + len;
    }
    assert!(types.contains(&7), "no GOAWAY among frames {types:?}");
    // And spoken: curl over HTTP/2, where curl is installed.
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert1).unwrap();
    let url = format!("https://localhost:{}/healthz", addr.port());
    let curl = tokio::process::Command::new("curl")
        .args(["-s", "--http2", "--cacert", &ca.display().to_string()])
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
        .args(["-w", "\n%{http_version} %{http_code}", &url])
        .output()
        .await;
    match curl {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(text.ends_with("\n2 200"), "{text}");
            // Over HTTP/2 each request runs in a task of its own: the peer's address must still
            // reach the handlers (rate limits, back-off, the audit trail).
            let created = kit::register(
                &running,
                tessera::admin::NewClient {
                    name: "h2 ops".into(),
                    admin: true,
                    ..Default::default()
                },
            )
            .await;
            let base = format!("https://localhost:{}", addr.port());
            let curl = |args: Vec<String>| {
                let ca = ca.clone();
                async move {
                    let out = tokio::process::Command::new("curl")
                        .args(["-s", "--http2", "--cacert", &ca.display().to_string()])
                        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
                        .args(&args)
                        .output()
                        .await
                        .unwrap();
                    String::from_utf8_lossy(&out.stdout).to_string()
                }
            };
            let token: serde_json::Value = serde_json::from_str(
                &curl(vec![
                    "-u".into(),
                    format!("{}:{}", created.client.id, created.secret),
                    "-d".into(),
                    "grant_type=client_credentials".into(),
                    format!("{base}/oauth2/token"),
                ])
                .await,
            )
            .unwrap();
            let token = token["access_token"].as_str().unwrap();
            let answer = curl(vec![
                "-H".into(),
                format!("Authorization: Bearer {token}"),
                "-H".into(),
                "Content-Type: application/json".into(),
                "-d".into(),
                r#"{"name":"made over h2"}"#.into(),
                "-w".into(),
                "\n%{http_version} %{http_code}".into(),
                format!("{base}/admin/v1/clients"),
            ])
            .await;
            assert!(answer.ends_with("\n2 201"), "{answer}");
            let events = running.app.store.audit_events(0, 0, 100).await.unwrap();
            let last = events.last().unwrap();
            assert_eq!(last.entry.action, "client.create");
            assert_eq!(last.entry.source, "127.0.0.1", "the peer was lost over HTTP/2");
        }
        Err(_) if std::env::var_os("CI").is_none() => eprintln!("*** curl not installed: HTTP/2 not spoken"),
        Err(e) => panic!("curl: {e}"),
    }

    // A new certificate written over the old one is served without a restart.
    let (cert2, key2) = certificate();
    std::fs::write(&key_path, &key2).unwrap();
    std::fs::write(&cert_path, &cert2).unwrap();
    let new_der = CertificateDer::from_pem_slice(cert2.as_bytes()).unwrap();
    let swapped = kit::eventually(Duration::from_secs(15), || {
        let cert2 = cert2.clone();
        let new_der = new_der.clone();
        async move {
            // Until the swap, the old certificate does not verify against the new one.
            let Ok(s) = try_connect(addr, &cert2, &[b"http/1.1"]).await else {
                return false;
            };
            s.get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref())
                == Some(new_der.as_ref())
        }
    })
    .await;
    assert!(swapped, "the new certificate was not picked up");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_are_one_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bounds.toml"), "request_timeout = 0\n").unwrap();
    std::fs::write(
        dir.path().join("limits.toml"),
        "[limits]\nmax_concurrent_requests = 0\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.crt"), "not a certificate").unwrap();
    let db = format!("sqlite:{}/t.db", dir.path().display());
    let cases: &[(&[&str], &str)] = &[
        (&["--token-endpoint-aliases", "/admin/v1/clients"], "collides"),
        (&["--config", "bounds.toml"], "request_timeout"),
        (&["--config", "limits.toml"], "max_concurrent_requests"),
        (&["--listen", "0.0.0.0:0"], "without TLS"),
        (&["--tls-cert", "bad.crt"], "both a certificate and a key"),
        (&["--tls-cert", "bad.crt", "--tls-key", "bad.crt"], "bad.crt"),
        (&["--log-format", "xml"], "log format"),
    ];
    for (args, expect) in cases {
        let out = tokio::process::Command::new(kit::bin())
            .current_dir(dir.path())
            .args(["serve", "--database", &db, "--bootstrap", "false"])
            .args(*args)
            .output()
            .await
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{args:?}: {:?} {err}",
            out.status
        );
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_and_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = kit::Process::spawn(
        dir.path(),
        &["serve", "--log-format", "json"],
        &[("TESSERA_LOG", "info")],
        "json",
    )
    .await;
    let out = p.stdout();
    let id = out
        .split("client_id:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();
    let wrong = "wrong-secret-that-must-not-be-logged";
    let r = http
        .post(format!("{}/oauth2/token", p.base))
        .basic_auth(&id, Some(wrong))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let found = kit::eventually(Duration::from_secs(5), || {
        let log = p.stderr();
        let request_id = request_id.clone();
        async move {
            log.lines().any(|l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                    v["fields"]["message"] == "client authentication failed"
                        && v["span"]["id"] == request_id.as_str()
                })
            })
        }
    })
    .await;
    p.stop();
    let log = p.stderr();
    assert!(found, "no JSON line with the request id: {log}");
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(!log.contains(wrong), "a presented secret reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_under_load_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    // Limits off: the load below is far above one address's default rate.
    std::fs::write(
        dir.path().join("t.toml"),
        "shutdown_delay = 1\n[limits]\nper_address_rps = 0\nper_client_rps = 0\n",
    )
    .unwrap();
    let mut p = kit::Process::spawn(dir.path(), &["--config", "t.toml", "serve"], &[], "drain").await;
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
    let base = p.base.clone();
    let http = reqwest::Client::new();
    // A request in flight when the signal comes: its body arrives after the node turned unready.
    let addr = base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = kit::encode_form(&[("grant_type", "client_credentials")]);
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        kit::basic(&id, &secret),
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    // Load from four workers until the node stops answering.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let served = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (http, base, id, secret, stop, served) = (
                http.clone(),
                base.clone(),
                id.clone(),
                secret.clone(),
                stop.clone(),
                served.clone(),
            );
            tokio::spawn(async move {
                let (mut ok, mut bad) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match http
                        .post(format!("{base}/oauth2/token"))
                        .basic_auth(&id, Some(&secret))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {
                            ok += 1;
                            served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Ok(r) => bad.push(r.status().as_u16()),
                        // Refused connections after the node stopped accepting are expected.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                (ok, bad)
            })
        })
        .collect();
    let serving = kit::eventually(Duration::from_secs(10), || async {
        served.load(std::sync::atomic::Ordering::Relaxed) >= 20
    })
    .await;
    assert!(serving, "the workers got no token before the signal");
    let pid = p.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Unready at once, while still serving.
    let unready = kit::eventually(Duration::from_secs(1), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    assert!(unready, "the node did not turn unready on SIGTERM");
    slow.write_all(body.as_bytes()).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = p.child.try_wait().unwrap() {
                return Some(s);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit status");
    let mut served = 0;
    for w in workers {
        let (ok, bad) = w.await.unwrap();
        served += ok;
        assert!(bad.is_empty(), "requests failed while draining: {bad:?}");
    }
    assert!(served > 0);
}
