//! The state of people's sign-ins: browser sessions, authorization codes, refresh tokens and
//! what each grants, and the outcomes of presenting them.

/// A signed-in browser. The id is the SHA-256 of the cookie's value, so the store never holds
/// a value that opens a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 (hex) of the cookie value.
    pub id: String,
    /// Who signed in.
    pub user_id: String,
    /// When they entered their password.
    pub auth_time: i64,
    /// Creation time.
    pub created_at: i64,
    /// When it ends.
    pub expires_at: i64,
}

/// What an authorization code or a refresh token grants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// The client it was granted to.
    pub client_id: String,
    /// The user (`sub`).
    pub user_id: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The `nonce` of the authorization request (ID tokens repeat it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The redirect URI the code was sent to (codes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// The PKCE `S256` challenge (codes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    /// The resources (RFC 8707) the authorization request named: tokens from this grant may be
    /// for these only. Empty: the request named none, and the grant covers the client's default
    /// audience.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// The DPoP key it is bound to (RFC 7638 thumbprint): for a code, the authorization
    /// request's `dpop_jkt` (RFC 9449 §10); for a public client's refresh token, the key of
    /// the proof it was issued with (§5). Using it takes a proof made with that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

/// What ending a user's sign-ins ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInsEnded {
    /// Browser sessions deleted.
    pub sessions: u64,
    /// Refresh-token families revoked.
    pub refresh_token_families: u64,
    /// Access tokens revoked with those families (`jti`, expiry).
    pub revoked: Vec<(String, i64)>,
}

/// What a redeemed code or a used refresh token issued, so that a second use can revoke it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Issued {
    /// The access token's `jti`.
    pub access_jti: String,
    /// When that access token expires.
    pub access_expires_at: i64,
    /// The refresh-token family started, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_id: Option<String>,
}

/// An authorization code (by the SHA-256 of its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// SHA-256 (hex) of the code.
    pub id: String,
    /// What it grants.
    pub grant: Grant,
    /// When it stops being redeemable.
    pub expires_at: i64,
    /// Until when the row is kept (to recognise a second use).
    pub keep_until: i64,
}

/// The outcome of presenting an authorization code.
#[derive(Debug, PartialEq, Eq)]
pub enum Redemption {
    /// First use: the code is spent, here is what it grants.
    Redeemed(Grant),
    /// The code exists but the request does not match it (another client, redirect URI or
    /// PKCE verifier): nothing changed.
    Refused,
    /// A second use: what the first issued has been revoked (these access token ids, with
    /// their expiry).
    Reused(Vec<(String, i64)>),
    /// No such code, or expired.
    Unknown,
}

/// A refresh token (by the SHA-256 of its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// SHA-256 (hex) of the token.
    pub id: String,
    /// Its family: every token rotated from one code exchange.
    pub family_id: String,
    /// What it grants.
    pub grant: Grant,
    /// Creation time.
    pub created_at: i64,
    /// When it expires unused (idle lifetime).
    pub expires_at: i64,
    /// When the family ends whatever happens (absolute lifetime).
    pub family_expires_at: i64,
    /// The access token issued with it.
    pub access_jti: Option<String>,
    /// When that access token expires.
    pub access_expires_at: Option<i64>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Spent and replaced: the old record (the new one is stored).
    Rotated(Box<RefreshRecord>),
    /// It exists but belongs to another client, or the request was refused: nothing changed.
    Refused,
    /// Used before: its whole family is revoked (these access token ids, with their expiry).
    Reused(Vec<(String, i64)>),
    /// No such token, or expired.
    Unknown,
}
