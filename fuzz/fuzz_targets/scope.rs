//! Scope parsing: any text gives scope tokens or an error; every token is a valid RFC 6749 §3.3
//! scope token, and joining them parses back to the same tokens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::model::scope::{is_scope_token, parse_scope};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tokens) = parse_scope(text) {
        assert!(tokens.iter().all(|t| is_scope_token(t)));
        assert_eq!(parse_scope(&tokens.join(" ")).ok(), Some(tokens));
    }
});
