//! Per-client claims: values an operator enters once for a client (a tenant, a region, a
//! partner id) that go into every access token the client gets and into introspection answers.
//! A client's scopes may also be templates over them (`principal:{principal}`), so a vendor's
//! scope format such as Instructure's `SERVICE_ID principal:… partner:… region:…` is built from
//! the same values.
//!
//! Names that JWT, JWS, RFC 9068, RFC 7662 or OpenID Connect give a meaning to are refused: a
//! claim can add to a token, never change what it says about who issued it, to whom, for what and
//! until when.

use serde_json::{Map, Value};

use crate::model::scope::is_scope_token;

/// A client's claims: a JSON object.
pub type Claims = Map<String, Value>;

/// Claim names a client may not set.
pub const RESERVED: &[&str] = &[
    // JWT (RFC 7519) and RFC 9068 access tokens
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "scp",
    "auth_time",
    "acr",
    "amr",
    // JWS header names, in case a claims set is mistaken for a header
    "typ",
    "cty",
    "alg",
    "kid",
    "crit",
    "jku",
    "jwk",
    "x5u",
    "x5c",
    "x5t",
    "x5t#S256",
    // proof of possession, delegation (RFC 7800, RFC 8693)
    "cnf",
    "act",
    "may_act",
    // OpenID Connect ID tokens
    "azp",
    "nonce",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "auth_req_id",
    // RFC 7662 introspection answers, where claims also appear
    "active",
    "token_type",
    "username",
    // rich authorization requests (RFC 9396); security event tokens (RFC 8417)
    "authorization_details",
    "events",
    "toe",
    "txn",
];

/// The OpenID Connect standard claims (Core §5.1) and the other claims of ID tokens and userinfo
/// answers (§2, §5.3): a user's attribute may not take one of these names, since userinfo and ID
/// tokens must take them only from the fields they belong to (an `email_verified` attribute
/// would vouch for an address nobody verified).
pub const OIDC_STANDARD: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "_claim_names",
    "_claim_sources",
];

/// Whether `name` is one a user's attribute may not take: a registered or protocol claim
/// ([`RESERVED`]) or an OpenID Connect standard claim ([`OIDC_STANDARD`]), in any case.
pub fn reserved_for_users(name: &str) -> bool {
    RESERVED
        .iter()
        .chain(OIDC_STANDARD)
        .any(|r| r.eq_ignore_ascii_case(name))
}

/// Checks a user's attributes: the rules of client claims, and no OpenID Connect standard claim.
pub fn validate_attributes(attributes: &Claims) -> Result<(), String> {
    validate(attributes)?;
    if let Some(name) = attributes.keys().find(|n| reserved_for_users(n)) {
        return Err(format!(
            "attribute {name:?} is a registered or OpenID Connect standard claim; Tessera sets it \
             from the user's own fields (email, email_verified, name, given_name, family_name)"
        ));
    }
    Ok(())
}

/// The most claims a client may have.
pub const MAX_CLAIMS: usize = 32;
/// The most bytes a client's claims may take as JSON.
pub const MAX_BYTES: usize = 2048;

/// Checks a client's claims: names, reserved names, count and size.
pub fn validate(claims: &Claims) -> Result<(), String> {
    if claims.len() > MAX_CLAIMS {
        return Err(format!("at most {MAX_CLAIMS} claims"));
    }
    for name in claims.keys() {
        // Case-insensitively: some JSON decoders (Go's encoding/json, Newtonsoft) match keys to
        // fields regardless of case, and would read "EXP" as the expiry.
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "claim {name:?} is a registered or protocol claim that Tessera sets itself"
            ));
        }
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
        if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
            return Err(format!(
                "claim name {name:?} must be 1 to 64 letters, digits, '_', '-', '.' or ':'"
            ));
        }
    }
    let size = Value::Object(claims.clone()).to_string().len();
    if size > MAX_BYTES {
        return Err(format!("claims take {size} bytes as JSON; at most {MAX_BYTES}"));
    }
    Ok(())
}

/// Parses `NAME=VALUE` pairs from the command line. A value that is JSON (a number, `true`,
/// `false`, `null`, an object, an array or a quoted string) is taken as such; anything else is
/// a string.
pub fn parse_pairs(pairs: &[String]) -> Result<Claims, String> {
    let mut claims = Claims::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(format!("--claim {pair:?}: expected NAME=VALUE"));
        };
        let value = match serde_json::from_str::<Value>(value) {
            // JSON, held to the rules of every other JSON input (no repeated member names).
            Ok(v) => {
                crate::json::check(value.as_bytes()).map_err(|e| format!("--claim {name}: {e}"))?;
                v
            }
            Err(_) => Value::String(value.into()),
        };
        if claims.insert(name.to_string(), value).is_some() {
            return Err(format!("--claim {name} given twice"));
        }
    }
    validate(&claims)?;
    Ok(claims)
}

/// The claims as a JSON fragment (`"a":1,"b":"x"`) ready to be spliced into a token's claims,
/// or `None` when there are none.
pub fn fragment(claims: &Claims) -> Option<Box<str>> {
    if claims.is_empty() {
        return None;
    }
    let json = Value::Object(claims.clone()).to_string();
    Some(json.get(1..json.len() - 1).unwrap_or_default().into())
}

/// The client's scopes with every `{name}` replaced by the value of claim `name` (a string
/// without spaces, a number or a boolean). Each result must still be an RFC 6749 scope token.
pub fn expand_scopes(scopes: &[String], claims: &Claims) -> Result<Vec<String>, String> {
    scopes
        .iter()
        .map(|scope| {
            if !scope.contains('{') {
                return Ok(scope.clone());
            }
            let mut out = String::with_capacity(scope.len());
            let mut rest = scope.as_str();
            while let Some(start) = rest.find('{') {
                out.push_str(&rest[..start]);
                let after = &rest[start + 1..];
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("scope {scope:?}: '{{' without '}}'"))?;
                let name = &after[..end];
                let value = match claims.get(name) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                    Some(_) => {
                        return Err(format!(
                            "scope {scope:?}: claim {name} is not a string, number or boolean"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "scope {scope:?} uses claim {name}, which the client lacks"
                        ));
                    }
                };
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            if !is_scope_token(&out) {
                return Err(format!("scope {scope:?} expands to {out:?}, not a scope token"));
            }
            Ok(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reserved_and_malformed_names_are_refused() {
        for name in [
            "EXP",
            "Sub",
            "Client_Id",
            "iss",
            "sub",
            "aud",
            "exp",
            "client_id",
            "scope",
            "cnf",
            "act",
            "active",
            "x5t#S256",
        ] {
            let err = validate(&claims(json!({ name: "x" }))).unwrap_err();
            assert!(err.contains("registered or protocol claim"), "{name}: {err}");
        }
        assert!(validate(&claims(json!({"": 1}))).is_err());
        assert!(validate(&claims(json!({"a b": 1}))).is_err());
        assert!(
            validate(&claims(json!({"big": "x".repeat(MAX_BYTES)})))
                .unwrap_err()
                .contains("bytes")
        );
        assert!(validate(&claims(json!({"tenant": "acme", "roles": ["a"], "n": 1}))).is_ok());
    }

    #[test]
    fn command_line_values_are_json_or_strings() {
        let pairs = ["s=abc", "n=42", "b=true", "o={\"k\":[1]}", "q=\"7\"", "e="].map(String::from);
        assert_eq!(
            Value::Object(parse_pairs(&pairs).unwrap()),
            json!({"s": "abc", "n": 42, "b": true, "o": {"k": [1]}, "q": "7", "e": ""})
        );
        assert!(parse_pairs(&["noequals".into()]).is_err());
        assert!(parse_pairs(&["a=1".into(), "a=2".into()]).is_err());
        assert!(parse_pairs(&["sub=me".into()]).is_err());
    }

    #[test]
    fn fragments_splice_into_an_object() {
        assert_eq!(fragment(&Claims::new()), None);
        let f = fragment(&claims(json!({"a": 1, "b": "x\"y"}))).unwrap();
        let whole: Value = serde_json::from_str(&format!("{{\"iss\":\"i\",{f}}}")).unwrap();
        assert_eq!(whole, json!({"iss": "i", "a": 1, "b": "x\"y"}));
    }

    #[test]
    fn scope_templates() {
        let c = claims(json!({"principal": "P1", "partner": 7, "region": "eu-1", "obj": {}}));
        let scopes = [
            "dap",
            "principal:{principal}",
            "partner:{partner}",
            "region:{region}",
        ]
        .map(String::from);
        assert_eq!(
            expand_scopes(&scopes, &c).unwrap().join(" "),
            "dap principal:P1 partner:7 region:eu-1"
        );
        assert!(
            expand_scopes(&["x:{missing}".into()], &c)
                .unwrap_err()
                .contains("lacks")
        );
        assert!(expand_scopes(&["x:{obj}".into()], &c).is_err());
        assert!(expand_scopes(&["x:{principal".into()], &c).is_err());
        let spaced = claims(json!({"p": "a b"}));
        assert!(
            expand_scopes(&["x:{p}".into()], &spaced)
                .unwrap_err()
                .contains("not a scope token")
        );
    }
}
