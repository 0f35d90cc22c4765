//! The pages people see: plain HTML and CSS rendered on the server, no JavaScript, every value
//! escaped. Each answer forbids framing and caching and allows nothing but its own stylesheet.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The one stylesheet, inline; the Content-Security-Policy allows exactly it, by hash.
const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;\
color:#1d2330;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}\
main{background:#fff;border-radius:10px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem 2.25rem;\
width:100%;max-width:22rem}h1{font-size:1.35rem;margin:0 0 .3rem}p{margin:.4rem 0 1rem;color:#4a5365}\
label{display:block;font-size:.9rem;margin:.8rem 0 .3rem}input[type=email],input[type=password]{\
box-sizing:border-box;width:100%;padding:.6rem .7rem;border:1px solid #c5cad3;border-radius:6px;font-size:1rem}\
button{margin-top:1.2rem;width:100%;padding:.65rem;border:0;border-radius:6px;background:#2855d8;color:#fff;\
font-size:1rem;cursor:pointer}button.secondary{background:#e7e9ee;color:#1d2330;margin-top:.6rem}\
.error{background:#fdecec;color:#9b1c1c;border-radius:6px;padding:.6rem .7rem;font-size:.9rem}\
ul{padding-left:1.2rem;margin:.5rem 0}li{margin:.25rem 0}.brand{font-size:.8rem;letter-spacing:.08em;\
text-transform:uppercase;color:#7a8294;margin-bottom:1rem}code{font-size:.85rem}";

fn style_hash() -> String {
    use base64::Engine;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(d.as_ref())
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page: `title` and `body` (already escaped HTML) with the security headers.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><style>{STYLE}</style></head>\
<body><main><div class=\"brand\">Tessera</div>{body}</main></body></html>\n",
        escape(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'sha256-{}'; frame-ancestors 'none'; base-uri 'none'",
        style_hash()
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

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

/// The login form.
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

/// Renders the login page.
pub fn login(status: StatusCode, l: &Login<'_>) -> Response {
    let error = l
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1><p>to continue to <strong>{}</strong></p>{error}\
<form method=\"post\" action=\"{}\">{}{}\
<label for=\"email\">Email</label><input type=\"email\" id=\"email\" name=\"email\" value=\"{}\" \
autocomplete=\"username\" required autofocus>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" \
autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
        escape(l.client_name),
        escape(l.action),
        hidden("request", l.request),
        hidden("csrf", l.csrf),
        escape(l.email),
    );
    page(status, "Sign in", &body)
}

/// The consent form.
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
    /// Who is signed in.
    pub email: &'a str,
    /// What is asked.
    pub scopes: &'a [String],
}

fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are".to_string(),
        "profile" => "See your name".to_string(),
        "email" => "See your email address".to_string(),
        "offline_access" => "Stay signed in when you are away".to_string(),
        other => format!("Use <code>{}</code>", escape(other)),
    }
}

/// Renders the consent page.
pub fn consent(c: &Consent<'_>) -> Response {
    let items: String = c
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", describe(s)))
        .collect();
    let body = format!(
        "<h1>Allow access?</h1><p><strong>{}</strong> (<code>{}</code>) asks to:</p><ul>{items}</ul>\
<p>Signed in as {}.</p><form method=\"post\" action=\"{}\">{}{}\
<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button></form>",
        escape(c.client_name),
        escape(c.client_origin),
        escape(c.email),
        escape(c.action),
        hidden("request", c.request),
        hidden("csrf", c.csrf),
    );
    page(StatusCode::OK, "Allow access", &body)
}

/// A page that only says something went wrong (nowhere safe to redirect to).
pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!("<h1>{}</h1><p>{}</p>", escape(title), escape(message));
    page(status, title, &body)
}

/// Asks before signing out (a sign-out request the RP did not prove it made).
pub fn confirm_logout(action: &str, fields: &[(&str, &str)]) -> Response {
    let hidden_fields: String = fields.iter().map(|(n, v)| hidden(n, v)).collect();
    let body = format!(
        "<h1>Sign out?</h1><p>Do you want to sign out of Tessera?</p>\
<form method=\"post\" action=\"{}\">{hidden_fields}<button type=\"submit\">Sign out</button></form>",
        escape(action)
    );
    page(StatusCode::OK, "Sign out", &body)
}

/// Says the person is signed out.
pub fn signed_out() -> Response {
    page(
        StatusCode::OK,
        "Signed out",
        "<h1>Signed out</h1><p>You are signed out. You can close this window.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }
}
