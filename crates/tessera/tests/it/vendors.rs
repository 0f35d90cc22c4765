//! The four documented token endpoints (`shared/seeds/`): each page's own example request, sent
//! as the page writes it to a Tessera serving the vendor presets, gets the response the page
//! documents.

use std::io::{Read, Write};

use serde_json::{Value, json};
use tessera::admin::NewClient;

use crate::kit::{self, Opts, decode_unverified};

async fn server() -> kit::Server {
    kit::start(Opts {
        presets: Some("all"),
        ..Default::default()
    })
    .await
}

/// Runs a shell command without blocking the runtime the in-process server answers on.
async fn run_shell(cmd: &str) -> Value {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// IST SkolID: `curl --form` (a multipart body) with the credentials as form fields.
#[tokio::test]
async fn ist_skolid_example_curl_works_as_written() {
    let s = server().await;
    let (id, secret) = s.client("skolid.profile", &[]).await;
    // The page's example, with its URL's base and the placeholders replaced.
    let page = "curl --location --request POST 'https://skolid.se/connect/token' \\\n\
                --form 'grant_type=client_credentials' \\\n\
                --form 'client_id=<INSERT CLIENT ID>' \\\n\
                --form 'client_secret=<INSERT CLIENT SECRET>'";
    let cmd = page
        .replace("https://skolid.se", &s.base)
        .replace("<INSERT CLIENT ID>", &id)
        .replace("<INSERT CLIENT SECRET>", &secret)
        .replace("curl ", "curl -s ");
    let body = run_shell(&cmd).await;
    assert!(body["access_token"].is_string(), "{body}");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "skolid.profile");
    // "Basic Auth can also be used."
    let basic = run_shell(&format!(
        "curl -s -u '{id}:{secret}' --form grant_type=client_credentials {}/connect/token",
        s.base
    ))
    .await;
    assert_eq!(basic["scope"], "skolid.profile");
    // The strict default path still takes forms only.
    let r = s
        .http
        .post(s.url("/oauth2/token"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body("--B\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--B--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Multipart is held to the form rules: a repeated field is refused.
    let repeated = run_shell(&format!(
        "curl -s --form grant_type=client_credentials --form grant_type=client_credentials \
         --form client_id={id} --form client_secret={secret} {}/connect/token",
        s.base
    ))
    .await;
    assert_eq!(repeated["error"], "invalid_request", "{repeated}");
}

/// The configuration API: its raw HTTP example, where `scope` names the host of the service.
#[tokio::test]
async fn configapi_raw_http_example_works_as_written() {
    let s = server().await;
    let (id, secret) = s
        .client(
            "config:read config:write",
            &["https://example.com", "https://other.example"],
        )
        .await;
    let body =
        format!("grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=example.com");
    // The page's request line and headers; a real client adds the length and may close.
    let request = format!(
        "POST /configapi/v2/oauth/token HTTP/1.1\r\nHost: example.com\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let addr = s.base.trim_start_matches("http://").to_string();
    let raw = tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let json: Value = serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert!(json["access_token"].is_string());
    assert_eq!(json["token_type"], "Bearer");
    assert!(
        json["expires_in"].is_u64(),
        "a number, not the page's \"3599\" string"
    );
    let (_, claims) = decode_unverified(json["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://example.com");
    assert_eq!(claims["scope"], "config:read config:write");

    // `scope` is required there, and must name one of the client's hosts.
    let form = |scope: Option<&str>| {
        let mut f = vec![("grant_type", "client_credentials")];
        if let Some(sc) = scope {
            f.push(("scope", sc));
        }
        f.into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    // A host with two of the client's audiences is not guessed at.
    let (two, two_secret) = s
        .client("c", &["https://example.com/a", "https://example.com/b"])
        .await;
    let r = s
        .http
        .post(s.url("/configapi/v2/oauth/token"))
        .basic_auth(&two, Some(&two_secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    for (scope, error) in [
        (None, "invalid_request"),
        (Some("unknown.example"), "invalid_scope"),
    ] {
        let r = s
            .http
            .post(s.url("/configapi/v2/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&form(scope))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], error);
    }
}

/// Screening Eagle ID: HTTP Basic only, and errors as `{"error", "errorDescription"}`.
#[tokio::test]
async fn screening_eagle_example_works_and_errors_carry_error_description() {
    let s = server().await;
    let (id, secret) = s.client("openid email profile inspect", &[]).await;
    let r = s
        .http
        .post(s.url("/api/id/v1/auth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "openid email profile inspect"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "openid email profile inspect");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string());
    assert!(body["expires_in"].is_u64());

    // The page requires Basic: form credentials are refused, with both descriptions.
    let r = s
        .http
        .post(s.url("/api/id/v1/auth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["errorDescription"].as_str().unwrap().contains("Basic"),
        "{body}"
    );
    assert_eq!(body["errorDescription"], body["error_description"]);
    // The default path answers the RFC's shape only.
    let r = s
        .token_basic(&id, "wrong", &[("grant_type", "client_credentials")])
        .await;
    let body: Value = r.json().await.unwrap();
    assert!(body.get("errorDescription").is_none(), "{body}");
}

/// Instructure: `scope` in the answer is `SERVICE_ID principal:… partner:… region:…`, built from
/// the client's claims.
#[tokio::test]
async fn instructure_example_answers_with_principal_partner_and_region() {
    let s = server().await;
    let (id, secret) = s
        .client_with(NewClient {
            name: "dap client".into(),
            scope: "dap principal:{principal} partner:{partner} region:{region}".into(),
            claims: json!({"principal": "inst-1234", "partner": "partner-77", "region": "us-east-1"})
                .as_object()
                .cloned()
                .unwrap(),
            ..Default::default()
        })
        .await;
    // As the page's shell example does: curl with --user and the grant type.
    let body = run_shell(&format!(
        "curl -s -X POST {}/ids/auth/login --user '{id}:{secret}' --data-urlencode grant_type=client_credentials",
        s.base
    ))
    .await;
    assert_eq!(
        body["scope"], "dap principal:inst-1234 partner:partner-77 region:us-east-1",
        "{body}"
    );
    assert!(
        body["token_type"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("bearer")
    );
    assert_eq!(body["expires_in"], 3600);
    let (_, claims) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["principal"].as_str(), claims["region"].as_str()),
        (Some("inst-1234"), Some("us-east-1"))
    );
}
