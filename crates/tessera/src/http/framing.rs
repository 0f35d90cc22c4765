//! What every request must be before any handler sees it, beyond what the HTTP library checks:
//! the message framing of RFC 9112 (one `Host`; `Transfer-Encoding` only as a single `chunked`;
//! a bounded head) and a target that the store could hold (no NUL, UTF-8 once percent-decoded).
//!
//! A framing error leaves the connection's next bytes in doubt (a proxy may have read the message
//! differently: request smuggling), so those answers close the connection.

use axum::http::{HeaderMap, Method, StatusCode, Uri, Version, header};

/// The most bytes a request head may take: the request line and every header line, counted as
/// `name: value` plus CRLF (HTTP/2: the same sum over its decoded fields).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Why a request was refused before routing.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The answer's status.
    pub status: StatusCode,
    /// Said in `error_description`.
    pub description: &'static str,
    /// The connection must be closed after the answer.
    pub close: bool,
}

fn refuse(status: StatusCode, description: &'static str, close: bool) -> Refusal {
    Refusal {
        status,
        description,
        close,
    }
}

/// Checks a request's head.
pub fn check(method: &Method, uri: &Uri, version: Version, headers: &HeaderMap) -> Result<(), Refusal> {
    let hosts = headers.get_all(header::HOST).iter().count();
    let host_ok = headers.get(header::HOST).is_none_or(|h| {
        h.to_str()
            .is_ok_and(|h| !h.contains('@') && h.parse::<axum::http::uri::Authority>().is_ok())
    });
    if hosts > 1 || !host_ok || (hosts == 0 && version == Version::HTTP_11) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "exactly one valid Host header is required",
            true,
        ));
    }
    transfer_encoding(headers)?;
    // "METHOD target HTTP/1.1\r\n"; an absolute-form target also has its scheme and authority.
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len() + "https://".len());
    let head = method.as_str().len()
        + target
        + 12
        + headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>()
        + 2;
    if head > MAX_HEAD_BYTES {
        return Err(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request head is larger than 64 KiB",
            true,
        ));
    }
    if !storable(uri.path().as_bytes()) || !uri.query().is_none_or(|q| storable(q.as_bytes())) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the path or query holds a NUL character or is not UTF-8 once percent-decoded",
            false,
        ));
    }
    Ok(())
}

/// RFC 9112 §6.1 and §6.3: the only transfer coding Tessera knows is `chunked`, once and last,
/// in one header field and without `Content-Length`. An unknown coding is `501`, the rest `400`.
fn transfer_encoding(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut fields = headers.get_all(header::TRANSFER_ENCODING).iter();
    let Some(field) = fields.next() else {
        return Ok(());
    };
    if fields.next().is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "Transfer-Encoding must be sent once",
            true,
        ));
    }
    if headers.contains_key(header::CONTENT_LENGTH) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "Transfer-Encoding and Content-Length cannot both be sent",
            true,
        ));
    }
    let Ok(field) = field.to_str() else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "Transfer-Encoding is not a list of codings",
            true,
        ));
    };
    let codings: Vec<&str> = field.split(',').map(str::trim).collect();
    if codings
        .iter()
        .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("chunked"))
    {
        return Err(refuse(
            StatusCode::NOT_IMPLEMENTED,
            "the only transfer coding accepted is chunked",
            true,
        ));
    }
    if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "Transfer-Encoding must be chunked, once",
            true,
        ));
    }
    Ok(())
}

/// Whether a path or query, percent-decoded, is UTF-8 without NUL: what both store engines can
/// hold, so that neither is asked to look up what the other could not have stored. (Malformed
/// escapes are left to the parsers that read the parameters.)
fn storable(raw: &[u8]) -> bool {
    if !raw.contains(&b'%') {
        return !raw.contains(&0) && std::str::from_utf8(raw).is_ok();
    }
    // `percent_decode` leaves a malformed escape as it is, for the parameter parsers to refuse.
    let decoded: Vec<u8> = percent_encoding::percent_decode(raw).collect();
    !decoded.contains(&0) && std::str::from_utf8(&decoded).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            "t".parse().unwrap_or(axum::http::HeaderValue::from_static("t")),
        );
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (
                axum::http::HeaderName::try_from(*k),
                axum::http::HeaderValue::try_from(*v),
            ) {
                h.append(k, v);
            }
        }
        h
    }

    fn status(pairs: &[(&str, &str)]) -> Option<u16> {
        let uri = Uri::from_static("/oauth2/token");
        check(&Method::POST, &uri, Version::HTTP_11, &headers(pairs))
            .err()
            .map(|r| r.status.as_u16())
    }

    #[test]
    fn transfer_codings_other_than_one_chunked_are_refused() {
        assert_eq!(status(&[("transfer-encoding", "chunked")]), None);
        assert_eq!(status(&[("transfer-encoding", "Chunked")]), None);
        for unknown in [
            "gzip, chunked",
            "deflate, chunked",
            "compress, chunked",
            "x-custom, chunked",
            "gzip",
            "identity",
        ] {
            assert_eq!(status(&[("transfer-encoding", unknown)]), Some(501), "{unknown}");
        }
        assert_eq!(status(&[("transfer-encoding", "chunked, chunked")]), Some(400));
        assert_eq!(status(&[("transfer-encoding", "chunked,")]), Some(400));
        assert_eq!(status(&[("transfer-encoding", "")]), Some(400));
        assert_eq!(
            status(&[("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")]),
            Some(400)
        );
        assert_eq!(
            status(&[("transfer-encoding", "chunked"), ("content-length", "5")]),
            Some(400)
        );
    }

    #[test]
    fn the_head_is_bounded() {
        // Request line "POST /oauth2/token HTTP/1.1\r\n" (29), "host: t\r\n" (9), final CRLF.
        let fixed = 29 + 9 + 2;
        let name = "x-pad";
        let at_limit = "a".repeat(MAX_HEAD_BYTES - fixed - name.len() - 4);
        assert_eq!(status(&[(name, &at_limit)]), None);
        let past = format!("{at_limit}a");
        assert_eq!(status(&[(name, &past)]), Some(431));
    }

    #[test]
    fn targets_the_store_could_not_hold_are_refused() {
        for ok in ["/a/b", "/a%2Fb", "/caf%C3%A9", "/100%", "/%zz"] {
            assert!(storable(ok.as_bytes()), "{ok}");
        }
        for bad in ["/a%00b", "/%ff", "/a%C3", "client_id=a%00b"] {
            assert!(!storable(bad.as_bytes()), "{bad}");
        }
    }
}
