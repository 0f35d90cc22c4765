//! Small value rules that records share: absolute URIs (audiences, RFC 8707 resources) and
//! token lifetimes.

use super::MAX_TOKEN_TTL;

/// Whether `value` is an absolute URI without a fragment (RFC 8707 §2: "MUST be an absolute URI,
/// as specified by Section 4.3 of RFC 3986 … MUST NOT include a fragment component"), of printable
/// ASCII and at most 512 bytes.
///
/// ```
/// use tessera::model::values::is_absolute_uri;
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

/// Audiences: absolute URIs without a fragment (RFC 8707), at most 50, repeats dropped.
pub fn validate_audiences(audiences: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for a in audiences {
        if !is_absolute_uri(a) {
            return Err(format!(
                "audience {a:?} must be an absolute URI without a fragment"
            ));
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    if out.len() > 50 {
        return Err("at most 50 audiences".into());
    }
    Ok(out)
}

/// A token lifetime: 1 s to [`MAX_TOKEN_TTL`].
pub fn validate_ttl(ttl: u32) -> Result<u32, String> {
    if ttl == 0 || ttl > MAX_TOKEN_TTL {
        return Err(format!("token ttl must be 1 to {MAX_TOKEN_TTL} seconds"));
    }
    Ok(ttl)
}
