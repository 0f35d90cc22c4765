//! Resource indicators (RFC 8707): what a client may name as `resource`, and so what may be
//! registered as a client's audience.

use super::OAuthError;
use super::form::Form;
use super::mint::AudienceRef;
use crate::app::App;
use crate::clients::CachedClient;
use crate::model::client::is_absolute_uri;

/// The audience: the requested `resource`s (RFC 8707), each one the client may ask for; without
/// any, the client's default audience, or the issuer for a client that has none.
pub fn grant_audience<'a>(
    app: &'a App,
    client: &'a CachedClient,
    form: &'a Form,
) -> Result<AudienceRef<'a>, OAuthError> {
    let mut wanted: Vec<&'a str> = Vec::new();
    for r in form.all("resource") {
        if !is_absolute_uri(r) {
            return Err(OAuthError::InvalidTarget(
                "resource must be an absolute URI without a fragment".into(),
            ));
        }
        if !client.grants.audiences.iter().any(|a| &**a == r) {
            return Err(OAuthError::InvalidTarget(
                "resource is not allowed for this client".into(),
            ));
        }
        if !wanted.contains(&r) {
            wanted.push(r);
        }
    }
    Ok(match wanted.len() {
        0 => AudienceRef::One(
            client
                .grants
                .audiences
                .first()
                .map_or(app.settings.issuer.as_str(), |a| &**a),
        ),
        1 => AudienceRef::One(wanted[0]),
        _ => AudienceRef::Many(wanted),
    })
}
