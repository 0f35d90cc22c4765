//! How a client may get tokens: the grant type names, its kind (public or confidential), its
//! redirect URIs, how it authenticates and with which keys, and the rules a registration must
//! follow.

use super::auth::{self, TokenAuth};

/// The grant type of machine clients (RFC 6749 §4.4).
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// The grant type of apps that sign people in (RFC 6749 §4.1).
pub const AUTHORIZATION_CODE: &str = "authorization_code";
/// Renewing tokens without the user (RFC 6749 §6).
pub const REFRESH_TOKEN: &str = "refresh_token";

/// A token for a platform token of a trusted issuer (RFC 7523 §2.1, workload identity
/// federation).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A token for another token (RFC 8693 token exchange: delegation and impersonation).
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Signing a person in on another screen (RFC 8628 device authorization): devices without a
/// browser, command-line tools.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Every grant type a client may be registered for, in the order discovery lists them. The
/// token endpoint has one module per name (`oauth::grants`), and a test holds the two together.
pub const GRANT_TYPES: &[&str] = &[
    CLIENT_CREDENTIALS,
    AUTHORIZATION_CODE,
    REFRESH_TOKEN,
    JWT_BEARER,
    TOKEN_EXCHANGE,
    DEVICE_CODE,
];

/// How a client may get tokens: its type, its grant types and, for the authorization code
/// flow, where it may be sent back to. Stored as one JSON object; missing members take the
/// defaults of a confidential machine client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flows {
    /// A public client (RFC 6749 §2.1: a single-page or native app) has no secret and
    /// authenticates with `none`; only confidential clients may use client credentials.
    pub public: bool,
    /// The grant types it may use.
    pub grant_types: Vec<String>,
    /// Its redirect URIs, matched exactly (loopback ports excepted, RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// A first-party app: its users are not asked for consent.
    pub first_party: bool,
    /// How a confidential client authenticates (RFC 7591 `token_endpoint_auth_method`).
    #[serde(
        rename = "token_endpoint_auth_method",
        skip_serializing_if = "TokenAuth::is_secret"
    )]
    pub auth: TokenAuth,
    /// Its public keys, inline (a JWK Set), for `private_key_jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where it publishes its public keys, for `private_key_jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The subject its certificate carries, for `tls_client_auth`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth: Option<auth::TlsSubject>,
    /// The SHA-256 thumbprints of its certificates, for `self_signed_tls_client_auth`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_client_certificates: Vec<String>,
    /// Its access tokens are bound to the TLS client certificate it presents (RFC 8705 §3).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// Its access tokens are always bound to a DPoP key (RFC 9449 §5.2): a token request
    /// without a proof is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
    /// What it may exchange (RFC 8693), when it may use the token exchange grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<Box<super::exchange::ExchangePolicy>>,
}

impl Default for Flows {
    fn default() -> Self {
        Flows {
            public: false,
            grant_types: vec![CLIENT_CREDENTIALS.to_string()],
            redirect_uris: Vec::new(),
            first_party: false,
            auth: TokenAuth::ClientSecret,
            jwks: None,
            jwks_uri: None,
            tls_client_auth: None,
            tls_client_certificates: Vec::new(),
            tls_client_certificate_bound_access_tokens: false,
            dpop_bound_access_tokens: false,
            token_exchange: None,
        }
    }
}

impl Flows {
    /// Whether it may use `grant_type`.
    pub fn allows(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// Most redirect URIs per client.
pub const MAX_REDIRECT_URIS: usize = 20;

/// Checks how a client may get tokens: known grant types, no client credentials for a public
/// client (RFC 6749 §4.4: confidential clients only), a redirect URI for the authorization code
/// flow, refresh tokens only beside it, valid and distinct redirect URIs.
pub fn validate_flows(flows: &Flows) -> Result<(), String> {
    if flows.grant_types.is_empty() {
        return Err("a client needs at least one grant type".into());
    }
    for (i, g) in flows.grant_types.iter().enumerate() {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(format!("unknown grant type {g:?} ({})", GRANT_TYPES.join(", ")));
        }
        if flows.grant_types[..i].contains(g) {
            return Err(format!("grant type {g} given twice"));
        }
    }
    if flows.public && flows.allows(CLIENT_CREDENTIALS) {
        return Err("a public client cannot use client_credentials (RFC 6749 §4.4)".into());
    }
    if flows.public && flows.allows(JWT_BEARER) {
        return Err("a public client cannot use the JWT bearer grant".into());
    }
    if flows.public && flows.allows(TOKEN_EXCHANGE) {
        return Err(
            "a public client cannot exchange tokens (RFC 8693 §2.1: the client authenticates)".into(),
        );
    }
    match (&flows.token_exchange, flows.allows(TOKEN_EXCHANGE)) {
        (Some(p), true) => p.validate()?,
        (None, true) => {
            return Err(
                "token exchange needs an exchange policy (its audiences, delegation or impersonation)".into(),
            );
        }
        (Some(_), false) => return Err(format!("an exchange policy goes with the {TOKEN_EXCHANGE} grant")),
        (None, false) => {}
    }
    if flows.allows(REFRESH_TOKEN) && !flows.allows(AUTHORIZATION_CODE) && !flows.allows(DEVICE_CODE) {
        return Err(format!("refresh_token needs authorization_code or {DEVICE_CODE}"));
    }
    if flows.allows(AUTHORIZATION_CODE) && flows.redirect_uris.is_empty() {
        return Err("authorization_code needs at least one redirect URI".into());
    }
    if flows.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(format!("at most {MAX_REDIRECT_URIS} redirect URIs"));
    }
    for (i, uri) in flows.redirect_uris.iter().enumerate() {
        super::redirect::validate(uri).map_err(|e| format!("{uri:?}: {e}"))?;
        if flows.redirect_uris[..i].contains(uri) {
            return Err(format!("redirect URI {uri} given twice"));
        }
    }
    validate_keys(flows)
}

/// Checks how a client authenticates: keys inline or at an address (RFC 7591 §2: not both),
/// valid; a public client has no method but `none`.
fn validate_keys(flows: &Flows) -> Result<(), String> {
    if flows.jwks.is_some() && flows.jwks_uri.is_some() {
        return Err("give jwks or jwks_uri, not both (RFC 7591 §2)".into());
    }
    if let Some(jwks) = &flows.jwks {
        auth::validate_jwks(jwks)?;
    }
    if let Some(uri) = &flows.jwks_uri {
        auth::validate_jwks_uri(uri)?;
    }
    // Without keys of its own, a key client's assertions come from trusted issuers (trust
    // policies, workload identity federation).
    if flows.public && !flows.auth.is_secret() {
        return Err(format!(
            "a public client authenticates with none, not {}",
            flows.auth.name()
        ));
    }
    if let Some(subject) = &flows.tls_client_auth {
        subject.validate()?;
    }
    if flows.auth == TokenAuth::TlsClientAuth && flows.tls_client_auth.is_none() {
        return Err("tls_client_auth needs the subject its certificate carries (a DN or a SAN)".into());
    }
    if flows.tls_client_certificates.len() > auth::MAX_CLIENT_CERTIFICATES
        || flows.tls_client_certificates.iter().any(|t| {
            t.len() != 43
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    {
        return Err(format!(
            "at most {} certificate thumbprints, each a SHA-256 in base64url",
            auth::MAX_CLIENT_CERTIFICATES
        ));
    }
    if flows.auth == TokenAuth::SelfSignedTlsClientAuth && flows.tls_client_certificates.is_empty() {
        return Err("self_signed_tls_client_auth needs the client's certificate".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows() {
        let web = |grants: &[&str], uris: &[&str], public: bool| Flows {
            public,
            grant_types: grants.iter().map(|g| g.to_string()).collect(),
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            first_party: false,
            ..Flows::default()
        };
        assert_eq!(validate_flows(&Flows::default()), Ok(()));
        let keyed = |jwks: bool, uri: bool| Flows {
            auth: TokenAuth::PrivateKeyJwt,
            jwks: jwks.then(|| {
                serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})
            }),
            jwks_uri: uri.then(|| "https://app.example/jwks".to_string()),
            ..Flows::default()
        };
        assert_eq!(validate_flows(&keyed(true, false)), Ok(()));
        assert_eq!(validate_flows(&keyed(false, true)), Ok(()));
        assert_eq!(
            validate_flows(&keyed(false, false)),
            Ok(()),
            "keys from trust policies"
        );
        assert!(validate_flows(&keyed(true, true)).is_err());
        // Stored as before for a secret client; a key client's record names its method.
        assert_eq!(
            serde_json::to_value(Flows::default()).unwrap(),
            serde_json::json!({"public": false, "grant_types": ["client_credentials"], "redirect_uris": [], "first_party": false})
        );
        let stored = serde_json::to_value(keyed(false, true)).unwrap();
        assert_eq!(stored["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(
            serde_json::from_value::<Flows>(stored).unwrap(),
            keyed(false, true)
        );
        let cb = ["https://app.example/cb"];
        assert_eq!(
            validate_flows(&web(&["authorization_code", "refresh_token"], &cb, true)),
            Ok(())
        );
        assert!(validate_flows(&web(&[], &[], false)).is_err());
        assert!(validate_flows(&web(&["password"], &[], false)).is_err());
        assert!(validate_flows(&web(&["client_credentials"], &[], true)).is_err());
        assert!(validate_flows(&web(&["refresh_token"], &cb, false)).is_err());
        assert!(validate_flows(&web(&["authorization_code"], &[], false)).is_err());
        assert!(validate_flows(&web(&["authorization_code"], &["http://evil.example/cb"], false)).is_err());
        assert!(validate_flows(&web(&["authorization_code"], &[cb[0], cb[0]], false)).is_err());
        assert!(validate_flows(&web(&["client_credentials", "client_credentials"], &[], false)).is_err());
    }
}
