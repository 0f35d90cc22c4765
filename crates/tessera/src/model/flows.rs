//! How a client may get tokens: the grant type names, its kind (public or confidential), its
//! redirect URIs, and the rules a registration must follow.

/// The grant type of machine clients (RFC 6749 §4.4).
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// The grant type of apps that sign people in (RFC 6749 §4.1).
pub const AUTHORIZATION_CODE: &str = "authorization_code";
/// Renewing tokens without the user (RFC 6749 §6).
pub const REFRESH_TOKEN: &str = "refresh_token";

/// Every grant type a client may be registered for, in the order discovery lists them. The
/// token endpoint has one module per name (`oauth::grants`), and a test holds the two together.
pub const GRANT_TYPES: &[&str] = &[CLIENT_CREDENTIALS, AUTHORIZATION_CODE, REFRESH_TOKEN];

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
}

impl Default for Flows {
    fn default() -> Self {
        Flows {
            public: false,
            grant_types: vec![CLIENT_CREDENTIALS.to_string()],
            redirect_uris: Vec::new(),
            first_party: false,
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
    if flows.allows(REFRESH_TOKEN) && !flows.allows(AUTHORIZATION_CODE) {
        return Err("refresh_token needs authorization_code".into());
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
        };
        assert_eq!(validate_flows(&Flows::default()), Ok(()));
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
