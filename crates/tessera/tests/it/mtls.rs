//! Mutual TLS client authentication (RFC 8705 §2) with real handshakes: certificates made here
//! with rcgen, Tessera's own TLS listener asking for them, `tls_client_auth` (a CA's
//! certificates, one registered subject: a DNS name, a SPIFFE ID, a DN) and
//! `self_signed_tls_client_auth` (a registered certificate), a certificate of another CA
//! refused, clients without a certificate unaffected, and a proxy's certificate header believed
//! only from a trusted address.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use tessera::admin::NewClient;
use tessera::model::auth::{TlsSubject, TokenAuth};

use crate::kit::{self, Server};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate (and its key, PEM) for `cn` with `sans`, signed by `ca` or self-signed.
fn leaf(ca: Option<&Ca>, cn: &str, sans: Vec<SanType>, client: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.distinguished_name.push(DnType::OrganizationName, "Acme");
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = match ca {
        Some(ca) => params.signed_by(&key, &ca.issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    (cert.pem(), key.serialize_pem())
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}

fn uri(u: &str) -> SanType {
    SanType::URI(u.try_into().unwrap())
}

/// A server with TLS whose listener asks for client certificates, trusting `client_ca`.
async fn server(client_ca: &Ca, proxy: Option<(&str, &str)>) -> (Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("server CA");
    let (cert, key) = leaf(
        Some(&server_ca),
        "tessera",
        vec![SanType::IpAddress("127.0.0.1".parse().unwrap())],
        false,
    );
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let roots = rustls::pki_types::CertificateDer::pem_slice_iter(client_ca.pem.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect();
    let mut limits = tessera::limits::LimitSettings {
        failures_before_backoff: 1000,
        address_failures_before_backoff: 1000,
        ..Default::default()
    };
    if let Some((header, network)) = proxy {
        limits.trusted_proxy_header = Some("X-Forwarded-For".into());
        limits.trusted_proxies = vec![network.into()];
        let _ = header;
    }
    let opts = kit::Opts {
        tls: Some(tessera::config::TlsFiles {
            cert: cert_file,
            key: key_file,
        }),
        mtls: Some(tessera::config::MtlsSettings {
            roots,
            proxy_header: proxy.map(|(h, _)| h.parse().unwrap()),
        }),
        limits: Some(limits),
        ..Default::default()
    };
    (kit::start_in(dir, opts).await, server_ca.pem)
}

/// An HTTPS client trusting `server_ca`, presenting `identity` (certificate and key PEM) if any.
fn https(server_ca: &str, identity: Option<&(String, String)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(server_ca.as_bytes()).unwrap()]);
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn token(http: &reqwest::Client, s: &Server, client_id: &str) -> reqwest::Response {
    http.post(s.url("/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", client_id)])
        .send()
        .await
        .unwrap()
}

async fn client(
    s: &Server,
    auth: TokenAuth,
    subject: Option<TlsSubject>,
    certificates: Vec<String>,
) -> String {
    let (id, secret) = s
        .client_with(NewClient {
            name: "mtls".into(),
            scope: "read".into(),
            auth,
            tls_client_auth: subject,
            tls_client_certificates: certificates,
            ..Default::default()
        })
        .await;
    assert!(secret.is_empty());
    id
}

async fn refused(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 401, "{what}");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_client",
        "{what}"
    );
}

fn thumbprint(cert_pem: &str) -> String {
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    tessera::model::auth::certificate_thumbprint(&der)
}

#[tokio::test]
async fn clients_authenticate_with_certificates_over_real_handshakes() {
    let client_ca = ca("clients CA");
    let (s, server_ca) = server(&client_ca, None).await;

    // tls_client_auth, by DNS SAN, by SPIFFE ID (an X.509-SVID) and by subject DN.
    let billing = leaf(
        Some(&client_ca),
        "billing",
        vec![dns("billing.acme.example")],
        true,
    );
    let svid = leaf(
        Some(&client_ca),
        "api",
        vec![uri("spiffe://prod.acme/ns/payments/sa/api")],
        true,
    );
    let by_dns = client(
        &s,
        TokenAuth::TlsClientAuth,
        Some(TlsSubject::SanDns("billing.acme.example".into())),
        vec![],
    )
    .await;
    let by_uri = client(
        &s,
        TokenAuth::TlsClientAuth,
        Some(TlsSubject::SanUri("spiffe://prod.acme/ns/payments/sa/api".into())),
        vec![],
    )
    .await;
    let by_dn = client(
        &s,
        TokenAuth::TlsClientAuth,
        Some(TlsSubject::SubjectDn("CN=billing, O=Acme".into())),
        vec![],
    )
    .await;
    let with_billing = https(&server_ca, Some(&billing));
    let with_svid = https(&server_ca, Some(&svid));
    for (http, id, what) in [
        (&with_billing, &by_dns, "dns"),
        (&with_svid, &by_uri, "spiffe"),
        (&with_billing, &by_dn, "dn"),
    ] {
        let r = token(http, &s, id).await;
        assert_eq!(r.status(), 200, "{what}");
        let body: Value = r.json().await.unwrap();
        let (_, claims) = kit::decode_unverified(body["access_token"].as_str().unwrap());
        assert_eq!(claims["client_id"], id.as_str(), "{what}");
    }
    // The wrong subject, another CA's certificate, a self-signed one, or none at all.
    refused(token(&with_svid, &s, &by_dns).await, "another subject").await;
    let stranger_ca = ca("another CA");
    let imposter = leaf(
        Some(&stranger_ca),
        "billing",
        vec![dns("billing.acme.example")],
        true,
    );
    refused(
        token(&https(&server_ca, Some(&imposter)), &s, &by_dns).await,
        "another CA",
    )
    .await;
    let self_made = leaf(None, "billing", vec![dns("billing.acme.example")], true);
    refused(
        token(&https(&server_ca, Some(&self_made)), &s, &by_dns).await,
        "self-signed",
    )
    .await;
    let bare = https(&server_ca, None);
    let r = token(&bare, &s, &by_dns).await;
    assert_eq!(
        r.status(),
        401,
        "no certificate: a public-client request for a confidential client"
    );

    // self_signed_tls_client_auth: the registered certificate, and only it.
    let own = client(
        &s,
        TokenAuth::SelfSignedTlsClientAuth,
        None,
        vec![thumbprint(&self_made.0)],
    )
    .await;
    assert_eq!(
        token(&https(&server_ca, Some(&self_made)), &s, &own)
            .await
            .status(),
        200
    );
    let other_self = leaf(None, "billing", vec![dns("billing.acme.example")], true);
    refused(
        token(&https(&server_ca, Some(&other_self)), &s, &own).await,
        "another self-signed certificate",
    )
    .await;

    // Clients without certificates are unaffected by the listener asking for one.
    let (secret_id, secret) = s.client("read", &[]).await;
    let r = bare
        .post(s.url("/oauth2/token"))
        .basic_auth(&secret_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A certificate alongside a secret: the secret authenticates.
    let r = with_billing
        .post(s.url("/oauth2/token"))
        .basic_auth(&secret_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let meta: Value = bare
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = meta["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("\"tls_client_auth\"") && methods.contains("\"self_signed_tls_client_auth\""));
}

#[tokio::test]
async fn a_proxy_header_is_believed_only_from_a_trusted_address() {
    let client_ca = ca("clients CA");
    let billing = leaf(
        Some(&client_ca),
        "billing",
        vec![dns("billing.acme.example")],
        true,
    );
    let encoded =
        percent_encoding::utf8_percent_encode(&billing.0, percent_encoding::NON_ALPHANUMERIC).to_string();
    for (network, trusted) in [("127.0.0.1/32", true), ("10.0.0.0/8", false)] {
        let (s, server_ca) = server(&client_ca, Some(("x-client-cert", network))).await;
        let id = client(
            &s,
            TokenAuth::TlsClientAuth,
            Some(TlsSubject::SanDns("billing.acme.example".into())),
            vec![],
        )
        .await;
        // The proxy terminated TLS; the request reaches Tessera without a certificate of its own.
        let r = https(&server_ca, None)
            .post(s.url("/oauth2/token"))
            .header("x-client-cert", &encoded)
            .form(&[("grant_type", "client_credentials"), ("client_id", id.as_str())])
            .send()
            .await
            .unwrap();
        if trusted {
            assert_eq!(r.status(), 200, "from a trusted proxy");
        } else {
            assert_eq!(r.status(), 401, "the header from an untrusted peer is ignored");
        }
    }
}

#[tokio::test]
async fn certificate_clients_through_the_cli_and_the_client_library() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(kit::cli(dir.path(), &["migrate"]).0, 0);
    let created = kit::cli_json(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "api",
            "--auth-method",
            "tls_client_auth",
            "--tls-san-uri",
            "spiffe://prod.acme/ns/payments/sa/api",
            "--json",
        ],
    );
    assert_eq!(created["client_secret"], Value::Null);
    assert_eq!(created["client"]["token_endpoint_auth_method"], "tls_client_auth");
    assert_eq!(
        created["client"]["tls_client_auth"]["san_uri"],
        "spiffe://prod.acme/ns/payments/sa/api"
    );
    let own = leaf(None, "device-7", vec![dns("device-7.acme.example")], true);
    std::fs::write(dir.path().join("device.pem"), &own.0).unwrap();
    let created = kit::cli_json(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "device",
            "--auth-method",
            "self_signed_tls_client_auth",
            "--certificate-file",
            dir.path().join("device.pem").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(
        created["client"]["tls_client_certificate_thumbprints"][0],
        thumbprint(&own.0)
    );
    let (code, _, err) = kit::cli(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "x",
            "--auth-method",
            "tls_client_auth",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("subject"), "{err}");

    // tessera-client presents the certificate.
    let client_ca = ca("clients CA");
    let (s, server_ca) = server(&client_ca, None).await;
    let svid = leaf(
        Some(&client_ca),
        "api",
        vec![uri("spiffe://prod.acme/ns/payments/sa/api")],
        true,
    );
    let id = client(
        &s,
        TokenAuth::TlsClientAuth,
        Some(TlsSubject::SanUri("spiffe://prod.acme/ns/payments/sa/api".into())),
        vec![],
    )
    .await;
    let tokens = tessera_client::TokenClient::builder_with_certificate(&id)
        .certificate(format!("{}{}", svid.0, svid.1).as_bytes())
        .unwrap()
        .root_certificate(server_ca.as_bytes())
        .unwrap()
        .issuer(&s.base)
        .build()
        .await
        .unwrap();
    assert_eq!(
        tokens.token(None, None).await.unwrap().scope.as_deref(),
        Some("read")
    );
    let without = tessera_client::TokenClient::builder_with_certificate(&id)
        .issuer(&s.base)
        .build()
        .await;
    assert!(matches!(without, Err(tessera_client::ClientError::Config(_))));
}

/// RFC 8705 §3: a client registered for bound tokens gets tokens carrying its certificate's
/// thumbprint, which introspection shows; without a certificate it gets none.
#[tokio::test]
async fn tokens_are_bound_to_the_certificate_the_client_presented() {
    let client_ca = ca("clients CA");
    let (s, server_ca) = server(&client_ca, None).await;
    let billing = leaf(
        Some(&client_ca),
        "billing",
        vec![dns("billing.acme.example")],
        true,
    );
    let (id, _) = s
        .client_with(NewClient {
            name: "bound".into(),
            scope: "read".into(),
            auth: TokenAuth::TlsClientAuth,
            tls_client_auth: Some(TlsSubject::SanDns("billing.acme.example".into())),
            certificate_bound_tokens: true,
            introspect: true,
            ..Default::default()
        })
        .await;
    let http = https(&server_ca, Some(&billing));
    let r = token(&http, &s, &id).await;
    assert_eq!(r.status(), 200);
    let access = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, claims) = kit::decode_unverified(&access);
    assert_eq!(claims["cnf"]["x5t#S256"], thumbprint(&billing.0));
    let introspected: Value = http
        .post(s.url("/oauth2/introspect"))
        .form(&[("token", access.as_str()), ("client_id", id.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["cnf"]["x5t#S256"], thumbprint(&billing.0));

    // A secret client registered for bound tokens, without a certificate: no token.
    let (secret_id, secret) = s
        .client_with(NewClient {
            name: "bound secret".into(),
            scope: "read".into(),
            certificate_bound_tokens: true,
            ..Default::default()
        })
        .await;
    let r = https(&server_ca, None)
        .post(s.url("/oauth2/token"))
        .basic_auth(&secret_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = http
        .post(s.url("/oauth2/token"))
        .basic_auth(&secret_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "with its certificate on the connection");
    let body: Value = r.json().await.unwrap();
    let (_, claims) = kit::decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["x5t#S256"], thumbprint(&billing.0));

    let meta: Value = http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["tls_client_certificate_bound_access_tokens"], true);
}

/// Tessera's own admin API honours a certificate-bound token: only over a connection that
/// presents its certificate.
#[tokio::test]
async fn the_admin_api_takes_a_bound_token_only_with_its_certificate() {
    let client_ca = ca("clients CA");
    let (s, server_ca) = server(&client_ca, None).await;
    let ops = leaf(None, "ops", vec![dns("ops.acme.example")], true);
    let (id, _) = s
        .client_with(NewClient {
            name: "ops".into(),
            admin: true,
            auth: TokenAuth::SelfSignedTlsClientAuth,
            tls_client_certificates: vec![thumbprint(&ops.0)],
            certificate_bound_tokens: true,
            ..Default::default()
        })
        .await;
    let with_ops = https(&server_ca, Some(&ops));
    let r = token(&with_ops, &s, &id).await;
    assert_eq!(r.status(), 200);
    let admin = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let list = |http: reqwest::Client| {
        let (url, admin) = (s.url("/admin/v1/clients"), admin.clone());
        async move { http.get(url).bearer_auth(admin).send().await.unwrap().status() }
    };
    assert_eq!(list(with_ops.clone()).await, 200);
    assert_eq!(list(https(&server_ca, None)).await, 401, "without a certificate");
    let other = leaf(None, "ops", vec![dns("ops.acme.example")], true);
    assert_eq!(
        list(https(&server_ca, Some(&other))).await,
        401,
        "with another certificate"
    );
}
