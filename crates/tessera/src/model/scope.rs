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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn token() -> impl Strategy<Value = String> {
            "[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,12}"
        }

        proptest! {
            #[test]
            fn any_text_parses_or_is_refused_and_tokens_are_valid(text in "\\PC{0,40}") {
                if let Ok(tokens) = parse_scope(&text) {
                    prop_assert!(tokens.iter().all(|t| is_scope_token(t)));
                    prop_assert_eq!(tokens.join(" "), text.split(' ').fold(Vec::<&str>::new(), |mut v, t| {
                        if !v.contains(&t) { v.push(t) }
                        v
                    }).join(" "));
                }
            }

            #[test]
            fn joined_tokens_parse_back_deduplicated(tokens in prop::collection::vec(token(), 1..8)) {
                let parsed = parse_scope(&tokens.join(" "));
                let mut want: Vec<String> = Vec::new();
                for t in tokens {
                    if !want.contains(&t) {
                        want.push(t);
                    }
                }
                prop_assert_eq!(parsed, Ok(want));
            }

            #[test]
            fn a_byte_outside_the_grammar_is_refused(
                before in token(),
                bad in prop::sample::select(vec!['"', '\\', '\t', '\n', '\0', '\u{7f}', 'é']),
                after in token(),
            ) {
                let text = format!("{before}{bad}{after}");
                prop_assert!(parse_scope(&text).is_err());
            }
        }
    }
}
