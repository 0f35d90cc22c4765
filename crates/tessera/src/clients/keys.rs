//! A client's registered public keys, as the registry keeps them.

/// A client's registered public keys: parsed once when inline, or the address it publishes them
/// at (fetched and cached by `client_keys`).
pub struct ClientKeys {
    /// Where they are.
    pub source: KeySource,
    /// What the record holds (the key set's JSON, or the address), to tell a changed record.
    recorded: Box<str>,
}

/// Where a client's keys are.
pub enum KeySource {
    /// Inline, parsed.
    Inline(tessera_verify::jws::KeyRing),
    /// At this `jwks_uri`.
    Remote(Box<str>),
}

impl ClientKeys {
    pub(super) fn of(flows: &crate::model::flows::Flows) -> Option<ClientKeys> {
        if let Some(uri) = &flows.jwks_uri {
            return Some(ClientKeys {
                source: KeySource::Remote(uri.as_str().into()),
                recorded: uri.as_str().into(),
            });
        }
        let jwks = flows.jwks.as_ref()?;
        Some(ClientKeys {
            source: KeySource::Inline(tessera_verify::jws::KeyRing::from_jwks(
                jwks,
                crate::model::auth::ASSERTION_ALGORITHMS,
            )),
            recorded: jwks.to_string().into(),
        })
    }

    pub(super) fn same_as(&self, flows: &crate::model::flows::Flows) -> bool {
        match (&self.source, &flows.jwks_uri, &flows.jwks) {
            (KeySource::Remote(_), Some(uri), _) => *self.recorded == **uri,
            (KeySource::Inline(_), None, Some(jwks)) => *self.recorded == *jwks.to_string(),
            _ => false,
        }
    }
}
