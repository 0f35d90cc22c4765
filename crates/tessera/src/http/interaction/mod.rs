//! The pages that sign people in, apart from the protocol: the authorization endpoint's HTTP
//! face, the login and consent forms, and sign-out (OpenID Connect RP-Initiated Logout). What
//! an authorization request may ask is checked by `oauth::authorize`; the tokens are the
//! grants' (`oauth::grants`).
//!
//! - [`authorize`]: the authorization endpoint: errors, the session, the login and consent
//!   pages, the code.
//! - [`login`], [`consent`], [`logout`]: the forms' targets.
//! - [`pages`]: the HTML, rendered on the server, escaped, without JavaScript.
//!
//! Between the authorization request and the code, the request travels sealed (AES-256-GCM
//! under a secret derived from the master key) inside the page's form: any node can continue
//! what another began, and an unauthenticated visitor cannot make the store write anything.
//! Sessions, consents, codes and refresh tokens live in the store, on both engines.

mod authorize;
mod consent;
mod device;
mod login;
mod logout;
pub mod pages;

pub use authorize::{authorize, cross_site, cross_site_of, origin_of};
pub use consent::consent;
pub use device::device;
pub use login::login;
pub use logout::logout;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::app::App;

/// Seals `plain` for the browser to carry: nonce || ciphertext, base64url.
pub fn seal(app: &App, label: &[u8], plain: &[u8]) -> Option<String> {
    let secret = app.master.state_secrets().first()?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, secret).ok()?);
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(label), &mut buf)
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// Opens what [`seal`] sealed under `label`, with any of the node's master keys.
pub fn open(app: &App, label: &[u8], sealed: &str) -> Option<Vec<u8>> {
    if sealed.len() > 8192 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if raw.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ct) = raw.split_at(NONCE_LEN);
    for secret in app.master.state_secrets() {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, secret).ok()?);
        let mut buf = ct.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        if let Ok(plain) = key.open_in_place(nonce, Aad::from(label), &mut buf) {
            return Some(plain.to_vec());
        }
    }
    None
}

/// The CSRF token of a form: an HMAC, under the state secret, of the browser's CSRF cookie and
/// the sealed request the form carries (a signed double-submit cookie).
pub fn csrf_token(app: &App, cookie: &str, request: &str) -> Option<String> {
    let secret = app.master.state_secrets().first()?;
    Some(csrf_with(secret, cookie, request))
}

fn csrf_with(secret: &[u8; 32], cookie: &str, request: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(b"csrf\0");
    ctx.update(cookie.as_bytes());
    ctx.update(b"\0");
    ctx.update(request.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
}

/// A page with a form: `render` gets the form's CSRF token for `binding` (with the browser's
/// CSRF cookie, reused or set now, and the `Set-Cookie` that sets it added to the answer).
pub(super) fn with_csrf(
    app: &App,
    headers: &HeaderMap,
    binding: &str,
    render: impl FnOnce(&str) -> axum::response::Response,
) -> axum::response::Response {
    let (cookie, set) = Cookies::for_issuer(&app.settings.issuer).csrf(headers);
    let mut r = render(&csrf_token(app, &cookie, binding).unwrap_or_default());
    if let Some(set) = set {
        r.headers_mut().append(header::SET_COOKIE, set);
    }
    r
}

/// Whether `presented` is the CSRF token for this cookie and request (constant time).
pub fn csrf_ok(app: &App, cookie: Option<&str>, request: &str, presented: Option<&str>) -> bool {
    let (Some(cookie), Some(presented)) = (cookie, presented) else {
        return false;
    };
    if cookie.len() < 40 {
        return false;
    }
    app.master.state_secrets().iter().any(|secret| {
        let expected = csrf_with(secret, cookie, request);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), presented.as_bytes()).into()
    })
}

/// Cookie names and attributes for this issuer.
pub struct Cookies {
    /// Sent only over HTTPS (everywhere but a loopback issuer on plain HTTP).
    secure: bool,
    /// The issuer's path (`/` when it has none).
    path: String,
    /// `__Host-` when the rules for it hold (secure, path `/`), else empty.
    prefix: &'static str,
}

/// The session cookie's base name.
pub const SESSION_COOKIE: &str = "tessera_session";

/// The CSRF cookie's base name.
pub const CSRF_COOKIE: &str = "tessera_csrf";

impl Cookies {
    /// The rules for `issuer`.
    pub fn for_issuer(issuer: &str) -> Self {
        let (scheme, rest) = issuer.split_once("://").unwrap_or(("https", issuer));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(authority, |(h, _)| h);
        let loopback = matches!(host, "127.0.0.1" | "[::1]" | "localhost");
        let secure = !(scheme == "http" && loopback);
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        };
        let prefix = if secure && path == "/" { "__Host-" } else { "" };
        Cookies { secure, path, prefix }
    }

    /// Whether cookies are sent only over HTTPS (everywhere but a loopback issuer on plain
    /// HTTP).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The full name of cookie `base`.
    pub fn name(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Secure` unless on loopback HTTP;
    /// `max_age` 0 deletes it; `None` makes a browser-session cookie.
    pub fn set(&self, base: &str, value: &str, max_age: Option<i64>) -> Option<HeaderValue> {
        let mut c = format!(
            "{}={value}; Path={}; HttpOnly; SameSite=Lax",
            self.name(base),
            self.path
        );
        if self.secure {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        HeaderValue::from_str(&c).ok()
    }

    /// The browser's CSRF cookie, or a new one with the `Set-Cookie` that gives it.
    pub fn csrf(&self, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
        match self.get(headers, CSRF_COOKIE).filter(|c| c.len() >= 40) {
            Some(c) => (c.to_string(), None),
            None => {
                let c = crate::oauth::oidc::random_token();
                let set = self.set(CSRF_COOKIE, &c, None);
                (c, set)
            }
        }
    }

    /// The value of cookie `base` in the request, if exactly one is present.
    pub fn get<'h>(&self, headers: &'h HeaderMap, base: &str) -> Option<&'h str> {
        cookie_named(headers, &self.name(base)).filter(|v| v.len() <= 128)
    }
}

/// The value of the cookie called `name` (its full name) in the request, if exactly one is
/// present: two of one name (one planted by a sibling domain) give neither.
pub fn cookie_named<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((n, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if n == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v);
            }
        }
    }
    found
}
