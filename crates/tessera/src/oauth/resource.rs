//! Resource indicators (RFC 8707): what a client may name as `resource`, and so what may be
//! registered as a client's audience.

use super::OAuthError;
use super::form::Form;
use super::mint::AudienceRef;
use crate::app::App;
use crate::clients::CachedClient;

/// Whether `value` is an absolute URI without a fragment (RFC 8707 §2: "MUST be an absolute URI,
/// as specified by Section 4.3 of RFC 3986 … MUST NOT include a fragment component"), of printable
/// ASCII and at most 512 bytes.
///
/// ```
/// use tessera::oauth::resource::is_absolute_uri;
/// assert!(is_absolute_uri("https://api.example.com/v1"));
/// assert!(is_absolute_uri("urn:example:api"));
/// assert!(!is_absolute_uri("api.example.com"));
/// assert!(!is_absolute_uri("/relative"));
/// assert!(!is_absolute_uri("https://a b"));
/// assert!(!is_absolute_uri("https://api.example.com/#frag"));
/// assert!(!is_absolute_uri("1http://x"));
/// ```
pub fn is_absolute_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && value.len() <= 512
        && !value.contains('#')
        && value.chars().all(|c| c.is_ascii_graphic())
}

/// The audience: the requested `resource`s (RFC 8707), each one the client may ask for; without
/// any, the client's default audience, or the issuer for a client that has none.
pub fn grant_audience<'a>(
    app: &'a App,
    client: &'a CachedClient,
    form: &'a Form,
) -> Result<AudienceRef<'a>, OAuthError> {
    let mut wanted: Vec<&'a str> = Vec::new();
    for r in form.all("resource") {
        if !is_absolute_uri(r) {
            return Err(OAuthError::InvalidTarget(
                "resource must be an absolute URI without a fragment".into(),
            ));
        }
        if !client.grants.audiences.iter().any(|a| &**a == r) {
            return Err(OAuthError::InvalidTarget(
                "resource is not allowed for this client".into(),
            ));
        }
        if !wanted.contains(&r) {
            wanted.push(r);
        }
    }
    Ok(match wanted.len() {
        0 => AudienceRef::One(
            client
                .grants
                .audiences
                .first()
                .map_or(app.settings.issuer.as_str(), |a| &**a),
        ),
        1 => AudienceRef::One(wanted[0]),
        _ => AudienceRef::Many(wanted),
    })
}
