//! The node's cache of revoked token ids, each kept until its token would have expired.
//!
//! Tessera's own `jti`s are 128 random bits in 22 base64url characters; they are held as their
//! 16 bytes (about 40 bytes per revoked id with the table), anything else as text.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The 16 bytes behind a `jti` of Tessera's form. Canonical decoding (no stray trailing bits)
/// makes this one-to-one, so no other string maps to the same bytes.
fn ours(jti: &str) -> Option<[u8; 16]> {
    if jti.len() != 22 {
        return None;
    }
    let mut out = [0u8; 16];
    match URL_SAFE_NO_PAD.decode_slice(jti, &mut out) {
        Ok(16) => Some(out),
        _ => None,
    }
}

/// A set of revoked ids being built, to be installed with [`Revocations::replace`].
#[derive(Default)]
pub struct RevokedSet {
    ours: HashMap<[u8; 16], i64>,
    other: HashMap<Box<str>, i64>,
}

impl RevokedSet {
    /// Adds `jti`, revoked until `exp`.
    pub fn insert(&mut self, jti: &str, exp: i64) {
        match ours(jti) {
            Some(k) => self.ours.insert(k, exp),
            None => self.other.insert(jti.into(), exp),
        };
    }

    fn contains(&self, jti: &str) -> bool {
        match ours(jti) {
            Some(k) => self.ours.contains_key(&k),
            None => self.other.contains_key(jti),
        }
    }

    fn len(&self) -> usize {
        self.ours.len() + self.other.len()
    }
}

/// Revoked `jti`s and their tokens' expiry.
#[derive(Default)]
pub struct Revocations {
    ids: RwLock<RevokedSet>,
}

impl Revocations {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, RevokedSet> {
        crate::sync::read(&self.ids)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RevokedSet> {
        crate::sync::write(&self.ids)
    }

    /// Whether `jti` is revoked.
    pub fn contains(&self, jti: &str) -> bool {
        self.read().contains(jti)
    }

    /// Adds revoked ids.
    pub fn extend(&self, ids: impl IntoIterator<Item = (String, i64)>) {
        let mut g = self.write();
        for (jti, exp) in ids {
            g.insert(&jti, exp);
        }
    }

    /// Replaces the whole set.
    pub fn replace(&self, set: RevokedSet) {
        *self.write() = set;
    }

    /// Forgets ids whose tokens have expired by `now`.
    pub fn prune(&self, now: i64) {
        let mut g = self.write();
        g.ours.retain(|_, exp| *exp > now);
        g.other.retain(|_, exp| *exp > now);
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_foreign_ids() {
        let jti = crate::oauth::mint::new_jti();
        assert!(ours(&jti).is_some(), "{jti}");
        let r = Revocations::default();
        r.extend([(jti.clone(), 100), ("revoked-00000001".to_string(), 50)]);
        assert!(r.contains(&jti));
        assert!(r.contains("revoked-00000001"));
        assert!(!r.contains(&crate::oauth::mint::new_jti()));
        assert!(!r.contains("revoked-00000002"));
        // Same length, not canonical base64url (stray trailing bits): held as text, no alias.
        let mut odd = jti.clone();
        odd.replace_range(21.., "B");
        assert!(ours(&odd).is_none() || odd == jti);
        assert_eq!(r.len(), 2);
        r.prune(60);
        assert!(r.contains(&jti) && !r.contains("revoked-00000001"));
        let mut set = RevokedSet::default();
        set.insert("x", 10);
        r.replace(set);
        assert!(r.contains("x") && !r.contains(&jti));
        assert_eq!(r.len(), 1);
    }
}
