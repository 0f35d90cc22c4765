//! OpenID Connect's constants and the token helpers its grants and pages share: the paths of
//! its endpoints, the scopes and claims it knows, lifetimes, and random values stored only as
//! digests.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Path of the login form's target.
pub const LOGIN_PATH: &str = "/oauth2/login";

/// Path of the consent form's target.
pub const CONSENT_PATH: &str = "/oauth2/consent";

/// Path of the userinfo endpoint (OpenID Connect Core §5.3).
pub const USERINFO_PATH: &str = "/oauth2/userinfo";

/// Path of the end-session endpoint (OpenID Connect RP-Initiated Logout).
pub const LOGOUT_PATH: &str = "/oauth2/logout";

/// Scopes every client that signs people in may ask for, beside its own.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Claims the userinfo endpoint and ID tokens may carry.
pub const CLAIMS_SUPPORTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "name",
    "given_name",
    "family_name",
    "updated_at",
    "email",
    "email_verified",
];

/// How long an authorization code can be redeemed.
pub const CODE_TTL: i64 = 60;

/// How long a visitor has between the authorization request and the last form.
pub const INTERACTION_TTL: i64 = 15 * 60;

/// A fresh random value: 32 bytes in base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG does not fail on supported platforms; a zero value would only be refused.
    let _ = SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The store's id for a bearer value (a code, a refresh token, a session cookie): its SHA-256,
/// in hex, so the store never holds a value that works.
pub fn digest(value: &str) -> String {
    crate::clients::sha256_hex(value)
}

/// Appends `params` to `uri`'s query (RFC 6749 §4.1.2: keeping any query it has).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_string();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&tessera_proto::form_urlencode(v));
        sep = '&';
    }
    out
}
