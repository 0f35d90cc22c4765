//! The pages people see: plain HTML and CSS rendered on the server from templates checked at
//! compile time (`templates/interaction/`, askama, every value HTML-escaped unless marked
//! otherwise), no JavaScript. Each answer forbids framing and caching and allows nothing but
//! its own stylesheet, whose hash is computed at build time (`build.rs`).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The one stylesheet, inline; the Content-Security-Policy allows exactly it, by hash.
pub(crate) const STYLE: &str = include_str!("../../../templates/interaction/style.css");
include!(concat!(env!("OUT_DIR"), "/style_hash.rs"));

/// The login form.
#[derive(Template)]
#[template(path = "interaction/login.html")]
pub struct Login<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// The sealed authorization request.
    pub request: &'a str,
    /// The form's CSRF token.
    pub csrf: &'a str,
    /// The application's name.
    pub client_name: &'a str,
    /// The email to fill in (`login_hint`, or what was typed).
    pub email: &'a str,
    /// An error to show.
    pub error: Option<&'a str>,
}

/// The consent form.
#[derive(Template)]
#[template(path = "interaction/consent.html")]
pub struct Consent<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// The sealed authorization request.
    pub request: &'a str,
    /// The form's CSRF token.
    pub csrf: &'a str,
    /// The application's name.
    pub client_name: &'a str,
    /// Where the application lives (the redirect URI's origin), so a look-alike name shows.
    pub client_origin: &'a str,
    /// It registered itself and no operator vouched for it.
    pub unvetted: bool,
    /// It gets a refresh token though no scope says so (a plain OAuth request).
    pub stays: bool,
    /// For a client known by its metadata document: where that document lives.
    pub client_id_host: Option<String>,
    /// Who is signed in.
    pub email: &'a str,
    /// What is asked.
    pub scopes: &'a [String],
    /// For a device's request: the user code, for the person to compare with the device's.
    pub device_code: Option<&'a str>,
}

/// The page where a person enters a device's user code (RFC 8628 §3.3).
#[derive(Template)]
#[template(path = "interaction/device.html")]
pub struct DeviceEntry<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// The form's CSRF token.
    pub csrf: &'a str,
    /// The code to fill in (from `verification_uri_complete`, or what was typed).
    pub user_code: &'a str,
    /// An error to show.
    pub error: Option<&'a str>,
}

/// A page with a heading and one message.
#[derive(Template)]
#[template(path = "interaction/message.html")]
struct Message<'a> {
    title: &'a str,
    message: &'a str,
}

/// The sign-out confirmation.
#[derive(Template)]
#[template(path = "interaction/confirm_logout.html")]
struct ConfirmLogout<'a> {
    action: &'a str,
    fields: &'a [(&'a str, &'a str)],
}

/// A rendered page with the security headers (a page that fails to render is a plain 500, with
/// the same headers).
fn page(status: StatusCode, template: &impl Template) -> Response {
    let (mut r, rendered) = match template.render() {
        Ok(html) => ((status, html).into_response(), true),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR.into_response(), false)
        }
    };
    let h = r.headers_mut();
    if rendered {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    if let Ok(csp) = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'sha256-{STYLE_SHA256}'; frame-ancestors 'none'; base-uri 'none'"
    )) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Renders the login page.
pub fn login(status: StatusCode, l: &Login<'_>) -> Response {
    page(status, l)
}

/// Renders the consent page.
pub fn consent(c: &Consent<'_>) -> Response {
    page(StatusCode::OK, c)
}

/// Renders the page where a user code is entered.
pub fn device_entry(status: StatusCode, d: &DeviceEntry<'_>) -> Response {
    page(status, d)
}

/// A page that only says something went wrong (nowhere safe to redirect to).
pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, &Message { title, message })
}

/// The answer to a method other than `GET` and `POST` at a page's address (405, `Allow`).
pub fn get_or_post_only() -> Response {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "Use GET or POST.",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    r
}

/// Asks before signing out (a sign-out request the RP did not prove it made).
pub fn confirm_logout(action: &str, fields: &[(&str, &str)]) -> Response {
    page(StatusCode::OK, &ConfirmLogout { action, fields })
}

/// Says the person is signed out.
pub fn signed_out() -> Response {
    error(
        StatusCode::OK,
        "Signed out",
        "You are signed out. You can close this window.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_the_stylesheet_is_the_hashed_one() {
        let l = Login {
            action: "/oauth2/login",
            request: "r\"><script>",
            csrf: "c",
            client_name: r#"<script>alert("x")</script>&'"#,
            email: "a@example.com",
            error: Some("<b>no</b>"),
        };
        let html = l.render().unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&#60;script&#62;alert(&#34;x&#34;)"), "{html}");
        assert!(html.contains(&format!("<style>{STYLE}</style>")), "{html}");
        use base64::Engine;
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
        assert_eq!(
            STYLE_SHA256,
            base64::engine::general_purpose::STANDARD.encode(d.as_ref())
        );
    }
}
