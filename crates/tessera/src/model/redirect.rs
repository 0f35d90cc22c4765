//! Redirect URIs: which may be registered, and which presented URI matches a registered one.
//!
//! - Registration (RFC 6749 §3.1.2, RFC 9700 §2.1, RFC 8252 §7): an absolute URI without a
//!   fragment or wildcard, at most 2048 bytes; `https`, or `http` on a loopback IP literal (native
//!   apps; `localhost` is refused as RFC 8252 §8.3 advises), or a private-use scheme in reverse
//!   domain form (`com.example.app:/callback`, RFC 8252 §7.1).
//! - Matching (RFC 9700 §4.1.3: exact string comparison) with one exception: for a loopback
//!   redirect, any port matches, since a native app picks a free one at run time (RFC 8252 §7.3).

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI: usize = 2048;

/// The loopback hosts RFC 8252 §7.3 allows with plain `http`.
fn is_loopback_host(host: &str) -> bool {
    host == "127.0.0.1" || host == "[::1]"
}

/// Splits `http://HOST[:PORT]REST` into (host, port, rest) for a loopback host.
fn split_loopback(uri: &str) -> Option<(&str, Option<&str>, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']')?;
        let host = &authority[..close + 2];
        let after = &authority[close + 2..];
        // After the bracket: the end, or a port.
        if !after.is_empty() && !after.starts_with(':') {
            return None;
        }
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if !is_loopback_host(host) || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some((host, port, tail))
}

/// Whether `uri` may be registered as a redirect URI. The error says why not.
pub fn validate(uri: &str) -> Result<(), String> {
    if uri.is_empty() || uri.len() > MAX_REDIRECT_URI {
        return Err(format!("a redirect URI must be 1 to {MAX_REDIRECT_URI} bytes"));
    }
    if uri.contains('#') {
        return Err("a redirect URI must not have a fragment (RFC 6749 §3.1.2)".into());
    }
    if uri.contains('*') {
        return Err("a redirect URI is matched exactly: no wildcards".into());
    }
    if uri
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b == b'"' || b == b'<' || b == b'>' || b == b'\\')
    {
        return Err("a redirect URI must not hold spaces, quotes or control characters".into());
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("a redirect URI must be absolute".into());
    };
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err("a redirect URI must start with a valid scheme".into());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {
            let host = rest.strip_prefix("//").map(|r| r.split(['/', '?', ':']).next().unwrap_or(""));
            if host.is_none_or(str::is_empty) {
                return Err("an https redirect URI needs a host".into());
            }
            if rest.contains('@') && rest.split('/').nth(2).is_some_and(|a| a.contains('@')) {
                return Err("a redirect URI must not carry user information".into());
            }
            Ok(())
        }
        "http" => match split_loopback(uri) {
            Some(_) => Ok(()),
            None => Err(
                "plain http is allowed only on a loopback IP literal (http://127.0.0.1 or http://[::1], RFC 8252 §7.3)"
                    .into(),
            ),
        },
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => {
            Err(format!("the {scheme} scheme cannot be a redirect URI"))
        }
        _ => {
            // A private-use scheme for a native app: reverse domain name form (RFC 8252 §7.1).
            if !scheme.contains('.') {
                return Err(
                    "a private-use scheme must be a reverse domain name, e.g. com.example.app:/callback (RFC 8252 §7.1)"
                        .into(),
                );
            }
            Ok(())
        }
    }
}

/// Whether `presented` is one of `registered`: exactly, or, for a loopback `http` URI, equal in
/// everything but the port.
pub fn matches(registered: &[String], presented: &str) -> bool {
    registered.iter().any(|r| {
        if r == presented {
            return true;
        }
        match (split_loopback(r), split_loopback(presented)) {
            (Some((rh, _, rt)), Some((ph, _, pt))) => rh == ph && rt == pt,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?tenant=1",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:8400/callback",
            "http://[::1]:53121/oauth",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/relative",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "http://app.example.com/cb",
            "http://localhost:8080/cb",
            "http://127.0.0.1:/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "myapp:/cb",
            "https:///nohost",
            "https://user@app.example.com/cb",
            "https://app.example.com/a b",
            "http://[::1]evil/native",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate(&format!("https://a.example/{}", "x".repeat(MAX_REDIRECT_URI))).is_err());
    }

    #[test]
    fn matching_is_exact_except_for_loopback_ports() {
        let registered = vec![
            "https://app.example.com/callback".to_string(),
            "http://127.0.0.1/native".to_string(),
        ];
        assert!(matches(&registered, "https://app.example.com/callback"));
        for bad in [
            "https://app.example.com/callback/",
            "https://app.example.com/callback?x=1",
            "https://APP.example.com/callback",
            "https://app.example.com:443/callback",
            "http://app.example.com/callback",
            "http://127.0.0.1/other",
            "http://[::1]:5000/native",
        ] {
            assert!(!matches(&registered, bad), "{bad}");
        }
        assert!(matches(&registered, "http://127.0.0.1:51234/native"));
        assert!(matches(&registered, "http://127.0.0.1/native"));
        assert!(!matches(&registered, "http://127.0.0.1:5x/native"));
        let v6 = vec!["http://[::1]/native".to_string()];
        assert!(matches(&v6, "http://[::1]:4000/native"));
        assert!(!matches(&v6, "http://[::1]evil/native"));
    }
}
