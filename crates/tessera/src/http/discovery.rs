//! Discovery: RFC 8414 authorization-server metadata, the OpenID Connect discovery document, and
//! the JWKS (RFC 7517).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::{App, Metadata};
use crate::config::Settings;

pub use crate::model::paths::TOKEN_PATH;
/// Path of the authorization endpoint (RFC 6749 §3.1).
pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";
/// Path of the introspection endpoint (RFC 7662).
pub const INTROSPECT_PATH: &str = "/oauth2/introspect";
/// Path of the revocation endpoint (RFC 7009).
pub const REVOKE_PATH: &str = "/oauth2/revoke";
/// Path of the JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// RFC 8414 well-known suffix.
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect discovery suffix.
pub const OPENID_METADATA: &str = "/.well-known/openid-configuration";

/// Both metadata documents, built from the settings (once, at start).
pub fn metadata(settings: &Settings) -> Metadata {
    use crate::model::auth::ASSERTION_ALGORITHM_NAMES;
    use crate::oauth::client_auth::METHODS;
    use crate::oauth::oidc::{CLAIMS_SUPPORTED, LOGOUT_PATH, OIDC_SCOPES, USERINFO_PATH};
    let auth_methods: Vec<&str> = METHODS
        .iter()
        .filter(|m| m.available(settings))
        .flat_map(|m| m.names())
        .copied()
        .collect();
    // RFC 7662 §2.1: introspection needs a client that proves who it is.
    let introspection_methods: Vec<&str> = METHODS
        .iter()
        .filter(|m| m.available(settings) && m.proves_possession())
        .flat_map(|m| m.names())
        .copied()
        .collect();
    let grant_types: Vec<&str> = crate::oauth::grants::GRANTS.iter().map(|g| g.name()).collect();
    let doc = json!({
        "issuer": settings.issuer,
        "authorization_endpoint": settings.endpoint(AUTHORIZE_PATH),
        "token_endpoint": settings.endpoint(TOKEN_PATH),
        "device_authorization_endpoint": settings.endpoint(crate::oauth::device::DEVICE_AUTHORIZATION_PATH),
        "jwks_uri": settings.endpoint(JWKS_PATH),
        "userinfo_endpoint": settings.endpoint(USERINFO_PATH),
        "end_session_endpoint": settings.endpoint(LOGOUT_PATH),
        "grant_types_supported": grant_types,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "scopes_supported": OIDC_SCOPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [crate::signing::ID_TOKEN_ALG.as_str()],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHM_NAMES,
        "introspection_endpoint": settings.endpoint(INTROSPECT_PATH),
        "introspection_endpoint_auth_methods_supported": introspection_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHM_NAMES,
        "revocation_endpoint": settings.endpoint(REVOKE_PATH),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHM_NAMES,
        // RFC 9449 §5.1: DPoP proofs, at the token, userinfo and admin endpoints.
        "dpop_signing_alg_values_supported": tessera_verify::dpop::ALGORITHM_NAMES,
    });
    // RFC 8705 §3.3: certificate-bound tokens, with mutual TLS.
    let mut doc = doc;
    if settings.mtls.is_some() {
        doc["tls_client_certificate_bound_access_tokens"] = true.into();
    }
    // RFC 8414 §2 / RFC 7591: the registration endpoint, when clients may register.
    if settings.registration.mode != crate::config::RegistrationMode::Off {
        doc["registration_endpoint"] = settings
            .endpoint(crate::admin::registration::REGISTER_PATH)
            .into();
    }
    // Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document §6).
    if settings.registration.metadata_documents {
        doc["client_id_metadata_document_supported"] = true.into();
    }
    // One document serves both: RFC 8414 allows every OpenID Connect member.
    let oauth = doc.to_string();
    Metadata {
        oauth: oauth.into(),
        openid: doc.to_string().into(),
    }
}

fn json_response(body: Arc<str>, cache: &str) -> Response {
    let mut r = Response::new(axum::body::Body::from(body.as_bytes().to_vec()));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    r
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn oauth_metadata(State(app): State<Arc<App>>) -> Response {
    json_response(app.metadata.oauth.clone(), "public, max-age=3600")
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_metadata(State(app): State<Arc<App>>) -> Response {
    json_response(app.metadata.openid.clone(), "public, max-age=3600")
}

/// `GET /.well-known/jwks.json`: public keys only, with a cache lifetime that key rotation
/// respects (a new key is published at least this long before it signs).
pub async fn jwks(State(app): State<Arc<App>>) -> Response {
    let keys = app.keys.get();
    let cache = format!("public, max-age={}", app.settings.jwks_max_age.as_secs());
    let mut r = json_response(keys.jwks_json.clone(), &cache);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    r
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the node can issue tokens. It always can once started (its signing key and
/// clients are in memory), so the status is 200 even while the store is away; the body says
/// whether the store answers and how long ago the caches last caught up with it, for operators
/// and for load-balancer checks that want to act on it.
///
/// It is 503 while the node shuts down (so a load balancer stops sending it work before it stops
/// accepting) and while it cannot open a signing key the store holds (sealed under a master key
/// this node was not given): the node then signs with the old key, and `reason` says why.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let store_ok = app.store.ping().await;
    let age = (app.clock.now() - app.synced.at()).max(0);
    let store = if store_ok { "ok" } else { "unavailable" };
    match app.readiness.problem() {
        None => axum::Json(json!({
            "status": "ready",
            "store": store,
            "synced_seconds_ago": age,
        }))
        .into_response(),
        Some(reason) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "status": "not_ready",
                "reason": reason,
                "store": store,
                "synced_seconds_ago": age,
            })),
        )
            .into_response(),
    }
}
