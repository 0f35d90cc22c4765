//! OAuth 2.0 protocol, free of any web framework: request admission, client authentication
//! methods and grants (one module each), minting, the token, authorization, userinfo,
//! introspection and revocation endpoints, and the RFC 6749 error type. Endpoints take the
//! request's headers and body (`http` and `http-body` types) and answer with an [`Answer`] or an
//! [`OAuthError`]; `crate::http` turns those into responses.

pub mod admission;
pub mod authorize;
pub mod client_auth;
pub mod device;
pub mod dpop;
pub mod federation;
pub mod form;
pub mod grants;
pub mod introspect;
pub mod mint;
pub mod oidc;
pub mod resource;
pub mod revoke;
pub mod token;
pub mod userinfo;
pub mod validate;

use std::borrow::Cow;

use http::StatusCode;

/// `WWW-Authenticate` challenge sent with every 401 from the token endpoint.
pub const BASIC_CHALLENGE: &str = r#"Basic realm="tessera", charset="UTF-8""#;

/// `Retry-After` on answers refused because the store is away: about one pool timeout.
pub const RETRY_AFTER_SECONDS: &str = "5";

/// A protocol endpoint's answer when it succeeds; `http/` makes it an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with this JSON body, never cached (RFC 6749 §5.1).
    Json(Vec<u8>),
    /// 200 with no body, never cached (RFC 7009 §2.2).
    Empty,
}

impl Answer {
    /// 200 with `value` as JSON, never cached.
    pub fn json(value: &serde_json::Value) -> Result<Self, OAuthError> {
        serde_json::to_vec(value)
            .map(Answer::Json)
            .map_err(|e| OAuthError::internal(&e))
    }
}

/// An OAuth error as the client sees it. The description is public; anything private goes to the
/// log before the error is built, never into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// RFC 6749 §5.2: "The request is missing a required parameter, includes an unsupported
    /// parameter value (other than grant type), repeats a parameter, includes multiple credentials,
    /// utilizes more than one mechanism for authenticating the client, or is otherwise malformed."
    InvalidRequest(Cow<'static, str>),
    /// RFC 6749 §5.2: "Client authentication failed (e.g., unknown client, no client authentication
    /// included, or unsupported authentication method)."
    InvalidClient(Cow<'static, str>),
    /// RFC 6749 §5.2: "The authorization grant type is not supported by the authorization server."
    UnsupportedGrantType(Cow<'static, str>),
    /// RFC 6749 §5.2: "The authenticated client is not authorized to use this authorization grant
    /// type."
    UnauthorizedClient(Cow<'static, str>),
    /// RFC 6749 §5.2: "The requested scope is invalid, unknown, malformed, or exceeds the scope
    /// granted by the resource owner."
    InvalidScope(Cow<'static, str>),
    /// RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed."
    InvalidTarget(Cow<'static, str>),
    /// RFC 6749 §5.2: "The provided authorization grant (e.g., authorization code, resource
    /// owner credentials) or refresh token is invalid, expired, revoked, does not match the
    /// redirection URI used in the authorization request, or was issued to another client."
    InvalidGrant(Cow<'static, str>),
    /// RFC 8628 §3.5: a device's poll that cannot have tokens (yet).
    Device(DevicePoll),
    /// The request used a method the endpoint does not serve (HTTP 405).
    MethodNotAllowed,
    /// The store cannot take a write now (RFC 7009 §2.2.1: HTTP 503; the client must assume the
    /// token still exists and may retry after `Retry-After`).
    TemporarilyUnavailable,
    /// A limit refused the request (HTTP 429): too many requests, or a back-off after failed
    /// authentications. `Retry-After` says when to come back.
    TooManyRequests {
        /// Which limit (for the log and metrics; not sent).
        limit: &'static str,
        /// Whole seconds to wait.
        retry_after: u64,
    },
    /// Too many requests in flight on this node (HTTP 503, `Retry-After: 1`).
    Overloaded,
    /// Something failed inside the server; the reference points at the log line with the detail.
    ServerError {
        /// Correlation id, also logged.
        reference: String,
    },
    /// RFC 9449 §5: the DPoP proof was refused (`invalid_dpop_proof`), or a nonce is required
    /// (`use_dpop_nonce`, §8); with a nonce to send in `DPoP-Nonce`.
    Dpop {
        /// Why.
        error: tessera_verify::dpop::ProofError,
        /// The nonce to use, when nonces are required.
        nonce: Option<String>,
    },
}

impl OAuthError {
    /// The RFC error code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::MethodNotAllowed => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::TemporarilyUnavailable
            | OAuthError::TooManyRequests { .. }
            | OAuthError::Overloaded => "temporarily_unavailable",
            OAuthError::ServerError { .. } => "server_error",
            OAuthError::Dpop { error, .. } => error.error_code(),
            OAuthError::Device(d) => d.code(),
        }
    }

    /// The HTTP status, chosen here and nowhere else.
    pub fn status(&self) -> StatusCode {
        match self {
            OAuthError::InvalidRequest(_)
            | OAuthError::UnsupportedGrantType(_)
            | OAuthError::UnauthorizedClient(_)
            | OAuthError::InvalidScope(_)
            | OAuthError::InvalidTarget(_)
            | OAuthError::InvalidGrant(_)
            | OAuthError::Device(_)
            | OAuthError::Dpop { .. } => StatusCode::BAD_REQUEST,
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            OAuthError::TemporarilyUnavailable | OAuthError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::ServerError { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The public description.
    pub fn description(&self) -> Cow<'_, str> {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::InvalidTarget(d)
            | OAuthError::InvalidGrant(d) => Cow::Borrowed(d.as_ref()),
            OAuthError::MethodNotAllowed => Cow::Borrowed("this endpoint accepts POST only"),
            OAuthError::TemporarilyUnavailable => {
                Cow::Borrowed("the store is unavailable; nothing was changed, retry later")
            }
            OAuthError::TooManyRequests { .. } => Cow::Borrowed("too many requests; retry later"),
            OAuthError::Overloaded => Cow::Borrowed("the server is busy; retry later"),
            OAuthError::ServerError { reference } => {
                Cow::Owned(format!("internal error, reference {reference}"))
            }
            OAuthError::Dpop { error, .. } => Cow::Owned(error.to_string()),
            OAuthError::Device(d) => Cow::Borrowed(d.description()),
        }
    }

    /// The error for a failed store write: 503 when the database is away, else a server error.
    pub fn store(e: &crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "store unavailable; request refused");
            OAuthError::TemporarilyUnavailable
        } else {
            Self::internal(e)
        }
    }

    /// The error for a request a limit refused.
    pub fn refused(r: crate::limits::Refused) -> Self {
        OAuthError::TooManyRequests {
            limit: r.limit,
            retry_after: crate::limits::retry_after_seconds(r.retry_after),
        }
    }

    /// A server error, logged under a fresh reference that the client also sees.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(reference = %reference, error = %detail, "internal error");
        OAuthError::ServerError { reference }
    }
}

/// Why a device's poll gets no tokens (RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePoll {
    /// Nobody has answered yet: poll again after the interval.
    AuthorizationPending,
    /// Polled too soon: the interval grew by 5 seconds.
    SlowDown,
    /// The device code expired: start again.
    ExpiredToken,
    /// The person denied the request.
    AccessDenied,
}

impl DevicePoll {
    /// The error code.
    pub fn code(self) -> &'static str {
        match self {
            DevicePoll::AuthorizationPending => "authorization_pending",
            DevicePoll::SlowDown => "slow_down",
            DevicePoll::ExpiredToken => "expired_token",
            DevicePoll::AccessDenied => "access_denied",
        }
    }

    fn description(self) -> &'static str {
        match self {
            DevicePoll::AuthorizationPending => "the user has not entered the code yet",
            DevicePoll::SlowDown => "polling too often: wait 5 seconds longer between polls from now on",
            DevicePoll::ExpiredToken => "the device code has expired: start again",
            DevicePoll::AccessDenied => "the user denied the request",
        }
    }
}

/// Keeps a description within RFC 6749's `error_description` alphabet: printable ASCII without
/// `"` and `\`.
pub(crate) fn sanitize(description: &str) -> String {
    description
        .chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_stay_in_the_rfc_alphabet() {
        assert_eq!(sanitize(r#"a"b\c é"#), "a'b'c ?");
    }
}
