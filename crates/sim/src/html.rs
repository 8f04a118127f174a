//! The HTML of the simulated consent and error pages.

use axum::{
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};

/// An HTML document with `body`, and a `<head>` with `title` when given.
pub(crate) fn document(status: StatusCode, title: Option<&str>, body: &str) -> Response {
    let head = title.map_or_else(String::new, |title| {
        format!("<head><title>{title}</title></head>")
    });
    (
        status,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!DOCTYPE html><html>{head}<body>{body}</body></html>"),
    )
        .into_response()
}

/// A consent form: the request's parameters `raw` as hidden fields, and
/// a `deny` button and an "Allow" button that send them back to the same
/// URL with `consent=denied` or `consent=granted`.
pub(crate) fn consent_form(raw: &[(String, String)], deny: &str) -> String {
    let hidden: String = raw
        .iter()
        .filter(|(name, _)| name != "consent")
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect();
    format!(
        "<form method=\"get\" action=\"\">{hidden}\
         <button type=\"submit\" name=\"consent\" value=\"denied\">{deny}</button>\
         <button type=\"submit\" name=\"consent\" value=\"granted\" id=\"allow\">Allow</button>\
         </form>"
    )
}

/// `text` with the characters that HTML text and attributes give meaning
/// to escaped.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
