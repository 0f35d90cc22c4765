//! Checks of single configuration values.

/// An issuer is an `https` URL with no query or fragment (RFC 8414 §2); plain `http` is accepted
/// for loopback hosts only, for development. A trailing slash is dropped so that endpoint URLs
/// join cleanly, and the path may hold only unreserved characters and `/`.
pub(super) fn validate_issuer(v: &str) -> Result<String, String> {
    let (https, rest) = if let Some(rest) = v.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = v.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err("must start with https:// (or http:// on a loopback host, for development)".into());
    };
    if v.contains(['?', '#']) {
        return Err("must not contain a query or fragment".into());
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty()
        || authority.contains('@')
        || authority.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("has no valid host".into());
    }
    let host = if authority.starts_with('[') {
        authority
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default().to_string()
    };
    let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
    if !https && !loopback {
        return Err("must use https:// (http:// is allowed on a loopback host only)".into());
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        || path.contains("//")
    {
        return Err("path may hold only letters, digits, '-', '.', '_', '~' and single '/'".into());
    }
    Ok(v.trim_end_matches('/').to_string())
}

pub(super) fn parse_aliases(v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for alias in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // (`:` and `*` open a capture in the router's path syntax.)
        if !alias.starts_with('/') || alias.contains(['?', '#', '{', '}', '*', ' ', ':']) || alias.len() > 200
        {
            return Err(format!(
                "{alias:?} must be a plain absolute path like /connect/token"
            ));
        }
        if alias.starts_with("/.well-known/")
            || alias.starts_with("/oauth2/")
            || alias.starts_with("/admin/")
            || alias == "/healthz"
            || alias == "/readyz"
        {
            return Err(format!("{alias:?} collides with a built-in path"));
        }
        if !out.iter().any(|a: &String| a == alias) {
            out.push(alias.to_string());
        }
    }
    Ok(out)
}
