//! The node's trust policies (workload identity federation, `model::trust`), by issuer, with
//! inline key sets parsed once. Replaced whole when the store says a policy changed: policies
//! are few, and a token's check reads them without a lock held across any wait.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tessera_verify::jws::KeyRing;

use crate::model::auth::ASSERTION_ALGORITHMS;
use crate::model::trust::{TrustKeys, TrustPolicy};

/// A policy ready for checks: the record, and its keys when they are inline.
pub struct Compiled {
    /// The policy.
    pub policy: TrustPolicy,
    /// Its inline keys, parsed.
    pub inline_keys: Option<KeyRing>,
}

/// Every policy in force, by issuer.
#[derive(Default)]
pub struct TrustSet {
    by_issuer: HashMap<String, Vec<Arc<Compiled>>>,
}

impl TrustSet {
    /// The set of `policies` (those disabled left out).
    pub fn new(policies: Vec<TrustPolicy>) -> Self {
        let mut by_issuer: HashMap<String, Vec<Arc<Compiled>>> = HashMap::new();
        for policy in policies.into_iter().filter(|p| p.enabled) {
            let inline_keys = match &policy.keys {
                TrustKeys::Jwks(set) => Some(KeyRing::from_jwks(set, ASSERTION_ALGORITHMS)),
                _ => None,
            };
            by_issuer
                .entry(policy.issuer.clone())
                .or_default()
                .push(Arc::new(Compiled { policy, inline_keys }));
        }
        TrustSet { by_issuer }
    }

    /// The policies for tokens of `issuer`.
    pub fn for_issuer(&self, issuer: &str) -> &[Arc<Compiled>] {
        self.by_issuer.get(issuer).map(Vec::as_slice).unwrap_or_default()
    }

    /// How many policies are in force.
    pub fn len(&self) -> usize {
        self.by_issuer.values().map(Vec::len).sum()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_issuer.is_empty()
    }
}

/// The node's current [`TrustSet`].
#[derive(Default)]
pub struct TrustPolicies {
    current: RwLock<Arc<TrustSet>>,
}

impl TrustPolicies {
    /// The set in force now.
    pub fn get(&self) -> Arc<TrustSet> {
        crate::sync::read(&self.current).clone()
    }

    /// Puts `policies` in force.
    pub fn replace(&self, policies: Vec<TrustPolicy>) {
        *crate::sync::write(&self.current) = Arc::new(TrustSet::new(policies));
    }
}
