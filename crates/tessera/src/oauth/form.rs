//! Strict `application/x-www-form-urlencoded` decoding.
//!
//! Lenient decoders pass malformed percent-escapes through or replace invalid UTF-8; an auth
//! server must not guess what a client meant, so here either the whole body decodes or the
//! request is refused.

/// Decodes one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode_component(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    // Most values (ids, generated secrets, tokens) have nothing to decode: copy them whole.
    if !bytes.iter().any(|&b| b == b'+' || b == b'%') {
        return Some(input.to_owned());
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hi = (hex[0] as char).to_digit(16)?;
                let lo = (hex[1] as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A decoded form: name/value pairs in order.
/// Its `Debug` shows parameter names only: values include secrets.
#[derive(Default)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

/// Why a form was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    /// Bad percent-encoding or UTF-8, or a NUL character (which no parameter may hold, and which
    /// PostgreSQL could not store: refused here, both engines answer alike).
    Malformed,
    /// A parameter that must appear once appeared more often.
    Repeated(String),
    /// Too many parameters.
    TooMany,
}

/// Parameters that may legitimately repeat (RFC 8707 `resource`).
const MULTI: &[&str] = &["resource"];
const MAX_PAIRS: usize = 64;

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.pairs.iter().map(|(n, _)| n)).finish()
    }
}

impl Form {
    /// Parses `body`, refusing malformed encodings and repeated parameters (RFC 6749 §3.2).
    pub fn parse(body: &[u8]) -> Result<Form, FormError> {
        let text = std::str::from_utf8(body).map_err(|_| FormError::Malformed)?;
        let mut form = Form::default();
        for part in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode_component(name).ok_or(FormError::Malformed)?;
            let value = decode_component(value).ok_or(FormError::Malformed)?;
            form.push(name, value)?;
        }
        Ok(form)
    }

    /// Parses a `multipart/form-data` body (RFC 7578) with the same rules as a form: text fields
    /// only (no file, no content type but `text/plain`), UTF-8, no repeats, at most 64 fields.
    /// `content_type` is the request's `Content-Type`, which carries the boundary.
    pub async fn parse_multipart(content_type: &str, body: bytes::Bytes) -> Result<Form, FormError> {
        let boundary = multer::parse_boundary(content_type).map_err(|_| FormError::Malformed)?;
        let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
        let mut multipart = multer::Multipart::new(stream, boundary);
        let mut form = Form::default();
        while let Some(field) = multipart.next_field().await.map_err(|_| FormError::Malformed)? {
            // A form-data part has a Content-Disposition and maybe a Content-Type, nothing else
            // (no Content-Transfer-Encoding), and no file name in any form (`filename*=` too).
            let headers = field.headers();
            let disposition = headers
                .get("content-disposition")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let only_known = headers
                .keys()
                .all(|k| k == "content-disposition" || k == "content-type");
            if !only_known || !disposition.starts_with("form-data") || disposition.contains("filename") {
                return Err(FormError::Malformed);
            }
            let text_plain = field.content_type().is_none_or(|m| {
                m.essence_str() == "text/plain"
                    && m.get_param("charset")
                        .is_none_or(|c| c.as_str().eq_ignore_ascii_case("utf-8"))
            });
            if field.file_name().is_some() || !text_plain {
                return Err(FormError::Malformed);
            }
            let name = field.name().ok_or(FormError::Malformed)?.to_string();
            let bytes = field.bytes().await.map_err(|_| FormError::Malformed)?;
            let value = String::from_utf8(bytes.to_vec()).map_err(|_| FormError::Malformed)?;
            form.push(name, value)?;
        }
        Ok(form)
    }

    /// Adds a decoded pair: an empty value counts as omitted (RFC 6749 §3.2), a repeat is refused.
    fn push(&mut self, name: String, value: String) -> Result<(), FormError> {
        if name.contains('\0') || value.contains('\0') {
            return Err(FormError::Malformed);
        }
        if value.is_empty() {
            return Ok(());
        }
        if !MULTI.contains(&name.as_str()) && self.pairs.iter().any(|(n, _)| *n == name) {
            return Err(FormError::Repeated(name));
        }
        if self.pairs.len() >= MAX_PAIRS {
            return Err(FormError::TooMany);
        }
        self.pairs.push((name, value));
        Ok(())
    }

    /// The value of a single-valued parameter; an empty value counts as absent (RFC 6749 §3.2).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of a parameter.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_strictly() {
        assert_eq!(decode_component("a+b%3A%2b").as_deref(), Some("a b:+"));
        assert_eq!(decode_component("%"), None);
        assert_eq!(decode_component("%4"), None);
        assert_eq!(decode_component("%zz"), None);
        assert_eq!(decode_component("%ff"), None, "not UTF-8");
        assert_eq!(decode_component("plain-é_.~").as_deref(), Some("plain-é_.~"));
        assert_eq!(decode_component("").as_deref(), Some(""));
        for nul in [
            &b"email=a%00"[..],
            b"email=a\0",
            b"a%00=1",
            b"x=1&client_id=a%00b",
        ] {
            assert_eq!(Form::parse(nul).err(), Some(FormError::Malformed), "{nul:?}");
        }
    }

    #[test]
    fn repeats_and_empties() {
        let f = Form::parse(b"a=1&b=&resource=x&resource=y").unwrap();
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), None);
        assert_eq!(f.all("resource").count(), 2);
        assert_eq!(
            Form::parse(b"a=1&a=2").err(),
            Some(FormError::Repeated("a".into()))
        );
        // A parameter without a value is omitted, so it does not count as a repeat.
        assert_eq!(Form::parse(b"a=1&a=").unwrap().get("a"), Some("1"));
    }

    fn multipart(parts: &[(&str, &str, &str)]) -> bytes::Bytes {
        let mut body = String::new();
        for (headers, name, value) in parts {
            body.push_str(&format!(
                "--B\r\nContent-Disposition: form-data; name=\"{name}\"{headers}\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str("--B--\r\n");
        body.into()
    }

    #[tokio::test]
    async fn multipart_bodies_follow_the_form_rules() {
        let ct = "multipart/form-data; boundary=B";
        let f = Form::parse_multipart(
            ct,
            multipart(&[("", "grant_type", "client_credentials"), ("", "client_id", "a b")]),
        )
        .await
        .unwrap();
        assert_eq!(
            (f.get("grant_type"), f.get("client_id")),
            (Some("client_credentials"), Some("a b"))
        );
        let typed = "\r\nContent-Type: text/plain; charset=utf-8";
        assert!(
            Form::parse_multipart(ct, multipart(&[(typed, "a", "1")]))
                .await
                .is_ok()
        );
        let repeated = multipart(&[("", "a", "1"), ("", "a", "2")]);
        assert_eq!(
            Form::parse_multipart(ct, repeated).await.err(),
            Some(FormError::Repeated("a".into()))
        );
        let file = multipart(&[("; filename=\"x.txt\"", "a", "1")]);
        assert_eq!(
            Form::parse_multipart(ct, file).await.err(),
            Some(FormError::Malformed)
        );
        let extended = multipart(&[("; filename*=UTF-8''x.txt", "a", "1")]);
        assert_eq!(
            Form::parse_multipart(ct, extended).await.err(),
            Some(FormError::Malformed)
        );
        let encoded = multipart(&[("\r\nContent-Transfer-Encoding: base64", "a", "MQ==")]);
        assert_eq!(
            Form::parse_multipart(ct, encoded).await.err(),
            Some(FormError::Malformed)
        );
        let binary = multipart(&[("\r\nContent-Type: application/octet-stream", "a", "1")]);
        assert_eq!(
            Form::parse_multipart(ct, binary).await.err(),
            Some(FormError::Malformed)
        );
        assert!(
            Form::parse_multipart("multipart/form-data", multipart(&[]))
                .await
                .is_err(),
            "no boundary"
        );
        let cut: bytes::Bytes = "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1".into();
        assert!(Form::parse_multipart(ct, cut).await.is_err(), "unterminated");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_bytes_give_a_form_or_an_error(body in prop::collection::vec(any::<u8>(), 0..256)) {
                if let Ok(form) = Form::parse(&body) {
                    for (name, _) in &form.pairs {
                        prop_assert!(MULTI.contains(&name.as_str()) || form.all(name).count() == 1);
                    }
                    prop_assert!(form.pairs.len() <= MAX_PAIRS);
                    prop_assert!(form.pairs.iter().all(|(n, v)| !n.contains('\0') && !v.contains('\0')));
                }
            }

            #[test]
            fn encoded_pairs_decode_to_what_was_encoded(
                pairs in prop::collection::btree_map("\\PC{1,12}", "\\PC{1,24}", 0..10)
            ) {
                let mut encoder = form_urlencoded::Serializer::new(String::new());
                for (k, v) in &pairs {
                    encoder.append_pair(k, v);
                }
                let form = Form::parse(encoder.finish().as_bytes());
                prop_assert!(form.is_ok());
                let form = form.unwrap_or_default();
                for (k, v) in &pairs {
                    prop_assert_eq!(form.get(k), Some(v.as_str()));
                }
            }

            #[test]
            fn a_repeated_parameter_is_refused(name in "[a-z_]{1,12}", a in "[a-z0-9]{1,8}", b in "[a-z0-9]{1,8}") {
                prop_assume!(name != "resource");
                let body = format!("{name}={a}&{name}={b}");
                prop_assert_eq!(Form::parse(body.as_bytes()).err(), Some(FormError::Repeated(name)));
            }
        }
    }
}
