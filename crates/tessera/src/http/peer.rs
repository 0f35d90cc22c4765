//! The connection's peer, as the server gives it to every request (axum's `ConnectInfo`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;

/// The address of the peer of the connection a request came on (the unspecified address for a
/// request that came through no connection, such as a router-level test's).
pub fn peer(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}
