//! Client credentials from an `Authorization` header (and a form beside it): any header value
//! gives credentials or an OAuth error, never a panic, and accepted credentials are bounded.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use tessera::oauth::client_auth::credentials;
use tessera::oauth::form::Form;

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into a header value and a form body.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (value, body) = rest.split_at(at);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(value) {
        headers.insert(header::AUTHORIZATION, v);
    }
    let form = Form::parse(body).unwrap_or_else(|_| Form::parse(b"").unwrap_or_else(|_| unreachable!()));
    if let Ok(c) = credentials(&headers, &form, None) {
        assert!(!c.client_id.is_empty() && c.client_id.len() <= 256);
        assert!(c.secret.len() <= 512);
        // Only a public client (`none`: client_id alone, no Basic) comes without a secret.
        let public = !c.method.proves_possession();
        assert_eq!(public, c.method.name() == "none");
        assert_eq!(c.secret.is_empty(), public);
        assert!(!public || headers.is_empty());
    }
});
