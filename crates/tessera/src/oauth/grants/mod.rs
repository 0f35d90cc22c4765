//! The grants of the token endpoint (RFC 6749 §4), one module each behind [`Grant`]. The
//! endpoint admits the request, authenticates the client, finds the grant named by `grant_type`
//! in [`GRANTS`], checks that the client may use it and that its required parameters are there,
//! and hands it the request. Discovery's `grant_types_supported` is read from [`GRANTS`].
//!
//! A new grant is a module here implementing [`Grant`], one line in [`GRANTS`], and its name in
//! `model::flows::GRANT_TYPES` (so clients can be registered for it).

mod authorization_code;
mod client_credentials;
mod device_code;
pub mod jwt_bearer;
mod refresh_token;
mod sign_in;
mod token_exchange;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use authorization_code::AuthorizationCode;
pub use client_credentials::ClientCredentials;
pub use device_code::DeviceCode;
pub use jwt_bearer::JwtBearer;
pub use refresh_token::RefreshToken;
pub use token_exchange::TokenExchange;

use tessera_verify::dpop::Proof;

use super::dpop::Confirmation;
use super::form::Form;
use super::{Answer, OAuthError};
use crate::app::App;
use crate::clients::CachedClient;
use crate::model::paths::PathRules;

/// What a grant answers with, in time: the token response, or the error.
pub type Issuing<'a> = Pin<Box<dyn Future<Output = Result<Answer, OAuthError>> + Send + 'a>>;

/// A token request that passed admission and client authentication, for the grant it names.
pub struct TokenRequest<'a> {
    /// The node.
    pub app: &'a App,
    /// The authenticated client; it may use this grant.
    pub client: &'a Arc<CachedClient>,
    /// The request's parameters; the grant's required ones are present.
    pub form: &'a Form,
    /// The rules of the path the request came in on.
    pub rules: &'a PathRules,
    /// The client's address.
    pub address: std::net::IpAddr,
    /// The TLS client certificate of the connection, if any.
    pub certificate: Option<&'a crate::model::auth::PeerCertificate>,
    /// The client did not authenticate: the request's `assertion` named it, and was checked
    /// (the JWT bearer grant, RFC 7523 §2.1).
    pub identified_by_assertion: bool,
    /// The request's DPoP proof, checked and recorded (RFC 9449 §5), if it had one.
    pub dpop: Option<&'a Proof>,
}

impl<'a> TokenRequest<'a> {
    /// What the access token is bound to: the DPoP proof's key (RFC 9449 §5), and the TLS
    /// client certificate when the client is registered for certificate-bound tokens (RFC 8705
    /// §3), which it must then present.
    pub fn confirmation(&self) -> Result<Confirmation, OAuthError> {
        let x5t = match (self.client.bound_to_certificate, self.certificate) {
            (false, _) => None,
            (true, Some(c)) => Some(c.thumbprint()),
            (true, None) => {
                return Err(OAuthError::InvalidRequest(
                    "this client's tokens are bound to its TLS client certificate: present one".into(),
                ));
            }
        };
        Ok(Confirmation {
            jkt: self.dpop.map(|p| p.jkt.clone()),
            x5t,
        })
    }

    /// A parameter the grant declared in [`Grant::required`] (present by then), or another one
    /// it cannot do without.
    pub fn required(&self, name: &'static str) -> Result<&'a str, OAuthError> {
        self.form
            .get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("{name} is required").into()))
    }
}

/// A grant type of the token endpoint.
pub trait Grant: Sync {
    /// Its `grant_type` value, as discovery lists it and clients are registered for it.
    fn name(&self) -> &'static str;

    /// The parameters it cannot do without, each with the description of the `invalid_request`
    /// its absence gets (RFC 6749 §5.2), checked in this order before it runs. Parameters it
    /// does not know are ignored (§3.2).
    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Whether `client` may use it (RFC 6749 §5.2 `unauthorized_client` when not): by default,
    /// when the client is registered for it.
    fn allowed(&self, client: &CachedClient) -> bool {
        client.may_use(self.name())
    }

    /// Answers the request: a token response, or why not.
    fn issue<'a>(&'a self, request: TokenRequest<'a>) -> Issuing<'a>;
}

/// Every grant the token endpoint serves, in the order discovery lists them.
pub static GRANTS: &[&dyn Grant] = &[
    &ClientCredentials,
    &AuthorizationCode,
    &RefreshToken,
    &JwtBearer,
    &TokenExchange,
    &DeviceCode,
];

/// The grant named `grant_type`.
pub fn find(grant_type: &str) -> Option<&'static dyn Grant> {
    GRANTS.iter().copied().find(|g| g.name() == grant_type)
}

/// Who asks, and how they were found: what [`dispatch`] needs besides the form.
pub struct Caller<'a> {
    /// The client.
    pub client: &'a Arc<CachedClient>,
    /// Its address.
    pub address: std::net::IpAddr,
    /// The TLS client certificate of its connection, if any.
    pub certificate: Option<&'a crate::model::auth::PeerCertificate>,
    /// Named by the request's assertion rather than authenticated (see [`TokenRequest`]).
    pub identified_by_assertion: bool,
    /// Its DPoP proof, checked and recorded, if any.
    pub dpop: Option<&'a Proof>,
}

/// Runs the grant named `grant_type` for a client that authenticated (or that the JWT bearer
/// grant's assertion identified).
pub async fn dispatch(
    app: &App,
    caller: Caller<'_>,
    form: &Form,
    rules: &PathRules,
    grant_type: &str,
) -> Result<Answer, OAuthError> {
    let client = caller.client;
    let Some(grant) = find(grant_type) else {
        return Err(OAuthError::UnsupportedGrantType(
            format!("grant_type must be {}", names_in_prose()).into(),
        ));
    };
    if !grant.allowed(client) {
        // RFC 6749 §5.2: an authenticated client not allowed this grant type.
        return Err(OAuthError::UnauthorizedClient(
            format!("this client may not use {}", grant.name()).into(),
        ));
    }
    let request = TokenRequest {
        app,
        client,
        form,
        rules,
        address: caller.address,
        certificate: caller.certificate,
        identified_by_assertion: caller.identified_by_assertion,
        dpop: caller.dpop,
    };
    for (name, missing) in grant.required() {
        if form.get(name).is_none() {
            return Err(OAuthError::InvalidRequest((*missing).into()));
        }
    }
    grant.issue(request).await
}

/// `a, b or c`.
fn names_in_prose() -> String {
    let names: Vec<&str> = GRANTS.iter().map(|g| g.name()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_grant_type_has_its_module_and_no_other() {
        let names: Vec<&str> = GRANTS.iter().map(|g| g.name()).collect();
        assert_eq!(names, crate::model::flows::GRANT_TYPES);
        assert_eq!(
            names_in_prose(),
            "client_credentials, authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:jwt-bearer, urn:ietf:params:oauth:grant-type:token-exchange or urn:ietf:params:oauth:grant-type:device_code"
        );
        assert!(find("password").is_none());
        assert!(find("CLIENT_CREDENTIALS").is_none());
    }
}
