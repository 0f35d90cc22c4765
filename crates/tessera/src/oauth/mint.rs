//! Minting tokens: the lifetime rule every token follows, the claims of an access token (about
//! the client itself, or about a person who signed in) and of an ID token, the signature with
//! the key active now, and the RFC 6749 §5.1 answer. Shared by every grant; reads only memory.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use serde_json::{Map, Value, json};

use super::dpop::Confirmation;
use super::{Answer, OAuthError};
use crate::app::App;
use crate::clients::CachedClient;
use crate::keys::KeySet;
use crate::model::{Grant, UserRecord};

#[cfg(doc)]
use tessera_proto::AccessTokenClaims;

/// A fresh token id: 128 random bits.
pub fn new_jti() -> String {
    let mut buf = [0u8; JTI_LEN];
    fill_jti(&mut buf).to_string()
}

/// Length of a token id: 16 bytes in base64url.
const JTI_LEN: usize = 22;

/// Writes a fresh token id into `buf` and returns it.
fn fill_jti(buf: &mut [u8; JTI_LEN]) -> &str {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let n = URL_SAFE_NO_PAD.encode_slice(bytes, buf).unwrap_or(0);
    // base64url is ASCII; 16 bytes always take exactly 22 characters.
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

/// An audience claim borrowed from the client, the request or the settings.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum AudienceRef<'a> {
    /// One audience, serialized as a string.
    One(&'a str),
    /// Several, serialized as an array.
    Many(Vec<&'a str>),
}

/// The claims of a token being minted: the same JSON as [`AccessTokenClaims`], from borrowed
/// strings (a test checks that they agree).
#[derive(serde::Serialize)]
struct ClaimsRef<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a AudienceRef<'a>,
    exp: u64,
    iat: u64,
    jti: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
}

/// Whom an access token is about.
#[derive(Clone, Copy)]
pub enum Subject<'a> {
    /// The client itself (client credentials): `sub` is the client id, and the client's own
    /// claims are added.
    Client,
    /// A person who signed in at `auth_time`; `jti` is the token id the store recorded with the
    /// grant, so that a replayed grant can revoke it.
    User {
        /// The user id.
        id: &'a str,
        /// When they signed in.
        auth_time: i64,
        /// The token id.
        jti: &'a str,
    },
}

/// A freshly signed access token.
pub struct Issued<'a> {
    /// The JWT.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to a DPoP key (RFC 9449 §5).
    pub token_type: &'static str,
    /// Its lifetime in seconds (`exp - iat`).
    pub expires_in: u64,
    /// The granted scope.
    pub scope: Option<Cow<'a, str>>,
}

/// The claims of a token about to be signed.
pub struct Minted<'a> {
    /// Their JSON.
    pub claims_json: Vec<u8>,
    /// Issue time.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// The granted scope.
    pub scope: Option<Cow<'a, str>>,
}

/// When a token for `client` minted at `now` by a key retiring at `retire_at` is issued and
/// expires: the one rule for every token Tessera signs (access tokens of every grant, ID tokens).
pub fn lifetime(client: &CachedClient, now: i64, retire_at: Option<i64>) -> (i64, i64) {
    let iat = issued_at(client, now);
    let mut exp = iat + i64::from(client.token_ttl);
    // A key scheduled to retire never signs a token that outlives it (a client's lifetime may
    // have been raised after the rotation was planned).
    if let Some(retire_at) = retire_at {
        exp = exp.min(retire_at).max(iat + 1);
    }
    (iat, exp)
}

/// When a token of `client` minted at `now` is dated. Tokens issued at or before
/// `tokens_revoked_before` count as revoked; a token minted in the same second as a revocation
/// is newer than it, so it is dated one second later.
fn issued_at(client: &CachedClient, now: i64) -> i64 {
    now.max(client.tokens_revoked_before + 1).max(0)
}

/// Binds `claims_json` as `cnf` says, signs it with `slot`'s key, and makes the answer's parts.
fn signed<'a>(
    slot: &crate::keys::Slot,
    mut claims_json: Vec<u8>,
    cnf: &Confirmation,
    (iat, exp): (i64, i64),
    scope: Option<Cow<'a, str>>,
) -> Result<Issued<'a>, OAuthError> {
    bind(&mut claims_json, cnf);
    let access_token = slot
        .signer
        .sign_jwt(&claims_json)
        .map_err(|e| OAuthError::internal(&e))?;
    Ok(Issued {
        access_token,
        token_type: cnf.token_type(),
        expires_in: (exp - iat) as u64,
        scope,
    })
}

/// Mints the claims of an access token of `client` about `subject` at time `now`, to be signed
/// by a key that retires at `retire_at`, if scheduled.
pub fn mint<'a>(
    issuer: &str,
    client: &CachedClient,
    subject: Subject<'_>,
    scope: Option<Cow<'a, str>>,
    aud: &AudienceRef<'_>,
    now: i64,
    retire_at: Option<i64>,
) -> Result<Minted<'a>, serde_json::Error> {
    let (iat, exp) = lifetime(client, now, retire_at);
    let mut fresh = [0u8; JTI_LEN];
    let (sub, jti, auth_time, extra) = match subject {
        Subject::Client => (&*client.id, fill_jti(&mut fresh), None, client.claims.as_deref()),
        Subject::User { id, auth_time, jti } => (id, jti, Some(auth_time), None),
    };
    let claims = ClaimsRef {
        iss: issuer,
        sub,
        aud,
        exp: exp as u64,
        iat: iat as u64,
        jti,
        client_id: &client.id,
        scope: scope.as_deref(),
        auth_time,
    };
    let mut claims_json = serde_json::to_vec(&claims)?;
    if let Some(extra) = extra {
        // The client's own claims, serialized once when it was cached; their names never clash
        // with the ones above (`crate::claims::RESERVED`).
        claims_json.pop();
        claims_json.push(b',');
        claims_json.extend_from_slice(extra.as_bytes());
        claims_json.push(b'}');
    }
    Ok(Minted {
        claims_json,
        iat,
        exp,
        scope,
    })
}

/// Builds and signs an access token for `client` at time `now` with the key active then, bound
/// as `cnf` says (a DPoP key, RFC 9449 §6.1; a certificate, RFC 8705 §3.1).
pub(crate) fn issue<'a>(
    keys: &KeySet,
    issuer: &str,
    client: &CachedClient,
    scope: Option<Cow<'a, str>>,
    aud: &AudienceRef<'_>,
    now: i64,
    cnf: &Confirmation,
) -> Result<Issued<'a>, OAuthError> {
    let slot = keys
        .current(now)
        .ok_or_else(|| OAuthError::internal(&"no active signing key"))?;
    let minted = mint(issuer, client, Subject::Client, scope, aud, now, slot.retire_at)
        .map_err(|e| OAuthError::internal(&e))?;
    signed(
        slot,
        minted.claims_json,
        cnf,
        (minted.iat, minted.exp),
        minted.scope,
    )
}

/// What an exchanged token (RFC 8693) is about, beside the client that asked for it.
pub struct Exchanged<'a> {
    /// The subject token's subject.
    pub sub: &'a str,
    /// Who acts (§4.1), the earlier actors nested inside; `None` for impersonation.
    pub act: Option<&'a Value>,
    /// Lifetime in seconds (the exchange policy's, or the client's).
    pub ttl: u32,
    /// The subject token's expiry, which the new token does not outlive (unless the policy
    /// allows it: `None`).
    pub until: Option<i64>,
}

/// Signs an exchanged access token for `client` at time `now`: `sub` the subject's, `act` the
/// actor chain, the client's revocation mark respected, never past the subject token's expiry
/// (when `until` says so) nor the key's retirement.
pub(crate) fn issue_exchanged<'a>(
    app: &App,
    client: &CachedClient,
    x: &Exchanged<'_>,
    scope: Option<Cow<'a, str>>,
    aud: &AudienceRef<'_>,
    now: i64,
    cnf: &Confirmation,
) -> Result<Issued<'a>, OAuthError> {
    let keys = app.keys.get();
    let slot = keys
        .current(now)
        .ok_or_else(|| OAuthError::internal(&"no active signing key"))?;
    let iat = issued_at(client, now);
    let mut exp = iat + i64::from(x.ttl);
    if let Some(until) = x.until {
        exp = exp.min(until);
    }
    if let Some(retire_at) = slot.retire_at {
        exp = exp.min(retire_at);
    }
    if exp <= iat {
        return Err(OAuthError::InvalidRequest(
            "the token would expire at once (its subject token is expiring)".into(),
        ));
    }
    let mut fresh = [0u8; JTI_LEN];
    let claims = ClaimsRef {
        iss: &app.settings.issuer,
        sub: x.sub,
        aud,
        exp: exp as u64,
        iat: iat as u64,
        jti: fill_jti(&mut fresh),
        client_id: &client.id,
        scope: scope.as_deref(),
        auth_time: None,
    };
    let mut claims_json = serde_json::to_vec(&claims).map_err(|e| OAuthError::internal(&e))?;
    if let Some(act) = x.act {
        claims_json.pop();
        claims_json.extend_from_slice(b",\"act\":");
        serde_json::to_writer(&mut claims_json, act).map_err(|e| OAuthError::internal(&e))?;
        claims_json.push(b'}');
    }
    signed(slot, claims_json, cnf, (iat, exp), scope)
}

/// Adds `cnf` to the claims, when bound (`cnf` is a reserved name no client claim has).
fn bind(claims_json: &mut Vec<u8>, cnf: &Confirmation) {
    if *cnf != Confirmation::NONE {
        claims_json.pop();
        cnf.write_claim(claims_json);
        claims_json.push(b'}');
    }
}

/// The RFC 6749 §5.1 response for an issued token.
pub fn token_response(issued: Issued<'_>) -> Result<Answer, OAuthError> {
    let json = token_response_json(&issued).map_err(|e| OAuthError::internal(&e))?;
    Ok(Answer::Json(json))
}

/// What the tokens of a person's answer are made from.
pub struct UserTokens<'a> {
    /// The sign-in grant (its scope already cut to what the client may have now).
    pub grant: &'a Grant,
    /// Its user.
    pub user: &'a UserRecord,
    /// The access token's audience.
    pub audience: &'a AudienceRef<'a>,
    /// The access token's id, as the store recorded it.
    pub jti: &'a str,
    /// The time the store recorded the access token's expiry from: the one clock reading.
    pub at: i64,
    /// Whether the ID token carries the grant's `nonce` (the code's answer; not a refresh's).
    pub with_nonce: bool,
    /// What the access token is bound to.
    pub cnf: &'a Confirmation,
}

/// Signs a person's access token (and the ID token when `openid` was granted) with one
/// lifetime, and builds the answer.
pub fn issue_for_user(
    app: &App,
    client: &CachedClient,
    m: &UserTokens<'_>,
    refresh_token: Option<String>,
) -> Result<Answer, OAuthError> {
    let keys = app.keys.get();
    let slot = keys
        .current(m.at)
        .ok_or_else(|| OAuthError::internal(&"no active signing key"))?;
    let scope = m.grant.scope.join(" ");
    let subject = Subject::User {
        id: &m.user.id,
        auth_time: m.grant.auth_time,
        jti: m.jti,
    };
    let mut minted = mint(
        &app.settings.issuer,
        client,
        subject,
        Some(Cow::Borrowed(&scope)),
        m.audience,
        m.at,
        slot.retire_at,
    )
    .map_err(|e| OAuthError::internal(&e))?;
    bind(&mut minted.claims_json, m.cnf);
    let access_token = slot
        .signer
        .sign_jwt(&minted.claims_json)
        .map_err(|e| OAuthError::internal(&e))?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": m.cnf.token_type(),
        "expires_in": minted.exp - minted.iat,
        "scope": scope,
    });
    if m.grant.scope.iter().any(|s| s == "openid") {
        let id_token = id_token(app, &keys, client, m, &access_token, (minted.iat, minted.exp))?;
        body["id_token"] = json!(id_token);
    }
    if let Some(r) = refresh_token {
        body["refresh_token"] = json!(r);
    }
    serde_json::to_vec(&body)
        .map(Answer::Json)
        .map_err(|e| OAuthError::internal(&e))
}

/// The ID token beside `access_token` (OpenID Connect Core §2, §3.1.3.6), with the access
/// token's lifetime.
fn id_token(
    app: &App,
    keys: &KeySet,
    client: &CachedClient,
    m: &UserTokens<'_>,
    access_token: &str,
    (iat, exp): (i64, i64),
) -> Result<String, OAuthError> {
    let id_slot = keys
        .current_id(m.at)
        .ok_or_else(|| OAuthError::internal(&"no active ID token signing key"))?;
    // at_hash: the left half of the SHA-256 of the access token (RS256), base64url.
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    let at_hash = URL_SAFE_NO_PAD.encode(&d.as_ref()[..16]);
    let mut id = Map::new();
    id.insert("iss".into(), json!(app.settings.issuer));
    id.insert("sub".into(), json!(m.user.id));
    id.insert("aud".into(), json!(&*client.id));
    id.insert("exp".into(), json!(exp));
    id.insert("iat".into(), json!(iat));
    id.insert("auth_time".into(), json!(m.grant.auth_time));
    id.insert("azp".into(), json!(&*client.id));
    id.insert("at_hash".into(), json!(at_hash));
    if let (true, Some(nonce)) = (m.with_nonce, &m.grant.nonce) {
        id.insert("nonce".into(), json!(nonce));
    }
    id_slot
        .signer
        .sign_jwt(Value::Object(id).to_string().as_bytes())
        .map_err(|e| OAuthError::internal(&e))
}

/// The JSON of a token response, written directly: the access token is a compact JWS (base64url
/// and dots, nothing to escape), so it is copied instead of going through serde_json's escaping
/// scan, which cost more instructions than the rest of the response (bench/instructions.sh).
/// The scope still goes through serde_json.
pub fn token_response_json(issued: &Issued<'_>) -> Result<Vec<u8>, serde_json::Error> {
    debug_assert!(
        issued
            .access_token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    );
    let scope_len = issued.scope.as_ref().map_or(0, |s| s.len() + 12);
    let mut out = Vec::with_capacity(issued.access_token.len() + scope_len + 64);
    out.extend_from_slice(br#"{"access_token":""#);
    out.extend_from_slice(issued.access_token.as_bytes());
    out.extend_from_slice(br#"","token_type":""#);
    out.extend_from_slice(issued.token_type.as_bytes());
    out.extend_from_slice(br#"","expires_in":"#);
    out.extend_from_slice(issued.expires_in.to_string().as_bytes());
    if let Some(scope) = &issued.scope {
        out.extend_from_slice(br#","scope":"#);
        serde_json::to_writer(&mut out, scope)?;
    }
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_proto::{AccessTokenClaims, Audience, TokenResponse};

    #[test]
    fn borrowed_claims_are_access_token_claims() {
        let many = AudienceRef::Many(vec!["https://a", "https://b"]);
        let one = AudienceRef::One("https://a");
        for (aud, expected, scope) in [
            (&one, Audience::One("https://a".into()), Some("x y")),
            (
                &many,
                Audience::Many(vec!["https://a".into(), "https://b".into()]),
                None,
            ),
        ] {
            let mut buf = [0u8; JTI_LEN];
            let jti = fill_jti(&mut buf).to_string();
            assert_eq!(jti.len(), JTI_LEN);
            let claims = ClaimsRef {
                iss: "https://issuer",
                sub: "c\"1",
                aud,
                exp: 20,
                iat: 10,
                jti: &jti,
                client_id: "c\"1",
                scope,
                auth_time: None,
            };
            let json = serde_json::to_vec(&claims).unwrap();
            let owned = AccessTokenClaims {
                iss: "https://issuer".into(),
                sub: "c\"1".into(),
                aud: expected,
                exp: 20,
                iat: 10,
                jti: jti.clone(),
                client_id: "c\"1".into(),
                scope: scope.map(String::from),
                extra: Default::default(),
            };
            assert_eq!(json, serde_json::to_vec(&owned).unwrap());
        }
        assert_ne!(new_jti(), new_jti());
    }

    #[test]
    fn token_response_json_matches_the_wire_type() {
        for scope in [None, Some("demo:read demo:write".to_string())] {
            let issued = Issued {
                access_token: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_".into(),
                token_type: "Bearer",
                expires_in: 3600,
                scope: scope.clone().map(Cow::Owned),
            };
            let json = token_response_json(&issued).unwrap();
            let parsed: TokenResponse = serde_json::from_slice(&json).unwrap();
            assert_eq!(parsed.access_token, issued.access_token);
            assert_eq!(parsed.token_type, "Bearer");
            assert_eq!(parsed.expires_in, Some(3600));
            assert_eq!(parsed.scope, scope);
            let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let fields = if scope.is_some() { 4 } else { 3 };
            assert_eq!(value.as_object().map(|o| o.len()), Some(fields), "{value}");
        }
    }
}
