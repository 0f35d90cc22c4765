//! Scope syntax (RFC 6749 §3.3).
//!
//! ```text
//! scope       = scope-token *( SP scope-token )
//! scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
//! ```

/// Whether `token` is one RFC 6749 scope token.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// A `scope` value that breaks the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedScope;

/// Parses a `scope` parameter strictly: tokens separated by single spaces, no leading or trailing
/// space. Repeated tokens are kept once, in order of first appearance.
pub fn parse_scope(scope: &str) -> Result<Vec<String>, MalformedScope> {
    let mut out: Vec<String> = Vec::new();
    for token in scope.split(' ') {
        if !is_scope_token(token) {
            return Err(MalformedScope);
        }
        if !out.iter().any(|t| t == token) {
            out.push(token.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert_eq!(parse_scope("a b:c"), Ok(vec!["a".to_string(), "b:c".to_string()]));
        assert_eq!(parse_scope("a a").map(|v| v.len()), Ok(1));
        for bad in ["", " a", "a ", "a  b", "a\"b", "a\\b", "a\tb", "é"] {
            assert!(parse_scope(bad).is_err(), "{bad:?}");
        }
    }
}
