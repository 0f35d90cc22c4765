//! Resource indicators (RFC 8707): what a client may name as `resource`, and so what may be
//! registered as a client's audience.

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
