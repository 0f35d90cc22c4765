//! Token-endpoint paths with behaviour of their own, so that a client written against another
//! vendor's token endpoint works unchanged against Tessera at that vendor's path. The default
//! path, `/oauth2/token`, is strict RFC 6749; an extra path may relax or tighten exactly these
//! rules and nothing else:
//!
//! - which client authentication methods it accepts (`client_secret_basic`, `client_secret_post`,
//!   and those without a secret: `private_key_jwt`, mutual TLS; a preset has only its vendor's);
//! - whether `scope` is required;
//! - whether `scope` names the audience by host (`scope=example.com` for the client's registered
//!   audience `https://example.com`), granting the client's scopes, as some vendors' APIs do;
//! - whether error bodies also carry `errorDescription` (camel case) beside
//!   `error_description`;
//! - whether `multipart/form-data` bodies are accepted beside `application/x-www-form-urlencoded`
//!   (text fields only, with the same limits, duplicate and encoding rules).
//!
//! Four presets reproduce the documented token endpoints of known vendors.

use serde::Deserialize;

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth2/token";

/// What a token-endpoint path accepts and how it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRules {
    /// Accepts `client_secret_basic`.
    pub basic: bool,
    /// Accepts `client_secret_post`.
    pub post: bool,
    /// Accepts the methods without a secret (`private_key_jwt`, mutual TLS). The default path
    /// and its aliases do; a vendor's preset keeps the methods that vendor's endpoint has.
    pub secretless: bool,
    /// `scope` must be present.
    pub scope_required: bool,
    /// `scope` names the audience by host; the client's scopes are granted.
    pub scope_selects_audience: bool,
    /// Error bodies also carry `errorDescription`.
    pub camel_case_errors: bool,
    /// `multipart/form-data` bodies are accepted.
    pub multipart: bool,
}

impl PathRules {
    /// Strict RFC 6749: both authentication methods, nothing else.
    pub const STRICT: PathRules = PathRules {
        basic: true,
        post: true,
        secretless: true,
        scope_required: false,
        scope_selects_audience: false,
        camel_case_errors: false,
        multipart: false,
    };
}

impl PathRules {
    /// Whether a request authenticated with the method `name` may use this path, and if not,
    /// why. `none` (a public client naming itself in the body) goes with `client_secret_post`;
    /// a path that names its methods accepts no method it does not name.
    pub fn accepts(&self, name: &str) -> Result<(), &'static str> {
        let accepted = match name {
            "client_secret_basic" => self.basic,
            "client_secret_post" | "none" => self.post,
            _ => self.secretless,
        };
        match accepted {
            true => Ok(()),
            false if self.basic && self.post => {
                Err("this endpoint accepts client secrets only (HTTP Basic or client_secret_post)")
            }
            false if self.post => Err("this endpoint accepts client_secret_post only"),
            false => Err("this endpoint accepts HTTP Basic (client_secret_basic) only"),
        }
    }
}

impl Default for PathRules {
    fn default() -> Self {
        Self::STRICT
    }
}

/// The names of the presets, for messages.
pub const PRESET_NAMES: &str = "ist-skolid, configapi, screening-eagle, instructure (or all)";

/// The path and rules of a known vendor's token endpoint.
pub fn preset(name: &str) -> Option<(&'static str, PathRules)> {
    // A vendor's endpoint takes client secrets: so does its preset.
    let strict = PathRules {
        secretless: false,
        ..PathRules::STRICT
    };
    Some(match name {
        // IST SkolID: `curl --form` (multipart), form fields or Basic, scope optional.
        "ist-skolid" => (
            "/connect/token",
            PathRules {
                multipart: true,
                ..strict
            },
        ),
        // A configuration API whose `scope` is required and names the host the token is for.
        "configapi" => (
            "/configapi/v2/oauth/token",
            PathRules {
                scope_required: true,
                scope_selects_audience: true,
                ..strict
            },
        ),
        // Screening Eagle ID: Basic only, `errorDescription` in error bodies.
        "screening-eagle" => (
            "/api/id/v1/auth/token",
            PathRules {
                post: false,
                camel_case_errors: true,
                ..strict
            },
        ),
        // Instructure identity service: Basic (`curl --user`) or form fields.
        "instructure" => ("/ids/auth/login", strict),
        _ => return None,
    })
}

/// Every preset.
pub const ALL_PRESETS: [&str; 4] = ["ist-skolid", "configapi", "screening-eagle", "instructure"];

/// A `[[token_endpoint]]` table of the settings file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathConfig {
    /// The path; optional with a preset (which has one).
    pub path: Option<String>,
    /// Start from a preset's rules.
    pub preset: Option<String>,
    /// `client_secret_basic` and/or `client_secret_post`.
    pub auth_methods: Option<Vec<String>>,
    /// Require `scope`.
    pub scope_required: Option<bool>,
    /// `scope` names the audience by host.
    pub scope_selects_audience: Option<bool>,
    /// Add `errorDescription` to error bodies.
    pub camel_case_errors: Option<bool>,
    /// Accept `multipart/form-data`.
    pub multipart: Option<bool>,
}

impl PathConfig {
    /// The path and its rules, or what is wrong.
    pub fn resolve(&self) -> Result<(String, PathRules), String> {
        let (default_path, mut rules) = match &self.preset {
            Some(p) => {
                let (path, rules) =
                    preset(p).ok_or_else(|| format!("unknown preset {p:?}; known: {PRESET_NAMES}"))?;
                (Some(path.to_string()), rules)
            }
            None => (None, PathRules::STRICT),
        };
        let path = self
            .path
            .clone()
            .or(default_path)
            .ok_or("a [[token_endpoint]] needs a path (or a preset)")?;
        if let Some(methods) = &self.auth_methods {
            rules.basic = false;
            rules.post = false;
            rules.secretless = false;
            for m in methods {
                match m.as_str() {
                    "client_secret_basic" => rules.basic = true,
                    "client_secret_post" => rules.post = true,
                    "private_key_jwt" | "tls_client_auth" | "self_signed_tls_client_auth" => {
                        rules.secretless = true
                    }
                    other => {
                        return Err(format!(
                            "auth method {other:?}: expected client_secret_basic, client_secret_post, \
                             private_key_jwt, tls_client_auth or self_signed_tls_client_auth"
                        ));
                    }
                }
            }
            if !rules.basic && !rules.post && !rules.secretless {
                return Err(format!("{path}: auth_methods is empty"));
            }
        }
        let set = |field: &mut bool, value: Option<bool>| {
            if let Some(v) = value {
                *field = v;
            }
        };
        set(&mut rules.scope_required, self.scope_required);
        set(&mut rules.scope_selects_audience, self.scope_selects_audience);
        set(&mut rules.camel_case_errors, self.camel_case_errors);
        set(&mut rules.multipart, self.multipart);
        if rules.scope_selects_audience && !rules.scope_required {
            return Err(format!("{path}: scope_selects_audience needs scope_required"));
        }
        Ok((path, rules))
    }
}

/// The host (with its port, if any) of an absolute URI: `example.com` for
/// `https://example.com/api`.
pub fn uri_host(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_tables() {
        for name in ALL_PRESETS {
            assert!(preset(name).is_some(), "{name}");
        }
        assert!(preset("nope").is_none());
        let t = |s: &str| {
            toml::from_str::<PathConfig>(s)
                .map_err(|e| e.to_string())
                .and_then(|c| c.resolve())
        };
        let (path, rules) = t("preset = \"screening-eagle\"").unwrap();
        assert_eq!(path, "/api/id/v1/auth/token");
        assert!(rules.basic && !rules.post && rules.camel_case_errors);
        let (path, rules) =
            t("path = \"/x/token\"\nauth_methods = [\"client_secret_post\"]\nmultipart = true").unwrap();
        assert_eq!(path, "/x/token");
        assert!(!rules.basic && rules.post && rules.multipart);
        assert!(
            t("auth_methods = []\npath = \"/x\"")
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            t("path = \"/x\"\nscope_selects_audience = true")
                .unwrap_err()
                .contains("scope_required")
        );
        assert!(t("preset = \"other\"").unwrap_err().contains("unknown preset"));
        assert!(t("path = \"/x\"\nsurprise = 1").is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(uri_host("https://example.com"), Some("example.com"));
        assert_eq!(
            uri_host("https://example.com:8443/api?q"),
            Some("example.com:8443")
        );
        assert_eq!(uri_host("https://u@example.com/"), Some("example.com"));
        assert_eq!(uri_host("urn:example:api"), None);
    }
}
