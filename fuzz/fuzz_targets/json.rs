//! The strict JSON check: any bytes are accepted or refused, never a panic (depth is bounded by
//! serde_json's recursion limit); what it accepts is JSON that serde_json parses, with no NUL in
//! any string or member name.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn clean(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => !s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().all(clean),
        serde_json::Value::Object(o) => o.iter().all(|(k, v)| !k.contains('\0') && clean(v)),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    if tessera::json::check(data).is_ok() {
        let v: serde_json::Value = serde_json::from_slice(data).expect("accepted but not JSON");
        assert!(clean(&v), "accepted a NUL");
    }
});
