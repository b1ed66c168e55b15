//! The few HTML pages of sign-in with local accounts: approve a device, sign in for a CLI, and
//! outcome messages. Self-contained (inline style, no scripts, nothing fetched from elsewhere),
//! never framed, never cached; every interpolated value is escaped.

use axum::response::{Html, IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}\
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box;font-size:1rem}\
button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}.err{color:#a00}.muted{color:#666;font-size:.9rem}";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · agentnet</title><style>{STYLE}</style></head><body><h1>{title}</h1>{body}</body></html>",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn error_line(error: Option<&str>) -> String {
    error
        .filter(|e| !e.is_empty())
        .map(|e| format!("<p class=\"err\">{}</p>", escape(e)))
        .unwrap_or_default()
}

/// The device approval form, with the code filled in when known.
pub(crate) fn activate(user_code: Option<&str>, error: Option<&str>) -> Response {
    let body = format!(
        "<p>Sign in to approve the device that showed you this code.</p>{error}\
         <form method=\"post\" action=\"{prefix}/activate\">\
         <label for=\"user_code\">Code</label><input id=\"user_code\" name=\"user_code\" value=\"{code}\" autocomplete=\"off\" required>\
         <label for=\"login\">Username or email</label><input id=\"login\" name=\"login\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button name=\"action\" value=\"approve\">Sign in and approve</button> \
         <button name=\"action\" value=\"deny\" formnovalidate>Deny</button></form>\
         <p class=\"muted\">Only approve a code you started yourself (agentnet login).</p>",
        error = error_line(error),
        prefix = api_types::AUTH_PREFIX,
        code = escape(user_code.unwrap_or_default()),
    );
    page(
        if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK },
        "Approve a device",
        &body,
    )
}

/// The sign-in form of a browser sign-in for a CLI (`flow` is the pending flow's id).
pub(crate) fn sign_in(flow: &str, client: Option<&str>, error: Option<&str>) -> Response {
    let device = client.map(|c| format!(" on <b>{}</b>", escape(c))).unwrap_or_default();
    let body = format!(
        "<p>Sign in to agentnet{device}.</p>{error}\
         <form method=\"post\" action=\"{prefix}/authorize\">\
         <input type=\"hidden\" name=\"flow\" value=\"{flow}\">\
         <label for=\"login\">Username or email</label><input id=\"login\" name=\"login\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button>Sign in</button></form>",
        error = error_line(error),
        prefix = api_types::AUTH_PREFIX,
        flow = escape(flow),
    );
    page(if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK }, "Sign in", &body)
}

/// A page that only says something.
pub(crate) fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(status, title, &format!("<p>{}</p>", escape(text)))
}

/// HTML-escapes text for element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
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
