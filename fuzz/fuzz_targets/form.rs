//! The form parser: any bytes give a form or an error, never a panic; a parsed form holds no
//! repeated parameter (other than `resource`), no empty value and no NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::oauth::form::Form;

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = Form::parse(data) {
        for name in ["grant_type", "scope", "client_id", "client_secret", "token"] {
            assert!(form.all(name).count() <= 1, "{name} repeated");
            assert!(form.get(name).is_none_or(|v| !v.is_empty()), "{name} empty");
            assert!(form.get(name).is_none_or(|v| !v.contains('\0')), "{name} holds NUL");
        }
    }
});
