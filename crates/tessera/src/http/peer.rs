//! The connection's peer, as the server gives it to every request (axum's `ConnectInfo`), and
//! the client certificate it presented.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::HeaderValue;

use crate::app::App;
use crate::model::auth::PeerCertificate;
use crate::oauth::admission::Connection;

/// The address of the peer of the connection a request came on (the unspecified address for a
/// request that came through no connection, such as a router-level test's).
pub fn peer(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// The connection a request came on: its peer, and the client certificate of its TLS handshake
/// or, from a trusted proxy only, of the `[mtls] proxy_header` (URL-encoded PEM, as nginx's
/// `$ssl_client_escaped_cert`; the header from any other peer is ignored).
pub fn connection(
    app: &App,
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
) -> Connection {
    let peer = peer(extensions);
    let mut certificate = extensions.get::<Arc<PeerCertificate>>().cloned();
    if certificate.is_none() {
        if let Some(name) = app.settings.mtls.as_ref().and_then(|m| m.proxy_header.as_ref()) {
            if app.guard.is_trusted_proxy(peer) {
                certificate = forwarded_certificate(headers.get(name));
            }
        }
    }
    Connection { peer, certificate }
}

/// A certificate a proxy forwarded: one header, URL-encoded PEM.
fn forwarded_certificate(value: Option<&HeaderValue>) -> Option<Arc<PeerCertificate>> {
    let der = tessera_verify::certificate_from_header(value?.as_bytes())?;
    Some(Arc::new(PeerCertificate { chain: vec![der] }))
}
