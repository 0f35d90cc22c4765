//! Strict JSON for input from outside: a duplicate member name at any depth, or a NUL character
//! in any string or member name, refuses the document.
//!
//! serde_json keeps the last of two equal member names inside a map (`claims`, `attributes`),
//! while a struct refuses them, so a body could say one thing to a reader that keeps the first
//! and another to Tessera. NUL is refused because PostgreSQL cannot store it in text, and a value
//! one engine stores and the other refuses would make the two engines answer differently.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};

/// Checks `bytes` is one JSON value without duplicate member names or NUL characters.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Strict.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

/// [`check`], then parses `bytes` as `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    check(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// [`from_slice`] for text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    from_slice(text.as_bytes())
}

/// Walks a value, refusing what [`check`] refuses; builds nothing.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Strict)
    }
}

fn text<E: serde::de::Error>(s: &str) -> Result<(), E> {
    if s.contains('\0') {
        return Err(E::custom("a string holds a NUL character"));
    }
    Ok(())
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        text(s)
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Strict)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            text(&key)?;
            if !seen.insert(key) {
                return Err(A::Error::custom("a member name is repeated in an object"));
            }
            map.next_value_seed(Strict)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_at_any_depth_and_nul_are_refused() {
        assert!(check(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_ok());
        assert!(check(br#"{"a":1,"a":2}"#).is_err());
        assert!(check(br#"{"claims":{"tenant":"a","tenant":"b"}}"#).is_err());
        assert!(check(br#"[{"x":{"y":1,"y":1}}]"#).is_err());
        // The same name after an escape is the same name.
        assert!(check(br#"{"ab":1,"\u0061b":2}"#).is_err());
        assert!(check(br#"{"name":"a\u0000b"}"#).is_err());
        assert!(check(br#"{"a\u0000":1}"#).is_err());
        assert!(check(br#"{"a":1} {"b":2}"#).is_err());
        assert!(check(b"").is_err());
        let v: serde_json::Value = from_str(r#"{"a":[1,2]}"#).unwrap_or_default();
        assert_eq!(v["a"][1], 2);
    }
}
