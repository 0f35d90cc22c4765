//! Token exchange (RFC 8693): a client that holds a subject's token gets a narrower token for
//! another API, acting for the subject (delegation: `act` names the actor, earlier actors nested
//! inside, so the whole chain survives) or as the subject (impersonation), within its exchange
//! policy (`model::exchange`).
//!
//! - Subject tokens: Tessera's access tokens (active: signature, expiry, not revoked, their
//!   client enabled), Tessera's ID tokens issued to the exchanging client, or JWTs of an issuer
//!   the exchanging client's trust policies admit. An access token must be meant for the client
//!   (its id) or for one of the policy's `subject_audiences`.
//! - The actor token (delegation) is the exchanging client's own access token for itself (its
//!   `sub` is the client, no `act`); without one, the exchange is impersonation, which keeps a
//!   delegated subject's chain (it never hides who acted). A subject token's `may_act` must
//!   name the actor (or, for impersonation, the client). Chains are at most eight deep.
//! - An ID token or an external JWT without a `scope` string carries no scope, so neither does
//!   what is exchanged from it; an ID token's user must still be enabled; an external token's
//!   `act` is not copied. Refused subject or actor tokens are `invalid_request` (§2.2.2).
//! - Scope: what is asked, within both the subject token's scope and the client's scopes
//!   (`invalid_scope` otherwise); audience (`audience` or `resource`): within the policy's
//!   (`invalid_target`). Lifetime: the policy's (or the client's), never past the subject
//!   token's expiry unless the policy says so.
//! - Revoking a subject token does not revoke what was exchanged from it (those are short-lived
//!   and end with their subject by default); a revoked subject token cannot be exchanged.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::{Grant, Issuing, TokenRequest};
use crate::model::exchange::{ACCESS_TOKEN_TYPE, ExchangePolicy, JWT_TYPE, kind_of};
use crate::model::scope::parse_scope;
use crate::oauth::mint::{AudienceRef, Exchanged, issue_exchanged};
use crate::oauth::{Answer, OAuthError};

/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
pub struct TokenExchange;

impl Grant for TokenExchange {
    fn name(&self) -> &'static str {
        crate::model::flows::TOKEN_EXCHANGE
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("subject_token", "subject_token is required (RFC 8693 §2.1)"),
            (
                "subject_token_type",
                "subject_token_type is required (RFC 8693 §2.1)",
            ),
        ]
    }

    fn issue<'a>(&'a self, request: TokenRequest<'a>) -> Issuing<'a> {
        Box::pin(exchange(request))
    }
}

/// The subject token, checked.
struct Subject {
    sub: String,
    /// Its scopes (an ID token's, or an external token's without `scope`: none).
    scopes: Vec<String>,
    exp: i64,
    act: Option<Value>,
    may_act: Option<Value>,
}

/// RFC 8693 §2.2.2: a subject or actor token that is invalid for any reason, or unacceptable
/// under the client's policy, is `invalid_request`.
fn refused(why: &'static str) -> OAuthError {
    OAuthError::InvalidRequest(why.into())
}

/// Deepest `act` chain Tessera mints (each hop adds one).
const MAX_CHAIN: usize = 8;

async fn exchange(r: TokenRequest<'_>) -> Result<Answer, OAuthError> {
    let (app, client, form) = (r.app, r.client, r.form);
    let policy = client
        .exchange
        .as_deref()
        .ok_or_else(|| OAuthError::UnauthorizedClient("this client has no exchange policy".into()))?;
    if let Some(t) = form.get("requested_token_type") {
        if t != ACCESS_TOKEN_TYPE && t != JWT_TYPE {
            return Err(OAuthError::InvalidRequest(
                "requested_token_type must be urn:ietf:params:oauth:token-type:access_token (or jwt): Tessera issues access tokens".into(),
            ));
        }
    }
    let now = app.clock.now();
    let subject_type = r.required("subject_token_type")?;
    let kind = kind_of(subject_type).filter(|k| policy.takes(k)).ok_or_else(|| {
        OAuthError::InvalidRequest("subject_token_type is not one this client may exchange".into())
    })?;
    let subject = subject(&r, policy, kind, r.required("subject_token")?, now).await?;

    // Delegation (an actor token) or impersonation (none).
    let actor = match (form.get("actor_token"), form.get("actor_token_type")) {
        (None, None) => None,
        (Some(token), Some(ACCESS_TOKEN_TYPE)) => {
            let active = crate::oauth::validate::check(app, token, now)
                .map_err(|_| refused("the actor token is not active"))?;
            // The client's own token for itself: not a person's, not an exchanged one, so the
            // actor it names is always the client.
            let own = active.claims.client_id == *client.id
                && active.claims.sub == *client.id
                && !active.claims.extra.contains_key("act");
            if !own {
                return Err(refused(
                    "the actor token must be this client's own token for itself",
                ));
            }
            Some(active.claims.sub)
        }
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "actor_token_type must be urn:ietf:params:oauth:token-type:access_token".into(),
            ));
        }
        _ => {
            return Err(OAuthError::InvalidRequest(
                "actor_token and actor_token_type go together (RFC 8693 §2.1)".into(),
            ));
        }
    };
    match &actor {
        Some(_) if !policy.delegation => {
            return Err(refused("this client may not act for others (delegation)"));
        }
        None if !policy.impersonation => {
            return Err(refused(
                "this client may not impersonate; present an actor token (delegation)",
            ));
        }
        _ => {}
    }
    // `may_act` (§4.4): the subject names who may act for it.
    if let Some(may) = &subject.may_act {
        let who = actor.as_deref().unwrap_or(&client.id);
        let named = may.get("sub").and_then(Value::as_str) == Some(who)
            || may.get("client_id").and_then(Value::as_str) == Some(&client.id);
        if !named {
            return Err(refused("the subject token's may_act does not name this actor"));
        }
    }
    let act = actor.map(|sub| {
        let mut a = Map::new();
        a.insert("sub".into(), sub.into());
        if let Some(prior) = &subject.act {
            a.insert("act".into(), prior.clone());
        }
        Value::Object(a)
    });
    // Impersonating a delegated token keeps its chain: the new token must not hide who acted.
    let act = act.or_else(|| subject.act.clone());
    if chain_depth(act.as_ref()) > MAX_CHAIN {
        return Err(refused("the act chain is too deep"));
    }

    let scope = narrow_scope(client, &subject.scopes, form.get("scope"))?;
    let audience = target(policy, form)?;
    let x = Exchanged {
        sub: &subject.sub,
        act: act.as_ref(),
        ttl: policy.max_ttl.unwrap_or(client.token_ttl),
        until: (!policy.outlive_subject).then_some(subject.exp),
    };
    let cnf = r.confirmation()?;
    let issued = issue_exchanged(app, client, &x, scope.map(Cow::Owned), &audience, now, &cnf)?;
    tracing::info!(client = %client.id, subject = %subject.sub, kind, delegated = x.act.is_some(), "token exchanged");
    let mut body = json!({
        "access_token": issued.access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": issued.token_type,
        "expires_in": issued.expires_in,
    });
    if let Some(s) = issued.scope {
        body["scope"] = s.into_owned().into();
    }
    Answer::json(&body)
}

/// Checks the subject token of `kind`.
async fn subject(
    r: &TokenRequest<'_>,
    policy: &ExchangePolicy,
    kind: &str,
    token: &str,
    now: i64,
) -> Result<Subject, OAuthError> {
    let (app, client) = (r.app, r.client);
    match kind {
        "access_token" => {
            let active = crate::oauth::validate::check(app, token, now)
                .map_err(|_| refused("the subject token is not active"))?;
            let c = active.claims;
            let for_us =
                c.aud.contains(&client.id) || policy.subject_audiences.iter().any(|a| c.aud.contains(a));
            if !for_us {
                return Err(refused(
                    "the subject token is not meant for this client (its audience)",
                ));
            }
            Ok(Subject {
                sub: c.sub,
                scopes: scope_tokens(c.scope.as_deref()),
                exp: c.exp as i64,
                act: c.extra.get("act").cloned(),
                may_act: c.extra.get("may_act").cloned(),
            })
        }
        "id_token" => {
            let c = crate::oauth::validate::id_token_claims(app, token)
                .ok_or_else(|| refused("the subject token is not an ID token of this server"))?;
            let exp = c.get("exp").and_then(Value::as_i64).unwrap_or(0);
            if exp <= now {
                return Err(refused("the subject token has expired"));
            }
            if c.get("aud").and_then(Value::as_str) != Some(&client.id) {
                return Err(refused("the ID token was issued to another client"));
            }
            let sub = c.get("sub").and_then(Value::as_str).unwrap_or_default();
            // An ID token cannot be revoked: its user must still exist and be enabled.
            let user = app.store.user(sub).await.map_err(|e| OAuthError::store(&e))?;
            if sub.is_empty() || !user.is_some_and(|u| u.enabled) {
                return Err(refused("the ID token's user is unknown or disabled"));
            }
            Ok(Subject {
                sub: sub.to_string(),
                // An ID token grants no scope: what is exchanged from it carries none.
                scopes: Vec::new(),
                exp,
                act: None,
                may_act: None,
            })
        }
        _ => {
            let admitted = crate::oauth::federation::admit(app, token, Some(&client.id))
                .await
                .map_err(|why| {
                    tracing::info!(client = %client.id, reason = why.as_str(), "external subject token refused");
                    refused("the subject token is not admitted by this client's trust policies")
                })?;
            let c = admitted.claims;
            let sub = c.get("sub").and_then(Value::as_str).unwrap_or_default();
            if sub.is_empty() {
                return Err(refused("the subject token names no subject"));
            }
            Ok(Subject {
                sub: sub.to_string(),
                // No `scope` string, no scope (never "any").
                scopes: scope_tokens(c.get("scope").and_then(Value::as_str)),
                exp: c.get("exp").and_then(Value::as_f64).map_or(0, |e| e as i64),
                // Another issuer's `act` is not Tessera's to assert.
                act: None,
                may_act: c.get("may_act").cloned(),
            })
        }
    }
}

/// The scope: what is asked (all that is allowed, when nothing is), within the subject token's
/// scope and the client's.
fn narrow_scope(
    client: &crate::clients::CachedClient,
    subject: &[String],
    requested: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    let allowed = |s: &str| client.grants.scopes.iter().any(|c| &**c == s) && subject.iter().any(|t| t == s);
    let Some(requested) = requested else {
        let all: Vec<&str> = client
            .grants
            .scopes
            .iter()
            .map(|s| &**s)
            .filter(|s| allowed(s))
            .collect();
        return Ok((!all.is_empty()).then(|| all.join(" ")));
    };
    let tokens = parse_scope(requested).map_err(|_| {
        OAuthError::InvalidScope("scope is not a space-delimited list of scope tokens".into())
    })?;
    if let Some(t) = tokens.iter().find(|t| !allowed(t)) {
        let t = if t.len() > 64 { "requested" } else { t.as_str() };
        return Err(OAuthError::InvalidScope(
            format!("scope {t} is wider than the subject token or this client allows").into(),
        ));
    }
    Ok(Some(tokens.join(" ")))
}

/// The audience: each `audience` and `resource` asked for, within the policy; the policy's first
/// when none is.
fn target<'a>(
    policy: &'a ExchangePolicy,
    form: &'a crate::oauth::form::Form,
) -> Result<AudienceRef<'a>, OAuthError> {
    let mut wanted: Vec<&'a str> = Vec::new();
    for t in form.all("audience").chain(form.all("resource")) {
        let Some(a) = policy.audiences.iter().find(|a| *a == t) else {
            return Err(OAuthError::InvalidTarget(
                "audience or resource is not one this client may exchange for".into(),
            ));
        };
        if !wanted.contains(&a.as_str()) {
            wanted.push(a);
        }
    }
    Ok(match wanted.len() {
        0 => AudienceRef::One(policy.audiences.first().map_or("", String::as_str)),
        1 => AudienceRef::One(wanted[0]),
        _ => AudienceRef::Many(wanted),
    })
}

/// How many actors `act` names (counting stops past [`MAX_CHAIN`]).
fn chain_depth(act: Option<&Value>) -> usize {
    let mut depth = 0;
    let mut a = act;
    while let Some(v) = a {
        depth += 1;
        if depth > MAX_CHAIN {
            break;
        }
        a = v.get("act");
    }
    depth
}

/// The tokens of a space-delimited `scope` (none without one).
fn scope_tokens(scope: Option<&str>) -> Vec<String> {
    scope
        .map(|s| {
            s.split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
