//! The node's cache of revoked token ids, each kept until its token would have expired.

use std::collections::HashMap;
use std::sync::RwLock;

/// Revoked `jti`s and their tokens' expiry.
#[derive(Default)]
pub struct Revocations {
    ids: RwLock<HashMap<String, i64>>,
}

impl Revocations {
    /// Whether `jti` is revoked.
    pub fn contains(&self, jti: &str) -> bool {
        match self.ids.read() {
            Ok(g) => g.contains_key(jti),
            Err(p) => p.into_inner().contains_key(jti),
        }
    }

    /// Adds revoked ids.
    pub fn extend(&self, ids: impl IntoIterator<Item = (String, i64)>) {
        let mut g = match self.ids.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.extend(ids);
    }

    /// Replaces the whole set.
    pub fn replace_all(&self, ids: Vec<(String, i64)>) {
        let map: HashMap<_, _> = ids.into_iter().collect();
        match self.ids.write() {
            Ok(mut g) => *g = map,
            Err(p) => *p.into_inner() = map,
        }
    }

    /// Forgets ids whose tokens have expired by `now`.
    pub fn prune(&self, now: i64) {
        let mut g = match self.ids.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.retain(|_, exp| *exp > now);
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        match self.ids.read() {
            Ok(g) => g.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
