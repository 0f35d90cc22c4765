//! Token introspection (RFC 7662).

use bytes::Bytes;
use http::HeaderMap;
use serde_json::json;

use super::admission::{BoxError, Connection, admit, authenticate_request, read_form};
use super::validate::check;
use super::{Answer, OAuthError};
use crate::app::App;

/// Answers `POST /oauth2/introspect`. The caller authenticates as a client; it may introspect
/// its own tokens, and any token when an operator allowed it (`--introspect`). Everything else,
/// and every token that is not active, is exactly `{"active": false}` (RFC 7662 §2.2).
pub async fn handle<B>(
    app: &App,
    connection: &Connection,
    headers: &HeaderMap,
    body: B,
) -> Result<Answer, OAuthError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let address = admit(app, connection.peer, headers)?;
    let form = read_form(app, headers, body).await?;
    let (token, caller, method) =
        authenticate_request(app, address, connection, headers, &form, "token").await?;
    // RFC 7662 §2.1: the endpoint requires authorization; a public client has nothing to show.
    if !method.proves_possession() {
        return Err(super::OAuthError::InvalidClient(
            "introspection needs client authentication; a public client cannot introspect".into(),
        ));
    }
    // token_type_hint is accepted; every kind of token is searched anyway (§2.1).
    let active = match check(app, token, app.clock.now()) {
        Ok(active) => active,
        Err(why) => {
            tracing::debug!(caller = %caller.id, reason = ?why, "introspected an inactive token");
            return Answer::json(&json!({"active": false}));
        }
    };
    if *active.claims.client_id != *caller.id && !caller.can_introspect {
        tracing::info!(caller = %caller.id, "introspection of another client's token refused");
        return Answer::json(&json!({"active": false}));
    }
    let c = active.claims;
    // RFC 9449 §6.2: a DPoP-bound token is of type DPoP, and `cnf` (among the claims copied
    // below) tells the resource server the key.
    let dpop_bound = c.extra.get("cnf").and_then(|cnf| cnf.get("jkt")).is_some();
    let mut body = json!({
        "active": true,
        "client_id": c.client_id,
        "sub": c.sub,
        "aud": c.aud,
        "iss": c.iss,
        "exp": c.exp,
        "iat": c.iat,
        "jti": c.jti,
        "token_type": if dpop_bound { "DPoP" } else { "Bearer" },
    });
    if let Some(scope) = c.scope {
        body["scope"] = scope.into();
    }
    // The client's own claims, as the token carries them (their names never clash with the
    // members above: `crate::claims::RESERVED`).
    if let Some(map) = body.as_object_mut() {
        for (name, value) in c.extra {
            map.entry(name).or_insert(value);
        }
    }
    Answer::json(&body)
}
