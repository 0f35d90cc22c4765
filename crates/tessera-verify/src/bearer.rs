//! Reading a bearer token from a request (RFC 6750 §2), with one answer per case, for every
//! place that accepts one: this crate's layer, and the token server's userinfo endpoint and admin
//! API. Framework-free: it reads the raw `Authorization` values and the query string.
//!
//! | request | [`Presented`] | answer (RFC 6750 §3.1) |
//! |---|---|---|
//! | no `Authorization`, or another scheme (`Basic …`) | `None` | 401, challenge without an error code |
//! | `DPoP <b64token>` (RFC 9449 §7.1) | `Dpop` | the token and its proof are checked |
//! | two `Authorization` fields, no space after the scheme, a token that is not a `b64token`, or `access_token` in the query | `Malformed` | 400 `invalid_request` |
//! | `Bearer <b64token>` | `Token` | the token is checked: 401 `invalid_token` if it fails |

/// What a request presents as its bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No credentials, or credentials of another scheme: authentication is needed.
    None,
    /// Credentials that cannot be read: the request is malformed.
    Malformed(&'static str),
    /// A token, in RFC 6750 `b64token` syntax (not yet checked).
    Token(&'a str),
    /// A token under the `DPoP` scheme (RFC 9449 §7.1), in `token68` syntax (not yet checked):
    /// its proof is in the `DPoP` header.
    Dpop(&'a str),
}

/// Reads the bearer token from the request's `Authorization` field values (in order, as raw
/// bytes) and its query string. RFC 6750 §2.3: a token in the query (`access_token`) is refused,
/// not looked for; §2.1: one `Bearer` credential, the scheme case-insensitive.
pub fn presented<'a, I>(authorization: I, query: Option<&str>) -> Presented<'a>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    if query.is_some_and(|q| q.split('&').any(|p| p.split('=').next() == Some("access_token"))) {
        return Presented::Malformed("access tokens are not accepted in the query string");
    }
    let mut values = authorization.into_iter();
    let Some(value) = values.next() else {
        return Presented::None;
    };
    if values.next().is_some() {
        return Presented::Malformed("more than one Authorization header");
    }
    let Some((scheme, token)) = std::str::from_utf8(value).ok().and_then(|v| v.split_once(' ')) else {
        return Presented::Malformed("malformed Authorization header");
    };
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Presented::None;
    }
    let token = token.trim_matches(' ');
    if !b64token(token) {
        return Presented::Malformed("malformed access token");
    }
    if dpop {
        Presented::Dpop(token)
    } else {
        Presented::Token(token)
    }
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(values: &[&'static str], query: Option<&str>) -> Presented<'static> {
        presented(values.iter().map(|v| v.as_bytes()), query)
    }

    #[test]
    fn each_case_has_one_answer() {
        assert_eq!(read(&[], None), Presented::None);
        assert_eq!(read(&["Basic YTpi"], None), Presented::None);
        assert_eq!(read(&["DPoP abc"], None), Presented::Dpop("abc"));
        assert_eq!(read(&["dpop abc"], None), Presented::Dpop("abc"));
        assert!(matches!(read(&["DPoP a b"], None), Presented::Malformed(_)));
        assert_eq!(
            read(&["Bearer abc.def-_~+/=="], None),
            Presented::Token("abc.def-_~+/==")
        );
        assert_eq!(read(&["bEaReR  abc "], None), Presented::Token("abc"));
        for bad in [
            &["Bearer a", "Bearer a"][..],
            &["Bearer"],
            &["Bearer "],
            &["Bearer a b"],
            &["Bearer a\"b"],
            &["Bearer ==="],
            &["Bearer a=b"],
        ] {
            assert!(matches!(read(bad, None), Presented::Malformed(_)), "{bad:?}");
        }
        assert!(matches!(
            read(&["Bearer abc"], Some("x=1&access_token=abc")),
            Presented::Malformed(_)
        ));
        assert!(matches!(
            read(&[], Some("access_token=abc")),
            Presented::Malformed(_)
        ));
        assert_eq!(
            read(&["Bearer abc"], Some("x_access_token=1")),
            Presented::Token("abc")
        );
        assert!(matches!(
            presented([&b"Bearer \xff"[..]], None),
            Presented::Malformed(_)
        ));
    }
}
