//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client id
//! that is an `https` URL names the document where the client publishes its own metadata.
//!
//! - The document is fetched when an authorization request names a client id Tessera has not
//!   seen, or whose copy is no longer fresh: `GET`, no redirects (§5), `200` only, at most
//!   [`MAX_BYTES`] (§8.7), within the outbound timeout, only to addresses the operator allows
//!   (`[outbound]`, the same rules as `jwks_uri`: no loopback, private or link-local address
//!   unless allowed, §8.6).
//! - It must be one JSON object whose `client_id` is the URL exactly (§4), and it is read by the
//!   same rules as a registration (`model::client_metadata`, public clients only, §4.1).
//! - A good document is stored as a client (id = the URL, origin `metadata_document`), so that
//!   every node, the token endpoint and the change feed see it like any other client. It is
//!   used as long as its `Cache-Control` says, within Tessera's bounds (§5.2): at least
//!   [`MIN_FRESH`] (so a document saying `no-store` cannot make every authorization request a
//!   fetch and a write), [`DEFAULT_FRESH`] without a header, never longer than the operator's
//!   ceiling. Every fetch, first or again, counts against the address's registration rate.
//!   Errors and invalid documents are never stored; a failed fetch fails the authorization
//!   request (§5.1).
//! - A client an operator disabled stays disabled whatever its document says.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::client_keys::{AddressPolicy, OutboundSettings, outbound_client, read_within};
use crate::model::client_metadata::{self as rules, Policy};
use crate::model::registration::{Origin, Registered, Registration};
use crate::model::{AuditEntry, ClientRecord};
use crate::store::{Store, StoreError};

/// Largest document read (§8.7: "around 5 kilobytes").
pub const MAX_BYTES: usize = 5 * 1024;
/// How long a document without caching headers is used.
pub const DEFAULT_FRESH: i64 = 300;
/// The least time a document is used before it is fetched again.
pub const MIN_FRESH: i64 = 60;

/// Why a document could not be used (said to the person on the error page, and logged).
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// It could not be fetched.
    #[error("its metadata document could not be fetched: {0}")]
    Fetch(String),
    /// It broke a rule.
    #[error("its metadata document is not valid: {0}")]
    Invalid(String),
    /// As many self-registered clients as allowed exist.
    #[error("no more applications can register here now")]
    Full,
    /// Too many new documents from this address.
    #[error("too many new applications from this address; try again later")]
    Limited,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the operator allows documents (from `[registration]`).
pub struct Rules<'a> {
    /// The registration policy.
    pub policy: &'a Policy,
    /// Longest a document is used before it is fetched again (seconds).
    pub cache_max: u64,
    /// Documents an operator vouches for.
    pub approved: &'a [String],
    /// Most self-registered clients.
    pub max_clients: u64,
}

/// Fetches metadata documents (cheap to clone).
#[derive(Clone)]
pub struct Documents {
    http: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl Documents {
    /// A fetcher that follows `settings`.
    pub fn new(settings: &OutboundSettings) -> Result<Self, String> {
        let policy = Arc::new(AddressPolicy::from_settings(settings));
        let http = outbound_client(settings, reqwest::redirect::Policy::none(), policy.clone())?;
        Ok(Documents { http, policy })
    }

    /// The document at `url` and how long it may be used (seconds, from `Cache-Control`).
    pub async fn fetch(&self, url: &str) -> Result<(Map<String, Value>, i64), DocumentError> {
        let fail = |why: &str| DocumentError::Fetch(why.to_string());
        let parsed = reqwest::Url::parse(url).map_err(|_| fail("not a URL"))?;
        if parsed.scheme() != "https" {
            return Err(fail("only https"));
        }
        self.policy.check_literal(&parsed).map_err(DocumentError::Fetch)?;
        let response = self
            .http
            .get(parsed)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                fail(if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect (or no allowed address)"
                } else {
                    "the request failed"
                })
            })?;
        if response.status() != reqwest::StatusCode::OK {
            // §5: any other status, a redirect included, is an error.
            return Err(fail(&format!("answered {}", response.status().as_u16())));
        }
        let fresh = fresh_for(response.headers());
        let body = read_within(response, MAX_BYTES)
            .await
            .map_err(DocumentError::Fetch)?;
        match crate::json::from_slice::<Value>(&body) {
            Ok(Value::Object(doc)) => Ok((doc, fresh)),
            _ => Err(DocumentError::Invalid("not one JSON object".into())),
        }
    }
}

/// How long an answer with `headers` may be used: `no-store` or `no-cache`, not at all;
/// `max-age`, that long; else [`DEFAULT_FRESH`].
fn fresh_for(headers: &reqwest::header::HeaderMap) -> i64 {
    let mut fresh = DEFAULT_FRESH;
    for value in headers.get_all(reqwest::header::CACHE_CONTROL) {
        for directive in value.to_str().unwrap_or_default().split(',') {
            let d = directive.trim().to_ascii_lowercase();
            if d == "no-store" || d == "no-cache" {
                return 0;
            }
            if let Some(age) = d.strip_prefix("max-age=") {
                fresh = age.trim_matches('"').parse().unwrap_or(0);
            }
        }
    }
    fresh
}

/// The client whose id is the document URL `url`, fetched and stored (or refreshed) when the
/// stored copy is missing or stale at `now`. `admit` is asked before every fetch (the rate of
/// registrations per address).
pub async fn resolve(
    store: &Store,
    documents: &Documents,
    rules: &Rules<'_>,
    url: &str,
    now: i64,
    admit: impl FnOnce() -> bool,
    audit: impl Fn(&str) -> AuditEntry,
) -> Result<ClientRecord, DocumentError> {
    let stored = store.client(url).await?;
    if let Some(c) = &stored {
        let fresh = c
            .registration
            .as_ref()
            .is_none_or(|r| r.origin != Origin::MetadataDocument || r.fresh_until.is_some_and(|t| now < t));
        if fresh {
            return Ok(c.clone());
        }
    }
    if !admit() {
        return Err(DocumentError::Limited);
    }
    let (doc, fresh) = documents.fetch(url).await?;
    if doc.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(DocumentError::Invalid(
            "its client_id is not the URL it was fetched from".into(),
        ));
    }
    let read =
        rules::read_metadata(&doc, rules.policy, true).map_err(|r| DocumentError::Invalid(r.description))?;
    if !read.flows.public {
        return Err(DocumentError::Invalid(
            "a metadata-document client authenticates with none".into(),
        ));
    }
    let fresh_until = now + fresh.clamp(MIN_FRESH, (rules.cache_max as i64).max(MIN_FRESH));
    let approved = rules.approved.iter().any(|a| a == url);
    // An operator's approval holds while the document sends people where it did.
    let registration = |approved_before: bool| Registration {
        origin: Origin::MetadataDocument,
        access_token: None,
        approved: approved || approved_before,
        metadata: read.kept.clone(),
        fresh_until: Some(fresh_until),
    };
    if stored.is_some() {
        let changed = store
            .modify_client(url, &audit("client.metadata_document_refresh"), |c| {
                c.name.clone_from(&read.name);
                c.scopes.clone_from(&read.scopes);
                c.flows = read.flows.clone();
                let before = c.registration.as_ref().is_some_and(|r| r.approved)
                    && c.flows.redirect_uris == read.flows.redirect_uris;
                c.registration = Some(registration(before));
                Ok::<(), StoreError>(())
            })
            .await?;
        // Deleted meanwhile: treated as new below.
        if let Some(c) = changed {
            return Ok(c);
        }
    }
    let client = ClientRecord {
        id: url.to_string(),
        name: read.name.clone(),
        scopes: read.scopes.clone(),
        audiences: rules.policy.audiences.clone(),
        token_ttl: rules.policy.token_ttl,
        enabled: true,
        created_at: now,
        updated_at: now,
        can_introspect: false,
        tokens_revoked_before: 0,
        claims: Map::new(),
        flows: read.flows.clone(),
        secrets: Vec::new(),
        registration: Some(registration(false)),
    };
    match store
        .register_client(
            &client,
            rules.max_clients,
            None,
            now,
            &audit("client.metadata_document"),
        )
        .await
    {
        Ok(Registered::Stored) => Ok(client),
        Ok(Registered::Full | Registered::TokenRefused) => Err(DocumentError::Full),
        // Two first requests for one document raced, and the other stored it.
        Err(e) => store.client(url).await?.ok_or(DocumentError::Store(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caching_headers() {
        let fresh = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::CACHE_CONTROL, v.parse().unwrap());
            fresh_for(&h)
        };
        assert_eq!(fresh_for(&reqwest::header::HeaderMap::new()), DEFAULT_FRESH);
        assert_eq!(fresh("public, max-age=600"), 600);
        assert_eq!(fresh("max-age=600, no-cache"), 0);
        assert_eq!(fresh("no-store"), 0);
        assert_eq!(fresh("max-age=junk"), 0);
    }
}
